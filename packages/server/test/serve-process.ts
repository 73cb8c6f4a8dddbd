import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../cli/dist/bin.js", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface Served {
  child: ChildProcess;
  url: string;
  serverId: string;
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Spawns the real `isol8 serve` on a free loopback port (`options.env` added to its environment) and waits for its "listening" line. */
export async function serve(configDir: string, key: string, configFile: Record<string, unknown>, options: { env?: NodeJS.ProcessEnv } = {}): Promise<Served> {
  const config = join(configDir, "isol8.config.json");
  await writeFile(config, JSON.stringify(configFile));
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--config", config], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env, ISOL8_API_KEY: key },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.msg === "listening") resolve(entry);
      } catch {
        // not a log line
      }
    });
    void exited.then(({ code }) => reject(new Error(`isol8 serve exited (${code}) before listening: ${stderr}`)));
  });
  const ready = await listening;
  return { child, url: ready.url as string, serverId: ready.serverId as string, lines, exited };
}
