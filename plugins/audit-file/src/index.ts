import * as z from "zod";
import { definePlugin, sizeSchema, type Isol8Plugin } from "@isol8/kit";
import { FileAuditSink } from "./file-sink.js";

export {
  FileAuditSink,
  AUDIT_FILE_MODE,
  rotatedOldestFirst,
  rotationStamp,
  splitName,
  type FileAuditSinkOptions,
  type FileAuditSinkDeps,
} from "./file-sink.js";

export const PLUGIN_NAME = "isol8:audit-file";
/** The name engines select in `audit.sinks`. */
export const SINK_NAME = "file";

export const fileAuditOptionsSchema = z.strictObject({
  dir: z.string({ error: "expected the directory to write audit files to" }).min(1, "expected the directory to write audit files to"),
  fileName: z
    .string()
    .regex(/^[^/\\\0]+$/, "expected a file name without a directory")
    .refine((name) => name !== "." && name !== "..", "expected a file name without a directory")
    .default("audit.jsonl"),
  /** A size such as "10m" or a byte count. */
  maxBytes: sizeSchema.default(10 * 1024 ** 2),
  maxAgeMs: z.number().int("expected a whole number of milliseconds").positive("expected a positive number of milliseconds").optional(),
  retain: z.number().int("expected a whole number of files").nonnegative("expected zero or more files").default(10),
});

export type FileAuditOptions = z.input<typeof fileAuditOptionsSchema>;

/** What a fileAudit plugin offers its user (`plugin.api`): the sink it registers. */
export interface FileAuditApi {
  readonly sink: FileAuditSink;
}

/** A fileAudit plugin: its api, and `.sink` as a shorthand for `api.sink`. */
export type FileAuditPlugin = Isol8Plugin<FileAuditApi> & { readonly api: FileAuditApi; readonly sink: FileAuditSink };

const plugin = definePlugin({
  name: PLUGIN_NAME,
  options: fileAuditOptionsSchema,
  setup: (options) => {
    const sink = new FileAuditSink(options);
    return {
      api: { sink } satisfies FileAuditApi,
      apply: (kit) => {
        sink.useLogger(kit.log);
        kit.auditSinks.register(SINK_NAME, sink);
      },
    };
  },
});

/**
 * The JSON-lines file audit sink, selected with `audit: { sinks: ["file"] }`. One sink per plugin
 * instance (shared by the engines assembled from it); `api.sink` (also `.sink`) gives its path and
 * rotated files.
 */
export function fileAudit(options: FileAuditOptions): FileAuditPlugin {
  const made = plugin(options);
  const api = made.api!;
  return Object.freeze({ ...made, api, sink: api.sink });
}

export default fileAudit;
