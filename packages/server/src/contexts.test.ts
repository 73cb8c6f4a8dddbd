import { describe, expect, test } from "vitest";
import type { DockerIsol8 } from "@isol8/core";
import { ConfigError, engineOptionsSchema, type ContextInfo } from "@isol8/kit";
import { parseServerConfig } from "./config.js";
import { ContextLedger } from "./context-limits.js";
import { createContextBodySchema } from "./context-schemas.js";
import { HttpError, PolicyError } from "./errors.js";
import { openApiDocument } from "./openapi.js";
import { DEFAULT_MAX_CONTEXTS_PER_SESSION, DEFAULT_MAX_CONTEXTS_PER_TENANT, resolvePolicy } from "./policy.js";
import { executeBodySchema } from "./schemas.js";
import { Sessions } from "./sessions.js";

const issuesOf = (result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  (result.error?.issues ?? []).map((i) => ({ path: i.path.join("."), message: i.message }));

describe("bodies with contexts", () => {
  test("a cell with request.context but no sessionId is refused naming sessionId; with one it passes", () => {
    const cell = { runtime: "python", code: "x + 1", context: "ctx-1" };
    const refused = executeBodySchema.safeParse({ request: cell });
    expect(refused.success).toBe(false);
    expect(issuesOf(refused)).toEqual([{ path: "sessionId", message: expect.stringContaining("send the sessionId the context was made in") }]);
    expect(executeBodySchema.safeParse({ request: cell, sessionId: "s1" }).success).toBe(true);
  });

  test("a cell refuses the fields a cell cannot take (the kit's checkContextCell), each named", () => {
    const refused = executeBodySchema.safeParse({
      request: { runtime: "python", code: "1", context: "ctx-1", env: { A: "1" }, files: { "/sandbox/a": "x" } },
      sessionId: "s1",
    });
    expect(refused.success).toBe(false);
    const issues = issuesOf(refused);
    expect(issues).toContainEqual({ path: "request.env", message: expect.stringContaining("env is not available with context (give it to createContext)") });
    expect(issues).toContainEqual({ path: "request.files", message: expect.stringContaining("files is not available with context") });
    // The same fields without context are a plain execution's.
    expect(executeBodySchema.safeParse({ request: { runtime: "python", code: "1", env: { A: "1" } } }).success).toBe(true);
  });

  test("the create body names a bad env name and an unknown key; a good one passes", () => {
    expect(issuesOf(createContextBodySchema.safeParse({ runtime: "python", env: { "1X": "a" } }))[0]).toMatchObject({ path: "env.1X" });
    const unknown = createContextBodySchema.safeParse({ runtime: "python", code: "x" });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error?.issues)).toContain("code");
    expect(createContextBodySchema.safeParse({ runtime: "python", cwd: "/tmp", env: { X: "1" }, options: { memoryLimit: "256m" } }).success).toBe(true);
  });
});

describe("context counts in the policy", () => {
  const defaults = engineOptionsSchema.parse({});

  test("default to 8 per session and 16 per tenant; the config sets them", () => {
    const resolved = resolvePolicy(parseServerConfig({}).policy, defaults, "strict");
    expect(resolved).toMatchObject({ maxContextsPerSession: DEFAULT_MAX_CONTEXTS_PER_SESSION, maxContextsPerTenant: DEFAULT_MAX_CONTEXTS_PER_TENANT });
    expect([DEFAULT_MAX_CONTEXTS_PER_SESSION, DEFAULT_MAX_CONTEXTS_PER_TENANT]).toEqual([8, 16]);
    const set = resolvePolicy(parseServerConfig({ policy: { maxContextsPerSession: 2, maxContextsPerTenant: 3 } }).policy, defaults, "strict");
    expect(set).toMatchObject({ maxContextsPerSession: 2, maxContextsPerTenant: 3 });
  });

  test("a per-session count over what one sandbox holds is a config error naming the key", () => {
    expect(() => parseServerConfig({ policy: { maxContextsPerSession: 17 } })).toThrow(ConfigError);
    expect(() => parseServerConfig({ policy: { maxContextsPerSession: 17 } })).toThrow(/server\.policy\.maxContextsPerSession: expected at most 16 contexts/);
    expect(() => parseServerConfig({ policy: { maxContextsPerTenant: -1 } })).toThrow(/server\.policy\.maxContextsPerTenant/);
  });
});

/** A session engine that only knows its contexts (what the ledger asks of it). */
function fakeEngine(held: Set<string>): DockerIsol8 {
  return {
    async listContexts() {
      return [...held].map((id) => ({ id }) as ContextInfo);
    },
  } as unknown as DockerIsol8;
}

