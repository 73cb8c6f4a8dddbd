import type { AuditRecord } from "../index.js";

/**
 * A complete, valid audit record for tests of audit sinks: execution `exec-<n>` of engine
 * "engine", a bash run at the epoch that exited 0 in 1 ms, with no metadata, security events or
 * output. `overrides` replaces or adds fields (output, metadata, a container id...).
 */
export function sampleAuditRecord(n: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    executionId: `exec-${n}`,
    engineId: "engine",
    timestamp: new Date(0).toISOString(),
    runtime: "bash",
    codeSha256: "0".repeat(64),
    exitCode: 0,
    durationMs: 1,
    timedOut: false,
    oomKilled: false,
    truncated: false,
    metadata: {},
    securityEvents: [],
    ...overrides,
  };
}
