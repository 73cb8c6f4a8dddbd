import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError } from "./errors.js";

export interface ApiKey {
  /** The key itself, or (sha256) its SHA-256 in hex. */
  key?: string;
  sha256?: string;
  tenant: string;
}

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * The server's API keys, held only as SHA-256 digests. A presented token is hashed and compared
 * with every digest in constant time (`timingSafeEqual` over equal-length digests, no early exit),
 * so neither the position of the first wrong byte nor the key's length leaks through timing.
 */
export class KeyRing {
  readonly #entries: { digest: Buffer; tenant: string }[];
  readonly #equal: (a: Buffer, b: Buffer) => boolean;

  /** `options.equal` replaces timingSafeEqual, for tests that count the comparisons. */
  constructor(keys: readonly ApiKey[], options: { equal?: (a: Buffer, b: Buffer) => boolean } = {}) {
    this.#entries = keys.map((k) => ({ digest: k.key !== undefined ? sha256(k.key) : Buffer.from(k.sha256!, "hex"), tenant: k.tenant }));
    this.#equal = options.equal ?? timingSafeEqual;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The tenant a token belongs to, or undefined. */
  match(token: string): string | undefined {
    const digest = sha256(token);
    let tenant: string | undefined;
    for (const entry of this.#entries) {
      if (this.#equal(digest, entry.digest) && tenant === undefined) tenant = entry.tenant;
    }
    return tenant;
  }

  /**
   * Authenticates an Authorization header: 401 without one (or with another scheme, or no
   * token), 403 with a key the server does not know. The scheme is case-insensitive (RFC 7235);
   * tokens in the query string are never looked at.
   */
  authenticate(header: string | undefined): string {
    const match = header === undefined ? null : /^bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
    if (!match) {
      throw new HttpError(401, "ISOL8_ERR_UNAUTHORIZED", "Missing or malformed Authorization header: expected 'Authorization: Bearer <API key>'", {
        headers: { "WWW-Authenticate": 'Bearer realm="isol8"' },
      });
    }
    const tenant = this.match(match[1]!);
    if (tenant === undefined) throw new HttpError(403, "ISOL8_ERR_FORBIDDEN", "Invalid API key");
    return tenant;
  }
}
