import type { Logger } from "./kit.js";

/** A logger that writes one JSON line per entry to stderr; debug lines only when asked. */
export function createLogger(options: { debug?: boolean; name?: string } = {}): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, name: options.name ?? "isol8", message, ...fields })}\n`);
  };
  return {
    debug: (m, f) => options.debug && write("debug", m, f),
    info: (m, f) => options.debug && write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Wraps a logger so every line goes through `mask` (secret masking): the message and every string
 * in the fields, nested or in an Error. No call site can forget it, so a log line never carries a
 * secret, whatever text (a path the program chose, an error a plugin quoted) it includes.
 */
export function maskingLogger(logger: Logger, mask: (text: string) => string): Logger {
  const maskFields = (fields?: Record<string, unknown>) => (fields === undefined ? undefined : (maskValue(fields, mask, 0) as Record<string, unknown>));
  return {
    debug: (m, f) => logger.debug(mask(m), maskFields(f)),
    info: (m, f) => logger.info(mask(m), maskFields(f)),
    warn: (m, f) => logger.warn(mask(m), maskFields(f)),
    error: (m, f) => logger.error(mask(m), maskFields(f)),
  };
}

/** Nested fields deeper than this are logged as a placeholder (a log line is not a data dump). */
const MAX_FIELD_DEPTH = 6;

function maskValue(value: unknown, mask: (text: string) => string, depth: number): unknown {
  if (typeof value === "string") return mask(value);
  if (value instanceof Error) return mask(String(value));
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_FIELD_DEPTH) return "[nested too deep]";
  if (Array.isArray(value)) return value.map((item) => maskValue(item, mask, depth + 1));
  // A class instance (Date, URL, Buffer) logs as its own text; one without a toString of its own
  // gives "[object X]", which can hold no secret.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return mask(String(value));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, maskValue(item, mask, depth + 1)]));
}
