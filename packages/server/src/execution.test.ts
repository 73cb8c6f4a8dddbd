import { describe, expect, test } from "vitest";
import type { ExecContext, ExecutionResult, Isol8Engine, StreamEvent } from "@isol8/core";
import { Cancellation, currentCancellation } from "./cancel.js";
import { drive } from "./execution.js";

const result = { stdout: "", stderr: "", exitCode: 0 } as ExecutionResult;

/** An engine whose stream is scripted: events, then (optionally) a wait that only an abort listener ends. */
function fakeEngine(script: { events: StreamEvent[]; hang?: boolean; onCtx?: (ctx: ExecContext) => void }): Isol8Engine & { finished: Promise<void> } {
  let markFinished!: () => void;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));
  return {
    finished,
    async start() {},
    async stop() {},
    async execute() {
      return result;
    },
    async putFile() {},
    async getFile() {
      return Buffer.alloc(0);
    },
    async *executeStream() {
      const controller = new AbortController();
      const ctx = { executionId: "e", engineId: "g", options: {} as ExecContext["options"], signal: controller.signal };
      currentCancellation.getStore()?.attach(ctx);
      try {
        for (const event of script.events) yield event;
        if (script.hang) {
          // Like the engine: the run ends when the context's abort listener fires.
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          yield { type: "error", data: "cancelled", code: "ISOL8_ERR_EXECUTION" };
        }
      } finally {
        markFinished();
      }
    },
  };
}

describe("drive", () => {
  test("hands over every event and ends with the terminal one", async () => {
    const engine = fakeEngine({ events: [{ type: "stdout", data: "a" }, { type: "exit", data: "0", result }] });
    const seen: StreamEvent[] = [];
    const driven = await drive(engine, { runtime: "python", code: "1" }, new AbortController().signal, (e) => seen.push(e));
    expect(driven.ended).toBe("exit");
    expect(seen.map((e) => e.type)).toEqual(["stdout", "exit"]);
    await driven.settled;
    await engine.finished;
  });

  test("an abort while the engine waits returns at once; cancellable runs are stopped through the context signal", async () => {
    const engine = fakeEngine({ events: [{ type: "stdout", data: "started" }], hang: true });
    const controller = new AbortController();
    const pending = drive(engine, { runtime: "python", code: "1" }, controller.signal, () => undefined, { cancellable: true });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const driven = await pending;
    expect(driven.ended).toBe("aborted");
    await driven.settled; // the engine's generator ran to its end (it would never without the cancellation)
    await engine.finished;
  });

  test("without cancellation an abort still returns at once; the run is left to end by itself", async () => {
    const engine = fakeEngine({ events: [], hang: true });
    const controller = new AbortController();
    controller.abort();
    const driven = await drive(engine, { runtime: "python", code: "1" }, controller.signal, () => undefined);
    expect(driven.ended).toBe("aborted");
    let settled = false;
    void driven.settled.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
  });

  test("a failing consumer stops the run", async () => {
    const engine = fakeEngine({ events: [{ type: "stdout", data: "a" }, { type: "stdout", data: "b" }, { type: "exit", data: "0", result }] });
    const driven = await drive(engine, { runtime: "python", code: "1" }, new AbortController().signal, () => {
      throw new Error("client gone");
    });
    expect(driven).toMatchObject({ ended: "error", event: { type: "error", data: "client gone" } });
    await driven.settled;
    await engine.finished;
  });
});

describe("Cancellation", () => {
  test("fires the context's abort listeners without aborting the engine's own signal; a cancel before attach fires on attach", () => {
    const fired: string[] = [];
    const controller = new AbortController();
    controller.signal.addEventListener("abort", () => fired.push("listener"));
    const ctx = { executionId: "e", engineId: "g", options: {} as ExecContext["options"], signal: controller.signal };
    const early = new Cancellation();
    early.cancel();
    early.attach(ctx);
    expect(fired).toEqual(["listener"]);
    expect(controller.signal.aborted).toBe(false);
  });
});
