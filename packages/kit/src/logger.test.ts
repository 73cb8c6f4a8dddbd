import { describe, expect, it } from "vitest";
import type { Logger } from "./kit.js";
import { maskingLogger } from "./logger.js";

describe("maskingLogger", () => {
  const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
  const inner: Logger = {
    debug: (m, f) => void lines.push(["debug", m, f]),
    info: (m, f) => void lines.push(["info", m, f]),
    warn: (m, f) => void lines.push(["warn", m, f]),
    error: (m, f) => void lines.push(["error", m, f]),
  };
  const log = maskingLogger(inner, (text) => text.replaceAll("s3cret", "***"));

  it("masks the message and every string in the fields, nested, in arrays and in Errors, at every level", () => {
    log.warn("wipe of /sandbox/s3cret failed", { path: "/sandbox/s3cret", n: 3, nested: { list: ["a", "s3cret"] }, error: new Error("cannot remove s3cret") });
    log.debug("d s3cret");
    log.info("i s3cret");
    log.error("e s3cret");
    expect(lines).toEqual([
      ["warn", "wipe of /sandbox/*** failed", { path: "/sandbox/***", n: 3, nested: { list: ["a", "***"] }, error: "Error: cannot remove ***" }],
      ["debug", "d ***", undefined],
      ["info", "i ***", undefined],
      ["error", "e ***", undefined],
    ]);
  });
});
