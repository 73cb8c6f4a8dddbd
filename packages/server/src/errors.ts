import { Isol8Error, type HttpErrorCode } from "@isol8/core";

/**
 * Codes the HTTP layer adds to isol8's own (`Isol8ErrorCode`): every error body carries one, so a
 * client branches on `code`, never on the message.
 */
export type ServerErrorCode = HttpErrorCode;

/** The JSON body of every error response. */
export interface ErrorBody {
  error: string;
  code: string;
  /** Path of the offending field ("options.memoryLimit", "request.code") when one is to blame. */
  field?: string;
  /** Each validation problem, when the body did not validate. */
  issues?: { path: string; message: string }[];
  /** Extra facts a client needs to rebuild the error (e.g. the runtime and the registered ones). */
  details?: Record<string, unknown>;
  requestId?: string;
}

/** An error with the HTTP status and body it becomes. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  readonly issues?: { path: string; message: string }[];
  readonly details?: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: ServerErrorCode | Isol8Error["code"] | (string & {}),
    message: string,
    extra: { field?: string; issues?: { path: string; message: string }[]; details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.field = extra.field;
    this.issues = extra.issues;
    this.details = extra.details;
    this.headers = extra.headers ?? {};
  }

  body(requestId?: string): ErrorBody {
    return {
      error: this.message,
      code: this.code,
      ...(this.field !== undefined && { field: this.field }),
      ...(this.issues && { issues: this.issues }),
      ...(this.details && { details: this.details }),
      ...(requestId && { requestId }),
    };
  }
}

/** A request over one of the server's ceilings: 400, naming the field. */
export class PolicyError extends HttpError {
  constructor(field: string, message: string) {
    super(400, "ISOL8_ERR_POLICY", `${field}: ${message}`, { field });
  }
}

/** HTTP status of an error the engine raised, by its stable code. */
export function statusOfCode(code: string | undefined): number {
  switch (code) {
    case "ISOL8_ERR_INVALID_REQUEST":
    case "ISOL8_ERR_INVALID_OPTIONS":
    case "ISOL8_ERR_UNKNOWN_RUNTIME":
    case "ISOL8_ERR_UNKNOWN_NAME":
    case "ISOL8_ERR_NOT_SUPPORTED":
      return 400;
    case "ISOL8_ERR_ADMISSION_DENIED":
      return 403;
    case "ISOL8_ERR_FILE":
    case "ISOL8_ERR_PACKAGE_INSTALL":
      return 422;
    case "ISOL8_ERR_SANDBOX_GONE":
      return 410; // the session's container died: its files are gone; the next request starts a fresh one
    case "ISOL8_ERR_DOCKER_UNAVAILABLE":
    case "ISOL8_ERR_IMAGE_MISSING":
    case "ISOL8_ERR_ENGINE_STOPPED":
      return 503;
    default:
      return 500;
  }
}

/** Any thrown value as an HttpError: isol8's errors keep their code (and the facts to rebuild them). */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (Isol8Error.isInstance(error)) {
    const details: Record<string, unknown> = {};
    for (const key of ["runtime", "registered", "image", "plugin", "containerId"] as const) {
      const value = (error as unknown as Record<string, unknown>)[key];
      if (value !== undefined) details[key] = value;
    }
    return new HttpError(statusOfCode(error.code), error.code, error.message, Object.keys(details).length ? { details } : {});
  }
  return new HttpError(500, "ISOL8_ERR_INTERNAL", "Internal server error");
}
