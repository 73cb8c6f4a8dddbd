import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "testing/fake-pool-context": "src/testing/fake-pool-context.ts" },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  tsconfig: "tsconfig.build.json",
});
