import { AsyncLocalStorage } from "node:async_hooks";
import { STAGE_OBSERVE, type ExecContext, type Isol8Plugin } from "@isol8/core";

/**
 * Cancelling one execution of a shared engine.
 *
 * Workaround: `Isol8Engine.executeStream(request)` takes no AbortSignal, and returning its
 * iterator only takes effect at the generator's next step (the next output chunk, or the end),
 * so a silent program (`sleep 30`) would keep its container until its own time limit. The
 * engine does stop a run when its per-execution `ctx.signal` fires "abort" (that is how
 * `engine.stop()` cancels). So a beforeExec tap hands this execution's context to the request
 * that started it (found through AsyncLocalStorage, since the main engine is shared by
 * concurrent requests), and cancel() fires the engine's own abort listeners on that signal.
 * The container then goes back to the pool as not reusable (destroyed) or wiped.
 *
 * Used for ephemeral executions only: in a persistent session the container stays, and an
 * aborted Docker exec can leave the program running in it, so session runs end by their time limit.
 * To be replaced by `executeStream(request, { signal })` in the engine (see the server README).
 */
export class Cancellation {
  #ctx: ExecContext | undefined;
  #cancelled = false;

  attach(ctx: ExecContext): void {
    this.#ctx = ctx;
    if (this.#cancelled) this.#fire();
  }

  cancel(): void {
    this.#cancelled = true;
    this.#fire();
  }

  #fire(): void {
    const signal = this.#ctx?.signal;
    if (signal && !signal.aborted) signal.dispatchEvent(new Event("abort"));
  }
}

export const currentCancellation = new AsyncLocalStorage<Cancellation>();

/** The tap that connects an execution's context to the Cancellation of the request running it. */
export function cancellationPlugin(): Isol8Plugin {
  const name = "isol8:server-cancellation";
  return {
    name,
    apply(kit) {
      kit.hooks.beforeExec.tap({ name, stage: STAGE_OBSERVE }, (request, ctx) => {
        currentCancellation.getStore()?.attach(ctx);
        return request;
      });
    },
  };
}
