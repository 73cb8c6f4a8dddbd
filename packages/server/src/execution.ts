import type { ExecutionRequest, Isol8Engine, StreamEvent } from "@isol8/core";
import { Cancellation, currentCancellation } from "./cancel.js";

export type Terminal = Extract<StreamEvent, { type: "exit" } | { type: "error" }>;

export interface Driven {
  /** How the run ended for this request: its terminal event, or the request's signal aborting first. */
  ended: "exit" | "error" | "aborted";
  event?: Terminal;
  /**
   * Settles when the engine is really done with the execution (its container released), which
   * can be after `ended` when the request was aborted: the slot is held until then, so the
   * concurrency bound counts what actually runs.
   */
  settled: Promise<void>;
}

const ABORTED = Symbol("aborted");

/**
 * Consumes an engine's executeStream, handing each event to `onEvent`, until its terminal event or
 * until `signal` aborts. On abort the run is cancelled (with `cancellable`, at once; see
 * cancel.ts) and the iterator returned (the engine's generator then kills the program and
 * releases its container), and `settled` tells when that happened.
 */
export function drive(
  engine: Isol8Engine,
  request: ExecutionRequest,
  signal: AbortSignal,
  onEvent: (event: StreamEvent) => unknown,
  options: { cancellable?: boolean } = {},
): Promise<Driven> {
  if (!options.cancellable) return consume(engine, request, signal, onEvent);
  const cancellation = new Cancellation();
  return currentCancellation.run(cancellation, () => consume(engine, request, signal, onEvent, cancellation));
}

async function consume(engine: Isol8Engine, request: ExecutionRequest, signal: AbortSignal, onEvent: (event: StreamEvent) => unknown, cancellation?: Cancellation): Promise<Driven> {
  const iterator = engine.executeStream(request)[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    if (signal.aborted) return resolve(ABORTED);
    onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  const finish = (pending?: Promise<unknown>) => {
    cancellation?.cancel();
    return Promise.allSettled([pending, iterator.return?.(undefined)]).then(() => undefined);
  };
  const done = () => Promise.resolve(iterator.return?.(undefined)).then(
    () => undefined,
    () => undefined,
  );
  try {
    for (;;) {
      const pending = iterator.next();
      const step = await Promise.race([pending, aborted]);
      if (step === ABORTED) return { ended: "aborted", settled: finish(pending) };
      if (step.done) {
        return { ended: "error", event: { type: "error", data: "The execution ended without a result.", code: "ISOL8_ERR_EXECUTION" }, settled: Promise.resolve() };
      }
      const event = step.value;
      await onEvent(event);
      if (event.type === "exit" || event.type === "error") return { ended: event.type, event, settled: done() };
      if (signal.aborted) return { ended: "aborted", settled: finish() };
    }
  } catch (error) {
    // onEvent failed (a client gone mid-write): stop the run like an abort.
    return { ended: "error", event: { type: "error", data: (error as Error).message, code: "ISOL8_ERR_EXECUTION" }, settled: finish() };
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
