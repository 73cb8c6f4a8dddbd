import { createHash, timingSafeEqual } from "node:crypto";
import { describe, expect, test } from "vitest";
import { KeyRing } from "./auth.js";
import { HttpError } from "./errors.js";

const ring = new KeyRing([
  { key: "alpha-key-123456", tenant: "alpha" },
  { sha256: createHash("sha256").update("beta-key-654321").digest("hex"), tenant: "beta" },
]);

const status = (header: string | undefined) => {
  try {
    return ring.authenticate(header);
  } catch (error) {
    return (error as HttpError).status;
  }
};

describe("KeyRing", () => {
  test("a key (or a key given by its SHA-256) names its tenant; the scheme is case-insensitive", () => {
    expect(status("Bearer alpha-key-123456")).toBe("alpha");
    expect(status("bearer alpha-key-123456")).toBe("alpha");
    expect(status("BEARER  beta-key-654321 ")).toBe("beta");
  });

  test("401 without a usable bearer token (with WWW-Authenticate), 403 with a wrong key", () => {
    for (const header of [undefined, "", "Bearer", "Bearer ", "Basic YWxwaGE6eA==", "alpha-key-123456", "Bearer a b"]) {
      expect(status(header), String(header)).toBe(401);
    }
    const missing = (() => {
      try {
        ring.authenticate(undefined);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(missing).toBeInstanceOf(HttpError);
    expect((missing as HttpError).headers["WWW-Authenticate"]).toMatch(/^Bearer/);
    for (const header of ["Bearer alpha-key-12345", "Bearer alpha-key-1234567", "Bearer x", `Bearer ${"a".repeat(10_000)}`]) {
      expect(status(header), header.slice(0, 30)).toBe(403);
    }
  });

  test("every key is compared (no early exit), whatever the token's length", () => {
    const keys = [
      { key: "first-key-aaaaaaaa", tenant: "first" },
      { key: "second-key-bbbbbbbb", tenant: "second" },
      { key: "third-key-cccccccc", tenant: "third" },
    ];
    const compared: number[][] = [];
    const counting = new KeyRing(keys, {
      equal: (a, b) => {
        compared.at(-1)!.push(b.length);
        return timingSafeEqual(a, b);
      },
    });
    const match = (token: string) => {
      compared.push([]);
      return counting.match(token);
    };
    // every key is compared: on a match with the first key, the last key, and on no match.
    expect(match("first-key-aaaaaaaa")).toBe("first");
    expect(match("third-key-cccccccc")).toBe("third");
    expect(match("no-such-key")).toBeUndefined();
    // whatever the token's length: both sides are always 32-byte digests (timingSafeEqual never throws on a length).
    expect(match("")).toBeUndefined();
    expect(match("x".repeat(10_000))).toBeUndefined();
    expect(compared).toEqual(Array.from({ length: 5 }, () => [32, 32, 32]));
  });
});
