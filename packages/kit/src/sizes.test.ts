import { describe, expect, it } from "vitest";
import { formatBytes, parseSize } from "./sizes.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

describe("parseSize", () => {
  it("takes a positive integer as a byte count", () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize(1)).toBe(1);
  });

  it("takes a string of digits as a byte count", () => {
    expect(parseSize("4096")).toBe(4096);
  });

  it("reads k, m, g and t suffixes as powers of 1024", () => {
    expect(parseSize("64k")).toBe(64 * KiB);
    expect(parseSize("512m")).toBe(512 * MiB);
    expect(parseSize("1g")).toBe(GiB);
    expect(parseSize("2t")).toBe(2 * TiB);
  });

  it("reads a b suffix as bytes", () => {
    expect(parseSize("100b")).toBe(100);
  });

  it("ignores the case of the unit", () => {
    expect(parseSize("512M")).toBe(512 * MiB);
    expect(parseSize("1G")).toBe(GiB);
    expect(parseSize("64K")).toBe(64 * KiB);
  });

  it("accepts the long forms KB, MB, GB and KiB, MiB, GiB (all 1024-based)", () => {
    expect(parseSize("512MiB")).toBe(512 * MiB);
    expect(parseSize("512mib")).toBe(512 * MiB);
    expect(parseSize("512MB")).toBe(512 * MiB);
    expect(parseSize("64KiB")).toBe(64 * KiB);
    expect(parseSize("1GB")).toBe(GiB);
    expect(parseSize("1TiB")).toBe(TiB);
  });

  it("accepts a fraction and rounds the byte count down", () => {
    expect(parseSize("1.5g")).toBe(1.5 * GiB);
    expect(parseSize("0.5k")).toBe(512);
    expect(parseSize("1.0001k")).toBe(1024);
  });

  it("accepts spaces around the number and between the number and the unit", () => {
    expect(parseSize(" 512m ")).toBe(512 * MiB);
    expect(parseSize("512 m")).toBe(512 * MiB);
    expect(parseSize("1 GiB")).toBe(GiB);
  });

  it("rejects an empty or blank string", () => {
    expect(parseSize("")).toBeUndefined();
    expect(parseSize("   ")).toBeUndefined();
  });

  it("rejects text that is not a size", () => {
    expect(parseSize("abc")).toBeUndefined();
    expect(parseSize("m")).toBeUndefined();
    expect(parseSize("lots")).toBeUndefined();
  });

  it("rejects an unknown unit", () => {
    expect(parseSize("12x")).toBeUndefined();
    expect(parseSize("12p")).toBeUndefined();
    expect(parseSize("12 megabytes")).toBeUndefined();
  });

  it("rejects zero", () => {
    expect(parseSize(0)).toBeUndefined();
    expect(parseSize("0")).toBeUndefined();
    expect(parseSize("0m")).toBeUndefined();
  });

  it("rejects a size that rounds down to zero bytes", () => {
    expect(parseSize("0.5")).toBeUndefined();
    expect(parseSize("0.5b")).toBeUndefined();
  });

  it("rejects negative sizes", () => {
    expect(parseSize(-1)).toBeUndefined();
    expect(parseSize("-1")).toBeUndefined();
    expect(parseSize("-512m")).toBeUndefined();
  });

  it("rejects a non-integer number of bytes", () => {
    expect(parseSize(1.5)).toBeUndefined();
  });

  it("rejects non-finite numbers", () => {
    expect(parseSize(Number.NaN)).toBeUndefined();
    expect(parseSize(Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it("rejects exponent, separator and leading-dot notations", () => {
    expect(parseSize("1e3")).toBeUndefined();
    expect(parseSize("1,024")).toBeUndefined();
    expect(parseSize(".5g")).toBeUndefined();
    expect(parseSize("1.g")).toBeUndefined();
  });

  it("rejects two units", () => {
    expect(parseSize("1mg")).toBeUndefined();
    expect(parseSize("1kmb")).toBeUndefined();
  });
});

describe("formatBytes", () => {
  it("writes sizes below 1 KiB in bytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1)).toBe("1 B");
    expect(formatBytes(1023)).toBe("1023 B");
  });

  it("writes one decimal below 10 of a unit", () => {
    expect(formatBytes(KiB)).toBe("1.0 KiB");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(GiB)).toBe("1.0 GiB");
    expect(formatBytes(1.5 * GiB)).toBe("1.5 GiB");
  });

  it("writes no decimals from 10 of a unit on", () => {
    expect(formatBytes(10 * KiB)).toBe("10 KiB");
    expect(formatBytes(64 * KiB)).toBe("64 KiB");
    expect(formatBytes(512 * MiB)).toBe("512 MiB");
    expect(formatBytes(256 * MiB)).toBe("256 MiB");
  });

  it("picks the largest unit the size reaches", () => {
    expect(formatBytes(MiB)).toBe("1.0 MiB");
    expect(formatBytes(TiB)).toBe("1.0 TiB");
  });

  it("stays in TiB for sizes beyond it", () => {
    expect(formatBytes(2048 * TiB)).toBe("2048 TiB");
  });

  it("round-trips the sizes it writes through parseSize", () => {
    for (const bytes of [KiB, 64 * KiB, MiB, 512 * MiB, GiB, 1.5 * GiB, TiB]) {
      expect(parseSize(formatBytes(bytes))).toBe(bytes);
    }
  });
});
