import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import {
  allText,
  cellStructured,
  CLI,
  connectStdio,
  imagesOf,
  PNG_SIGNATURE,
  PYTHON_CELL_SHOWS_PNG,
  PYTHON_WRITES_PNG,
  REPO_ROOT,
  sandboxProcesses,
  startSleepingCall,
  structured,
  textOf,
} from "./helpers.js";

let client: Client;
let serverPid: number;

beforeAll(async () => {
  ({ client, pid: serverPid } = await connectStdio());
});

afterAll(async () => {
  await client?.close();
});

describe("isol8 mcp over stdio (SDK client, built CLI)", () => {
  it("lists the tools with their input schemas, the context tools among them", async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual([
      "close_session",
      "create_context",
      "create_session",
      "delete_context",
      "install_packages",
      "list_contexts",
      "list_files",
      "list_runtimes",
      "list_sessions",
      "read_file",
      "restart_context",
      "run_cell",
      "run_code",
      "write_file",
    ]);
    const runCell = tools.find((t) => t.name === "run_cell")!;
    expect(runCell.inputSchema.required).toEqual(expect.arrayContaining(["session", "context", "code"]));
    expect(Object.keys(runCell.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(["session", "context", "code", "timeoutMs"]));
    expect(runCell.outputSchema?.properties).toHaveProperty("outputs");
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

describe("isol8 mcp's interpreter contexts (create_context, run_cell)", () => {
  let session: string;
  let context: string;

  beforeAll(async () => {
    const created = await client.callTool({ name: "create_session", arguments: { runtime: "python" } });
    expect(created.isError).toBeFalsy();
    session = (created.structuredContent as { id: string }).id;
    const made = await client.callTool({ name: "create_context", arguments: { session, runtime: "python" } });
    expect(made.isError).toBeFalsy();
    expect(made.structuredContent).toMatchObject({ runtime: "python", cwd: "/sandbox", cells: 0, restarts: 0 });
    context = (made.structuredContent as { id: string }).id;
  });

  afterAll(async () => {
    // The session's sandbox goes (the cancellation test counts this process's persistent sandboxes).
    const closed = await client.callTool({ name: "close_session", arguments: { session } });
    expect(closed.isError).toBeFalsy();
  });

  const cell = (code: string, ctx = context) => client.callTool({ name: "run_cell", arguments: { session, context: ctx, code } });

  it("run_cell keeps state between cells: x = 41 then x + 1 gives 42 as text and as a text/plain result output", async () => {
    const first = await cell("x = 41");
    expect(first.isError).toBeFalsy();
    expect(cellStructured(first).outputs).toEqual([]);
    const second = await cell("x + 1");
    expect(second.isError).toBeFalsy();
    expect(allText(second)).toContain("42");
    expect(allText(second)).toContain("result text/plain:\n42");
    expect(cellStructured(second).outputs).toEqual([{ type: "text/plain", data: "42", result: true }]);
    expect(cellStructured(second)).toMatchObject({ context, exitCode: 0, contextRestarted: false });
    expect(cellStructured(second).error).toBeUndefined();
  });

  it("a cell raising ZeroDivisionError is a normal result (isError false) naming it, and the next cell still sees the context's variables", async () => {
    const set = await cell("kept = 7");
    expect(set.isError).toBeFalsy();
    const raised = await cell("kept / 0");
    expect(raised.isError).toBe(false);
    expect(textOf(raised)).toContain("ZeroDivisionError");
    expect(textOf(raised)).toContain("division by zero");
    expect(cellStructured(raised).error).toMatchObject({ name: "ZeroDivisionError", value: "division by zero" });
    expect(cellStructured(raised).error!.traceback.join("\n")).toContain("ZeroDivisionError");
    expect(cellStructured(raised).exitCode).toBe(1);
    const after = await cell("kept * 6");
    expect(after.isError).toBeFalsy();
    expect(cellStructured(after).outputs).toEqual([{ type: "text/plain", data: "42", result: true }]);
  });

  it("a cell showing an object with _repr_png_ returns image content (image/png) whose bytes start with the PNG signature", async () => {
    const shown = await cell(PYTHON_CELL_SHOWS_PNG);
    expect(shown.isError).toBeFalsy();
    const images = imagesOf(shown);
    expect(images).toHaveLength(1);
    expect(images[0]!.mimeType).toBe("image/png");
    const bytes = Buffer.from(images[0]!.data, "base64");
    expect(bytes.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(bytes.subarray(12, 16).toString("latin1")).toBe("IHDR");
    // Its text/plain form comes too, under a header naming the mime type.
    expect(allText(shown)).toContain("result text/plain:\nPicture()");
    expect(cellStructured(shown).outputs.map((o) => o.type)).toEqual(expect.arrayContaining(["image/png", "text/plain"]));
  });

  it("run_cell on an unknown context is an isError result naming ISOL8_ERR_CONTEXT_NOT_FOUND", async () => {
    const unknown = await cell("1 + 1", "no-such-context");
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/^ISOL8_ERR_CONTEXT_NOT_FOUND: .*no-such-context/);
  });

  it("run_cell in an unknown session is an isError result naming the session", async () => {
    const result = await client.callTool({ name: "run_cell", arguments: { session: "no-such-session", context, code: "1" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^ISOL8_ERR_NOT_FOUND: Session not found: no-such-session/);
  });

  it("a cell past its timeoutMs is interrupted (KeyboardInterrupt, timedOut) as a normal result, and the context keeps its variables", async () => {
    const set = await cell("survivor = 'still here'");
    expect(set.isError).toBeFalsy();
    const looping = await client.callTool({ name: "run_cell", arguments: { session, context, code: "while True:\n    pass", timeoutMs: 2000 } });
    expect(looping.isError).toBe(false);
    expect(structured(looping).timedOut).toBe(true);
    expect(cellStructured(looping).error?.name).toBe("KeyboardInterrupt");
    expect(cellStructured(looping).contextRestarted).toBe(false);
    const after = await cell("survivor");
    expect(cellStructured(after).outputs).toEqual([{ type: "text/plain", data: "'still here'", result: true }]);
  });

  it("delete_context ends a context: list_contexts no longer has it and run_cell on it is not found", async () => {
    const made = await client.callTool({ name: "create_context", arguments: { session, runtime: "python" } });
    expect(made.isError).toBeFalsy();
    const doomed = (made.structuredContent as { id: string }).id;
    // Positive control: the context runs a cell and is listed before it is deleted.
    const before = await cell("'alive'", doomed);
    expect(cellStructured(before).outputs).toEqual([{ type: "text/plain", data: "'alive'", result: true }]);
    const listed = await client.callTool({ name: "list_contexts", arguments: { session } });
    expect((listed.structuredContent as { contexts: { id: string }[] }).contexts.map((c) => c.id)).toEqual(expect.arrayContaining([context, doomed]));
    const deleted = await client.callTool({ name: "delete_context", arguments: { session, context: doomed } });
    expect(deleted.isError).toBeFalsy();
    const relisted = await client.callTool({ name: "list_contexts", arguments: { session } });
    expect((relisted.structuredContent as { contexts: { id: string }[] }).contexts.map((c) => c.id)).toEqual([context]);
    const gone = await cell("'alive'", doomed);
    expect(gone.isError).toBe(true);
    expect(textOf(gone)).toMatch(/^ISOL8_ERR_CONTEXT_NOT_FOUND: /);
  });

  it("restart_context clears the context's variables: a name set before is undefined after", async () => {
    const set = await cell("before_restart = 1");
    expect(set.isError).toBeFalsy();
    const restarted = await client.callTool({ name: "restart_context", arguments: { session, context } });
    expect(restarted.isError).toBeFalsy();
    expect((restarted.structuredContent as { restarts: number }).restarts).toBe(1);
    const after = await cell("before_restart");
    expect(after.isError).toBe(false);
    expect(cellStructured(after).error?.name).toBe("NameError");
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
