// The zod-free entry of the kit: importing the client must not load the schemas (see engine-options.ts).
import { Isol8Error, reviveError, type HttpErrorCode, type Isol8ErrorCode } from "@isol8/kit/errors";
import type { ErrorBody } from "@isol8/kit";

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

/** An error response's body as it arrived: parsed JSON, so any field may be missing. */
export type ReceivedErrorBody = Partial<ErrorBody>;

/**
 * The error a server response stands for: the isol8 error class of its code where one exists
 * (the kit's error table: InvalidRequestError, UnknownRuntimeError, FileOperationError, ...) with
 * the server's message, else a RemoteError; either way with `status`, `requestId` and `field` attached.
 */
export function errorFromResponse(status: number, body: ReceivedErrorBody | undefined, fallback: string, retryAfter?: number): Isol8Error & RemoteErrorInfo {
  const message = body?.error ?? fallback;
  const code = body?.code;
  const error =
    reviveError(code, message, body?.details ?? {}) ??
    new RemoteError(code ?? (status >= 500 ? "ISOL8_ERR_INTERNAL" : "ISOL8_ERR_REMOTE_PROTOCOL"), message, { status });
  const info: Record<string, unknown> = { status };
  if (body?.requestId !== undefined) info.requestId = body.requestId;
  if (body?.field !== undefined) info.field = body.field;
  if (retryAfter !== undefined) info.retryAfter = retryAfter;
  for (const [key, value] of Object.entries(info)) Object.defineProperty(error, key, { value, enumerable: true, configurable: true });
  return error as Isol8Error & RemoteErrorInfo;
}
