import { InvalidRequestError, PackageInstallError, type PackageInstaller, type ResolvedEngineOptions, type RuntimeDefinition } from "@isol8/kit";
import type { SecretMasker } from "../output.js";
import type { ProcessLauncher } from "./launcher.js";
import { packTar } from "./sandbox-files.js";

/** Where the configured CA bundle is placed for package managers. */
const CA_BUNDLE_PATH = "/tmp/.isol8-ca.pem";

/** A checked `installPackages` request: the runtime's installer and the package specs. */
export interface PackageInstall {
  installer: PackageInstaller;
  packages: string[];
}

/** Refuses installPackages that cannot work before anything runs: no installer, bad names, no network. */
export function checkInstall(runtime: RuntimeDefinition, packages: string[], options: ResolvedEngineOptions): PackageInstall {
  const installer = runtime.packages;
  if (!installer) throw new InvalidRequestError(`request.installPackages: runtime "${runtime.name}" has no package installer`);
  packages.forEach((name, i) => {
    if (!installer.validName.test(name) || name.startsWith("-")) {
      throw new InvalidRequestError(
        `request.installPackages[${i}]: ${JSON.stringify(name)} is not a valid ${runtime.name} package name (expected a name with an optional version, matching ${installer.validName}; no spaces, shell characters or flags)`,
      );
    }
  });
  if (options.network === "none") {
    throw new InvalidRequestError(
      `request.installPackages: the engine's network is "none", so no registry can be reached. Use network "filtered" (with the registry's host allowed) or "host".`,
    );
  }
  return { installer, packages };
}

/** Runs the runtime's package manager in the sandbox, as the sandbox user, with its own time budget. */
export async function installPackages(
  launcher: ProcessLauncher,
  containerId: string,
  install: PackageInstall,
  job: { env: Record<string, string>; timeoutMs: number; signal: AbortSignal; caBundle?: Buffer; secrets: SecretMasker },
): Promise<void> {
  const caBundle = job.caBundle ? CA_BUNDLE_PATH : undefined;
  const payload = await packTar(job.caBundle ? [{ path: CA_BUNDLE_PATH, content: job.caBundle }] : []);
  let output = "";
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    launcher.killAll(containerId).catch(() => undefined);
  }, job.timeoutMs);
  try {
    const { exitCode } = await launcher.run(containerId, {
      argv: install.installer.command(install.packages, { caBundle }),
      env: { ...job.env, ...install.installer.env?.({ caBundle }) },
      payload,
      signal: job.signal,
      onOutput: (_stream, chunk) => {
        output = (output + chunk.toString()).slice(-8192);
      },
    });
    const tail = job.secrets.mask(output.trim().split("\n").slice(-15).join("\n"));
    const what = install.packages.join(", ");
    if (timedOut) throw new PackageInstallError(`installPackages timed out after ${job.timeoutMs} ms installing ${what}:\n${tail}`);
    if (exitCode !== 0) throw new PackageInstallError(`installPackages failed (exit ${exitCode}) installing ${what}:\n${tail}`);
  } finally {
    clearTimeout(timer);
  }
}
