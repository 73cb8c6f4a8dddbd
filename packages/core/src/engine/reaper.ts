import { hostname } from "node:os";
import { CONTAINER_LABELS, type Logger, type SandboxDriver } from "@isol8/kit";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by someone else
  }
}

/**
 * Removes sandboxes and networks left by isol8 engines of this host whose process is gone (a
 * crash, a kill -9). Those of `persist: true` engines are left for inspection.
 */
export async function reapOrphans(driver: SandboxDriver, log: Logger): Promise<void> {
  const host = hostname();
  const orphaned = (labels: Readonly<Record<string, string>> | undefined) => {
    if (!labels || labels[CONTAINER_LABELS.ownerHost] !== host || labels[CONTAINER_LABELS.persist] === "true") return false;
    const pid = Number(labels[CONTAINER_LABELS.ownerPid]);
    return Number.isInteger(pid) && pid > 0 && !processAlive(pid);
  };
  const managed = { [CONTAINER_LABELS.managed]: "true" };
  const sandboxes = (await driver.list(managed)).filter((c) => orphaned(c.labels));
  const networks = (await driver.networks.list(managed)).filter((n) => orphaned(n.labels));
  if (sandboxes.length === 0 && networks.length === 0) return;
  await Promise.allSettled(sandboxes.map((c) => driver.remove(c.id)));
  await Promise.allSettled(networks.map((n) => driver.networks.remove(n.name)));
  log.info("reaped what dead isol8 engines left", { containers: sandboxes.length, networks: networks.length });
}

/** Retries the removals that failed (the backend was down); reports, and logs, the sandboxes still left. */
export async function retryRemovals(driver: SandboxDriver, log: Logger): Promise<{ notRemoved: string[] }> {
  const notRemoved = driver.unremoved.length ? await driver.retryRemovals() : [];
  if (notRemoved.length) log.warn("containers could not be removed (Docker does not answer); 'isol8 cleanup' removes them", { containers: notRemoved });
  return { notRemoved };
}
