import { DockerDriver, runtimeImageTag } from "@isol8/core";
import { defaultPlugins } from "isol8";
import { Kit, applyPlugins, silentLogger } from "@isol8/core";

/**
 * Integration tests need the real Docker engine and the runtime images. Both are provisioned by
 * `bash scripts/bootstrap.sh` (which `pnpm test` and CI run first); here we only check, and fail
 * with a message that says what to run. Never a silent skip: a skipped test proves nothing.
 */
export default async function setup(): Promise<void> {
  const driver = new DockerDriver();
  try {
    await driver.ping();
  } catch (error) {
    throw new Error(
      `Integration tests need a running Docker engine${process.env.CI ? " (CI=true)" : ""}: ${(error as Error).message}\n` +
        "Run 'bash scripts/ensure-docker.sh' (installs and starts Debian's engine when none answers), or 'pnpm test', which does it.",
      { cause: error },
    );
  }
  const kit = new Kit(silentLogger);
  applyPlugins(kit, defaultPlugins());
  const missing: string[] = [];
  for (const runtime of kit.runtimes.values()) {
    if (!(await driver.imageExists(runtimeImageTag(runtime)))) missing.push(`${runtime.name} (${runtimeImageTag(runtime)})`);
  }
  if (missing.length) {
    throw new Error(`Runtime images are missing: ${missing.join(", ")}. Run 'node packages/cli/dist/bin.js setup' (or 'pnpm test', which does it).`);
  }
}
