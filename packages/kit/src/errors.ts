/**
 * Every error isol8 throws on purpose is an Isol8Error with a stable `code`, so callers can
 * branch on the code instead of parsing messages. `isInstance` uses a global symbol brand so
 * the check survives two copies of @isol8/core in one process (where `instanceof` fails).
 */
const BRAND = Symbol.for("isol8.error");

export type Isol8ErrorCode =
  | "ISOL8_ERR_INVALID_REQUEST"
  | "ISOL8_ERR_INVALID_OPTIONS"
  | "ISOL8_ERR_CONFIG_INVALID"
  | "ISOL8_ERR_CONFIG_NOT_FOUND"
  | "ISOL8_ERR_UNKNOWN_RUNTIME"
  | "ISOL8_ERR_UNKNOWN_NAME"
  | "ISOL8_ERR_DUPLICATE_NAME"
  | "ISOL8_ERR_PLUGIN"
  | "ISOL8_ERR_DOCKER_UNAVAILABLE"
  | "ISOL8_ERR_IMAGE_MISSING"
  | "ISOL8_ERR_IMAGE_BUILD"
  | "ISOL8_ERR_NOT_SUPPORTED"
  | "ISOL8_ERR_NOT_STARTED"
  | "ISOL8_ERR_ENGINE_STOPPED"
  | "ISOL8_ERR_SANDBOX_GONE"
  | "ISOL8_ERR_CONTEXT_NOT_FOUND"
  | "ISOL8_ERR_SESSION_NOT_FOUND"
  | "ISOL8_ERR_ADMISSION_DENIED"
  | "ISOL8_ERR_EXECUTION"
  | "ISOL8_ERR_PACKAGE_INSTALL"
  | "ISOL8_ERR_FILE";

/**
 * Codes the HTTP API adds (`isol8 serve` answers with them; `RemoteIsol8` reports them): one list
 * for the server and the client.
 */
export type HttpErrorCode =
  | "ISOL8_ERR_UNAUTHORIZED"
  | "ISOL8_ERR_FORBIDDEN"
  | "ISOL8_ERR_NOT_FOUND"
  | "ISOL8_ERR_POLICY"
  | "ISOL8_ERR_BODY_TOO_LARGE"
  | "ISOL8_ERR_UNSUPPORTED_MEDIA_TYPE"
  | "ISOL8_ERR_OVERLOADED"
  | "ISOL8_ERR_SESSION_LIMIT"
  | "ISOL8_ERR_TIMEOUT"
  | "ISOL8_ERR_SHUTTING_DOWN"
  | "ISOL8_ERR_INTERNAL";

export class Isol8Error extends Error {
  readonly [BRAND] = true;
  readonly code: Isol8ErrorCode;
  /** Name of the plugin the error comes from, when one does. */
  readonly plugin?: string;

  constructor(code: Isol8ErrorCode, message: string, options: { cause?: unknown; plugin?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.plugin) this.plugin = options.plugin;
  }

  static isInstance(value: unknown): value is Isol8Error {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** An ExecutionRequest that does not validate (names the field and what was expected). */
export class InvalidRequestError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISOL8_ERR_INVALID_REQUEST", message, options);
  }
}

/** Engine options that do not validate. */
export class InvalidOptionsError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown; plugin?: string }) {
    super("ISOL8_ERR_INVALID_OPTIONS", message, options);
  }
}

/** A config file that cannot be loaded or does not validate. */
export class ConfigError extends Isol8Error {
  readonly filepath?: string;
  constructor(message: string, options: { cause?: unknown; filepath?: string; code?: "ISOL8_ERR_CONFIG_INVALID" | "ISOL8_ERR_CONFIG_NOT_FOUND" } = {}) {
    super(options.code ?? "ISOL8_ERR_CONFIG_INVALID", message, options);
    if (options.filepath) this.filepath = options.filepath;
  }
}

/** A runtime name no plugin registered. */
export class UnknownRuntimeError extends Isol8Error {
  readonly runtime: string;
  readonly registered: readonly string[];
  constructor(runtime: string, registered: readonly string[]) {
    super(
      "ISOL8_ERR_UNKNOWN_RUNTIME",
      `Unknown runtime "${runtime}". Registered runtimes: ${registered.length ? registered.join(", ") : "(none)"}. ` +
        `To add it, register a runtime plugin (e.g. @isol8/plugin-runtime-${runtime}) in isol8.config.ts.`,
    );
    this.runtime = runtime;
    this.registered = registered;
  }
}

/** A name (pool strategy, network mode, seccomp mode, audit sink) no plugin registered. */
export class UnknownNameError extends Isol8Error {
  constructor(kind: string, name: string, registered: readonly string[], hint?: string) {
    super(
      "ISOL8_ERR_UNKNOWN_NAME",
      `Unknown ${kind} "${name}". Registered: ${registered.length ? registered.join(", ") : "(none)"}.` + (hint ? ` ${hint}` : ""),
    );
  }
}

