import type { ExecutionRequest } from "@isol8/kit";

/** Code, stdin and files as the wire carries them: text as is, bytes as { base64 }. */
export function wireRequest(request: ExecutionRequest): Record<string, unknown> {
  if (!request || typeof request !== "object") return request as unknown as Record<string, unknown>;
  const wire = (content: unknown) =>
    content instanceof Uint8Array ? { base64: Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString("base64") } : content;
  return {
    ...request,
    ...(request.code !== undefined && { code: wire(request.code) }),
    ...(request.stdin !== undefined && { stdin: wire(request.stdin) }),
    ...(request.files &&
      typeof request.files === "object" && {
        files: Object.fromEntries(Object.entries(request.files).map(([path, content]) => [path, wire(content)])),
      }),
  };
}

/** The body of POST /execute and /execute/stream. */
export function executeBody(request: ExecutionRequest, options: Record<string, unknown>, sessionId: string | undefined): string {
  return JSON.stringify({
    request: wireRequest(request),
    ...(Object.keys(options).length > 0 && { options }),
    ...(sessionId !== undefined && { sessionId }),
  });
}
