import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources (the "@isol8/source" export condition),
// so tests need no build. Node-environment tests read ssr.resolve.conditions, not resolve.conditions.
export default defineConfig({
  ssr: { resolve: { conditions: ["@isol8/source"] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "plugins/*/src/**/*.test.ts"],
          // Unit tests run first, then the Docker-bound integration tests.
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "packages/*/test/**/*.test.ts", "plugins/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
          exclude: ["**/*.exclusive.test.ts", "**/node_modules/**"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 900_000,
          // Two cores: at most two files talk to Docker at once.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          fileParallelism: true,
        },
      },
      {
        extends: true,
        test: {
          // Tests of machine-wide operations (cleanup of every isol8 container) run last and alone,
          // so they cannot remove what another test file is using.
          name: "exclusive",
          include: ["test/integration/**/*.exclusive.test.ts", "packages/*/test/**/*.exclusive.test.ts", "plugins/*/test/**/*.exclusive.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 900_000,
          maxWorkers: 1,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
