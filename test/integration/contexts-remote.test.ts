import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, ContextNotFoundError, DockerDriver, type ExecutionResult, type StreamEvent } from "@isol8/core";
import { RemoteIsol8 } from "isol8";
import { serve, type Served } from "../../packages/server/test/serve-process.js";

/**
 * Interpreter contexts through a real `isol8 serve` (the built CLI) and RemoteIsol8: cells keep
 * state, results come back as notebook outputs, a cell streams, and a context is reachable only
 * from its own session of its own tenant; the policy bounds the counts.
 */

/** What every RemoteIsol8 error carries besides its code (RemoteErrorInfo). */
type RemoteFailure = Error & { code: string; status: number };

const KEY_A = "contexts-tenant-a-0123456789";
const KEY_B = "contexts-tenant-b-9876543210";
const PER_SESSION = 2;
const PER_TENANT = 3;

let dir: string;
let served: Served;
const engines: RemoteIsol8[] = [];

/** A RemoteIsol8 of tenant A (or the key given) in session `sessionId`, stopped (its session deleted) after the test. */
function remote(sessionId: string | undefined, apiKey = KEY_A): RemoteIsol8 {
  const engine = new RemoteIsol8({ host: served.url, apiKey, ...(sessionId !== undefined && { sessionId }) });
  engines.push(engine);
  return engine;
}

/** The rejection of `promise` (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<RemoteFailure> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  expect(outcome).toHaveProperty("error");
  return (outcome as { error: RemoteFailure }).error;
}

/** The result's output of the cell's last expression (result: true) as text/plain. */
function resultText(result: ExecutionResult): string | undefined {
  return result.outputs?.find((o) => o.result === true && o.type === "text/plain")?.data;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-contexts-remote-"));
  served = await serve(dir, KEY_A, {
    defaults: { poolSize: { clean: 1, dirty: 1 } },
    server: {
      keys: [{ key: KEY_B, tenant: "beta" }],
      policy: { maxContextsPerSession: PER_SESSION, maxContextsPerTenant: PER_TENANT },
    },
  });
});

// Each test's sessions end with it: their contexts leave the tenant's count and their containers go.
afterEach(async () => {
  await Promise.allSettled(engines.splice(0).map((e) => e.stop()));
});

afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await new DockerDriver().listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

