/**
 * How the proxy words a refusal, the same way on every path (plain HTTP, CONNECT, upgrades,
 * malformed requests).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */

/** The body of a refusal: what was refused, and why. */
export function refusalText(what: string, reason: string): string {
  return `isol8 network filter: ${what} refused: ${reason}\n`;
}

/** A whole HTTP/1.1 response for a raw socket (no server response object there), marked as the filter's and closing the connection. */
export function rawReply(status: number, text: string, body: string): string {
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Isol8-Blocked: 1\r\nConnection: close\r\n\r\n${body}`;
}
