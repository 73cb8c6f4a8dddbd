import { hostname } from "node:os";
import { CONTAINER_LABELS, type Logger, type SandboxDriver, type SandboxOwnership } from "@isol8/kit";
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

type Labels = Readonly<Record<string, string>> | undefined;

/**
 * The judgement of a driver with its own ownership (SandboxOwnership): a sandbox is an orphan when
 * its engine is another one whose claim is not alive. Asks once per engine; `persist: true` and
 * unlabelled ones are left alone, and so is this engine's own.
 */
export async function ownershipJudge(
  ownership: SandboxOwnership,
  selfEngineId: string,
  labelsOf: Labels[],
): Promise<{ orphaned: (labels: Labels) => boolean; dead: ReadonlySet<string> }> {
  const engineOf = (labels: Labels) => (labels?.[CONTAINER_LABELS.persist] === "true" ? undefined : labels?.[CONTAINER_LABELS.engine]);
  const engines = new Set(labelsOf.map(engineOf).filter((id): id is string => id !== undefined && id !== selfEngineId));
  const dead = new Set<string>();
  for (const id of engines) if (!(await ownership.alive(id))) dead.add(id);
  const orphaned = (labels: Labels) => {
    const id = engineOf(labels);
    return id !== undefined && dead.has(id);
  };
  return { orphaned, dead };
}

/**
 * Removes sandboxes and networks left by dead isol8 engines (a crash, a kill -9, a replaced pod):
 * by the driver's ownership when it has one, else those of this host (and PID namespace) whose
 * owner process is gone. Those of `persist: true` engines are left for inspection.
 */
export async function reapOrphans(driver: SandboxDriver, log: Logger, selfEngineId: string): Promise<void> {
  const managed = { [CONTAINER_LABELS.managed]: "true" };
  const [allSandboxes, allNetworks] = [await driver.list(managed), await driver.networks.list(managed)];
  const self: ReaperSelf = { host: hostname(), pidNamespace: pidNamespace(), alive: processAlive };
  const { ownership } = driver;
  const ownerLabels = [...allSandboxes, ...allNetworks].map((x) => x.labels);
  const judged = ownership
    ? await ownershipJudge(ownership, selfEngineId, ownerLabels)
    : { orphaned: (labels: Labels) => isOrphaned(labels, self), dead: new Set<string>() };
  const sandboxes = allSandboxes.filter((c) => judged.orphaned(c.labels));
  const networks = allNetworks.filter((n) => judged.orphaned(n.labels));
  if (sandboxes.length === 0 && networks.length === 0) return;
  await Promise.allSettled(sandboxes.map((c) => driver.remove(c.id)));
  await Promise.allSettled(networks.map((n) => driver.networks.remove(n.name)));
  // The dead engines' expired claims go too (a missing claim is as dead as an expired one).
  if (ownership) await Promise.allSettled([...judged.dead].map((id) => ownership.release(id)));
  log.info("reaped what dead isol8 engines left", { containers: sandboxes.length, networks: networks.length });
}

/** Retries the removals that failed (the backend was down); reports, and logs, the sandboxes still left. */
export async function retryRemovals(driver: SandboxDriver, log: Logger): Promise<{ notRemoved: string[] }> {
  const notRemoved = driver.unremoved.length ? await driver.retryRemovals() : [];
  if (notRemoved.length) log.warn("containers could not be removed (Docker does not answer); 'isol8 cleanup' removes them", { containers: notRemoved });
  return { notRemoved };
}
