import * as z from "zod";
import { checkContextCell, checkRequestSource, executionRequestFields, memorySizeSchema, networkFilterSchema, sizeSchema } from "@isol8/kit";

/**
 * The wire format. Every request body is validated with these schemas, and GET /openapi.json is
 * generated from the same ones (z.toJSONSchema), so the documentation cannot drift from the checks.
 */

export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const sessionIdSchema = z
  .string({ error: "expected a session id" })
  .regex(SESSION_ID_PATTERN, "expected a session id: letters, digits, '_', '.', ':', '-' (at most 128, starting with a letter or digit)")
  .meta({ description: "Names a persistent session of the calling tenant; created by the first /execute that uses it." });

const base64Schema = z
  .string({ error: "expected base64 text" })
  .refine((s) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s), "expected base64 text (RFC 4648, with padding)");

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");

/**
 * The engine options a client may set, each within the server's ceilings. Anything else (image,
 * readonlyRootFs, persist, poolStrategy, caBundle, a custom seccomp profile, ...) is the operator's
 * and refused as an unknown key.
 */
export const clientOptionsSchema = z
  .strictObject({
    timeoutMs: z
      .number()
      .int()
      .positive("expected a positive number of milliseconds")
      .optional()
      .meta({ description: "Time limit of each execution (≤ policy.maxTimeoutMs)." }),
    memoryLimit: memorySizeSchema.optional().meta({ description: 'Memory limit, e.g. "256m" or bytes (≤ policy.maxMemory).' }),
    cpuLimit: z.number().positive("expected a positive number of CPUs").optional().meta({ description: "CPUs (≤ policy.maxCpu)." }),
    pidsLimit: z.number().int().positive("expected a positive number of processes").optional().meta({ description: "Process limit (≤ policy.maxPids)." }),
    maxOutputSize: sizeSchema.optional().meta({ description: "Cap on stdout and on stderr (≤ policy.maxOutputSize)." }),
    sandboxSize: sizeSchema.optional().meta({ description: "Size of /sandbox (≤ policy.maxSandboxSize)." }),
    tmpSize: sizeSchema.optional().meta({ description: "Size of /tmp (≤ policy.maxTmpSize)." }),
    network: z.string().min(1).optional().meta({ description: "Network mode, one of policy.networks." }),
    networkFilter: networkFilterSchema.optional().meta({
      description:
        "Host allow/deny regexes for the filtered network mode (whitelist, blacklist; `bounds` is refused: the operator sets it); they narrow the operator's (whose filter still applies: its blacklist always, its whitelist as the outer bound).",
    }),
    secrets: z.record(envName, z.string()).optional().meta({ description: "Environment variables whose values are masked as *** in the output." }),
    security: z
      .strictObject({ seccomp: z.string().min(1).optional() })
      .optional()
      .meta({ description: "Seccomp mode, one of policy.seccompModes." }),
    logNetwork: z.boolean().optional(),
    resourceUsage: z.boolean().optional(),
  })
  .meta({ description: "Engine options a client may set, within the server's ceilings." });

export const CLIENT_OPTION_KEYS = Object.keys(clientOptionsSchema.shape) as (keyof typeof clientOptionsSchema.shape)[];

/** A file's content on the wire: UTF-8 text, or `{ base64 }` for bytes. */
export const wireFileContentSchema = z.union([z.string(), z.strictObject({ base64: base64Schema })], {
  error: 'expected a string (UTF-8 text) or { "base64": "..." }',
});

export const wireRequestSchema = executionRequestFields
  .extend({
    code: z
      .union([z.string().refine((code) => code.trim().length > 0, "expected non-empty code"), z.strictObject({ base64: base64Schema })], {
        error: 'expected the program\'s source code as a string (UTF-8 text) or { "base64": "..." }',
      })
      .optional(),
    stdin: wireFileContentSchema.optional(),
    files: z.record(z.string(), wireFileContentSchema).optional(),
  })
  .superRefine(checkRequestSource)
  .superRefine(checkContextCell)
  .meta({
    description:
      "What to run: the same fields as the library's ExecutionRequest; exactly one of code, cmd and codeUrl (with codeHash); code, stdin and files as bytes are { base64 }.",
  });

export const executeBodySchema = z
  .strictObject({
    request: wireRequestSchema,
    options: clientOptionsSchema.optional(),
    sessionId: sessionIdSchema.optional(),
  })
  .superRefine((body, ctx) => {
    // Contexts live in a session's sandbox: a cell without one has nowhere to run.
    if (body.request.context !== undefined && body.sessionId === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["sessionId"],
        message: "request.context runs a cell in a context of a session: send the sessionId the context was made in (POST /session/{id}/contexts)",
      });
    }
  });

export const putFileBodySchema = z.strictObject({
  sessionId: sessionIdSchema,
  path: z.string({ error: "expected a path inside /sandbox or /tmp" }).min(1, "expected a path inside /sandbox or /tmp"),
  content: base64Schema.meta({ description: "The file's bytes, base64." }),
});

export const getFileQuerySchema = z.strictObject({
  sessionId: sessionIdSchema,
  path: z.string({ error: "expected a path inside /sandbox or /tmp" }).min(1, "expected a path inside /sandbox or /tmp"),
});

export const cleanupBodySchema = z.strictObject({});

// ---------------------------------------------------------------- responses (documentation)

