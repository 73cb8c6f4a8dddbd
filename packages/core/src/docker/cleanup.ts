import type Docker from "dockerode";
import { CONTAINER_LABELS } from "@isol8/kit";
import { IMAGE_LABELS } from "../images/tags.js";
import { DockerDriver } from "./driver.js";

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
    // Children before parents: derived images (isol8.image) before runtime images, runtime images before the base.
    const depth = (labels: Record<string, string> | undefined) => ("isol8.image" in (labels ?? {}) ? 0 : IMAGE_LABELS.runtime in (labels ?? {}) ? 1 : 2);
    images.sort((a, b) => depth(a.Labels) - depth(b.Labels));
    for (const image of images) {
      await attempt(`image ${image.RepoTags?.[0] ?? image.Id}`, () => driver.docker.getImage(image.Id).remove({ force: true }), "removedImages");
    }
  }
  return report;
}
