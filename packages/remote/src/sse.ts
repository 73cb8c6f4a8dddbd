/** One Server-Sent Event as dispatched by the parser. */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * An incremental Server-Sent Events parser (the WHATWG event-stream rules): feed it chunks as
 * they arrive, in any split (inside a line, inside a UTF-8 sequence, CR LF across chunks), and it
 * returns the events completed so far. Comments (`:`) are ignored; multi-line data is joined
 * with "\n"; an event is dispatched on a blank line.
 */
export class SseParser {
  readonly #decoder = new TextDecoder("utf-8");
  #buffer = "";
  #skipLf = false;
  #event = "";
  #data: string[] = [];
  #id: string | undefined;

  push(chunk: Uint8Array | string): SseMessage[] {
    let text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    if (this.#skipLf) {
      if (text.startsWith("\n")) text = text.slice(1);
      if (text.length > 0) this.#skipLf = false;
    }
    this.#buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (!match) break;
      const line = this.#buffer.slice(0, match.index);
      const rest = this.#buffer.slice(match.index + match[0].length);
      // A CR at the very end may be the first half of a CR LF split across chunks.
      if (match[0] === "\r" && rest === "") this.#skipLf = true;
      this.#buffer = rest;
      const message = this.#line(line);
      if (message) out.push(message);
    }
    return out;
  }

  /** Ends the stream: an event without its closing blank line is dropped, as the spec says. */
  end(): SseMessage[] {
    const tail = this.#decoder.decode();
    return tail ? this.push(tail) : [];
  }

  #line(line: string): SseMessage | undefined {
    if (line === "") {
      if (this.#data.length === 0) {
        this.#event = "";
        return undefined;
      }
      const message: SseMessage = { event: this.#event || "message", data: this.#data.join("\n"), ...(this.#id !== undefined && { id: this.#id }) };
      this.#event = "";
      this.#data = [];
      return message;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      default:
        break; // "retry" and unknown fields are ignored
    }
    return undefined;
  }
}
