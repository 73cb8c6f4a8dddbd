import { hostname } from "node:os";
import { CONTAINER_LABELS, type Logger, type SandboxDriver } from "@isol8/kit";
import { pidNamespace } from "./sandbox-spec.js";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by someone else
  }
}

/** Who is asking: the host name and PID namespace a container's owner labels are compared with. */
export interface ReaperSelf {
  host: string;
  pidNamespace: string | undefined;
  alive(pid: number): boolean;
}

/**
 * Whether a sandbox (or network) was left by a dead engine: its owner ran on this host, in this
 * PID namespace (a pid of another namespace says nothing here: two nodes with one host name in
 * different namespaces would take each other's live sandboxes for orphans), and its pid is gone.
 * Owners labelled before the namespace label existed are judged by host and pid, as then.
 */
export function isOrphaned(labels: Readonly<Record<string, string>> | undefined, self: ReaperSelf): boolean {
  if (!labels || labels[CONTAINER_LABELS.ownerHost] !== self.host || labels[CONTAINER_LABELS.persist] === "true") return false;
  const namespace = labels[CONTAINER_LABELS.ownerPidNamespace];
  if (namespace !== undefined && namespace !== self.pidNamespace) return false;
  const pid = Number(labels[CONTAINER_LABELS.ownerPid]);
  return Number.isInteger(pid) && pid > 0 && !self.alive(pid);
}

/**
 * Removes sandboxes and networks left by isol8 engines of this host (and PID namespace) whose
 * process is gone (a crash, a kill -9). Those of `persist: true` engines are left for inspection.
 */
export async function reapOrphans(driver: SandboxDriver, log: Logger): Promise<void> {
  const self: ReaperSelf = { host: hostname(), pidNamespace: pidNamespace(), alive: processAlive };
  const orphaned = (labels: Readonly<Record<string, string>> | undefined) => isOrphaned(labels, self);
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
