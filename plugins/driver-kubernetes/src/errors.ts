import { DockerUnavailableError, ExecutionError, NotSupportedError } from "@isol8/kit";

/** A SandboxSpec field this driver cannot honour on Kubernetes: refused, never ignored. */
export class UnmappableSpecError extends NotSupportedError {
  override name = "UnmappableSpecError";
  constructor(
    /** The spec field, e.g. `network` or `tmpfs["/tmp"].exec`. */
    readonly field: string,
    detail: string,
  ) {
    super(`the Kubernetes driver cannot map SandboxSpec.${field}: ${detail}`);
  }
}

/** One cause of a 422 (Invalid) answer: the field the API server named and why. */
export interface StatusCause {
  readonly field?: string;
  readonly reason?: string;
  readonly message?: string;
}

/** The API server refused a call (RBAC, conflict, validation, quota) or a pod failed: its status reason kept. */
export class KubernetesApiError extends ExecutionError {
  override name = "KubernetesApiError";
  constructor(
    /** HTTP status (403, 409, 422, …); 0 for a pod that failed after it was accepted. */
    readonly status: number,
    /** Kubernetes' reason: Forbidden, AlreadyExists, Invalid, ErrImagePull, Evicted, … */
    readonly reason: string,
    message: string,
    readonly causes: readonly StatusCause[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Error codes of a connection to the API server that broke or was never made. */
const CONNECTION_ERRORS = new Set(["ENOENT", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND"]);

interface ApiExceptionLike {
  code?: number | string;
  body?: unknown;
  message?: string;
  cause?: { code?: string };
}

function parsedBody(body: unknown): Record<string, unknown> | undefined {
  if (typeof body === "object" && body !== null) return body as Record<string, unknown>;
  if (typeof body !== "string") return undefined;
  try {
    const value = JSON.parse(body) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The one place that classifies a failed API call: no answer is the engine's "backend
 * unavailable" error; an answer with a Kubernetes Status becomes a KubernetesApiError naming
 * its reason (and the fields of a 422), whatever call it hit.
 */
export function classifyApiError(error: unknown, what: string): Error {
  if (error instanceof KubernetesApiError || error instanceof UnmappableSpecError) return error;
  const e = error as ApiExceptionLike;
  const connectionCode = typeof e.code === "string" ? e.code : e.cause?.code;
  if (connectionCode && CONNECTION_ERRORS.has(connectionCode)) {
    return new DockerUnavailableError(`the Kubernetes API server did not answer ${what}: ${e.message ?? connectionCode}`, { cause: error });
  }
  if (typeof e.code === "number") {
    const status = parsedBody(e.body);
    const reason = typeof status?.reason === "string" ? status.reason : String(e.code);
    const message = typeof status?.message === "string" ? status.message : (e.message ?? "");
    const details = status?.details as { causes?: StatusCause[] } | undefined;
    const causes = details?.causes ?? [];
    const fields = causes.length ? ` (${causes.map((c) => `${c.field ?? "?"}: ${c.message ?? c.reason ?? ""}`).join("; ")})` : "";
    if (e.code >= 500 && e.code !== 501) {
      return new DockerUnavailableError(`the Kubernetes API server failed ${what}: ${e.code} ${reason}: ${message}`, { cause: error });
    }
    return new KubernetesApiError(e.code, reason, `Kubernetes refused ${what}: ${e.code} ${reason}: ${message}${fields}`, causes, { cause: error });
  }
  if (error instanceof Error) return error;
  return new ExecutionError(`${what}: ${String(error)}`);
}
