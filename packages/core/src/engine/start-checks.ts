import { readFile } from "node:fs/promises";
import { InvalidOptionsError, type ResolvedEngineOptions, type SandboxDriver } from "@isol8/kit";

/** The configured CA bundle's content (for package installs), read once at start. */
export async function readCaBundle(options: ResolvedEngineOptions): Promise<Buffer | undefined> {
  if (!options.caBundle) return undefined;
  return readFile(options.caBundle).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidOptionsError(`caBundle: cannot read ${options.caBundle}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
  });
}

/** `ociRuntime` must name a runtime the backend offers: fail at start, saying how to add gVisor. */
export async function checkOciRuntime(driver: SandboxDriver, options: ResolvedEngineOptions): Promise<void> {
  if (!options.ociRuntime) return;
  const runtimes = await driver.ociRuntimes();
  if (runtimes.includes(options.ociRuntime)) return;
  const offered = runtimes.length ? runtimes.join(", ") : "none";
  throw new InvalidOptionsError(
    driver.kind === "docker"
      ? `ociRuntime: the Docker engine has no OCI runtime "${options.ociRuntime}" (it has ${offered}). ` +
          `For gVisor, install Debian's runsc package and register it in /etc/docker/daemon.json ("runtimes": {"runsc": {"path": "/usr/bin/runsc"}}), then reload Docker.`
      : `ociRuntime: the ${driver.kind} driver offers no runtime "${options.ociRuntime}" (it offers ${offered}); see that driver's options (Kubernetes: runtimeClasses, the RuntimeClasses of your cluster).`,
  );
}
