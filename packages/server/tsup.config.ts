import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "tsup";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

export default defineConfig({
  entry: { index: "src/index.ts" },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  tsconfig: "tsconfig.build.json",
  define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version) },
  // The web page of `isol8 serve --ui` (packages/ui), bundled into dist/ui: it ships inside this package.
  onSuccess: async () => {
    // A computed URL, so the config's bundler leaves the import alone: the build resolves esbuild, Preact and CodeMirror from packages/ui.
    const builder = new URL("../ui/build.mjs", import.meta.url).href;
    const { buildUi } = (await import(builder)) as { buildUi: (outDir: string) => Promise<void> };
    await buildUi(fileURLToPath(new URL("./dist/ui/", import.meta.url)));
  },
});