describe("contexts through isol8 serve and RemoteIsol8", () => {
  test("python: x = 41 then x + 1 gives the text/plain output 42 marked as the cell's result", async () => {
    const engine = remote("ctx-python");
    const context = await engine.createContext({ runtime: "python" });
    expect(context).toMatchObject({ runtime: "python", cwd: "/sandbox" });
    expect(context.id).toEqual(expect.any(String));
    const first = await engine.execute({ runtime: "python", code: "x = 41", context: context.id });
    expect(first.exitCode).toBe(0);
    const second = await engine.execute({ runtime: "python", code: "x + 1", context: context.id });
    expect(second.exitCode).toBe(0);
    expect(second.outputs).toContainEqual(expect.objectContaining({ type: "text/plain", data: "42", result: true }));
  });

  test("node: const a = 1 then a + 1 gives the text/plain output 2", async () => {
    const engine = remote("ctx-node");
    const context = await engine.createContext({ runtime: "node" });
    expect(context.runtime).toBe("node");
    expect((await engine.execute({ runtime: "node", code: "const a = 1", context: context.id })).exitCode).toBe(0);
    const second = await engine.execute({ runtime: "node", code: "a + 1", context: context.id });
    expect(second.exitCode).toBe(0);
    expect(resultText(second)).toBe("2");
  });

  test("a cell's stream yields its stdout events, then exit", async () => {
    const engine = remote("ctx-stream");
    const context = await engine.createContext({ runtime: "python" });
    const events: StreamEvent[] = [];
    for await (const event of engine.executeStream({
      runtime: "python",
      code: "import sys\nprint('one'); sys.stdout.flush()\nprint('two')",
      context: context.id,
    }))
      events.push(event);
    expect(events.length).toBeGreaterThanOrEqual(2);
    const last = events.at(-1)!;
    expect(last.type).toBe("exit");
    expect((last as Extract<StreamEvent, { type: "exit" }>).result.exitCode).toBe(0);
    const before = events.slice(0, -1);
    expect(before.every((e) => e.type === "stdout")).toBe(true);
    expect(before.map((e) => e.data).join("")).toBe("one\ntwo\n");
  });

  test("a streamed cell's last expression comes as a display event before exit", async () => {
    const engine = remote("ctx-display");
    const context = await engine.createContext({ runtime: "python" });
    await engine.execute({ runtime: "python", code: "y = 20", context: context.id });
    const events: StreamEvent[] = [];
    for await (const event of engine.executeStream({ runtime: "python", code: "y * 2 + 2", context: context.id })) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["display", "exit"]);
    expect(events[0]).toMatchObject({ type: "display", output: { type: "text/plain", data: "42", result: true } });
  });

  test("another tenant, or another session, asking for the context gets 404 ContextNotFoundError; its own session still runs it", async () => {
    const owner = remote("ctx-private");
    const context = await owner.createContext({ runtime: "python" });
    await owner.execute({ runtime: "python", code: "secret = 7", context: context.id });

    // Tenant B, same session name (its own, different session): the id is not reachable.
    const other = remote("ctx-private", KEY_B);
    const asB = await rejection(other.execute({ runtime: "python", code: "secret", context: context.id }));
    expect(asB).toBeInstanceOf(ContextNotFoundError);
    expect(asB.status).toBe(404);
    expect((asB as unknown as ContextNotFoundError).contextId).toBe(context.id);
    // The answer is the one for an id that never existed: nothing says the context exists elsewhere.
    const never = await rejection(other.execute({ runtime: "python", code: "secret", context: "never-made-0" }));
    expect(never).toBeInstanceOf(ContextNotFoundError);
    expect(asB.message.replace(context.id, "ID")).toBe(never.message.replace("never-made-0", "ID"));
    expect(await rejection(other.restartContext(context.id))).toBeInstanceOf(ContextNotFoundError);
    expect(await rejection(other.deleteContext(context.id))).toBeInstanceOf(ContextNotFoundError);
    expect(await other.listContexts()).toEqual([]);
    // The server's own answer to tenant B (no client mapping in between).
    const raw = await fetch(`${served.url}/session/ctx-private/contexts/${encodeURIComponent(context.id)}/restart`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY_B}` },
    });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toMatchObject({ code: "ISOL8_ERR_CONTEXT_NOT_FOUND", details: { contextId: context.id } });

    // Tenant A, another session that exists (its own sandbox): not reachable either.
    const sibling = remote("ctx-sibling");
    expect((await sibling.execute({ runtime: "python", code: "print(1)" })).stdout).toBe("1\n");
    const fromSibling = await rejection(sibling.execute({ runtime: "python", code: "secret", context: context.id }));
    expect(fromSibling).toBeInstanceOf(ContextNotFoundError);
    expect(fromSibling.status).toBe(404);
    expect(await rejection(sibling.restartContext(context.id))).toBeInstanceOf(ContextNotFoundError);
    expect(await rejection(sibling.deleteContext(context.id))).toBeInstanceOf(ContextNotFoundError);

    // Positive control on the same path: the owner's session still holds it, state intact.
    expect(resultText(await owner.execute({ runtime: "python", code: "secret", context: context.id }))).toBe("7");
  });

  test("over maxContextsPerSession is refused with 429 naming the limit; deleting one makes room", async () => {
    const engine = remote("ctx-limit", KEY_B);
    const made = [await engine.createContext({ runtime: "python" }), await engine.createContext({ runtime: "python" })];
    expect(made).toHaveLength(PER_SESSION);
    const refused = await rejection(engine.createContext({ runtime: "python" }));
    expect(refused.status).toBe(429);
    expect(refused.code).toBe("ISOL8_ERR_SESSION_LIMIT");
    expect(refused.message).toContain(`maxContextsPerSession ${PER_SESSION}`);
    await engine.deleteContext(made[0]!.id);
    const again = await engine.createContext({ runtime: "python" });
    expect(again.id).not.toBe(made[0]!.id);

    // The tenant's bound over its sessions: 2 here, 1 in another makes 3; a fourth is refused naming it.
    const second = remote("ctx-limit-2", KEY_B);
    await second.createContext({ runtime: "python" });
    const overTenant = await rejection(second.createContext({ runtime: "python" }));
    expect(overTenant.status).toBe(429);
    expect(overTenant.message).toContain(`maxContextsPerTenant ${PER_TENANT}`);
  });

  test("listContexts, restartContext (x gone after it) and deleteContext", async () => {
    const engine = remote("ctx-lifecycle");
    expect(await engine.listContexts()).toEqual([]);
    const context = await engine.createContext({ runtime: "python" });
    await engine.execute({ runtime: "python", code: "x = 41", context: context.id });
    expect(resultText(await engine.execute({ runtime: "python", code: "x", context: context.id }))).toBe("41");

    const listed = await engine.listContexts();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: context.id, runtime: "python", cells: 2, restarts: 0 });

    const restarted = await engine.restartContext(context.id);
    expect(restarted).toMatchObject({ id: context.id, restarts: 1 });
    const gone = await engine.execute({ runtime: "python", code: "x", context: context.id });
    expect(gone.error).toMatchObject({ name: "NameError" });
    expect(resultText(gone)).toBeUndefined();

    await engine.deleteContext(context.id);
    expect(await engine.listContexts()).toEqual([]);
    const deleted = await rejection(engine.execute({ runtime: "python", code: "1", context: context.id }));
    expect(deleted).toBeInstanceOf(ContextNotFoundError);
  });

  test("a cell without a session is refused: 400 naming sessionId over HTTP, NotSupportedError from RemoteIsol8", async () => {
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY_A}`, "content-type": "application/json" },
      body: JSON.stringify({ request: { runtime: "python", code: "1", context: "c1" } }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; field: string; error: string };
    expect(body).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "sessionId" });
    expect(body.error).toContain("send the sessionId the context was made in");
    const refused = await rejection(remote(undefined).execute({ runtime: "python", code: "1", context: "c1" }));
    expect(refused.code).toBe("ISOL8_ERR_NOT_SUPPORTED");
    expect(refused.message).toContain("sessionId");
  });
});
