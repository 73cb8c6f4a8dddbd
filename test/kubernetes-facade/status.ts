/** Kubernetes Status objects: the body of every error answer of the API server. */
export interface StatusCause {
  field: string;
  reason: string;
  message: string;
}

export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: { name?: string; kind?: string; causes?: StatusCause[] } = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      details: this.details,
      code: this.code,
    };
  }
}

export const notFound = (name: string) => new StatusError(404, "NotFound", `pods "${name}" not found`, { name, kind: "pods" });
export const alreadyExists = (name: string) => new StatusError(409, "AlreadyExists", `pods "${name}" already exists`, { name, kind: "pods" });
export const invalid = (name: string, causes: StatusCause[]) =>
  new StatusError(422, "Invalid", `Pod "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`, { name, kind: "Pod", causes });
export const forbidden = (verb: string, resource: string, namespace: string, group = "") =>
  new StatusError(
    403,
    "Forbidden",
    `${resource} is forbidden: User "system:serviceaccount:isol8:isol8" cannot ${verb} resource "${resource}" in API group "${group}" in the namespace "${namespace}"`,
    { kind: resource },
  );
export const quotaExceeded = (name: string, limit: number) =>
  new StatusError(403, "Forbidden", `pods "${name}" is forbidden: exceeded quota: sandboxes, requested: pods=1, used: pods=${limit}, limited: pods=${limit}`, {
    name,
    kind: "pods",
  });

/** The final message of an exec (channel 3). */
export function execStatus(exitCode: number): Record<string, unknown> {
  if (exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}
