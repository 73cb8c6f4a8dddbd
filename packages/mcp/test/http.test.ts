import { describe, expect, it } from "vitest";
import { CONTAINER_LABELS } from "@isol8/core";
import { PYTHON_WRITES_PNG, sandboxProcesses, startSleepingCall, structured, textOf } from "./helpers.js";
import { mcpOverHttp } from "./http-server.js";

const KEY = "mcp-http-test-key-0123456789";
const OTHER_TENANT_KEY = "mcp-http-test-key-beta-98765";
const mcp = mcpOverHttp("mcp-http", KEY, {
  defaults: { timeoutMs: 10_000 },
  server: { policy: { maxTimeoutMs: 20_000 }, keys: [{ key: OTHER_TENANT_KEY, tenant: "beta" }] },
});

const restSessions = async (key: string) =>
  (
    (await (await fetch(`${mcp.served.url}/sessions`, { headers: { Authorization: `Bearer ${key}` } })).json()) as {
      sessions: { id: string; active: boolean }[];
    }
  ).sessions;

describe("POST /mcp on a real isol8 serve (SDK streamable HTTP client)", () => {
  it("is 401 without a key, and answers with the key (positive control)", async () => {
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    };
    const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
    const without = await fetch(`${mcp.served.url}/mcp`, { method: "POST", headers, body: JSON.stringify(initialize) });
    expect(without.status).toBe(401);
    expect(((await without.json()) as { code: string }).code).toBe("ISOL8_ERR_UNAUTHORIZED");
    const withKey = await fetch(`${mcp.served.url}/mcp`, {
      method: "POST",
      headers: { ...headers, Authorization: `Bearer ${KEY}` },
      body: JSON.stringify(initialize),
    });
    expect(withKey.status).toBe(200);
    expect(await withKey.text()).toContain('"serverInfo"');
  });

  it("lists the tools with their schemas", async () => {
    const { tools } = await mcp.client.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        "run_code",
        "create_session",
        "close_session",
        "list_sessions",
        "write_file",
        "read_file",
        "list_files",
        "install_packages",
        "list_runtimes",
        "create_context",
        "run_cell",
        "list_contexts",
        "restart_context",
        "delete_context",
      ]),
    );
    expect(tools.find((t) => t.name === "run_code")!.inputSchema.required).toEqual(expect.arrayContaining(["runtime", "code"]));
  });

  it("run_code returns stdout and exit code, and an image output as PNG image content", async () => {
    const result = await mcp.client.callTool({ name: "run_code", arguments: { runtime: "bash", code: "echo over-http; exit 2" } });
    expect(structured(result)).toMatchObject({ stdout: "over-http\n", exitCode: 2 });
    const image = await mcp.client.callTool({
      name: "run_code",
      arguments: { runtime: "python", code: PYTHON_WRITES_PNG, outputPaths: ["/sandbox/plot.png"] },
    });
    const png = (image.content as { type: string; data?: string; mimeType?: string }[]).filter((c) => c.type === "image");
    expect(png).toHaveLength(1);
    expect(png[0]!.mimeType).toBe("image/png");
    expect(Buffer.from(png[0]!.data!, "base64").subarray(1, 4).toString("latin1")).toBe("PNG");
  });

  it("a tenant's session keeps a file between two run_code calls (and write_file/read_file reach it)", async () => {
    const created = await mcp.client.callTool({ name: "create_session", arguments: { runtime: "python" } });
    expect(created.isError).toBeFalsy();
    const id = (created.structuredContent as { id: string }).id;
    await mcp.client.callTool({ name: "run_code", arguments: { runtime: "python", session: id, code: 'open("/sandbox/a.txt", "w").write("first")' } });
    const second = await mcp.client.callTool({ name: "run_code", arguments: { runtime: "python", session: id, code: 'print(open("/sandbox/a.txt").read())' } });
    expect(structured(second).stdout).toBe("first\n");
    const wrote = await mcp.client.callTool({ name: "write_file", arguments: { session: id, path: "b.txt", content: "second" } });
    expect(wrote.isError).toBeFalsy();
    expect(textOf(await mcp.client.callTool({ name: "read_file", arguments: { session: id, path: "/sandbox/b.txt" } }))).toBe("second");
    const listed = await mcp.client.callTool({ name: "list_files", arguments: { session: id } });
    expect((listed.structuredContent as { files: { path: string; type: string; sizeBytes: number }[] }).files.filter((f) => f.path.endsWith(".txt"))).toEqual([
      { path: "a.txt", type: "file", sizeBytes: 5 },
      { path: "b.txt", type: "file", sizeBytes: 6 },
    ]);
    // The REST API sees the same tenant's session.
    const rest = await fetch(`${mcp.served.url}/sessions`, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(((await rest.json()) as { sessions: { id: string }[] }).sessions.map((s) => s.id)).toContain(id);
    expect((await mcp.client.callTool({ name: "close_session", arguments: { session: id } })).isError).toBeFalsy();
    const gone = await mcp.client.callTool({ name: "read_file", arguments: { session: id, path: "b.txt" } });
    expect(gone.isError).toBe(true);
    expect(textOf(gone)).toBe(`ISOL8_ERR_NOT_FOUND: Session not found: ${id}`);
  });

  it("refuses an execution over the server's ceiling, naming it", async () => {
    const result = await mcp.client.callTool({ name: "run_code", arguments: { runtime: "python", code: "print(1)", timeoutMs: 60_000 } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("ISOL8_ERR_POLICY: request.timeoutMs: 60000 is over this server's limit of 20000; ask for less");
  });

  it("reports an unknown runtime naming the registered ones", async () => {
    const result = await mcp.client.callTool({ name: "run_code", arguments: { runtime: "cobol", code: "x" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^ISOL8_ERR_UNKNOWN_RUNTIME: .*cobol.*python/);
  });

  it("counts MCP requests in the server's metrics under route /mcp", async () => {
    const metrics = await (await fetch(`${mcp.served.url}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })).text();
    expect(metrics).toMatch(/isol8_http_requests_total\{[^}]*route="\/mcp"[^}]*\} [1-9]/);
  });

  it("a cancelled call kills the execution: the session is free again and no process of it is left", async () => {
    const { id, controller, call } = await startSleepingCall(mcp.client);
    const container = { [CONTAINER_LABELS.session]: id };
    // Positive control: the program's child runs in the session's container (seen from outside it).
    expect(await sandboxProcesses(container)).toContain("sleep 300");
    controller.abort();
    await expect(call).rejects.toThrow(/abort/i);
    // Killed by the cancellation (notifications/cancelled on the same MCP connection), not left to its 20 s limit.
    await expect.poll(() => sandboxProcesses(container), { timeout: 10_000, interval: 200 }).not.toContain("sleep 300");
    await expect.poll(async () => (await restSessions(KEY)).find((s) => s.id === id)?.active, { timeout: 10_000, interval: 200 }).toBe(false);
    const after = await mcp.client.callTool({ name: "run_code", arguments: { runtime: "python", session: id, code: "print('free')" } });
    expect(structured(after).stdout).toBe("free\n");
    await mcp.client.callTool({ name: "close_session", arguments: { session: id } });
  });

  it("ending the MCP connection closes the sessions it made, except a kept one", async () => {
    const { client: own, transport } = await mcp.connectWithTransport(KEY);
    const temporary = ((await own.callTool({ name: "create_session", arguments: { runtime: "bash" } })).structuredContent as { id: string }).id;
    const kept = ((await own.callTool({ name: "create_session", arguments: { runtime: "bash", keep: true } })).structuredContent as { id: string }).id;
    expect((await restSessions(KEY)).map((s) => s.id)).toEqual(expect.arrayContaining([temporary, kept]));
    await transport.terminateSession();
    await own.close();
    await expect.poll(async () => (await restSessions(KEY)).map((s) => s.id), { timeout: 30_000 }).not.toContain(temporary);
    expect((await restSessions(KEY)).map((s) => s.id)).toContain(kept);
    const closed = await mcp.client.callTool({ name: "close_session", arguments: { session: kept } });
    expect(closed.isError).toBeFalsy();
  });

  it("another tenant can neither use this tenant's MCP connection nor its sessions", async () => {
    const { transport } = await mcp.connectWithTransport(KEY);
    const connectionId = transport.sessionId!;
    expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
    const created = await mcp.client.callTool({ name: "create_session", arguments: { runtime: "bash" } });
    const sessionId = (created.structuredContent as { id: string }).id;
    const headers = {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      "mcp-session-id": connectionId,
    };
    const list = JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" });
    const asOther = await fetch(`${mcp.served.url}/mcp`, { method: "POST", headers: { ...headers, Authorization: `Bearer ${OTHER_TENANT_KEY}` }, body: list });
    expect(asOther.status).toBe(404);
    const asOwner = await fetch(`${mcp.served.url}/mcp`, { method: "POST", headers: { ...headers, Authorization: `Bearer ${KEY}` }, body: list });
    expect(asOwner.status).toBe(200);
    expect(await asOwner.text()).toContain("run_code");
    const other = await mcp.connect(OTHER_TENANT_KEY);
    const read = await other.callTool({ name: "run_code", arguments: { runtime: "bash", code: "ls", session: sessionId } });
    expect(read.isError).toBe(true);
    expect(textOf(read)).toBe(`ISOL8_ERR_NOT_FOUND: Session not found: ${sessionId}`);
    await other.close();
    await transport.terminateSession();
    await transport.close();
    await mcp.client.callTool({ name: "close_session", arguments: { session: sessionId } });
  });
});
