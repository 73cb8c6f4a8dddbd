import { fileURLToPath } from "node:url";
import { DockerDriver } from "@isol8/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** The BUILT CLI: build with `pnpm --filter @isol8/mcp --filter isol8 run build` first. */
export const CLI = fileURLToPath(new URL("../../cli/dist/bin.js", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** An SDK client connected to `isol8 mcp` spawned from the built CLI; its stderr is collected. */
export async function connectStdio(): Promise<{ client: Client; stderr: () => string; pid: number }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp"], cwd: REPO_ROOT, stderr: "pipe" });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const client = new Client({ name: "isol8-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, stderr: () => stderr, pid: transport.pid! };
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  const first = (result as CallToolResult).content[0];
  if (first?.type !== "text") throw new Error(`expected text content first, got ${JSON.stringify(first)}`);
  return first.text;
}

export type Structured = { stdout: string; stderr: string; exitCode: number; timedOut: boolean; files: string[] };
export const structured = (result: unknown) => (result as { structuredContent: Structured }).structuredContent;

/** A 1x1 PNG, as Python writes it without any library (zlib + struct). */
export const PYTHON_WRITES_PNG = `import zlib, struct
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\\x00\\xff\\x00\\x00")) + chunk(b"IEND", b"")
open("/sandbox/plot.png", "wb").write(png)
print("saved")
`;

/** The command lines of every process running in the containers carrying `labels` (docker top, from outside the sandbox). */
export async function sandboxProcesses(labels: Record<string, string>): Promise<string[]> {
  const driver = new DockerDriver();
  const containers = await driver.listContainers(labels);
  if (containers.length !== 1) throw new Error(`expected one container with ${JSON.stringify(labels)}, found ${containers.length}`);
  const top = await driver.docker.getContainer(containers[0]!.Id).top({ ps_args: "-eo pid,args" });
  return ((top.Processes ?? []) as string[][]).map((row) => row.slice(1).join(" "));
}

/**
 * In a new python session, a run_code call whose program starts `sleep 300` and waits for it;
 * resolves once the program said so (a progress notification), with the call still running and
 * the controller that cancels it.
 */
export async function startSleepingCall(client: Client): Promise<{ id: string; controller: AbortController; call: Promise<unknown> }> {
  const created = await client.callTool({ name: "create_session", arguments: { runtime: "python" } });
  const id = (created.structuredContent as { id: string }).id;
  const controller = new AbortController();
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => (onStarted = resolve));
  const call = client.callTool(
    {
      name: "run_code",
      arguments: {
        runtime: "python",
        session: id,
        code: 'import subprocess\nchild = subprocess.Popen(["sleep", "300"])\nprint("started", flush=True)\nchild.wait()',
        timeoutMs: 20_000,
      },
    },
    undefined,
    { signal: controller.signal, onprogress: (progress) => void (progress.message?.includes("started") && onStarted()) },
  );
  call.catch(() => undefined); // the test awaits it after cancelling
  await started;
  return { id, controller, call };
}

/** A python cell whose last expression is an object with _repr_png_: a 1x1 PNG the program builds itself (zlib + struct). */
export const PYTHON_CELL_SHOWS_PNG = `import zlib, struct
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
class Picture:
    def _repr_png_(self):
        return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\\x00\\xff\\x00\\x00")) + chunk(b"IEND", b"")
    def __repr__(self):
        return "Picture()"
Picture()
`;

export type CellStructured = {
  stdout: string;
  exitCode: number;
  context: string;
  outputs: { type: string; data: string; result?: true }[];
  error?: { name: string; value: string; traceback: string[] };
  contextRestarted: boolean;
};
export const cellStructured = (result: unknown) => (result as { structuredContent: CellStructured }).structuredContent;

/** Every text content item of a tool result, joined by newlines. */
export function allText(result: unknown): string {
  return (result as CallToolResult).content
    .filter((c) => c.type === "text")
    .map((c) => (c as { text: string }).text)
    .join("\n");
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A tool result's image content items. */
export const imagesOf = (result: unknown) =>
  (result as CallToolResult).content.filter((c) => c.type === "image") as { type: "image"; data: string; mimeType: string }[];