function setup(bounds: { perSession: number; perTenant: number }) {
  const sessions = new Sessions({ perTenant: 8, total: 64, idleMs: 60_000 });
  const ledger = new ContextLedger(sessions, bounds);
  /** What each session's engine holds, by "tenant/session". */
  const held = new Map<string, Set<string>>();
  let n = 0;
  const create = (tenant: string, sessionId: string, wait?: Promise<void>) =>
    ledger.create(tenant, sessionId, async () => {
      const mine = held.get(`${tenant}/${sessionId}`) ?? new Set<string>();
      held.set(`${tenant}/${sessionId}`, mine);
      const session = sessions.getOrCreate(tenant, sessionId, "", {}, () => fakeEngine(mine));
      await wait;
      const id = `ctx-${++n}`;
      mine.add(id);
      return { session, created: { id } };
    });
  return { sessions, ledger, create, held };
}

async function refusal(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  return error as HttpError;
}

describe("ContextLedger", () => {
  test("a session over maxContextsPerSession is refused with 429 naming the limit", async () => {
    const { create } = setup({ perSession: 2, perTenant: 10 });
    expect((await create("t", "s1")).id).toBe("ctx-1");
    expect((await create("t", "s1")).id).toBe("ctx-2");
    const error = await refusal(create("t", "s1"));
    expect(error).toMatchObject({ status: 429, code: "ISOL8_ERR_SESSION_LIMIT", details: { limit: "maxContextsPerSession", max: 2 } });
    expect(error.message).toContain("maxContextsPerSession 2");
    // Another session of the tenant still has room.
    expect((await create("t", "s2")).id).toBe("ctx-3");
  });

  test("a tenant over maxContextsPerTenant is refused over all its sessions; another tenant is not counted", async () => {
    const { create } = setup({ perSession: 5, perTenant: 2 });
    await create("t", "s1");
    await create("t", "s2");
    const error = await refusal(create("t", "s3"));
    expect(error).toMatchObject({ status: 429, code: "ISOL8_ERR_SESSION_LIMIT", details: { limit: "maxContextsPerTenant", max: 2 } });
    expect((await create("u", "s1")).id).toBe("ctx-3");
  });

  test("two creations at once with room for one: one is made, the other refused", async () => {
    const { create } = setup({ perSession: 1, perTenant: 10 });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const first = create("t", "s1", gate);
    const second = create("t", "s1");
    open();
    expect((await first).id).toBe("ctx-1");
    expect((await refusal(second)).details).toEqual({ limit: "maxContextsPerSession", max: 1 });
  });

  test("a deleted context frees its place; before refusing, the engines are asked what they still hold", async () => {
    const { sessions, ledger, create, held } = setup({ perSession: 1, perTenant: 10 });
    const made = await create("t", "s1");
    await refusal(create("t", "s1"));
    ledger.removed(sessions.get("t", "s1")!, made.id);
    held.get("t/s1")!.delete(made.id);
    const again = await create("t", "s1");
    expect(again.id).toBe("ctx-2");
    await refusal(create("t", "s1"));
    // The engine lost the context (its sandbox was replaced): the ledger follows it instead of refusing.
    held.get("t/s1")!.clear();
    expect((await create("t", "s1")).id).toBe("ctx-3");
  });

  test("a policy of 0 per session refuses every creation with 400 (it can never fit)", async () => {
    const { create } = setup({ perSession: 0, perTenant: 10 });
    const error = await refusal(create("t", "s1"));
    expect(error).toBeInstanceOf(PolicyError);
    expect(error).toMatchObject({ status: 400, code: "ISOL8_ERR_POLICY", field: "maxContextsPerSession" });
  });
});

describe("openapi.json with contexts", () => {
  test("documents the context routes and their bodies", () => {
    const doc = openApiDocument("1.2.3") as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, Record<string, unknown>> };
    };
    expect(Object.keys(doc.paths["/session/{id}/contexts"]!).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/session/{id}/contexts/{contextId}"]!)).toEqual(["delete"]);
    expect(Object.keys(doc.paths["/session/{id}/contexts/{contextId}/restart"]!)).toEqual(["post"]);
    expect(Object.keys(doc.paths["/session/{id}/contexts"]!.post!.responses)).toEqual(expect.arrayContaining(["201", "400", "429"]));
    expect(Object.keys(doc.paths["/session/{id}/contexts/{contextId}"]!.delete!.responses)).toContain("404");
    const body = doc.components.schemas.CreateContextBody!;
    expect(Object.keys(body.properties as object).sort()).toEqual(["cwd", "env", "options", "runtime"]);
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(doc.components.schemas.ContextInfo!.properties as object).sort()).toEqual(["cells", "createdAt", "cwd", "id", "restarts", "runtime"]);
    expect(JSON.stringify(doc.components.schemas.ExecutionRequest)).toContain('"context"');
  });
});
