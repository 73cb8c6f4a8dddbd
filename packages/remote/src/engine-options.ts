import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InvalidOptionsError } from "@isol8/kit/errors";
import type { EngineOptions, ResolvedEngineOptions } from "@isol8/kit";

type Schemas = typeof import("@isol8/kit/schemas");

let schemas: Schemas | undefined;

/**
 * The kit's option schemas, loaded on the first construction instead of at import: they need zod,
 * whose load (~50 ms) would be most of the client's import time. require() of an ES module
 * (Node.js >= 20.19, the engines floor) loads it synchronously, and as the same module instance an
 * import of "@isol8/kit/schemas" gets, so a bad option still fails in the constructor. The file is
 * the one the kit publishes for that export (read from its package.json): a process that resolves
 * the workspace's source condition (the tests) cannot require TypeScript.
 */
function optionSchemas(): Schemas {
  if (schemas) return schemas;
  const require = createRequire(import.meta.url);
  const manifest = require.resolve("@isol8/kit/package.json");
  const { exports } = require(manifest) as { exports: Record<string, { default: string }> };
  schemas = require(join(dirname(manifest), exports["./schemas"]!.default)) as Schemas;
  return schemas;
}

/** Validates engine options as a local engine does: bad ones fail here, naming the option. */
export function checkEngineOptions(options: EngineOptions | undefined): ResolvedEngineOptions {
  const { engineOptionsSchema, formatZodError } = optionSchemas();
  const parsed = engineOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw new InvalidOptionsError(`Invalid engine options: ${formatZodError(parsed.error)}`);
  return parsed.data;
}
