import { describe, expect, it } from "vitest";
import { allText, cellStructured, textOf } from "./helpers.js";
import { mcpOverHttp } from "./http-server.js";

// The context tools over /mcp on a real isol8 serve. Contexts need the in-container executor: the
// server pins it (so CI's exec-path pass, ISOL8_LAUNCHER=exec, does not change this file).

const KEY = "mcp-http-contexts-key-0123456789";
const OTHER_TENANT_KEY = "mcp-http-contexts-key-beta-98765";
const mcp = mcpOverHttp("mcp-http-contexts", KEY, {
  defaults: { timeoutMs: 10_000, launcher: "executor" },
  server: { policy: { maxTimeoutMs: 20_000, maxContextsPerSession: 2 }, keys: [{ key: OTHER_TENANT_KEY, tenant: "beta" }] },
});

describe("the context tools on POST /mcp of a real isol8 serve", () => {
  it("create_context and run_cell keep state between cells in a tenant's session; the policy's maxContextsPerSession applies; another tenant's run_cell is not found", async () => {
    const created = await mcp.client.callTool({ name: "create_session", arguments: { runtime: "python" } });
    expect(created.isError).toBeFalsy();
    const session = (created.structuredContent as { id: string }).id;
    const made = await mcp.client.callTool({ name: "create_context", arguments: { session, runtime: "python" } });
    expect(made.isError).toBeFalsy();
    const context = (made.structuredContent as { id: string }).id;
    const set = await mcp.client.callTool({ name: "run_cell", arguments: { session, context, code: "x = 41" } });
    expect(set.isError).toBe(false);
    const read = await mcp.client.callTool({ name: "run_cell", arguments: { session, context, code: "x + 1" } });
    expect(read.isError).toBe(false);
    expect(allText(read)).toContain("42");
    expect(cellStructured(read).outputs).toEqual([{ type: "text/plain", data: "42", result: true }]);
    // The REST API lists the context MCP made (one ledger, one session).
    const rest = await fetch(`${mcp.served.url}/session/${session}/contexts`, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(((await rest.json()) as { contexts: { id: string }[] }).contexts.map((c) => c.id)).toEqual([context]);
    // The server's bound (2 per session here): a second context is made, a third is refused naming the limit.
    const second = await mcp.client.callTool({ name: "create_context", arguments: { session, runtime: "python" } });
    expect(second.isError).toBeFalsy();
    const third = await mcp.client.callTool({ name: "create_context", arguments: { session, runtime: "python" } });
    expect(third.isError).toBe(true);
    expect(textOf(third)).toMatch(/^ISOL8_ERR_SESSION_LIMIT: .*maxContextsPerSession 2/);
    const other = await mcp.connect(OTHER_TENANT_KEY);
    const foreign = await other.callTool({ name: "run_cell", arguments: { session, context, code: "x" } });
    expect(foreign.isError).toBe(true);
    expect(textOf(foreign)).toBe(`ISOL8_ERR_NOT_FOUND: Session not found: ${session}`);
    await other.close();
    expect((await mcp.client.callTool({ name: "close_session", arguments: { session } })).isError).toBeFalsy();
  });
});
