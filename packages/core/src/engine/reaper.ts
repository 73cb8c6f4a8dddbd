import { hostname } from "node:os";
import type Docker from "dockerode";
import { CONTAINER_LABELS, type Logger, type SandboxDriver } from "@isol8/kit";
import { DockerDriver } from "../docker/driver.js";
import { IMAGE_LABELS } from "../images/tags.js";

export interface CleanupReport {
  /** Containers removed. */
  removed: number;
  /** Containers (or networks, images) that could not be removed. */
  failed: number;
  errors: string[];
  removedNetworks: number;
  /** With `images: true`. */
  removedImages?: number;
}

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

/**
 * Removes every container (and network) isol8 made on this Docker engine, and with `images`
 * its images: only what carries isol8's labels, never anything else.
 */
export async function cleanupDocker(options: { docker?: Docker; images?: boolean } = {}): Promise<CleanupReport> {
  const driver = new DockerDriver(options.docker);
  await driver.ping();
  const report: CleanupReport = { removed: 0, failed: 0, errors: [], removedNetworks: 0 };
  const attempt = async (what: string, work: () => Promise<unknown>, count: "removed" | "removedNetworks" | "removedImages") => {
    try {
      await work();
      report[count] = (report[count] ?? 0) + 1;
    } catch (error) {
      report.failed++;
      report.errors.push(`${what}: ${(error as Error).message}`);
    }
  };
  // The engine label, not isol8.managed: images carry isol8.managed too, and a container a user
  // started from an isol8 image inherits it without being isol8's.
  const containers = await driver.listContainers({ [CONTAINER_LABELS.engine]: true });
  await Promise.all(containers.map((c) => attempt(`container ${c.Id.slice(0, 12)}`, () => driver.removeContainer(c.Id), "removed")));
  const networks = await driver.docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.managed}=true`] } });
  await Promise.all(networks.map((n) => attempt(`network ${n.Name}`, () => driver.docker.getNetwork(n.Id).remove(), "removedNetworks")));
  if (options.images) {
    report.removedImages = 0;
    const images = await driver.docker.listImages({ filters: { label: [`${IMAGE_LABELS.managed}=true`] } });
    // Runtime images first: the base is their parent.
    images.sort(
      (a, b) =>
        Number(Object.keys(a.Labels ?? {}).includes(IMAGE_LABELS.runtime) ? 0 : 1) - Number(Object.keys(b.Labels ?? {}).includes(IMAGE_LABELS.runtime) ? 0 : 1),
    );
    for (const image of images) {
      await attempt(`image ${image.RepoTags?.[0] ?? image.Id}`, () => driver.docker.getImage(image.Id).remove({ force: true }), "removedImages");
    }
  }
  return report;
}
