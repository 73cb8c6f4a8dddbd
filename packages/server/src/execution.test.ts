import { describe, expect, test } from "vitest";
import type { ExecuteOptions, ExecutionResult, Isol8Engine, StreamEvent } from "@isol8/kit";
import { drive } from "./execution.js";

const result = { stdout: "", stderr: "", exitCode: 0 } as ExecutionResult;

/** An engine whose stream is scripted: events, then (optionally) a wait that only the run's signal ends. */
function fakeEngine(script: { events: StreamEvent[]; hang?: boolean }): Isol8Engine & { finished: Promise<void>; signals: (AbortSignal | undefined)[] } {
  let markFinished!: () => void;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));
  const signals: (AbortSignal | undefined)[] = [];
  return {
    finished,
    signals,
    async start() {},
    async stop() {},
    async runtimes() {
      return [];
    },
    async execute() {
      return result;
    },
    async putFile() {},
    async getFile() {
      return Buffer.alloc(0);
    },
    async createContext() {
      throw new Error("not scripted");
    },
    async listContexts() {
      return [];
    },
    async restartContext() {
      throw new Error("not scripted");
    },
    async deleteContext() {},
    async *executeStream(_request, options: ExecuteOptions = {}) {
      const signal = options.signal;
      signals.push(signal);
      try {
        for (const event of script.events) yield event;
        if (script.hang) {
          // Like the engine: the run ends when its signal aborts (and never otherwise).
          await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
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
    const engine = fakeEngine({
      events: [
        { type: "stdout", data: "a" },
        { type: "exit", data: "0", result },
      ],
    });
    const seen: StreamEvent[] = [];
    const driven = await drive(engine, { runtime: "python", code: "1" }, new AbortController().signal, (e) => seen.push(e));
    expect(driven.ended).toBe("exit");
    expect(seen.map((e) => e.type)).toEqual(["stdout", "exit"]);
    await driven.settled;
    await engine.finished;
  });

  test("an abort while the engine waits returns at once, and the run is stopped through its own signal", async () => {
    const engine = fakeEngine({ events: [{ type: "stdout", data: "started" }], hang: true });
    const controller = new AbortController();
    const seen: StreamEvent[] = [];
    const pending = drive(engine, { runtime: "python", code: "1" }, controller.signal, (e) => seen.push(e));
    await expect.poll(() => seen.length).toBe(1);
    expect(engine.signals).toHaveLength(1);
    expect(engine.signals[0]).toBeInstanceOf(AbortSignal);
    expect(engine.signals[0]!.aborted).toBe(false);
    controller.abort();
    const driven = await pending;
    expect(driven.ended).toBe("aborted");
    expect(engine.signals[0]!.aborted).toBe(true);
    await driven.settled; // the engine's generator ran to its end (it never would without the abort)
    await engine.finished;
  });

  test("a request already aborted returns at once and aborts the run", async () => {
    const engine = fakeEngine({ events: [], hang: true });
    const controller = new AbortController();
    controller.abort();
    const driven = await drive(engine, { runtime: "python", code: "1" }, controller.signal, () => undefined);
    expect(driven.ended).toBe("aborted");
    await driven.settled;
    expect(engine.signals).toHaveLength(1);
    expect(engine.signals[0]!.aborted).toBe(true);
  });

  test("a failing consumer stops the run", async () => {
    const engine = fakeEngine({
      events: [
        { type: "stdout", data: "a" },
        { type: "stdout", data: "b" },
        { type: "exit", data: "0", result },
      ],
    });
    const driven = await drive(engine, { runtime: "python", code: "1" }, new AbortController().signal, () => {
      throw new Error("client gone");
    });
    expect(driven).toMatchObject({ ended: "error", event: { type: "error", data: "client gone" } });
    expect(engine.signals).toHaveLength(1);
    expect(engine.signals[0]!.aborted).toBe(true);
    await driven.settled;
    await engine.finished;
  });
});
