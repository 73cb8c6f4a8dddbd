import type { StreamEvent } from "./schemas.js";

/**
 * The interactive endpoint of `isol8 serve` (`GET /execute/ws`, a WebSocket): both ends' shapes.
 *
 * - Auth: `Authorization: Bearer <key>` on the upgrade request, or (browsers cannot set headers)
 *   the subprotocols `["isol8", "isol8.key." + base64url(key)]`. The server answers with the
 *   subprotocol "isol8" (never echoing the key); a refused upgrade gets its HTTP error (401/403,
 *   429, 503) as JSON and the connection is closed.
 * - The client's first message is the JSON body POST /execute/stream takes (`{ request, options?,
 *   sessionId? }`); then any number of `stdin` messages, one `stdin-end`, and `kill` at any time.
 * - The server sends each StreamEvent as JSON text, as the SSE stream's `data:` has it (the last
 *   is `exit` or `error`), plus `warning` events that end nothing (stdin after the program ended,
 *   a message it could not read). After the last event it waits a few seconds for the client to
 *   close, answering late messages with a warning, then closes (1000).
 */
export const EXECUTE_WS_PATH = "/execute/ws";
/** The subprotocol the server selects. */
export const EXECUTE_WS_PROTOCOL = "isol8";
/** A subprotocol carrying the API key (base64url, no padding), for clients that cannot set headers. */
export const EXECUTE_WS_KEY_PREFIX = "isol8.key.";

/** The subprotocol that carries `key`. */
export function keySubprotocol(key: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(key)) binary += String.fromCharCode(byte);
  return EXECUTE_WS_KEY_PREFIX + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The API key in a `Sec-WebSocket-Protocol` header, if one of its subprotocols carries one. */
export function keyFromSubprotocols(header: string | undefined): string | undefined {
  for (const part of (header ?? "").split(",")) {
    const token = part.trim();
    if (token.startsWith(EXECUTE_WS_KEY_PREFIX) && token.length > EXECUTE_WS_KEY_PREFIX.length) {
      try {
        const binary = atob(token.slice(EXECUTE_WS_KEY_PREFIX.length).replace(/-/g, "+").replace(/_/g, "/"));
        return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
      } catch {
        return undefined; // not base64url text: no key (the upgrade is then refused as unauthenticated)
      }
    }
  }
  return undefined;
}

/** What the client sends after the first message (the server checks each with its schema). */
export type WsClientMessage = { type: "stdin"; data: string; encoding?: "utf8" | "base64" } | { type: "stdin-end" } | { type: "kill" };

/** A note from the server that ends nothing. */
export interface WsWarning {
  type: "warning";
  /** stdin-closed: the chunk did not reach the program (it ended, or stdin was ended). bad-message: the message was not understood. */
  reason: "stdin-closed" | "bad-message";
  data: string;
}

/** What the server sends: the stream's events, and warnings. */
export type WsServerMessage = StreamEvent | WsWarning;
