// Bundles the app into one file, the way a trimmed deployment would ship it. Dependencies with
// optional native parts (dockerode pulls in ssh2) stay external; isol8's own packages and
// plugins are bundled, so the check below sees exactly which plugins the app carries.
import { build } from "esbuild";

const result = await build({
  entryPoints: [new URL("../src/main.ts", import.meta.url).pathname],
  outfile: new URL("../dist/main.mjs", import.meta.url).pathname,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["@isol8/source"],
  external: ["dockerode"],
  // CommonJS dependencies (tapable) call require() for Node built-ins; give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  metafile: true,
  logLevel: "warning",
});
const inputs = Object.keys(result.metafile.inputs);
console.log(JSON.stringify({ outfile: "dist/main.mjs", inputs }, null, 2));
