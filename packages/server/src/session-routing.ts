import type { Context } from "hono";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import { SESSION_ID_PATTERN } from "./schemas.js";

/**
 * The routing keys of session-scoped requests behind a load balancer. `X-Isol8-Session` carries
 * the session id where a balancer can hash on it without reading the body (RemoteIsol8 always
 * sends it); `X-Isol8-Session-Create: 1` marks the request that may make the session.
 */
export const SESSION_HEADER = "X-Isol8-Session";
export const SESSION_CREATE_HEADER = "X-Isol8-Session-Create";
/** The node that answered, on every response. */
export const NODE_HEADER = "X-Isol8-Node";

export interface SessionRoute {
  /** The session the request names (header, body, query or path), if any. */
  id: string | undefined;
  /**
   * The request carries X-Isol8-Session: a client that knows about nodes. An id this node does not
   * hold then answers ISOL8_ERR_SESSION_NOT_FOUND, and only a request that says so creates one.
   * Without the header a session is made by the first execution that names it (one node).
   */
  strict: boolean;
  /** The request may create the session when this node does not hold it. */
  mayCreate: boolean;
}

const CREATE_VALUES = new Set(["1", "true"]);

/** The session a request names; 400 when the header is not a session id or disagrees with the id in the body, query or path. */
export function sessionRoute(c: Context<ServerEnv>, named: string | undefined): SessionRoute {
  const header = c.req.header(SESSION_HEADER);
  const createHeader = c.req.header(SESSION_CREATE_HEADER);
  if (createHeader !== undefined && !CREATE_VALUES.has(createHeader.trim().toLowerCase())) {
    throw new HttpError(
      400,
      "ISOL8_ERR_INVALID_REQUEST",
      `${SESSION_CREATE_HEADER}: expected "1" or "true", got ${JSON.stringify(createHeader.slice(0, 40))}`,
      {
        field: `headers.${SESSION_CREATE_HEADER.toLowerCase()}`,
      },
    );
  }
  const create = createHeader !== undefined;
  if (header === undefined) return { id: named, strict: false, mayCreate: true };
  const field = `headers.${SESSION_HEADER.toLowerCase()}`;
  if (!SESSION_ID_PATTERN.test(header)) {
    throw new HttpError(
      400,
      "ISOL8_ERR_INVALID_REQUEST",
      `${SESSION_HEADER}: expected a session id: letters, digits, '_', '.', ':', '-' (at most 128, starting with a letter or digit)`,
      { field },
    );
  }
  if (named !== undefined && named !== header) {
    throw new HttpError(
      400,
      "ISOL8_ERR_INVALID_REQUEST",
      `${SESSION_HEADER}: names session ${JSON.stringify(header)} but the request names ${JSON.stringify(named)}`,
      {
        field,
      },
    );
  }
  return { id: header, strict: true, mayCreate: create };
}
