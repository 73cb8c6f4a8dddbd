// The zod-free entries of the kit: the flags are defined at start-up, which `isol8 --version` pays too.
import { InvalidOptionsError } from "@isol8/kit/errors";
import { formatBytes, parseSize } from "@isol8/kit/sizes";

/** Commander argument parsers whose errors name the flag and what it expects. */
export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidOptionsError(`${flag}: expected a positive whole number, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n <= 0)
      throw new InvalidOptionsError(`${flag}: expected a positive number, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** Commander parser for --port: 0 (any free port) to 65535. */
export function portNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > 65_535) throw new InvalidOptionsError(`${flag}: expected a port number (0-65535), got ${JSON.stringify(value)}`);
    return n;
  };
}

/** A size flag ("512m", "1g", a byte count); `min` (bytes) is the smallest the engine accepts, named in the error. */
export function size(flag: string, min?: { bytes: number; why: string }) {
  return (value: string): number => {
    const bytes = parseSize(value);
    if (bytes === undefined) throw new InvalidOptionsError(`${flag}: expected a size such as 512m, 1g or a byte count, got ${JSON.stringify(value)}`);
    if (min && bytes < min.bytes)
      throw new InvalidOptionsError(`${flag}: expected at least ${formatBytes(min.bytes)} (${min.why}), got ${JSON.stringify(value)}`);
    return bytes;
  };
}

/** Repeatable KEY=VALUE flags, collected into an object. */
export function keyValue(flag: string) {
  return (value: string, previous: Record<string, string> = {}): Record<string, string> => {
    const eq = value.indexOf("=");
    const key = eq > 0 ? value.slice(0, eq) : "";
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new InvalidOptionsError(`${flag}: expected KEY=VALUE with KEY a variable name, got ${JSON.stringify(value)}`);
    return { ...previous, [key]: value.slice(eq + 1) };
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A repeatable regular-expression flag (--allow, --deny): each one must compile. */
export function regexList(flag: string) {
  return (value: string, previous: string[] = []): string[] => {
    try {
      new RegExp(value);
    } catch {
      throw new InvalidOptionsError(`${flag}: expected a regular expression matching host names, e.g. '^pypi\\.org$', got ${JSON.stringify(value)}`);
    }
    return [...previous, value];
  };
}

/** A SHA-256 as 64 hex digits (what `sha256sum` prints first), lower-cased. */
export function sha256Hex(flag: string) {
  return (value: string): string => {
    if (!/^[0-9a-fA-F]{64}$/.test(value.trim()))
      throw new InvalidOptionsError(`${flag}: expected a SHA-256 as 64 hex digits (e.g. from sha256sum), got ${JSON.stringify(value)}`);
    return value.trim().toLowerCase();
  };
}
