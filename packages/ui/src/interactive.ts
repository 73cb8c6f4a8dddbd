import type { StreamEvent } from "@isol8/kit/results";
import type { ExecuteBody } from "./api.js";

/** What the page can do with a running interactive program. */
export interface InteractiveRun {
  /** Sends text to the program's stdin. */
  send(text: string): void;
  /** Ends the program's stdin (EOF). */
  end(): void;
  /** Kills the program (the server answers with its exit). */
  kill(): void;
  /** Settles when the server closed the connection. */
  done: Promise<void>;
}

/** A browser cannot set headers on a WebSocket: the key rides in a subprotocol (base64url), as @isol8/kit's ws-wire.ts says. */
function keySubprotocol(key: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(key)) binary += String.fromCharCode(byte);
  return `isol8.key.${btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

/**
 * GET /execute/ws: the first message is the body POST /execute/stream takes; then stdin as the
 * program asks for it (input() answered from the page), stdin-end, or kill. Each server message
 * is a StreamEvent (or a warning, shown as stderr).
 */
export function runInteractive(key: string, body: ExecuteBody, onEvent: (event: StreamEvent) => void): InteractiveRun {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/execute/ws`, ["isol8", keySubprotocol(key)]);
  const send = (message: unknown) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  };
  socket.addEventListener("open", () => send(body));
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(String(message.data)) as StreamEvent | { type: "warning"; data: string };
    if (event.type === "warning") onEvent({ type: "stderr", data: `[isol8: ${event.data}]\n` });
    else onEvent(event);
  });
  const done = new Promise<void>((resolve, reject) => {
    let opened = false;
    socket.addEventListener("open", () => (opened = true));
    socket.addEventListener("close", () => (opened ? resolve() : reject(new Error("The server refused the interactive connection (check the API key)"))));
  });
  return {
    send: (text) => send({ type: "stdin", data: text }),
    end: () => send({ type: "stdin-end" }),
    kill: () => send({ type: "kill" }),
    done,
  };
}
