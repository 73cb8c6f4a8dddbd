import { getEventListeners } from "node:events";
import { describe, expect, test, vi } from "vitest";
import { RequestScope } from "./request-scope.js";

describe("RequestScope", () => {
  test("a disposed scope leaves no listener on the client's and the server's signals, and no timer", () => {
    vi.useFakeTimers();
    try {
      const client = new AbortController();
      const shutdown = new AbortController();
      const scope = new RequestScope(client.signal, shutdown.signal, 60_000);
      expect(getEventListeners(client.signal, "abort")).toHaveLength(1);
      expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(1);
      expect(vi.getTimerCount()).toBe(1);
      scope.dispose();
      expect(getEventListeners(client.signal, "abort")).toHaveLength(0);
      expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(0);
      expect(vi.getTimerCount()).toBe(0);
      // After dispose nothing reaches the scope any more.
      shutdown.abort();
      expect(scope.signal.aborted).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  test("the signal aborts with the first reason: client (499), shutdown (503), deadline (504)", () => {
    vi.useFakeTimers();
    try {
      const cases = [
        { reason: "client", status: 499, code: "ISOL8_ERR_INTERNAL", fire: (c: AbortController, _s: AbortController) => c.abort() },
        { reason: "shutdown", status: 503, code: "ISOL8_ERR_SHUTTING_DOWN", fire: (_c: AbortController, s: AbortController) => s.abort() },
        { reason: "timeout", status: 504, code: "ISOL8_ERR_TIMEOUT", fire: () => vi.advanceTimersByTime(1_000) },
      ] as const;
      expect(cases).toHaveLength(3);
      for (const { reason, status, code, fire } of cases) {
        const client = new AbortController();
        const shutdown = new AbortController();
        const scope = new RequestScope(client.signal, shutdown.signal, 1_000);
        expect(scope.signal.aborted, reason).toBe(false);
        fire(client, shutdown);
        expect(scope.signal.aborted, reason).toBe(true);
        expect(scope.reason).toBe(reason);
        expect(scope.error(1_000)).toMatchObject({ status, code });
        scope.dispose();
      }
    } finally {
      vi.useRealTimers();
    }
  });

  test("a signal already aborted when the scope is made aborts it at once (the server's reason first)", () => {
    const client = new AbortController();
    const shutdown = new AbortController();
    client.abort();
    shutdown.abort();
    const scope = new RequestScope(client.signal, shutdown.signal, 60_000);
    expect(scope.signal.aborted).toBe(true);
    expect(scope.reason).toBe("shutdown");
    scope.dispose();
  });
});
