import type { DockerIsol8 } from "@isol8/core";
import { CONTAINER_LABELS, httpStatusOf, type ExecutionRequest, type ResolvedEngineOptions, type StreamEvent } from "@isol8/kit";
import type { Context } from "hono";
import { SERVER_LABELS, type EngineFactory, type EphemeralEngines } from "./engines.js";
import { contextNotFound } from "./contexts.js";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import type { Terminal } from "./execution.js";
import { applyPolicy, type Policy } from "./policy.js";
import type { RequestScope } from "./request-scope.js";
import type { ExecuteBody } from "./schemas.js";
import { sessionRoute } from "./session-routing.js";
import type { Session, Sessions } from "./sessions.js";
import type { Slots } from "./slots.js";

/** Request metadata the server sets on every execution (overriding a client's). */
export const METADATA_TENANT = "isol8.tenant";
export const METADATA_REQUEST_ID = "isol8.request-id";

/** Where one execution runs, and how to give back what it holds (its slot, its engine, its session). */
export interface Target {
  engine: DockerIsol8;
  session?: Session;
  request: ExecutionRequest;
  release: () => void;
}

export interface TargetsOptions {
  engines: EphemeralEngines;
  factory: EngineFactory;
  sessions: Sessions;
  slots: Slots;
  policy: Policy;
  defaults: ResolvedEngineOptions;
  defaultSeccomp: string | undefined;
}

/**
 * Picks where an execution runs: the tenant's session (made on first use, with its own persistent
 * engine) or an ephemeral engine for the client's options (the main one for the defaults). The
 * REST routes and /mcp both come through here, so both get the same ceilings, queue and sessions.
 */
export class Targets {
  readonly #options: TargetsOptions;

  constructor(options: TargetsOptions) {
    this.#options = options;
  }

  /** Applies the policy, holds a slot and picks the engine; everything refusable is refused before any output. */
  async prepare(c: Context<ServerEnv>, body: ExecuteBody, scope: RequestScope): Promise<Target> {
    const { engines, factory, sessions, slots, policy, defaults, defaultSeccomp } = this.#options;
    const tenant = c.get("tenant")!;
    const engine = engines.main;
    const outcome = applyPolicy(body, policy, defaults, {
      defaultSeccomp,
      isRegisteredRuntime: (name) => engine.kit.runtimes.has(name),
    });
    // The session named (body or X-Isol8-Session); one this node does not hold is refused before queueing.
    const route = sessionRoute(c, body.sessionId);
    if (route.id !== undefined && !route.mayCreate && !sessions.get(tenant, route.id)) throw sessions.notFound(route.id);
    const releaseSlot = await slots.take(scope);
    // Who asked, for admission plugins (beforeAcquire sees metadata) and audit records; a client cannot set these keys.
    outcome.request.metadata = { ...outcome.request.metadata, [METADATA_TENANT]: tenant, [METADATA_REQUEST_ID]: c.get("requestId") };
    try {
      if (route.id) {
        const sessionId = route.id;
        // A cell runs in a context its session already holds: never make a session for one.
        if (body.request.context !== undefined && !sessions.get(tenant, sessionId)) throw contextNotFound(body.request.context, sessionId);
        const session = sessions.getOrCreate(
          tenant,
          sessionId,
          outcome.profile,
          outcome.overrides,
          (overrides) => factory.create(overrides, { [SERVER_LABELS.tenant]: tenant, [CONTAINER_LABELS.session]: sessionId }),
          route.mayCreate,
        );
        const releaseSession = sessions.hold(session);
        const release = () => {
          releaseSession();
          releaseSlot();
        };
        return { engine: session.engine, session, request: outcome.request, release };
      }
      const held = await engines.acquire(outcome.profile, outcome.overrides);
      return {
        engine: held.engine,
        request: outcome.request,
        release: () => {
          held.release();
          releaseSlot();
        },
      };
    } catch (error) {
      releaseSlot();
      throw error;
    }
  }
}

/** The outcome label of isol8_executions_total for how a run ended. */
export function outcomeOf(event: Terminal | undefined, ended: string): string {
  if (ended === "aborted") return "cancelled";
  if (!event || event.type === "error") return "error";
  const r = event.result;
  return r.timedOut ? "timeout" : r.oomKilled ? "oom" : r.exitCode === 0 ? "ok" : "nonzero";
}

/** An engine's error event as the HTTP error it answers with (the status from the kit's error table). */
export function errorOfEvent(event: Extract<StreamEvent, { type: "error" }>, request: ExecutionRequest, engine: DockerIsol8): HttpError {
  const details =
    event.code === "ISOL8_ERR_UNKNOWN_RUNTIME"
      ? { runtime: request.runtime, registered: engine.kit.runtimes.names() }
      : event.code === "ISOL8_ERR_CONTEXT_NOT_FOUND"
        ? { contextId: request.context }
        : undefined;
  return new HttpError(httpStatusOf(event.code), event.code ?? "ISOL8_ERR_EXECUTION", event.data, details ? { details } : {});
}

/** Counts a completed execution in its session, if it ran in one (GET /sessions shows the count and the last runtime). */
export function recordRun(target: Target): void {
  if (!target.session) return;
  target.session.executions++;
  target.session.runtime = target.request.runtime;
}