/** No Docker engine answers. */
export class DockerUnavailableError extends Isol8Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      "ISOL8_ERR_DOCKER_UNAVAILABLE",
      `Docker engine is not reachable (${detail}). Start one: 'sudo systemctl start docker', or run 'bash scripts/ensure-docker.sh' ` +
        `from the isol8 repository, which installs and starts Debian's engine when none answers.`,
      options,
    );
  }
}

/** The image of a runtime has not been built. */
export class ImageMissingError extends Isol8Error {
  readonly image: string;
  constructor(runtime: string, image: string) {
    super(
      "ISOL8_ERR_IMAGE_MISSING",
      `Image ${image} for runtime "${runtime}" is missing. Run 'isol8 setup' (or 'isol8 setup --runtime ${runtime}') to build it.`,
    );
    this.image = image;
  }
}

/** An image build failed. */
export class ImageBuildError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISOL8_ERR_IMAGE_BUILD", message, options);
  }
}

/** A feature this engine does not provide (yet, or in this mode). */
export class NotSupportedError extends Isol8Error {
  constructor(message: string) {
    super("ISOL8_ERR_NOT_SUPPORTED", message);
  }
}

/** A method that needs start() was called before it. */
export class NotStartedError extends Isol8Error {
  constructor(method: string) {
    super("ISOL8_ERR_NOT_STARTED", `${method}() was called before start(). Call 'await engine.start()' first.`);
  }
}

/** The engine was stopped: executions queued or started after stop() fail with this; start() again to use it. */
export class EngineStoppedError extends Isol8Error {
  /** `detail` says what stop() interrupted and whether anything ran. */
  constructor(detail = "execute() was called after stop(); nothing was run", options?: { cause?: unknown }) {
    super("ISOL8_ERR_ENGINE_STOPPED", `The engine was stopped (${detail}). Call 'await engine.start()' to use it again.`, options);
  }
}

/** The persistent session's container died (killed or removed from outside): its files are lost. */
export class SandboxGoneError extends Isol8Error {
  readonly containerId: string;
  constructor(containerId: string, detail: string, options?: { cause?: unknown }) {
    super(
      "ISOL8_ERR_SANDBOX_GONE",
      `The session's container ${containerId.slice(0, 12)} is gone (${detail}): the files it held are lost. The next execution starts a fresh container.`,
      options,
    );
    this.containerId = containerId;
  }
}

/** An interpreter context id this engine (or session) does not hold. */
export class ContextNotFoundError extends Isol8Error {
  readonly contextId: string;
  constructor(contextId: string, detail = "") {
    super(
      "ISOL8_ERR_CONTEXT_NOT_FOUND",
      `No interpreter context ${JSON.stringify(contextId)} here${detail ? `: ${detail}` : ""} (createContext makes one; listContexts lists them)`,
    );
    this.contextId = contextId;
  }
}

/**
 * A request named a session this server node does not hold (behind a load balancer: the session
 * lived on a node that stopped or died, expired, or was never created). Nothing was run and no
 * session was made: create it again (RemoteIsol8: a new instance) to start an empty one.
 */
export class SessionNotFoundError extends Isol8Error {
  readonly sessionId: string;
  /** The node that answered (its `nodeId`, the X-Isol8-Node header). */
  readonly node: string;
  constructor(sessionId: string, node: string) {
    super(
      "ISOL8_ERR_SESSION_NOT_FOUND",
      `Session ${JSON.stringify(sessionId)} is not on node ${JSON.stringify(node)}: it was never created there, expired, or lived on a node that stopped; nothing was run (create the session again to start an empty one)`,
    );
    this.sessionId = sessionId;
    this.node = node;
  }
}

/** A plugin's beforeAcquire tap refused the execution. */
export class AdmissionDeniedError extends Isol8Error {
  constructor(reason: string, plugin?: string) {
    super("ISOL8_ERR_ADMISSION_DENIED", `Execution denied${plugin ? ` by ${plugin}` : ""}: ${reason}`, { plugin });
  }
}

/** A plugin failed while being applied or in one of its hooks. */
export class PluginError extends Isol8Error {
  constructor(plugin: string, phase: string, cause: unknown) {
    super("ISOL8_ERR_PLUGIN", `Plugin ${plugin} failed in ${phase}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, plugin });
  }
}

/** The engine failed to run an execution (not the program failing: that is a non-zero exit code). */
export class ExecutionError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISOL8_ERR_EXECUTION", message, options);
  }
}

/** installPackages failed or timed out; the message carries the end of the package manager's output. */
export class PackageInstallError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISOL8_ERR_PACKAGE_INSTALL", message, options);
  }
}

/** putFile/getFile could not do what was asked (missing file, path outside the sandbox, no container). */
export class FileOperationError extends Isol8Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISOL8_ERR_FILE", message, options);
  }
}
