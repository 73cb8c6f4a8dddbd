import {
  AdmissionDeniedError,
  ConfigError,
  DockerUnavailableError,
  EngineStoppedError,
  ExecutionError,
  FileOperationError,
  ImageBuildError,
  ImageMissingError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  NotSupportedError,
  PackageInstallError,
  SandboxGoneError,
  UnknownNameError,
  UnknownRuntimeError,
  type HttpErrorCode,
  type Isol8ErrorCode,
} from "@isol8/kit";

/** Codes of failures that only exist over HTTP (the server's own, and the transport's). */
export type RemoteErrorCode =
  | HttpErrorCode
  /** The server could not be reached, or the connection broke. */
  | "ISOL8_ERR_REMOTE_UNAVAILABLE"
  /** The server answered something that is not the isol8 API. */
  | "ISOL8_ERR_REMOTE_PROTOCOL";

/** What every error from RemoteIsol8 carries besides its message and code. */
export interface RemoteErrorInfo {
  /** The HTTP status, or 0 when no response came. */
  readonly status: number;
  /** The server's request id (X-Request-Id), to find its log line. */
  readonly requestId?: string;
  /** Path of the field the server blamed ("options.memoryLimit"). */
  readonly field?: string;
  /** Seconds the server asked to wait (429, 503). */
  readonly retryAfter?: number;
}

/**
 * A failure with no matching isol8 error class: HTTP-level refusals (401, 403, 404, 413, 429,
 * policy 400s, 503, 504) and transport failures. It is an Isol8Error (`Isol8Error.isInstance`
 * holds); its `code` is one of RemoteErrorCode.
 */
export class RemoteError extends Isol8Error implements RemoteErrorInfo {
  readonly status: number;
  readonly requestId?: string;
  readonly field?: string;
  readonly retryAfter?: number;

  constructor(code: RemoteErrorCode | Isol8ErrorCode | (string & {}), message: string, info: RemoteErrorInfo & { cause?: unknown }) {
    // The core's code union has no HTTP codes (yet): RemoteError widens it.
    super(code as Isol8ErrorCode, message, info.cause === undefined ? {} : { cause: info.cause });
    this.status = info.status;
    if (info.requestId !== undefined) this.requestId = info.requestId;
    if (info.field !== undefined) this.field = info.field;
    if (info.retryAfter !== undefined) this.retryAfter = info.retryAfter;
  }
}

export interface ErrorBody {
  error?: string;
  code?: string;
  field?: string;
  details?: Record<string, unknown>;
  requestId?: string;
}

function withMessage<E extends Error>(error: E, message: string): E {
  if (error.message === message) return error;
  const firstLine = `${error.name}: ${error.message}`;
  Object.defineProperty(error, "message", { value: message, writable: true, configurable: true, enumerable: false });
  if (error.stack?.startsWith(firstLine)) error.stack = `${error.name}: ${message}${error.stack.slice(firstLine.length)}`;
  return error;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []);

/**
 * The error a server response stands for: the isol8 error class of its code where one exists
 * (InvalidRequestError, UnknownRuntimeError, FileOperationError, ...) with the server's message,
 * else a RemoteError; either way with `status`, `requestId` and `field` attached.
 */
export function errorFromResponse(status: number, body: ErrorBody | undefined, fallback: string, retryAfter?: number): Isol8Error & RemoteErrorInfo {
  const message = body?.error ?? fallback;
  const code = body?.code;
  const details = body?.details ?? {};
  let error: Isol8Error;
  switch (code) {
    case "ISOL8_ERR_INVALID_REQUEST":
      error = new InvalidRequestError(message);
      break;
    case "ISOL8_ERR_INVALID_OPTIONS":
      error = new InvalidOptionsError(message);
      break;
    case "ISOL8_ERR_CONFIG_INVALID":
      error = new ConfigError(message);
      break;
    case "ISOL8_ERR_UNKNOWN_RUNTIME":
      error = withMessage(new UnknownRuntimeError(text(details.runtime), strings(details.registered)), message);
      break;
    case "ISOL8_ERR_UNKNOWN_NAME":
      error = withMessage(new UnknownNameError("name", "", []), message);
      break;
    case "ISOL8_ERR_DOCKER_UNAVAILABLE":
      error = withMessage(new DockerUnavailableError(message), message);
      break;
    case "ISOL8_ERR_IMAGE_MISSING":
      error = withMessage(new ImageMissingError(text(details.runtime), text(details.image)), message);
      break;
    case "ISOL8_ERR_IMAGE_BUILD":
      error = new ImageBuildError(message);
      break;
    case "ISOL8_ERR_NOT_SUPPORTED":
      error = new NotSupportedError(message);
      break;
    case "ISOL8_ERR_ADMISSION_DENIED":
      error = withMessage(new AdmissionDeniedError(message), message);
      break;
    case "ISOL8_ERR_EXECUTION":
      error = new ExecutionError(message);
      break;
    case "ISOL8_ERR_PACKAGE_INSTALL":
      error = new PackageInstallError(message);
      break;
    case "ISOL8_ERR_FILE":
      error = new FileOperationError(message);
      break;
    case "ISOL8_ERR_ENGINE_STOPPED":
      error = withMessage(new EngineStoppedError(), message);
      break;
    case "ISOL8_ERR_SANDBOX_GONE":
      error = withMessage(new SandboxGoneError(text(details.containerId), "reported by the server"), message);
      break;
    default:
      error = new RemoteError(code ?? (status >= 500 ? "ISOL8_ERR_INTERNAL" : "ISOL8_ERR_REMOTE_PROTOCOL"), message, { status });
  }
  const info: Record<string, unknown> = { status };
  const requestId = body?.requestId;
  if (requestId !== undefined) info.requestId = requestId;
  if (body?.field !== undefined) info.field = body.field;
  if (retryAfter !== undefined) info.retryAfter = retryAfter;
  for (const [key, value] of Object.entries(info)) Object.defineProperty(error, key, { value, enumerable: true, configurable: true });
  return error as Isol8Error & RemoteErrorInfo;
}
