import type { ExecutionRequest, Isol8Engine, StdinSource, StreamEvent } from "@isol8/kit";

export type Terminal = Extract<StreamEvent, { type: "exit" } | { type: "error" }>;

export interface Driven {
  /** How the run ended for this request: its terminal event, or the request's signal aborting first. */
  ended: "exit" | "error" | "aborted";
  event?: Terminal;
  /**
   * Settles when the engine is really done with the execution (its program killed, its container
   * released), which can be after `ended` when the request was aborted: the slot is held until
   * then, so the concurrency bound counts what actually runs.
   */
  settled: Promise<void>;
}

const ABORTED = Symbol("aborted");

/**
 * Consumes an engine's executeStream, handing each event to `onEvent`, until its terminal event or
 * until `signal` aborts. The run gets a signal of its own (`executeStream(request, { signal })`),
 * aborted when the request's signal aborts or `onEvent` fails (the client gone mid-write): the
 * engine then kills the program and every process it started and releases the container.
 * `drive` returns at once on abort; `settled` tells when the engine is done. With `interactive`
 * (the WebSocket route): the program's stdin source, and a `kill` signal that stops the run
 * while its events go on to the engine's own terminal event.
 */
export async function drive(
  engine: Isol8Engine,
  request: ExecutionRequest,
  signal: AbortSignal,
  onEvent: (event: StreamEvent) => unknown,
  interactive: { stdin?: StdinSource; kill?: AbortSignal } = {},
): Promise<Driven> {
  const run = new AbortController();
  const onKill = () => run.abort();
  if (interactive.kill?.aborted) run.abort();
  else interactive.kill?.addEventListener("abort", onKill, { once: true });
  const iterator = engine.executeStream(request, { signal: run.signal, ...(interactive.stdin && { stdin: interactive.stdin }) })[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    if (signal.aborted) return resolve(ABORTED);
    onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  /** Stops the run and waits for the engine's generator to end (its finally kills and releases). */
  const stop = (pending?: Promise<unknown>) => {
    run.abort();
    return Promise.allSettled([pending, iterator.return?.(undefined)]).then(() => undefined);
  };
  const done = () =>
    Promise.resolve(iterator.return?.(undefined)).then(
      () => undefined,
      () => undefined,
    );
  try {
    for (;;) {
      const pending = iterator.next();
      const step = await Promise.race([pending, aborted]);
      if (step === ABORTED) return { ended: "aborted", settled: stop(pending) };
      if (step.done) {
        return {
          ended: "error",
          event: { type: "error", data: "The execution ended without a result.", code: "ISOL8_ERR_EXECUTION" },
          settled: Promise.resolve(),
        };
      }
      const event = step.value;
      await onEvent(event);
      if (event.type === "exit" || event.type === "error") return { ended: event.type, event, settled: done() };
      if (signal.aborted) return { ended: "aborted", settled: stop() };
    }
  } catch (error) {
    // onEvent failed (a client gone mid-write): stop the run like an abort.
    return { ended: "error", event: { type: "error", data: (error as Error).message, code: "ISOL8_ERR_EXECUTION" }, settled: stop() };
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
    interactive.kill?.removeEventListener("abort", onKill);
  }
}
