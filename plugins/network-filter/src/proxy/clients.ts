/**
 * The proxy's clients: who a connection is from, and how many requests each may have open.
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */
import type * as Net from "node:net";

/** The client a connection is from: its peer address (an IPv4-mapped IPv6 address written as IPv4). */
export function clientOf(socket: Net.Socket): string {
  return (socket.remoteAddress ?? "?").replace(/^::ffff:/, "");
}

/** Per client, a count of open requests: `enter` refuses once a client has `max` open. */
export function createClientLimit(max: number): { enter(client: string): boolean; leave(client: string): void } {
  const active = new Map<string, number>();
  return {
    enter: (client) => {
      const count = active.get(client) ?? 0;
      if (count >= max) return false;
      active.set(client, count + 1);
      return true;
    },
    leave: (client) => {
      const count = (active.get(client) ?? 1) - 1;
      if (count <= 0) active.delete(client);
      else active.set(client, count);
    },
  };
}
