import type { Context } from "hono";
import type * as z from "zod";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import { formatIssues, zodIssues } from "./validation.js";

/** A request body as JSON: 400 naming the position of malformed JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new HttpError(400, "ISOL8_ERR_INVALID_REQUEST", `Malformed JSON in the request body${position ? ` (at position ${position})` : ""}`, {
      field: "(body)",
    });
  }
}

/**
 * A body or query checked against its schema: 400 naming the first bad field and listing every
 * issue. A bad `options` key is ISOL8_ERR_INVALID_OPTIONS (a client may set only some engine
 * options), anything else ISOL8_ERR_INVALID_REQUEST.
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: "body" | "query"): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error, undefined, (path) =>
    path.length === 1 && path[0] === "options"
      ? "not an option a client may set"
      : path.length === 0 && where === "body"
        ? "expected request, options, sessionId"
        : undefined,
  );
  const first = issues[0]!.path;
  const top = first.split(/[.[]/)[0];
  const [code, prefix] =
    top === "options"
      ? (["ISOL8_ERR_INVALID_OPTIONS", "Invalid options"] as const)
      : (["ISOL8_ERR_INVALID_REQUEST", top === "request" ? "Invalid execution request" : `Invalid ${where}`] as const);
  throw new HttpError(400, code, `${prefix}: ${formatIssues(issues)}`, { field: first, issues });
}

/** The request's JSON body, checked (415 for another media type); its runtime and session go on the context for the log line. */
export async function readBody<S extends z.ZodType>(c: Context<ServerEnv>, schema: S): Promise<z.output<S>> {
  const type = c.req.header("content-type");
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new HttpError(415, "ISOL8_ERR_UNSUPPORTED_MEDIA_TYPE", `Expected Content-Type: application/json, got ${type.slice(0, 100)}`);
  }
  const body = validate(schema, parseJson(await c.req.text()), "body");
  const request = (body as { request?: { runtime?: string } }).request;
  if (request?.runtime) c.set("runtime", request.runtime);
  const sessionId = (body as { sessionId?: string }).sessionId;
  if (sessionId) c.set("sessionId", sessionId);
  return body;
}
