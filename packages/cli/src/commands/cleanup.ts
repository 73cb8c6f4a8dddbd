import { createInterface } from "node:readline/promises";
import { CONTAINER_LABELS, DockerDriver, DockerIsol8, IMAGE_LABELS } from "@isol8/core";

export interface CleanupFlags {
  force?: boolean;
  images?: boolean;
}

/** `isol8 cleanup`: removes what isol8 left on this Docker engine (only what carries its labels). */
export async function cleanupCommand(flags: CleanupFlags): Promise<number> {
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
  if (!flags.force) {
    if (!process.stdin.isTTY) {
      process.stderr.write(`isol8 cleanup would remove ${summary}; pass --force to do it without asking.\n`);
      return 1;
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(`Remove ${summary} made by isol8? [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) return 1;
  }
  const report = await DockerIsol8.cleanup({ images: flags.images });
  process.stdout.write(
    `Removed ${report.removed} container(s), ${report.removedNetworks} network(s)${flags.images ? `, ${report.removedImages ?? 0} image(s)` : ""}; ${report.failed} failed.\n`,
  );
  for (const error of report.errors) process.stderr.write(`  ${error}\n`);
  return report.failed > 0 ? 1 : 0;
}
