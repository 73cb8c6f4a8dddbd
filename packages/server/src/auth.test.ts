import { createHash } from "node:crypto";
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
    try {
      ring.authenticate(undefined);
    } catch (error) {
      expect((error as HttpError).headers["WWW-Authenticate"]).toMatch(/^Bearer/);
    }
    for (const header of ["Bearer alpha-key-12345", "Bearer alpha-key-1234567", "Bearer x", `Bearer ${"a".repeat(10_000)}`]) {
      expect(status(header), header.slice(0, 30)).toBe(403);
    }
  });

  test("every key is compared (no early exit), whatever the token's length", () => {
    // Keys of other lengths never throw from timingSafeEqual: both sides are 32-byte digests.
    expect(ring.match("")).toBeUndefined();
    expect(ring.match("alpha-key-123456")).toBe("alpha");
  });
});
