import type { CellError, KernelMessage } from "@isol8/kit";

/** What the reader makes of one line of a kernel's fd 4. */
export type KernelLine =
  | KernelMessage
  /** A line past the bound: left out whole; `mime` when its start names one (a display). */
  | { type: "oversized"; bytes: number; mime?: string }
  /** A line that is not a message (the kernel's bug, or a cell that wrote to fd 4). */
  | { type: "invalid"; reason: string };

const MIME_AT_START = /"mime"\s*:\s*"([A-Za-z0-9.+-]{1,100}\/[A-Za-z0-9.+-]{1,100})"/;
/** How much of an oversized line is kept to find its mime type in. */
const HEAD_BYTES = 512;

/**
 * Splits a kernel's fd-4 bytes into messages (one JSON object a line), whatever the chunking. A
 * line longer than `maxLine` bytes is never held whole: it is counted and reported as
 * "oversized" (the display it carried is omitted), so a cell cannot make the engine buffer more
 * than the bound.
 */
export class KernelMessageReader {
  #parts: Buffer[] = [];
  #length = 0;
  #oversized = false;
  #head: Buffer | undefined;

  constructor(private readonly maxLine: number) {}

  push(chunk: Buffer): KernelLine[] {
    const lines: KernelLine[] = [];
    let at = 0;
    while (at < chunk.length) {
      const end = chunk.indexOf(0x0a, at);
      const piece = chunk.subarray(at, end < 0 ? chunk.length : end);
      this.#take(piece);
      if (end < 0) break;
      lines.push(this.#finishLine());
      at = end + 1;
    }
    return lines.filter((line) => !(line.type === "invalid" && line.reason === "empty"));
  }

  #take(piece: Buffer): void {
    if (piece.length === 0) return;
    if (!this.#oversized && this.#length + piece.length > this.maxLine) {
      this.#oversized = true;
      this.#head = Buffer.concat([...this.#parts, piece]).subarray(0, HEAD_BYTES);
      this.#parts = [];
    }
    this.#length += piece.length;
    if (!this.#oversized) this.#parts.push(piece);
  }

  #finishLine(): KernelLine {
    const bytes = this.#length;
    const oversized = this.#oversized;
    const text = oversized ? "" : Buffer.concat(this.#parts).toString("utf8");
    const head = this.#head;
    this.#parts = [];
    this.#length = 0;
    this.#oversized = false;
    this.#head = undefined;
    if (oversized) {
      const mime = MIME_AT_START.exec(head?.toString("latin1") ?? "")?.[1];
      return { type: "oversized", bytes, ...(mime && { mime }) };
    }
    if (!text.trim()) return { type: "invalid", reason: "empty" };
    return parseKernelMessage(text);
  }
}

function isCellError(value: unknown): value is CellError {
  if (typeof value !== "object" || value === null) return false;
  const error = value as Record<string, unknown>;
  return (
    typeof error.name === "string" &&
    typeof error.value === "string" &&
    Array.isArray(error.traceback) &&
    error.traceback.every((line) => typeof line === "string")
  );
}

/** One line as a KernelMessage, checked field by field (it comes from code the sandbox runs). */
export function parseKernelMessage(text: string): KernelLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: "invalid", reason: "not JSON" };
  }
  if (typeof value !== "object" || value === null) return { type: "invalid", reason: "not an object" };
  const message = value as Record<string, unknown>;
  const cell = message.cell;
  const cellOk = typeof cell === "number" && Number.isInteger(cell) && cell >= 0;
  switch (message.type) {
    case "ready":
      return { type: "ready" };
    case "display":
      if (!cellOk || typeof message.mime !== "string" || typeof message.data !== "string")
        return { type: "invalid", reason: "a display without cell, mime or data" };
      return { type: "display", cell: cell as number, mime: message.mime, data: message.data, ...(message.result === true && { result: true }) };
    case "done": {
      if (!cellOk) return { type: "invalid", reason: "a done without its cell" };
      const exitCode = message.exitCode;
      return {
        type: "done",
        cell: cell as number,
        ...(isCellError(message.error) && { error: message.error }),
        ...(typeof exitCode === "number" && Number.isInteger(exitCode) && { exitCode }),
      };
    }
    default:
      return { type: "invalid", reason: `unknown type ${JSON.stringify(message.type)}` };
  }
}
