import { DockerDriver } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";
import { topRows } from "../../../test/helpers.js";

export interface FoundProcess {
  containerId: string;
  /** The process's command line, as `docker top` shows it. */
  command: string;
}

/** Processes in the server's containers (those with `labels` too) whose command line contains `marker`. */
export async function processesOf(driver: DockerDriver, serverId: string, marker: string, labels: Record<string, string> = {}): Promise<FoundProcess[]> {
  const containers = await driver.listContainers({ [SERVER_LABELS.server]: serverId, ...labels });
  const found: FoundProcess[] = [];
  for (const container of containers) {
    for (const row of await topRows(driver, container.Id)) {
      const command = row.at(-1) ?? "";
      if (command.includes(marker)) found.push({ containerId: container.Id, command });
    }
  }
  return found;
}
