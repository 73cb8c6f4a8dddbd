import * as z from "zod";
import { definePlugin, type AuditRecord, type AuditSink, type Isol8Plugin } from "@isol8/kit";

export const PLUGIN_NAME = "isol8:audit-stdout";
/** The name engines select in `audit.sinks`. */
export const SINK_NAME = "stdout";

/** The part of a Node.js Writable the sink uses. */
export interface LineStream {
  write(chunk: string): boolean;
  once(event: "drain", listener: () => void): unknown;
  readonly writableNeedDrain?: boolean;
}

export const stdoutAuditOptionsSchema = z
  .strictObject({
    /** Where lines go; process.stdout (looked up at each write) when absent. */
    stream: z
      .custom<LineStream>(
        (value) => typeof (value as LineStream | null)?.write === "function" && typeof (value as LineStream).once === "function",
        "expected a writable stream",
      )
      .optional(),
    /** How long close() waits for the stream to drain. */
    closeTimeoutMs: z.number().int().positive("expected a positive number of milliseconds").default(5_000),
  })
  .prefault({});

export type StdoutAuditOptions = z.input<typeof stdoutAuditOptionsSchema>;

/**
 * Writes each record as one JSON line to a stream (process.stdout by default). `write` hands the
 * line to the stream and returns at once: it never waits on a slow reader. `close` waits (up to
 * closeTimeoutMs) for the stream to drain; it never ends the stream, which the process owns.
 */
export class StdoutAuditSink implements AuditSink {
  readonly #stream: LineStream | undefined;
  readonly #closeTimeoutMs: number;

  constructor(options: { stream?: LineStream; closeTimeoutMs?: number } = {}) {
    this.#stream = options.stream;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  }

  get #out(): LineStream {
    return this.#stream ?? process.stdout;
  }

  async write(record: AuditRecord): Promise<void> {
    this.#out.write(`${JSON.stringify(record)}\n`);
  }

  async close(): Promise<void> {
    const out = this.#out;
    if (!out.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#closeTimeoutMs);
      timer.unref?.();
      out.once("drain", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** What a stdoutAudit plugin offers its user (`plugin.api`): the sink it registers. */
export interface StdoutAuditApi {
  readonly sink: StdoutAuditSink;
}

/** A stdoutAudit plugin: its api, and `.sink` as a shorthand for `api.sink`. */
export type StdoutAuditPlugin = Isol8Plugin<StdoutAuditApi> & { readonly api: StdoutAuditApi; readonly sink: StdoutAuditSink };

const plugin = definePlugin({
  name: PLUGIN_NAME,
  options: stdoutAuditOptionsSchema,
  setup: (options) => {
    const sink = new StdoutAuditSink(options);
    return { api: { sink } satisfies StdoutAuditApi, apply: (kit) => kit.auditSinks.register(SINK_NAME, sink) };
  },
});

/** The stdout audit sink, selected with `audit: { sinks: ["stdout"] }`; `api.sink` (also `.sink`) is the sink. */
export function stdoutAudit(options?: StdoutAuditOptions): StdoutAuditPlugin {
  const made = plugin(options);
  const api = made.api!;
  return Object.freeze({ ...made, api, sink: api.sink });
}

export default stdoutAudit;
