import type { Env, Hono } from "hono";
import { HttpError } from "./errors.js";

/**
 * `ISOL8_SERVER_DEBUG_HEAP=1` adds `GET /debug/heap`: a full garbage collection, then the
 * process's memory figures. For the soak test (test/soak.test.ts), which watches the heap of a
 * real `isol8 serve` across thousands of requests. Off unless that variable is exactly "1"; like
 * every route but /health and /openapi.json it needs an API key. Forcing a GC stalls the process,
 * so it is never on in production.
 */
export const DEBUG_HEAP_ENV = "ISOL8_SERVER_DEBUG_HEAP";

export interface HeapReport {
  /** V8 heap in use after the forced collection, in bytes. */
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
}

export function debugHeapEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[DEBUG_HEAP_ENV] === "1";
}

/** Registers GET /debug/heap on `app` (call only when debugHeapEnabled()). */
export function debugHeapRoute<E extends Env>(app: Hono<E>): void {
  app.get("/debug/heap", async (c) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== "function") {
      throw new HttpError(501, "ISOL8_ERR_INTERNAL", `GET /debug/heap needs a forced GC: start the server with node --expose-gc (or NODE_OPTIONS=--expose-gc)`);
    }
    // Twice, with a turn of the event loop between: objects freed by finalizers of the first pass go in the second.
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc();
    const { heapUsed, heapTotal, rss, external } = process.memoryUsage();
    const report: HeapReport = { heapUsed, heapTotal, rss, external };
    return c.json(report);
  });
}
