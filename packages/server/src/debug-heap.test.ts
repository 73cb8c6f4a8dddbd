import { afterEach, describe, expect, test, vi } from "vitest";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { createServer } from "./server.js";
import { DEBUG_HEAP_ENV } from "./debug-heap.js";

const KEY = "debug-heap-key-0123456789";
const server = () => createServer({ plugins: [bashRuntime()], config: { keys: [{ key: KEY, tenant: "t" }] }, log: () => undefined });
const get = (s: ReturnType<typeof server>, key?: string) =>
  s.app.fetch(new Request("http://127.0.0.1/debug/heap", { headers: key ? { authorization: `Bearer ${key}` } : {} }));

afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

describe("GET /debug/heap", () => {
  test(`off unless ${DEBUG_HEAP_ENV}=1: 404 even with a key`, async () => {
    vi.stubEnv(DEBUG_HEAP_ENV, "true");
    const response = await get(server(), KEY);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_NOT_FOUND" });
  });

  test("when on, it needs an API key (401 without one)", async () => {
    vi.stubEnv(DEBUG_HEAP_ENV, "1");
    const response = await get(server());
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_UNAUTHORIZED" });
  });

  test("when on, with a key: a forced GC, then the heap figures", async () => {
    vi.stubEnv(DEBUG_HEAP_ENV, "1");
    const gc = vi.fn();
    vi.stubGlobal("gc", gc);
    const response = await get(server(), KEY);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, number>;
    expect(Object.keys(body).sort()).toEqual(["external", "heapTotal", "heapUsed", "rss"]);
    expect(body.heapUsed).toBeGreaterThan(0);
    expect(gc).toHaveBeenCalledTimes(2);
  });

  test("when on without --expose-gc: 501 saying how to start the server", async () => {
    vi.stubEnv(DEBUG_HEAP_ENV, "1");
    vi.stubGlobal("gc", undefined);
    const response = await get(server(), KEY);
    expect(response.status).toBe(501);
    expect(((await response.json()) as { error: string }).error).toMatch(/--expose-gc/);
  });
});
