import * as z from "zod";
import { definePlugin, sizeSchema, type Isol8Plugin } from "@isol8/kit";
import { HttpAuditSink } from "./http-sink.js";

export { HttpAuditSink, DROP_REPORT_INTERVAL_MS, type HttpAuditSinkOptions, type HttpAuditSinkDeps, type HttpAuditStats } from "./http-sink.js";
export { backoffDelay, parseRetryAfter, isRetryableStatus } from "./backoff.js";

export const PLUGIN_NAME = "isol8:audit-http";
/** The name engines select in `audit.sinks`. */
export const SINK_NAME = "http";

const ms = (what: string) =>
  z
    .number({ error: `expected ${what} in milliseconds` })
    .int("expected a whole number of milliseconds")
    .positive("expected a positive number of milliseconds");
const count = (what: string) => z.number({ error: `expected a number of ${what}` }).int(`expected a whole number of ${what}`);

export const httpAuditOptionsSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }),
  headers: z.record(z.string(), z.string({ error: "expected a string header value" })).default({}),
  batchSize: count("records").positive("expected at least 1 record").default(100),
  flushIntervalMs: ms("a flush interval").default(1_000),
  maxQueue: count("records").positive("expected at least 1 record").default(10_000),
  /** A size such as "64m" or a byte count. */
  maxQueueBytes: sizeSchema.default(64 * 1024 ** 2),
  maxRetries: count("retries").nonnegative("expected zero or more retries").default(5),
  timeoutMs: ms("a request timeout").default(10_000),
  retryBaseMs: ms("a first retry delay").default(500),
  retryMaxMs: ms("a longest retry delay").default(30_000),
  closeTimeoutMs: ms("a close deadline").default(5_000),
});

export type HttpAuditOptions = z.input<typeof httpAuditOptionsSchema>;

/** What an httpAudit plugin offers its user (`plugin.api`): the sink it registers. */
export interface HttpAuditApi {
  readonly sink: HttpAuditSink;
}

/** An httpAudit plugin: its api, and `.sink` as a shorthand for `api.sink`. */
export type HttpAuditPlugin = Isol8Plugin<HttpAuditApi> & { readonly api: HttpAuditApi; readonly sink: HttpAuditSink };

const plugin = definePlugin({
  name: PLUGIN_NAME,
  options: httpAuditOptionsSchema,
  setup: (options) => {
    const sink = new HttpAuditSink(options);
    return {
      api: { sink } satisfies HttpAuditApi,
      apply: (kit) => {
        sink.useLogger(kit.log);
        kit.auditSinks.register(SINK_NAME, sink);
      },
    };
  },
});

/**
 * The webhook audit sink, selected with `audit: { sinks: ["http"] }`. One sink per plugin instance
 * (shared by the engines assembled from it); `api.sink.stats()` (also `.sink.stats()`) gives its
 * counters.
 */
export function httpAudit(options: HttpAuditOptions): HttpAuditPlugin {
  const made = plugin(options);
  const api = made.api!;
  return Object.freeze({ ...made, api, sink: api.sink });
}

export default httpAudit;
