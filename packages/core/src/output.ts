import { StringDecoder } from "node:string_decoder";

/**
 * Replaces every secret value with "***" in a stream of text that arrives in chunks. A secret
 * split across two chunks is still caught: the tail of a chunk that could be the start of a
 * secret is held back until the next chunk (or the end) decides.
 */
export class SecretMasker {
  static readonly MASK = "***";
  readonly #secrets: string[];
  readonly #pattern: RegExp | undefined;
  readonly #anyCasePattern: RegExp | undefined;
  #carry = "";

  constructor(secrets: readonly string[]) {
    // Longest first, so a secret that contains another is masked whole.
    this.#secrets = [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
    this.#pattern = this.#secrets.length ? new RegExp(this.#secrets.map(escapeRegExp).join("|"), "g") : undefined;
    this.#anyCasePattern = this.#secrets.length ? new RegExp(this.#secrets.map(escapeRegExp).join("|"), "gi") : undefined;
  }

  get active(): boolean {
    return this.#pattern !== undefined;
  }

  push(text: string): string {
    if (!this.#pattern) return text;
    const buffer = this.#carry + text;
    // The tail that could still grow into a secret is decided by the next chunk. A shorter secret
    // inside that tail is not masked yet: a longer secret that contains it may be completing.
    const cutoff = buffer.length - this.#heldBackLength(buffer);
    let out = "";
    let last = 0;
    for (const match of buffer.matchAll(this.#pattern)) {
      if (match.index! >= cutoff) break;
      out += buffer.slice(last, match.index) + SecretMasker.MASK;
      last = match.index! + match[0].length;
    }
    const keep = Math.max(last, cutoff);
    this.#carry = buffer.slice(keep);
    return out + buffer.slice(last, keep);
  }

  flush(): string {
    const rest = this.#carry;
    this.#carry = "";
    // The held tail may hold a whole shorter secret.
    return this.mask(rest);
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some secret. */
  #heldBackLength(text: string): number {
    let best = 0;
    for (const secret of this.#secrets) {
      const max = Math.min(secret.length - 1, text.length);
      for (let n = max; n > best; n--) {
        if (text.endsWith(secret.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  /** Masks a whole string at once (error messages, audit records). */
  mask(text: string): string {
    return this.#pattern ? text.replace(this.#pattern, SecretMasker.MASK) : text;
  }

  /**
   * Masks a whole string whatever the case of its letters: for text a transport may have
   * case-folded (host names come back lowercased from the proxy), and text whose case nobody
   * promises (logs, error messages). Stricter than `mask`: it also masks a different-case copy.
   */
  maskAnyCase(text: string): string {
    return this.#anyCasePattern ? text.replace(this.#anyCasePattern, SecretMasker.MASK) : text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Lets through at most `maxBytes` bytes of UTF-8 text, cutting at a character boundary (or of
 * latin1 text, one char per byte: raw output); remembers whether anything was cut.
 */
export class OutputCap {
  #remaining: number;
  truncated = false;

  constructor(
    maxBytes: number,
    private readonly encoding: OutputTextEncoding = "utf8",
  ) {
    this.#remaining = maxBytes;
  }

  take(text: string): string {
    if (this.truncated) return "";
    const bytes = Buffer.byteLength(text, this.encoding);
    if (bytes <= this.#remaining) {
      this.#remaining -= bytes;
      return text;
    }
    this.truncated = true;
    if (this.encoding === "latin1") {
      const kept = text.slice(0, this.#remaining);
      this.#remaining = 0;
      return kept;
    }
    // StringDecoder returns only whole characters, so the cut never splits one.
    const kept = new StringDecoder("utf8").write(Buffer.from(text).subarray(0, this.#remaining));
    this.#remaining = 0;
    return kept;
  }
}

/**
 * How an OutputStream holds the bytes as text: "utf8" (decoded; an invalid byte becomes U+FFFD)
 * or "latin1" (raw: one char per byte, char code = byte value, so every byte survives and a
 * secret is matched on its UTF-8 bytes).
 */
export type OutputTextEncoding = "utf8" | "latin1";

/**
 * One stream's path from raw bytes to the text the user sees: decoding (UTF-8, never splitting a
 * character across chunks; or latin1 for raw bytes), secret masking, an optional rewrite (the
 * onOutput hook), the cap.
 */
export class OutputStream {
  readonly #decoder: StringDecoder;
  readonly #masker: SecretMasker;
  readonly #cap: OutputCap;

  constructor(
    secrets: readonly string[],
    maxBytes: number,
    private readonly rewrite?: (text: string) => string,
    encoding: OutputTextEncoding = "utf8",
  ) {
    this.#decoder = new StringDecoder(encoding);
    // In latin1 a secret is looked for as its UTF-8 bytes, the way the program writes it.
    this.#masker = new SecretMasker(encoding === "latin1" ? secrets.map((secret) => Buffer.from(secret, "utf8").toString("latin1")) : secrets);
    this.#cap = new OutputCap(maxBytes, encoding);
  }

  get truncated(): boolean {
    return this.#cap.truncated;
  }

  /** Bytes that arrived after the cap was reached (thrown away unread). */
  discarded = 0;

  push(chunk: Buffer): string {
    if (this.#cap.truncated) {
      this.discarded += chunk.length; // past the cap: drain without work
      return "";
    }
    return this.#emit(this.#masker.push(this.#decoder.write(chunk)));
  }

  end(): string {
    return this.#emit(this.#masker.push(this.#decoder.end()) + this.#masker.flush());
  }

  #emit(text: string): string {
    if (text.length === 0) return "";
    return this.#cap.take(this.rewrite ? this.rewrite(text) : text);
  }
}