const resourceUsageSchema = z.object({ cpuTimeMs: z.number(), peakMemoryBytes: z.number(), networkBytesIn: z.number(), networkBytesOut: z.number() });
const networkLogSchema = z.object({
  timestamp: z.string(),
  method: z.string(),
  host: z.string(),
  path: z.string().nullable(),
  action: z.enum(["ALLOW", "BLOCK"]),
  reason: z.string().optional(),
  status: z.number().int().optional().meta({ description: "The HTTP status the proxy answered with or saw from upstream (403 for a blocked request)." }),
  error: z.string().optional().meta({ description: "Why an allowed request still failed upstream (name not found, connection refused)." }),
  durationMs: z.number(),
});

const richOutputSchema = z.object({
  type: z.string().meta({ description: "The mime type, e.g. image/png, text/html, application/json, text/markdown, text/plain." }),
  data: z.string().meta({ description: "base64 for binary images (image/* but image/svg+xml), the text otherwise; empty when omitted." }),
  result: z.literal(true).optional().meta({ description: "A form of a context cell's last expression's value, as a notebook shows it." }),
  truncated: z.literal(true).optional().meta({ description: "The output was left out (see omitted): data is empty." }),
  omitted: z.enum(["output-too-large", "total-too-large", "too-many", "read-abandoned"]).optional(),
  sizeBytes: z.number().optional(),
  limitBytes: z.number().optional(),
});

export const executionResultSchema = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exitCode: z.number().int(),
  durationMs: z.number(),
  truncated: z.boolean(),
  timedOut: z.boolean(),
  oomKilled: z.boolean(),
  executionId: z.string(),
  runtime: z.string(),
  timestamp: z.string(),
  containerId: z.string().optional(),
  files: z.record(z.string(), z.string()).optional().meta({ description: "base64 content of each requested outputPath that exists." }),
  omittedFiles: z
    .array(
      z.object({
        path: z.string(),
        sizeBytes: z.number(),
        limitBytes: z.number().optional(),
        reason: z.enum(["file-too-large", "total-too-large", "read-abandoned"]),
      }),
    )
    .optional()
    .meta({ description: "outputPaths that exist but were not sent back: past maxOutputFileSize or maxOutputFilesSize, or abandoned mid-read." }),
  outputs: z.array(richOutputSchema).optional().meta({
    description: "Rich outputs (display(), matplotlib figures) in the order the program made them; present for runtimes with display (python, node).",
  }),
  coldStart: z.boolean(),
  error: z
    .object({ name: z.string(), value: z.string(), traceback: z.array(z.string()) })
    .optional()
    .meta({ description: "A context cell's exception (the context survives it): its class, message and traceback." }),
  contextRestarted: z.boolean().optional().meta({
    description:
      "A context cell whose kernel had to start afresh (it ignored the interrupt after its time limit, or ended its interpreter): its state is gone.",
  }),
  resourceUsage: resourceUsageSchema.optional(),
  networkLogs: z.array(networkLogSchema).optional(),
  setup: z.object({ stdout: z.string(), stderr: z.string(), exitCode: z.number().int(), durationMs: z.number(), truncated: z.boolean() }).optional().meta({
    description:
      "With a setupScript: its output and exit code (stdout/stderr above are the code's alone). A non-zero exitCode means the code was not run: the result's exitCode is the setup's.",
  }),
});

const phaseSchema = z
  .enum(["setup", "code"])
  .optional()
  .meta({ description: "Which part wrote it: the request's setupScript or its code/cmd. Present only when the request has a setupScript." });

export const streamEventSchema = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("stdout"), data: z.string(), phase: phaseSchema }),
    z.object({ type: z.literal("stderr"), data: z.string(), phase: phaseSchema }),
    z.object({ type: z.literal("display"), data: z.string().meta({ description: "The output's mime type." }), output: richOutputSchema }),
    z.object({ type: z.literal("exit"), data: z.string(), result: executionResultSchema }),
    z.object({ type: z.literal("error"), data: z.string(), code: z.string().optional() }),
  ])
  .meta({ description: "One Server-Sent Event: `event: <type>` and `data: <this object as JSON>`." });

export const runtimesSchema = z
  .object({
    runtimes: z.array(
      z.object({
        name: z.string(),
        version: z.string().meta({ description: "The runtime image recipe's version." }),
        extensions: z.array(z.string()),
        packages: z.boolean().meta({ description: "Whether installPackages works in it." }),
        contexts: z.boolean().meta({ description: "Whether it has interpreter contexts (POST /session/{id}/contexts; cells that keep state)." }),
      }),
    ),
  })
  .meta({ description: "The runtimes registered with the server's engine." });

export const healthSchema = z.object({ status: z.enum(["ok", "starting", "unavailable", "draining"]), version: z.string(), ready: z.boolean() });

export const fileContentSchema = z.object({ content: z.string().meta({ description: "base64" }) });
export const okSchema = z.object({ ok: z.literal(true) });
export const cleanupResultSchema = z.object({ ok: z.literal(true), sessions: z.number().int() });

export type ExecuteBody = z.output<typeof executeBodySchema>;
export type ClientOptions = z.output<typeof clientOptionsSchema>;
export type ClientOptionsInput = z.input<typeof clientOptionsSchema>;
export type WireRequest = z.input<typeof wireRequestSchema>;
