import type { NetworkLogEntry } from "@isol8/kit";
import type { SecretMasker } from "../output.js";

/**
 * The text fields of network logs with secrets masked, whatever their case: the proxy
 * lowercases host names (and a reason quotes the host), so a literal match would miss them.
 */
export function maskNetworkLogs(secrets: SecretMasker, entries: NetworkLogEntry[] | undefined): NetworkLogEntry[] | undefined {
  if (!entries || !secrets.active) return entries;
  const mask = (text: string) => secrets.maskAnyCase(text);
  return entries.map((entry) => ({
    ...entry,
    method: mask(entry.method),
    host: mask(entry.host),
    path: entry.path === null ? null : mask(entry.path),
    ...(entry.reason !== undefined && { reason: mask(entry.reason) }),
    ...(entry.error !== undefined && { error: mask(entry.error) }),
  }));
}

/** Masks secrets in an error's message and stack (and its causes'), in place: callers see the same error, masked. */
export function maskError(secrets: SecretMasker, error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || !secrets.active || depth > 3) return error;
  const mask = (text: string) => secrets.maskAnyCase(text);
  try {
    if (mask(error.message) !== error.message) error.message = mask(error.message);
    if (error.stack) error.stack = mask(error.stack);
  } catch {
    // a frozen error: left as it is (executeStream still masks what it sends)
  }
  maskError(secrets, error.cause, depth + 1);
  return error;
}
