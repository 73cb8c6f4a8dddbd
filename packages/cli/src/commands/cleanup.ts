import { createInterface } from "node:readline/promises";
import { CONTAINER_LABELS, DockerDriver, DockerIsol8, IMAGE_LABELS } from "@isol8/core";
import { configuredDriver, listThroughDriver, refuseImages, removeThroughDriver } from "./cleanup-driver.js";

export interface CleanupFlags {
  force?: boolean;
  images?: boolean;
  /** A sandbox driver by name ("kubernetes"): what isol8 made through it, with the config's plugin options. */
  driver?: string;
  config?: string;
}

/** Whether to go on: --force, else a "y" on a terminal; without one, says what --force would remove. */
async function confirmed(summary: string, force: boolean | undefined, where: string): Promise<boolean> {
  if (force) return true;
  if (!process.stdin.isTTY) {
    process.stderr.write(`isol8 cleanup would remove ${summary}${where}; pass --force to do it without asking.\n`);
    return false;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`Remove ${summary} made by isol8${where}? [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

/** `isol8 cleanup`: removes what isol8 left on this Docker engine (only what carries its labels), or through another driver. */
export async function cleanupCommand(flags: CleanupFlags): Promise<number> {
  if (flags.driver !== undefined && flags.driver !== "docker") return cleanupThroughDriver(flags.driver, flags);
  const driver = new DockerDriver();
  await driver.ping();
  const containers = await driver.listContainers({ [CONTAINER_LABELS.engine]: true });
  const networks = await driver.docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.managed}=true`] } });
  const images = flags.images ? await driver.docker.listImages({ filters: { label: [`${IMAGE_LABELS.managed}=true`] } }) : [];
  const summary = `${containers.length} container(s), ${networks.length} network(s)${flags.images ? `, ${images.length} image(s)` : ""}`;
  if (containers.length + networks.length + images.length === 0) {
    process.stdout.write("Nothing to clean up.\n");
    return 0;
  }
  if (!(await confirmed(summary, flags.force, ""))) return 1;
  const report = await DockerIsol8.cleanup({ images: flags.images });
  process.stdout.write(
    `Removed ${report.removed} container(s), ${report.removedNetworks} network(s)${flags.images ? `, ${report.removedImages ?? 0} image(s)` : ""}; ${report.failed} failed.\n`,
  );
  for (const error of report.errors) process.stderr.write(`  ${error}\n`);
  return report.failed > 0 ? 1 : 0;
}

/** `isol8 cleanup --driver <name>`: the sandboxes (and networks) carrying isol8's labels, listed and removed through that driver. */
async function cleanupThroughDriver(name: string, flags: CleanupFlags): Promise<number> {
  if (flags.images) refuseImages(name);
  const driver = await configuredDriver(name, flags.config);
  await driver.ping();
  const found = await listThroughDriver(driver);
  const summary = `${found.sandboxes.length} sandbox(es), ${found.networks.length} network(s)`;
  if (found.sandboxes.length + found.networks.length === 0) {
    process.stdout.write(`Nothing to clean up (driver ${name}).\n`);
    return 0;
  }
  if (!(await confirmed(summary, flags.force, ` (driver ${name})`))) return 1;
  const report = await removeThroughDriver(driver, found);
  process.stdout.write(`Removed ${report.removed} sandbox(es), ${report.removedNetworks} network(s) (driver ${name}); ${report.failed} failed.\n`);
  for (const error of report.errors) process.stderr.write(`  ${error}\n`);
  return report.failed > 0 ? 1 : 0;
}
