import { AsyncParallelHook, AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook, type Hook } from "./tapable.js";
import type { SandboxSpec } from "./sandbox.js";
import { Isol8Error, PluginError } from "./errors.js";
import type { ExecutionResult, ResolvedEngineOptions, ValidatedRequest } from "./schemas.js";
import type { Kit } from "./kit.js";

/** What every hook of one execution sees besides its data. */
export interface ExecContext {
  readonly executionId: string;
  readonly engineId: string;
  /** The engine's resolved options (read-only for plugins). */
  readonly options: ResolvedEngineOptions;
  /** Aborted when the consumer stops or the engine stops. */
  readonly signal: AbortSignal;
  /** The request as beforeExec left it (set once beforeExec has run). */
  request?: ValidatedRequest;
}

/** What the pool is asked for; `beforeAcquire` taps decide whether it may be given. */
export interface AcquireRequest {
  readonly runtime: string;
  readonly image: string;
  readonly mode: ResolvedEngineOptions["mode"];
  readonly metadata: Readonly<Record<string, string>>;
}

/** A refusal returned by a `beforeAcquire` tap. */
export interface Denial {
  readonly reason: string;
}

export interface SpecContext {
  readonly runtime: string;
  readonly image: string;
  readonly engineId: string;
  readonly options: ResolvedEngineOptions;
}

export interface OutputChunk {
  readonly stream: "stdout" | "stderr";
  /** Decoded text; never splits a UTF-8 character. Secrets are already masked. */
  readonly data: string;
}

/**
 * All hook points of the kit. The tapable class of each says how its taps combine.
 */
export function createHooks() {
  return nameFailingTaps({
    /**
     * Runs first, after the request validated, before the runtime is looked up. Taps may return a
     * rewritten request (inject env, wrap code, clamp limits); returning undefined keeps it.
     * Waterfall: each tap sees the previous one's request; series + stage give a fixed order.
     * A throw aborts the execution with that error.
     */
    beforeExec: new AsyncSeriesWaterfallHook<[ValidatedRequest, ExecContext]>(["request", "context"]),
    /**
     * Runs before a container is taken from the pool. A tap returns a Denial to refuse the
     * execution (quotas, admission); the first Denial stops the chain (bail) and the engine throws
     * AdmissionDeniedError. Returning nothing allows it.
     */
    beforeAcquire: new AsyncSeriesBailHook<[AcquireRequest, ExecContext], Denial | undefined>(["acquire", "context"]),
    /**
     * Shapes the neutral spec of every sandbox the engine creates (seccomp, network, labels,
     * runtime); the driver turns the result into a container or a pod. Waterfall staged by
     * STAGE_SPEC_*: base, security, network, labels.
     */
    sandboxSpec: new AsyncSeriesWaterfallHook<[SandboxSpec, SpecContext]>(["spec", "context"]),
    /**
     * Runs on every stdout/stderr chunk after secret masking and before the output cap: the hot
     * path, so it is synchronous (order kept, no promise per chunk) and the engine skips it
     * entirely when nothing is tapped. Taps return a rewritten chunk or undefined to keep it.
     */
    onOutput: new SyncWaterfallHook<[OutputChunk, ExecContext]>(["chunk", "context"]),
    /**
     * Runs once the result is final and the container released (audit sinks, metrics). Parallel:
     * sinks are independent. The result cannot be changed here, and a failing tap is logged but
     * never fails the user's execution.
     */
    afterExec: new AsyncParallelHook<[ExecutionResult, ExecContext]>(["result", "context"]),
    /** After every plugin's apply(): plugins can see each other's registrations. */
    initialize: new SyncHook<[Kit]>(["kit"]),
    /** During engine.start(), in order: async set-up (pools, proxies, sinks). */
    ready: new AsyncSeriesHook<[Kit]>(["kit"]),
    /** During engine.stop(), in order: drain pools, flush sinks, stop proxies. */
    shutdown: new AsyncSeriesHook<[Kit]>(["kit"]),
    /** Notification that an execution failed inside the engine (not a non-zero exit). */
    failed: new SyncHook<[Error, ExecContext]>(["error", "context"]),
  });
}

/**
 * Every tap registered on these hooks is wrapped (tapable's register interceptor) so a tap that
 * throws an untyped error surfaces as a PluginError naming the tap (by convention the plugin's
 * name) and the hook. An Isol8Error a tap throws on purpose (an admission denial) passes as it is.
 */
function nameFailingTaps<T extends object>(hooks: T): Readonly<T> {
  for (const [hookName, hook] of Object.entries(hooks) as [string, Hook<unknown[], unknown>][]) {
    const named = (tap: string, error: unknown) => (Isol8Error.isInstance(error) ? error : new PluginError(tap, `hook ${hookName}`, error));
    hook.intercept({
      register: (tap) => {
        const fn = tap.fn as (...args: unknown[]) => unknown;
        if (tap.type === "promise") {
          tap.fn = (...args: unknown[]) => {
            try {
              return Promise.resolve(fn(...args)).catch((error: unknown) => Promise.reject(named(tap.name, error)));
            } catch (error) {
              return Promise.reject(named(tap.name, error));
            }
          };
        } else if (tap.type === "async") {
          tap.fn = (...args: unknown[]) => {
            const callback = args.pop() as (error?: unknown, result?: unknown) => void;
            try {
              fn(...args, (error: unknown, result: unknown) => (error ? callback(named(tap.name, error)) : callback(null, result)));
            } catch (error) {
              callback(named(tap.name, error));
            }
          };
        } else {
          tap.fn = (...args: unknown[]) => {
            try {
              return fn(...args);
            } catch (error) {
              throw named(tap.name, error);
            }
          };
        }
        return tap;
      },
    });
  }
  return Object.freeze(hooks);
}

export type Hooks = ReturnType<typeof createHooks>;
