import { createHash } from "node:crypto";
import {
  STAGE_OBSERVE,
  type AuditRecord,
  type ExecContext,
  type ExecutionResult,
  type Kit,
  type Logger,
  type ResolvedEngineOptions,
  type SecurityEvent,
} from "@isol8/kit";
import type { SecretMasker } from "../output.js";
import { maskNetworkLogs } from "./masking.js";

/** How long an audit sink's write may hold the result of an execution. */
const AUDIT_WRITE_DEADLINE_MS = 5_000;

/** SHA-256 of a program's code, as audit records carry it. */
export function codeHash(code: string | Uint8Array): string {
  return createHash("sha256").update(code).digest("hex");
}

/** With `audit.sinks`, every result becomes an AuditRecord sent to each sink; a failing sink is logged, never fatal. */
export function tapAudit(kit: Kit, options: ResolvedEngineOptions, secrets: SecretMasker, log: Logger): void {
  const audit = options.audit;
  if (!audit?.sinks.length) return;
  const sinks = audit.sinks.map((name) => ({ name, sink: kit.auditSinks.get(name) }));
  kit.hooks.afterExec.tapPromise({ name: "isol8:audit", stage: STAGE_OBSERVE }, async (result, ctx) => {
    const record = auditRecord(result, ctx, options, secrets);
    // Each sink on its own: a sink that throws, or never answers, neither stops the others nor
    // holds the user's result longer than AUDIT_WRITE_DEADLINE_MS.
    await Promise.all(
      sinks.map(({ name, sink }) => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${AUDIT_WRITE_DEADLINE_MS} ms`)), AUDIT_WRITE_DEADLINE_MS);
        });
        return Promise.race([Promise.resolve().then(() => sink.write(record)), deadline])
          .catch((error) => log.error("an audit sink failed", { sink: name, error: secrets.mask(String(error)) }))
          .finally(() => clearTimeout(timer));
      }),
    );
  });
}

/** One execution as audit sinks receive it: secrets masked in every text field. */
export function auditRecord(result: ExecutionResult, ctx: ExecContext, options: ResolvedEngineOptions, secrets: SecretMasker): AuditRecord {
  const audit = options.audit;
  // A cmd request's command is its code here: what ran is what the record hashes (and keeps).
  const code = ctx.request?.code ?? ctx.request?.cmd ?? "";
  const events: SecurityEvent[] = [];
  if (result.timedOut) events.push({ type: "timeout", detail: "the time limit killed the program" });
  if (result.oomKilled) events.push({ type: "oom", detail: "the memory limit killed a process" });
  if (result.truncated) events.push({ type: "output-truncated", detail: `output was cut at ${options.maxOutputSize} bytes` });
  const networkLogs = maskNetworkLogs(secrets, result.networkLogs);
  for (const entry of networkLogs ?? []) {
    if (entry.action === "BLOCK") events.push({ type: "network-blocked", detail: `${entry.method} ${entry.host}${entry.reason ? `: ${entry.reason}` : ""}` });
  }
  return {
    executionId: ctx.executionId,
    engineId: ctx.engineId,
    timestamp: result.timestamp,
    runtime: result.runtime,
    codeSha256: codeHash(code),
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    timedOut: result.timedOut,
    oomKilled: result.oomKilled,
    truncated: result.truncated,
    containerId: result.containerId,
    metadata: Object.fromEntries(Object.entries(ctx.request?.metadata ?? {}).map(([key, value]) => [key, secrets.mask(value)])),
    ...(result.resourceUsage && { resourceUsage: result.resourceUsage }),
    ...(networkLogs && { networkLogs }),
    securityEvents: events.map((event) => ({ ...event, detail: secrets.maskAnyCase(event.detail) })),
    ...(audit?.includeCode && { code: secrets.mask(typeof code === "string" ? code : Buffer.from(code).toString("utf8")) }),
    ...(audit?.includeOutput && { stdout: result.stdout, stderr: result.stderr }),
  };
}

/** Flushes and closes the engine's audit sinks (stop()); a failing close is not fatal. */
export async function closeAuditSinks(kit: Kit, options: ResolvedEngineOptions): Promise<void> {
  const sinks = (options.audit?.sinks ?? []).map((name) => kit.auditSinks.get(name));
  await Promise.allSettled(sinks.map((sink) => Promise.resolve(sink.close?.())));
}
