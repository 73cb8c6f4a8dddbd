import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { CLI, connectStdio, PYTHON_WRITES_PNG, REPO_ROOT, sandboxProcesses, startSleepingCall, structured, textOf } from "./helpers.js";

let client: Client;
let serverPid: number;

beforeAll(async () => {
  ({ client, pid: serverPid } = await connectStdio());
});

afterAll(async () => {
  await client?.close();
});

describe("isol8 mcp over stdio (SDK client, built CLI)", () => {
  it("lists the tools with their input schemas, run_cell absent", async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual([
      "close_session",
      "create_session",
      "install_packages",
      "list_files",
      "list_runtimes",
      "list_sessions",
      "read_file",
      "run_code",
      "write_file",
    ]);
    const runCode = tools.find((t) => t.name === "run_code")!;
    expect(runCode.inputSchema.required).toEqual(expect.arrayContaining(["runtime", "code"]));
    expect(Object.keys(runCode.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(["runtime", "code", "stdin", "files", "timeoutMs", "session", "outputPaths"]),
    );
    expect(runCode.outputSchema?.properties).toHaveProperty("exitCode");
    expect(runCode.annotations?.openWorldHint).toBe(false);
  });

  const programs: [string, string][] = [
    ["python", 'print("hi from python")\nraise SystemExit(3)'],
    ["node", 'console.log("hi from node"); process.exit(3);'],
    ["bun", 'console.log("hi from bun"); process.exit(3);'],
    ["deno", 'console.log("hi from deno"); Deno.exit(3);'],
    ["bash", "echo hi from bash; exit 3"],
  ];
  it.each(programs)("run_code in %s returns its stdout and exit code", async (runtime, code) => {
    const result = await client.callTool({ name: "run_code", arguments: { runtime, code } });
    expect(result.isError).toBeFalsy();
    expect(structured(result).stdout).toBe(`hi from ${runtime}\n`);
    expect(structured(result).exitCode).toBe(3);
    expect(textOf(result)).toContain("exit code 3");
  });

  it("returns an image output file as image content that decodes to a PNG", async () => {
    const result = await client.callTool({ name: "run_code", arguments: { runtime: "python", code: PYTHON_WRITES_PNG, outputPaths: ["/sandbox/plot.png"] } });
    expect(structured(result).stdout).toBe("saved\n");
    const images = (result.content as { type: string; data?: string; mimeType?: string }[]).filter((c) => c.type === "image");
    expect(images).toHaveLength(1);
    expect(images[0]!.mimeType).toBe("image/png");
    const bytes = Buffer.from(images[0]!.data!, "base64");
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(bytes.subarray(12, 16).toString("latin1")).toBe("IHDR");
  });

  it("a session keeps a file between two run_code calls; list_files and read_file see it; close_session ends it", async () => {
    const created = await client.callTool({ name: "create_session", arguments: { runtime: "bash" } });
    const id = (created.structuredContent as { id: string }).id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const write = await client.callTool({ name: "run_code", arguments: { runtime: "bash", code: "echo kept > /sandbox/note.txt", session: id } });
    expect(structured(write).exitCode).toBe(0);
    const read = await client.callTool({ name: "run_code", arguments: { runtime: "bash", code: "cat /sandbox/note.txt", session: id } });
    expect(structured(read).stdout).toBe("kept\n");
    const listed = await client.callTool({ name: "list_files", arguments: { session: id } });
    expect((listed.structuredContent as { files: { path: string }[] }).files.map((f) => f.path)).toContain("note.txt");
    const file = await client.callTool({ name: "read_file", arguments: { session: id, path: "note.txt" } });
    expect(textOf(file)).toBe("kept\n");
    const resource = await client.readResource({ uri: `isol8://sessions/${id}/files/note.txt` });
    expect(resource.contents).toEqual([{ uri: `isol8://sessions/${id}/files/note.txt`, mimeType: "text/plain", text: "kept\n" }]);
    const sessions = await client.callTool({ name: "list_sessions", arguments: {} });
    expect((sessions.structuredContent as { sessions: { id: string }[] }).sessions.map((s) => s.id)).toEqual([id]);
    const install = await client.callTool({ name: "install_packages", arguments: { session: id, packages: ["jq"] } });
    expect(install.isError).toBe(true);
    expect(textOf(install)).toBe('ISOL8_ERR_NOT_SUPPORTED: runtime "bash" does not install packages');
    const closed = await client.callTool({ name: "close_session", arguments: { session: id } });
    expect(closed.isError).toBeFalsy();
    const after = await client.callTool({ name: "run_code", arguments: { runtime: "bash", code: "cat /sandbox/note.txt", session: id } });
    expect(after.isError).toBe(true);
    expect(textOf(after)).toContain(`ISOL8_ERR_NOT_FOUND: Session not found: ${id}`);
  });

  it("lists the runtimes as a tool and as the isol8://runtimes resource", async () => {
    const tool = await client.callTool({ name: "list_runtimes", arguments: {} });
    const runtimes = (tool.structuredContent as { runtimes: { name: string; extensions: string[]; packages: boolean; contexts: boolean }[] }).runtimes;
    expect(runtimes.map((r) => r.name).sort()).toEqual(["bash", "bun", "deno", "node", "python"]);
    expect(runtimes.find((r) => r.name === "python")).toMatchObject({ extensions: [".py"], packages: true, contexts: true });
    const resource = await client.readResource({ uri: "isol8://runtimes" });
    expect(JSON.parse((resource.contents[0] as { text: string }).text)).toEqual(runtimes);
  });

  it("reports an unknown runtime as an isError result naming the registered runtimes", async () => {
    const result = await client.callTool({ name: "run_code", arguments: { runtime: "cobol", code: "DISPLAY 'x'" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^ISOL8_ERR_UNKNOWN_RUNTIME: Unknown runtime "cobol"\. Registered runtimes: .*python/);
  });

  it("refuses a timeout over the ceiling, naming it", async () => {
    const result = await client.callTool({ name: "run_code", arguments: { runtime: "python", code: "print(1)", timeoutMs: 10_000_000 } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("ISOL8_ERR_POLICY: timeoutMs: 10000000 is over this server's limit");
    expect(textOf(result)).toContain("maxTimeoutMs");
  });

  it("rejects schema violations naming the field, with the engine's own messages", async () => {
    const missing = await client.callTool({ name: "run_code", arguments: { runtime: "python" } });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/Input validation error: Invalid arguments for tool run_code: .* at code$/);
    const negative = await client.callTool({ name: "run_code", arguments: { runtime: "python", code: "print(1)", timeoutMs: -5 } });
    expect(negative.isError).toBe(true);
    expect(textOf(negative)).toMatch(/expected a positive number of milliseconds at timeoutMs$/);
  });

  it("a cancelled call kills the execution: no process of it is left in the session's sandbox", async () => {
    const { id, controller, call } = await startSleepingCall(client);
    const session = { [CONTAINER_LABELS.ownerPid]: String(serverPid), [CONTAINER_LABELS.mode]: "persistent" };
    // Positive control: the program's child is running in the session's container (seen from outside it).
    expect(await sandboxProcesses(session)).toContain("sleep 300");
    controller.abort();
    await expect(call).rejects.toThrow(/abort/i);
    // Killed by the cancellation, not left to its 20 s limit.
    await expect.poll(() => sandboxProcesses(session), { timeout: 10_000, interval: 200 }).not.toContain("sleep 300");
    const after = await client.callTool({ name: "run_code", arguments: { runtime: "python", session: id, code: "print('free')" } });
    expect(structured(after).stdout).toBe("free\n");
    await client.callTool({ name: "close_session", arguments: { session: id } });
  });
});

describe("isol8 mcp's stdout", () => {
  it("carries nothing but JSON-RPC messages, even for failing calls with --debug logging (the logs go to stderr)", async () => {
    const child = spawn(process.execPath, [CLI, "mcp", "--debug"], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
    const lines: string[] = [];
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_code", arguments: { runtime: "bash", code: "echo out; echo err >&2" } } });
    send({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "run_code", arguments: { runtime: "nope", code: "x" } } });
    await expect.poll(() => lines.length, { timeout: 60_000 }).toBe(3);
    child.stdin.end();
    const exited = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    expect(exited).toBe(0);
    expect(lines).toHaveLength(3);
    const messages = lines.map(
      (line) => JSON.parse(line) as { jsonrpc: string; id: number; result: { structuredContent?: { stdout: string }; isError?: boolean } },
    );
    expect(messages.map((m) => m.jsonrpc)).toEqual(["2.0", "2.0", "2.0"]);
    const byId = new Map(messages.map((m) => [m.id, m]));
    expect([...byId.keys()].sort()).toEqual([1, 2, 3]);
    expect(byId.get(2)!.result.structuredContent!.stdout).toBe("out\n");
    expect(byId.get(3)!.result.isError).toBe(true);
    // Positive control: --debug did log, on stderr.
    expect(stderr).toMatch(/"level":"(debug|info)"/);
  });
});

describe("isol8 mcp stopped by a signal", () => {
  it("removes its sessions' sandboxes before exiting (SIGTERM)", async () => {
    const child = spawn(process.execPath, [CLI, "mcp"], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
    const replies = new Map<number, { result: { structuredContent?: { id?: string } } }>();
    createInterface({ input: child.stdout }).on("line", (line) => {
      const message = JSON.parse(line) as { id: number; result: { structuredContent?: { id?: string } } };
      replies.set(message.id, message);
    });
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "create_session", arguments: { runtime: "bash" } } });
    await expect.poll(() => replies.get(2)?.result.structuredContent?.id, { timeout: 60_000 }).toMatch(/^[0-9a-f-]{36}$/);
    const owned = { [CONTAINER_LABELS.ownerPid]: String(child.pid), [CONTAINER_LABELS.mode]: "persistent" };
    // Positive control: the session's sandbox exists while the server runs.
    expect(await sandboxProcesses(owned)).not.toHaveLength(0);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await new DockerDriver().listContainers(owned)).toEqual([]);
  });
});
