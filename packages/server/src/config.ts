import * as z from "zod";
import { ConfigError, MAX_CONTEXTS_PER_SANDBOX, sizeSchema } from "@isol8/kit";
import { formatIssues, zodIssues } from "./validation.js";

const positiveInt = (what: string) =>
  z
    .number({ error: `expected a number of ${what}` })
    .int(`expected a whole number of ${what}`)
    .positive(`expected a positive number of ${what}`);

const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const tenantSchema = z.string().regex(TENANT_PATTERN, "expected a tenant name: letters, digits, '_', '.', '-' (at most 64, starting with a letter or digit)");

/** One API key and the tenant it acts for: the key itself, or its SHA-256 (hex) so the config holds no secret. */
export const apiKeySchema = z
  .strictObject({
    key: z.string().min(8, "expected an API key of at least 8 characters").optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, "expected the key's SHA-256 as 64 hex digits")
      .optional(),
    tenant: tenantSchema,
  })
  .refine((k) => (k.key === undefined) !== (k.sha256 === undefined), { message: "expected exactly one of key and sha256" });

/**
 * Ceilings on what a request may ask for. A request may ask for less, never more: over a ceiling
 * it is refused (400) with the field named. A ceiling left out is the engine default itself, so
 * clients can only lower that limit.
 */
export const policySchema = z.strictObject({
  maxMemory: sizeSchema.optional(),
  maxCpu: z.number({ error: "expected a number of CPUs" }).positive("expected a positive number of CPUs").optional(),
  maxPids: positiveInt("processes").optional(),
  maxTimeoutMs: positiveInt("milliseconds").optional(),
  maxOutputSize: sizeSchema.optional(),
  maxSandboxSize: sizeSchema.optional(),
  maxTmpSize: sizeSchema.optional(),
  /** Network modes a request may choose (default: only the engine default's). */
  networks: z.array(z.string().min(1)).optional(),
  /** Seccomp modes a request may choose (default: only the mode in force by default). */
  seccompModes: z.array(z.string().min(1)).optional(),
  /** Runtimes a request may use (default: every registered one). */
  runtimes: z.array(z.string().min(1)).optional(),
  /** Interpreter contexts one session may hold (default 8; 0: none; at most the executor's 16 per sandbox). */
  maxContextsPerSession: z
    .number({ error: "expected a number of contexts" })
    .int("expected a whole number of contexts")
    .min(0, "expected zero or more contexts")
    .max(MAX_CONTEXTS_PER_SANDBOX, `expected at most ${MAX_CONTEXTS_PER_SANDBOX} contexts (the most one sandbox holds)`)
    .optional(),
  /** Interpreter contexts one tenant may hold over all its sessions (default 16). */
  maxContextsPerTenant: z
    .number({ error: "expected a number of contexts" })
    .int("expected a whole number of contexts")
    .min(0, "expected zero or more contexts")
    .optional(),
});

export const limitsSchema = z.strictObject({
  /** Largest request body; bigger ones get 413 before they are read whole. */
  bodyLimit: sizeSchema.default(16 * 1024 ** 2),
  /** Executions (and file operations) running at once, server-wide. */
  maxConcurrent: positiveInt("executions").default(4),
  /** Requests waiting for a slot; beyond this, 429 with Retry-After. */
  maxQueue: z.number().int().nonnegative("expected zero or more").default(32),
  /** A request's whole deadline (queue wait + execution); default: the timeout ceiling + 30 s. */
  requestTimeoutMs: positiveInt("milliseconds").optional(),
  maxSessionsPerTenant: positiveInt("sessions").default(8),
  maxSessions: positiveInt("sessions").default(64),
  /** A session unused for this long is stopped and its container removed. */
  sessionIdleMs: positiveInt("milliseconds").default(10 * 60_000),
  /** On SIGTERM/SIGINT, in-flight work may finish for this long before it is cancelled. */
  shutdownGraceMs: positiveInt("milliseconds").default(20_000),
  /** Engines kept for requests whose options differ from the defaults (each with its own pool). */
  maxEngines: positiveInt("engines").default(4),
  /**
   * On SIGTERM/SIGINT, GET /ready answers 503 for this long while requests are still served, before
   * the listener closes: a load balancer stops sending new work first. Set it to the balancer's
   * health-check interval × fall count (default 0: close at once).
   */
  drainDelayMs: z.number().int().nonnegative("expected zero or more milliseconds").default(0),
  /** GET /ready answers 503 while this many requests (or more) wait for a slot (default: maxQueue, a full queue). */
  readyMaxQueue: z.number().int().nonnegative("expected zero or more requests").optional(),
});

export const serverConfigSchema = z.strictObject({
  /** This node's id behind a load balancer: the X-Isol8-Node header of every response and /metrics (default: the host name). */
  nodeId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, "expected a node id: letters, digits, '_', '.', ':', '-' (at most 128, starting with a letter or digit)")
    .optional(),
  port: z.number().int().min(0).max(65535).optional(),
  /** Address to listen on (default 127.0.0.1: loopback only). */
  host: z.string().min(1).optional(),
  keys: z.array(apiKeySchema).default([]),
  policy: policySchema.prefault({}),
  limits: limitsSchema.prefault({}),
  /** Fill the ephemeral engine's pool at start: every runtime (true) or the ones named. */
  prewarm: z.union([z.boolean(), z.array(z.string().min(1))]).default(false),
  /** One JSON line per request on standard output. */
  requestLog: z.boolean().default(true),
  /** Serve the web playground, notebook and operator view under /ui (off: no /ui route exists). */
  ui: z.boolean().default(false),
  /** Tenants whose keys may read GET /admin/overview (the operator view); none: the route does not exist. */
  adminTenants: z.array(tenantSchema).default([]),
});

export type ServerConfig = z.input<typeof serverConfigSchema>;
export type ResolvedServerConfig = z.output<typeof serverConfigSchema>;

/** Validates the `server` section of the isol8 config; a bad key fails with its path ("server.limits.maxQueue"). */
export function parseServerConfig(raw: unknown, filepath?: string): ResolvedServerConfig {
  const parsed = serverConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigError(`Invalid isol8 config${filepath ? ` in ${filepath}` : ""}: ${formatIssues(zodIssues(parsed.error, "server"))}`, { filepath });
  }
  const tenantsByKey = new Map<string, string>();
  parsed.data.keys.forEach((entry, i) => {
    const id = entry.key ?? entry.sha256!.toLowerCase();
    if (tenantsByKey.has(id))
      throw new ConfigError(`Invalid isol8 config${filepath ? ` in ${filepath}` : ""}: server.keys[${i}]: the same key is listed twice`, { filepath });
    tenantsByKey.set(id, entry.tenant);
  });
  return parsed.data;
}
