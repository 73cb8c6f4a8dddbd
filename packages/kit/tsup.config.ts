import { defineConfig } from "tsup";

export default defineConfig({
  // errors and sizes load without zod or tapable: @isol8/remote and the CLI's start-up import only them.
  entry: {
    index: "src/index.ts",
    "errors-entry": "src/errors-entry.ts",
    "ws-wire": "src/ws-wire.ts",
    // types only, without Node types or zod: the browser playground (packages/ui) imports them.
    "results-entry": "src/results-entry.ts",
    sizes: "src/sizes.ts",
    schemas: "src/schemas.ts",
    "testing/fake-pool-context": "src/testing/fake-pool-context.ts",
  },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  tsconfig: "tsconfig.build.json",
});
