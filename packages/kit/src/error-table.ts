import {
  AdmissionDeniedError,
  ConfigError,
  ContextNotFoundError,
  DockerUnavailableError,
  EngineStoppedError,
  ExecutionError,
  FileOperationError,
  ImageBuildError,
  ImageMissingError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  NotStartedError,
  NotSupportedError,
  PackageInstallError,
  SandboxGoneError,
  SessionNotFoundError,
  UnknownNameError,
  UnknownRuntimeError,
  type HttpErrorCode,
  type Isol8ErrorCode,
} from "./errors.js";

/** Replaces a rebuilt error's message with the one the server sent (constructors compose their own). */
function withMessage<E extends Error>(error: E, message: string): E {
  if (error.message === message) return error;
  const firstLine = `${error.name}: ${error.message}`;
  Object.defineProperty(error, "message", { value: message, writable: true, configurable: true, enumerable: false });
  if (error.stack?.startsWith(firstLine)) error.stack = `${error.name}: ${message}${error.stack.slice(firstLine.length)}`;
  return error;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []);

/** The facts of an error a client needs to rebuild it (an error body's `details`). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

interface ErrorTableEntry {
  /** The HTTP status `isol8 serve` answers with. */
  readonly status: number;
  /** The error class a client rebuilds from a response with this code; HTTP-only codes have none. */
  readonly revive?: (message: string, details: ErrorDetails) => Isol8Error;
}

/**
 * The one table of isol8's error codes: the server's HTTP status for each, and how a client
 * rebuilds the typed error from a response. Add a code here and both sides follow.
 */
export const ERROR_TABLE: Readonly<Record<Isol8ErrorCode | HttpErrorCode, ErrorTableEntry>> = Object.freeze({
  ISOL8_ERR_INVALID_REQUEST: { status: 400, revive: (message) => new InvalidRequestError(message) },
  ISOL8_ERR_INVALID_OPTIONS: { status: 400, revive: (message) => new InvalidOptionsError(message) },
  ISOL8_ERR_CONFIG_INVALID: { status: 500, revive: (message) => new ConfigError(message) },
  ISOL8_ERR_CONFIG_NOT_FOUND: { status: 500, revive: (message) => new ConfigError(message, { code: "ISOL8_ERR_CONFIG_NOT_FOUND" }) },
  ISOL8_ERR_UNKNOWN_RUNTIME: {
    status: 400,
    revive: (message, details) => withMessage(new UnknownRuntimeError(text(details.runtime), strings(details.registered)), message),
  },
  ISOL8_ERR_UNKNOWN_NAME: { status: 400, revive: (message) => withMessage(new UnknownNameError("name", "", []), message) },
  ISOL8_ERR_DUPLICATE_NAME: { status: 500, revive: (message) => new Isol8Error("ISOL8_ERR_DUPLICATE_NAME", message) },
  ISOL8_ERR_PLUGIN: { status: 500, revive: (message, details) => new Isol8Error("ISOL8_ERR_PLUGIN", message, { plugin: text(details.plugin) || undefined }) },
  ISOL8_ERR_DOCKER_UNAVAILABLE: { status: 503, revive: (message) => withMessage(new DockerUnavailableError(message), message) },
  ISOL8_ERR_IMAGE_MISSING: {
    status: 503,
    revive: (message, details) => withMessage(new ImageMissingError(text(details.runtime), text(details.image)), message),
  },
  ISOL8_ERR_IMAGE_BUILD: { status: 500, revive: (message) => new ImageBuildError(message) },
  ISOL8_ERR_NOT_SUPPORTED: { status: 400, revive: (message) => new NotSupportedError(message) },
  ISOL8_ERR_NOT_STARTED: { status: 500, revive: (message) => withMessage(new NotStartedError("start"), message) },
  ISOL8_ERR_ENGINE_STOPPED: { status: 503, revive: (message) => withMessage(new EngineStoppedError(), message) },
  // The session's container died: its files are gone; the next request starts a fresh one.
  ISOL8_ERR_SANDBOX_GONE: {
    status: 410,
    revive: (message, details) => withMessage(new SandboxGoneError(text(details.containerId), "reported by the server"), message),
  },
  ISOL8_ERR_CONTEXT_NOT_FOUND: {
    status: 404,
    revive: (message, details) => withMessage(new ContextNotFoundError(text(details.contextId)), message),
  },
  // A session this node does not hold (404, not 410: a node cannot tell a session that died with
  // another node from one never made); never answered by silently making an empty session.
  ISOL8_ERR_SESSION_NOT_FOUND: {
    status: 404,
    revive: (message, details) => withMessage(new SessionNotFoundError(text(details.sessionId), text(details.node)), message),
  },
  ISOL8_ERR_ADMISSION_DENIED: { status: 403, revive: (message) => withMessage(new AdmissionDeniedError(message), message) },
  ISOL8_ERR_EXECUTION: { status: 500, revive: (message) => new ExecutionError(message) },
  ISOL8_ERR_PACKAGE_INSTALL: { status: 422, revive: (message) => new PackageInstallError(message) },
  ISOL8_ERR_FILE: { status: 422, revive: (message) => new FileOperationError(message) },
  ISOL8_ERR_UNAUTHORIZED: { status: 401 },
  ISOL8_ERR_FORBIDDEN: { status: 403 },
  ISOL8_ERR_NOT_FOUND: { status: 404 },
  ISOL8_ERR_POLICY: { status: 400 },
  ISOL8_ERR_BODY_TOO_LARGE: { status: 413 },
  ISOL8_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  ISOL8_ERR_OVERLOADED: { status: 429 },
  ISOL8_ERR_SESSION_LIMIT: { status: 429 },
  ISOL8_ERR_TIMEOUT: { status: 504 },
  ISOL8_ERR_SHUTTING_DOWN: { status: 503 },
  ISOL8_ERR_INTERNAL: { status: 500 },
});

/** The HTTP status of an error code (500 for a code the table does not hold). */
export function httpStatusOf(code: string | undefined): number {
  return (code !== undefined && Object.hasOwn(ERROR_TABLE, code) ? ERROR_TABLE[code as keyof typeof ERROR_TABLE].status : undefined) ?? 500;
}

/** The typed error a response with this code stands for; undefined for HTTP-only or unknown codes. */
export function reviveError(code: string | undefined, message: string, details: ErrorDetails = {}): Isol8Error | undefined {
  if (code === undefined || !Object.hasOwn(ERROR_TABLE, code)) return undefined;
  return ERROR_TABLE[code as keyof typeof ERROR_TABLE].revive?.(message, details);
}
