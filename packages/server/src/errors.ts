import { httpStatusOf, Isol8Error, type ErrorBody, type HttpErrorCode } from "@isol8/kit";

export type { ErrorBody } from "@isol8/kit";

/**
 * Codes the HTTP layer adds to isol8's own (`Isol8ErrorCode`): every error body carries one, so a
 * client branches on `code`, never on the message.
 */
export type ServerErrorCode = HttpErrorCode;

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

/**
 * HTTP status of an error code: the kit's ERROR_TABLE, which `RemoteIsol8` revives errors from
 * too (500 for a code it does not hold). Kept under this name for @isol8/server's users.
 */
export const statusOfCode: (code: string | undefined) => number = httpStatusOf;

/** Any thrown value as an HttpError: isol8's errors keep their code (and the facts to rebuild them). */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (Isol8Error.isInstance(error)) {
    const details: Record<string, unknown> = {};
    for (const key of ["runtime", "registered", "image", "plugin", "containerId"] as const) {
      const value = (error as unknown as Record<string, unknown>)[key];
      if (value !== undefined) details[key] = value;
    }
    return new HttpError(httpStatusOf(error.code), error.code, error.message, Object.keys(details).length ? { details } : {});
  }
  return new HttpError(500, "ISOL8_ERR_INTERNAL", "Internal server error");
}
