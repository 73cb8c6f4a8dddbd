import { randomUUID } from "node:crypto";
import {
  ContextNotFoundError,
  InvalidRequestError,
  MAX_CONTEXTS_PER_SANDBOX,
  NotSupportedError,
  SANDBOX_DIR,
  type ContextInfo,
  type CreateContextOptions,
  type ExecContext,
  type Kit,
  type PooledContainer,
  type ResolvedEngineOptions,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { InterpreterContext } from "./context.js";
import { runCell, type CellDeps } from "./context-cell.js";
import type { PersistentSandbox } from "./persistent.js";
import { resolveWorkdir } from "./program.js";
import { runtimeEnv, type Sandboxes } from "./sandboxes.js";

/** Why the exec path has no contexts. */
const CONTEXTS_NEED_EXECUTOR =
  "interpreter contexts need isol8's in-container executor, and this sandbox starts programs with one docker exec each " +
  '(launcher: "exec", ISOL8_LAUNCHER=exec, or an image without the executor)';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** createContext's options, checked field by field. */
export function checkContextOptions(options: CreateContextOptions): void {
  if (typeof options !== "object" || options === null) throw new InvalidRequestError('createContext: expected options like { runtime: "python" }');
  if (typeof options.runtime !== "string" || !options.runtime)
    throw new InvalidRequestError('createContext: runtime: expected a runtime name such as "python"');
  if (options.cwd !== undefined && typeof options.cwd !== "string")
    throw new InvalidRequestError("createContext: cwd: expected a directory inside /sandbox or /tmp");
  if (options.env !== undefined) {
    if (typeof options.env !== "object" || options.env === null) throw new InvalidRequestError("createContext: env: expected an object of NAME: value strings");
    for (const [name, value] of Object.entries(options.env)) {
      if (!ENV_NAME.test(name)) throw new InvalidRequestError(`createContext: env: ${JSON.stringify(name)} is not a variable name (letters, digits, _)`);
      if (typeof value !== "string" || value.includes("\0")) throw new InvalidRequestError(`createContext: env.${name}: expected a string without NUL bytes`);
    }
  }
}

/**
 * The interpreter contexts of a persistent engine's sandbox, by id: created, listed, restarted
 * and deleted here; a cell runs in one through context-cell.ts. The caller holds the sandbox's
 * lock around each call (one thing at a time in the sandbox).
 */
export class Contexts {
  readonly #contexts = new Map<string, InterpreterContext>();

  constructor(private readonly deps: { readonly options: ResolvedEngineOptions; readonly kit: Kit; readonly sandboxes: Sandboxes }) {}

  /** createContext: in line with executions, in the persistent sandbox (made for this runtime if there is none yet). */
  async createIn(persistent: PersistentSandbox, options: CreateContextOptions, stillCurrent: () => boolean): Promise<ContextInfo> {
    checkContextOptions(options);
    this.deps.kit.runtimes.get(options.runtime); // an unknown runtime is refused before a sandbox is made
    const { container } = await persistent.acquire(options.runtime, new AbortController().signal, stillCurrent);
    try {
      return await this.create(container, options);
    } finally {
      await persistent.release(container, true, false);
    }
  }

  /**
   * A cell (request.context) in the acquired persistent sandbox: runs it in its context and
   * releases the sandbox (no warm start is prepared: a cell ran no program).
   */
  async *cellIn(
    persistent: PersistentSandbox,
    container: PooledContainer,
    deps: CellDeps,
    request: ValidatedRequest,
    ctx: ExecContext,
  ): AsyncGenerator<StreamEvent> {
    let reusable = false;
    try {
      const context = this.get(request.context!, container, request.runtime);
      yield* runCell(deps, context, request, ctx);
      reusable = true;
    } finally {
      await persistent.release(container, reusable, false);
    }
  }

  async create(container: PooledContainer, options: CreateContextOptions): Promise<ContextInfo> {
    checkContextOptions(options);
    const runtime = this.deps.kit.runtimes.get(options.runtime);
    if (!runtime.context) {
      const withContexts = this.deps.kit.runtimes
        .values()
        .filter((r) => r.context)
        .map((r) => r.name);
      throw new NotSupportedError(
        `createContext: runtime "${runtime.name}" has no interpreter contexts (runtimes with contexts: ${withContexts.join(", ") || "none registered"})`,
      );
    }
    if (container.runtime !== runtime.name) {
      throw new InvalidRequestError(
        `createContext: runtime: this persistent sandbox runs "${container.runtime}"; got "${runtime.name}" (a context runs in the sandbox's own runtime image)`,
      );
    }
    const launcher = this.deps.sandboxes.launcherOf(container.id);
    if (!launcher.kernels) throw new NotSupportedError(`createContext: ${CONTEXTS_NEED_EXECUTOR}`);
    const live = this.list(container.id).length;
    if (live >= MAX_CONTEXTS_PER_SANDBOX) {
      throw new InvalidRequestError(`createContext: this sandbox holds ${live} contexts, the most it may (${MAX_CONTEXTS_PER_SANDBOX}): delete one first`);
    }
    const cwd = resolveWorkdir(options.cwd ?? SANDBOX_DIR, "createContext: cwd");
    const env = { ...runtimeEnv(runtime), ...runtime.context.env, ...options.env, ...this.deps.options.secrets };
    // A display's bytes travel as base64 in one message line: the per-output bound, plus room for the JSON.
    const maxMessageBytes = Math.ceil((this.deps.options.maxOutputFileSize * 4) / 3) + 4096;
    const context = new InterpreterContext(
      `ctx_${randomUUID()}`,
      runtime.name,
      container.id,
      cwd,
      runtime.context,
      env,
      launcher.kernels(container.id),
      maxMessageBytes,
    );
    await context.start();
    this.#contexts.set(context.id, context);
    return context.info;
  }

  /** The contexts (of one sandbox, when given), oldest first. */
  list(containerId?: string): ContextInfo[] {
    return [...this.#contexts.values()].filter((c) => containerId === undefined || c.containerId === containerId).map((c) => c.info);
  }

  /**
   * The context `id` for a cell of `runtime` in `container`: unknown ids, contexts of a sandbox
   * that is gone, and another runtime's are refused, naming the id.
   */
  get(id: string, container: PooledContainer | undefined, runtime?: string): InterpreterContext {
    const context = this.#contexts.get(id);
    if (!context) throw new ContextNotFoundError(id);
    if (!container || context.containerId !== container.id) {
      this.#contexts.delete(id);
      throw new ContextNotFoundError(id, "the sandbox it lived in is gone (its container stopped or was removed)");
    }
    if (runtime !== undefined && context.runtime !== runtime) {
      throw new InvalidRequestError(`request.context: context ${JSON.stringify(id)} runs ${context.runtime}, but request.runtime is "${runtime}"`);
    }
    return context;
  }

  /** A fresh kernel under the same id: the context's variables are gone. */
  async restart(id: string, container: PooledContainer | undefined): Promise<ContextInfo> {
    const context = this.get(id, container);
    await context.stop();
    context.restarts++;
    await context.start();
    return context.info;
  }

  async delete(id: string, container: PooledContainer | undefined): Promise<void> {
    const context = this.get(id, container);
    this.#contexts.delete(id);
    await context.stop();
  }

  /** The sandbox is gone or the engine stops: every context with it. */
  clear(): void {
    this.#contexts.clear();
  }
}
