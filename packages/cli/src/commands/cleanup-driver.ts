import { CONTAINER_LABELS, createEngine, InvalidOptionsError, type SandboxDriver } from "@isol8/core";
import { loadCliConfig } from "../cli-config.js";

export interface DriverCleanupReport {
  removed: number;
  removedNetworks: number;
  failed: number;
  errors: string[];
}

/**
 * The driver `name` as the config's plugins make it (e.g. `kubernetesDriver({ namespace, kubeconfig })`
 * for "kubernetes"): an unknown name, or one no plugin of the config registers, is refused naming
 * the registered ones. Nothing is started: the engine is only assembled.
 */
export async function configuredDriver(name: string, configPath: string | undefined): Promise<SandboxDriver> {
  const config = await loadCliConfig(configPath);
  return createEngine(config, { driver: name }).driver;
}

/** What isol8 made through a driver, by its labels: the sandboxes of every engine, and its networks. */
export async function listThroughDriver(driver: SandboxDriver): Promise<{ sandboxes: string[]; networks: string[] }> {
  // The engine label, as for Docker: every sandbox an engine made carries it.
  const sandboxes = await driver.list({ [CONTAINER_LABELS.engine]: true });
  const networks = await driver.networks.list({ [CONTAINER_LABELS.managed]: "true" });
  return { sandboxes: sandboxes.map((s) => s.id), networks: networks.map((n) => n.name) };
}

/** Removes them (sandboxes before networks, which a backend refuses to remove while in use). */
export async function removeThroughDriver(driver: SandboxDriver, found: { sandboxes: string[]; networks: string[] }): Promise<DriverCleanupReport> {
  const report: DriverCleanupReport = { removed: 0, removedNetworks: 0, failed: 0, errors: [] };
  const attempt = async (what: string, work: () => Promise<void>, count: "removed" | "removedNetworks") => {
    try {
      await work();
      report[count]++;
    } catch (error) {
      report.failed++;
      report.errors.push(`${what}: ${(error as Error).message}`);
    }
  };
  await Promise.all(found.sandboxes.map((id) => attempt(`sandbox ${id}`, () => driver.remove(id), "removed")));
  await Promise.all(found.networks.map((name) => attempt(`network ${name}`, () => driver.networks.remove(name), "removedNetworks")));
  return report;
}

/** `--images` with another driver than Docker: its images are in a registry isol8 does not own. */
export function refuseImages(driver: string): never {
  throw new InvalidOptionsError(
    `--images: the ${driver} driver's images are in a registry (isol8 cleanup removes only the local Docker engine's images); leave out --images`,
  );
}
