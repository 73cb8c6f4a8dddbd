/**
 * The page's only way to the server: the same REST and SSE endpoints any client uses, with the
 * API key (from the tab's session storage) as a Bearer header. Nothing else is contacted.
 */

// The contract's own types (@isol8/kit/results): the server sends runtimes, results and stream
// events as JSON.stringify makes them (no Date, no Buffer), so they are what the page receives.
import type { RuntimeInfo, StreamEvent } from "@isol8/kit/results";

export interface ExecuteBody {
  request: { runtime: string; code: string; stdin?: string; context?: string };
  sessionId?: string;
}

/** An error answer of the server: its HTTP status, error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY_ITEM = "isol8.apiKey";

/** The key lives in this tab's session storage only: never in a URL, a cookie or local storage. */
export const keyStore = {
  get: (): string | null => sessionStorage.getItem(KEY_ITEM),
  set: (key: string): void => sessionStorage.setItem(KEY_ITEM, key),
  clear: (): void => sessionStorage.removeItem(KEY_ITEM),
};

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: string; code?: string };
    return new ApiError(response.status, body.code ?? `HTTP_${response.status}`, body.error ?? text);
  } catch {
    return new ApiError(response.status, `HTTP_${response.status}`, text || response.statusText);
  }
}

export class Api {
  constructor(readonly key: string) {}

  #headers(json: boolean): HeadersInit {
    return { Authorization: `Bearer ${this.key}`, ...(json && { "Content-Type": "application/json" }) };
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await fetch(path, {
      method,
      headers: this.#headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  runtimes(): Promise<{ runtimes: RuntimeInfo[] }> {
    return this.json("GET", "/runtimes");
  }

  /** POST /execute/stream: calls `onEvent` for each SSE event until the stream ends (or `signal` aborts it). */
  async stream(body: ExecuteBody, onEvent: (event: StreamEvent) => void, signal: AbortSignal): Promise<void> {
    const response = await fetch("/execute/stream", {
      method: "POST",
      headers: this.#headers(true),
      body: JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw await errorOf(response);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) onEvent(JSON.parse(data) as StreamEvent);
      }
    }
  }
}

/** The text of an error for the page: "403 ISOL8_ERR_FORBIDDEN: Invalid API key". */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.status} ${error.code}: ${error.message}`;
  if (error instanceof DOMException && error.name === "AbortError") return "Stopped";
  return error instanceof Error ? error.message : String(error);
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
