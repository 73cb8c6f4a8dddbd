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
