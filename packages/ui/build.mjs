// Bundles the page (Preact + CodeMirror, no CDN) into static files: index.html, frame.html,
// app.css and app.js. @isol8/server's build calls buildUi(<server>/dist/ui) so the files ship
// inside the server package; `node build.mjs [outDir]` builds them alone (default ./dist).
import { copyFile, mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
const STATIC_FILES = ["index.html", "frame.html", "app.css"];

/** Writes the page's files into `outDir` (emptied first). */
export async function buildUi(outDir) {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, "src/main.tsx")],
    outfile: join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "linked",
    logLevel: "warning",
  });
  for (const file of STATIC_FILES) await copyFile(join(here, "static", file), join(outDir, file));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildUi(resolve(process.argv[2] ?? join(here, "dist")));
}
