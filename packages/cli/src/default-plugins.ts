import type { Isol8Plugin } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { bunRuntime } from "@isol8/plugin-runtime-bun";
import { denoRuntime } from "@isol8/plugin-runtime-deno";
import { nodeRuntime } from "@isol8/plugin-runtime-node";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { seccomp } from "@isol8/plugin-seccomp";
import { stdoutAudit } from "@isol8/plugin-audit-stdout";

/** The plugins a batteries-included engine has: the one place that knows the default set. */
export function defaultPlugins(): Isol8Plugin[] {
  return [pythonRuntime(), nodeRuntime(), bunRuntime(), denoRuntime(), bashRuntime(), seccomp(), stdoutAudit()];
}
