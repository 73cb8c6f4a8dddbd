import * as z from "zod";
import { MIN_MEMORY_BYTES, parseSize } from "./sizes.js";

/** A size such as "512m" or a byte count; the output is bytes. */
export const sizeSchema = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: "custom", message: `expected a positive size such as "512m", "1g" or a byte count, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return bytes;
});

/** A memory limit: a size of at least Docker's minimum. */
export const memorySizeSchema = sizeSchema.refine((bytes) => bytes >= MIN_MEMORY_BYTES, "expected at least 6 MiB (Docker's minimum memory limit)");

const positiveMs = z
  .number({ error: "expected a number of milliseconds" })
  .int("expected a whole number of milliseconds")
  .positive("expected a positive number of milliseconds");

/** Paths inside the sandbox that files may be written to and read from. */
export const SANDBOX_DIR = "/sandbox";
export const WRITABLE_ROOTS = ["/sandbox", "/tmp"] as const;

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");

/** File content: a string (UTF-8) or bytes. */
const fileContent = z.union([z.string(), z.instanceof(Uint8Array)], { error: "expected a string or a Buffer/Uint8Array" });

/** Bytes: any Uint8Array (a Buffer too, whatever its backing ArrayBuffer). */
const bytesSchema = z.custom<Uint8Array>((value) => value instanceof Uint8Array);

/** Whether code (text or bytes) holds anything but whitespace. */
function hasCode(code: string | Uint8Array): boolean {
  return typeof code === "string" ? code.trim().length > 0 : code.some((byte) => byte !== 0x20 && (byte < 0x09 || byte > 0x0d));
}

/** The fields that say what runs: a request gives exactly one of them. */
export const SOURCE_FIELDS = ["code", "cmd", "codeUrl"] as const;

/**
 * The request's fields without the cross-field rules: the server extends it for the wire (code
 * as { base64 }) and applies `checkRequestSource` again, since zod cannot extend a refined object.
 */
export const executionRequestFields = z.strictObject({
  /** The source: a string (written as UTF-8) or bytes, written unchanged (a file's exact bytes). */
  code: z.union([z.string(), bytesSchema], { error: "expected the program's source code as a string" }).refine(hasCode, "expected non-empty code").optional(),
  /**
   * Instead of code: a shell command, run by bash in the runtime's image (its interpreter and
   * packages on PATH, the runtime's environment), e.g. "python3 -m pip list".
   */
  cmd: z
    .string({ error: "expected a shell command as a string" })
    .refine((cmd) => cmd.trim().length > 0, "expected a non-empty shell command")
    .optional(),
  /** Instead of code: a URL the engine's host fetches the code from (only when the operator enabled it); needs codeHash. */
  codeUrl: z.url({ error: "expected an http(s) URL", protocol: /^https?$/ }).optional(),
  /** The SHA-256 of the code at codeUrl (64 hex digits): checked before anything runs. */
  codeHash: z
    .string({ error: "expected a SHA-256 as 64 hex digits" })
    .regex(/^[0-9a-fA-F]{64}$/, "expected a SHA-256 as 64 hex digits")
    .optional(),
  /**
   * A bash script run before the code in the same sandbox, as the same user, with the same
   * environment and working directory; its output is the "setup" phase. A non-zero exit ends
   * the execution with that exit code, and the code is not run.
   */
  setupScript: z
    .string({ error: "expected a bash script as a string" })
    .refine((script) => script.trim().length > 0, "expected a non-empty bash script")
    .optional(),
  /**
   * The working directory of the program (and of setupScript): inside /sandbox or /tmp, relative
   * paths from /sandbox, no "..", never through a symbolic link; created when missing.
   */
  workdir: z.string({ error: "expected a directory path inside /sandbox or /tmp" }).min(1, "expected a directory path inside /sandbox or /tmp").optional(),
  runtime: z.string({ error: 'expected a runtime name such as "python"' }).min(1, 'expected a runtime name such as "python"'),
  timeoutMs: positiveMs.optional(),
  env: z.record(envName, z.string({ error: "expected a string value" })).optional(),
  fileExtension: z
    .string()
    .regex(/^\.[A-Za-z0-9]{1,10}$/, 'expected a file extension such as ".mjs"')
    .optional(),
  /** The program's standard input: a string (UTF-8) or bytes. */
  stdin: z.union([z.string(), bytesSchema], { error: "expected a string or a Buffer/Uint8Array" }).optional(),
  /**
   * How result.stdout/stderr and the stream events' data carry the output: "utf8" (default: text,
   * an invalid byte becomes U+FFFD) or "base64" (the program's exact bytes, base64; each stream
   * event's data is the base64 of its own bytes, decode each one before joining).
   */
  outputEncoding: z.enum(["utf8", "base64"], { error: 'expected "utf8" or "base64"' }).optional(),
  files: z.record(z.string(), fileContent).optional(),
  outputPaths: z.array(z.string()).optional(),
  installPackages: z.array(z.string()).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  /**
   * Runs `code` as the next cell of this interpreter context (createContext) instead of as a
   * program: a persistent engine or a session only.
   */
  context: z.string({ error: "expected a context id from createContext" }).min(1, "expected a context id from createContext").optional(),
});

/** Fields a context cell cannot take: a cell is code run by the context's kernel, nothing else. */
const NOT_IN_A_CELL = ["cmd", "codeUrl", "setupScript", "workdir", "stdin", "env", "fileExtension", "files", "outputPaths", "installPackages"] as const;

/**
 * A request runs exactly one of code, cmd and codeUrl, and codeUrl comes with its codeHash.
 * The issue sits at the field to change, naming the fields.
 */
export function checkRequestSource(request: { code?: unknown; cmd?: unknown; codeUrl?: unknown; codeHash?: unknown }, ctx: z.RefinementCtx): void {
  const given = SOURCE_FIELDS.filter((field) => request[field] !== undefined);
  if (given.length === 0) {
    ctx.addIssue({ code: "custom", path: ["code"], message: "expected exactly one of code, cmd or codeUrl: none was given" });
  } else if (given.length > 1) {
    ctx.addIssue({ code: "custom", path: [given[1]!], message: `expected exactly one of code, cmd or codeUrl: got ${given.join(" and ")}` });
  }
  if (request.codeUrl !== undefined && request.codeHash === undefined) {
    ctx.addIssue({ code: "custom", path: ["codeHash"], message: "expected the SHA-256 of the code at codeUrl (64 hex digits): codeUrl requires codeHash" });
  }
  if (request.codeHash !== undefined && request.codeUrl === undefined) {
    ctx.addIssue({ code: "custom", path: ["codeHash"], message: "codeHash is the hash of the code at codeUrl: expected codeUrl with it" });
  }
}

/** A context cell runs code alone: the fields a cell cannot take are refused, naming them. */
export function checkContextCell(request: Partial<Record<(typeof NOT_IN_A_CELL)[number] | "context", unknown>>, ctx: z.RefinementCtx): void {
  if (request.context === undefined) return;
  for (const field of NOT_IN_A_CELL) {
    if (request[field] === undefined) continue;
    const hint =
      field === "env" || field === "workdir" ? " (give it to createContext)" : field === "files" ? " (putFile writes into the sandbox the context shares)" : "";
    ctx.addIssue({ code: "custom", path: [field], message: `a context cell runs code alone: ${field} is not available with context${hint}` });
  }
}

export const executionRequestSchema = executionRequestFields.superRefine((request, ctx) => {
  checkRequestSource(request, ctx);
  checkContextCell(request, ctx);
});

export type ExecutionRequest = z.input<typeof executionRequestSchema>;
export type ValidatedRequest = z.output<typeof executionRequestSchema>;

export * from "./results.js";

/** A regular expression as a string: refused when it does not compile, naming the pattern. */
const regexString = z.string().superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch {
    ctx.addIssue({ code: "custom", message: `expected a valid regular expression, got ${JSON.stringify(pattern)}` });
  }
});

/** One host filter: a blacklist match blocks; a non-empty whitelist must match. */
export const hostFilterSchema = z.strictObject({
  whitelist: z.array(regexString).default([]),
  blacklist: z.array(regexString).default([]),
});

export const networkFilterSchema = hostFilterSchema.extend({
  /**
   * Outer filters a host must pass too (all of them). A server puts its operator's filter here
   * when a request brings its own, so a request can only narrow what the operator allows.
   */
  bounds: z.array(hostFilterSchema).optional(),
});

export const auditOptionsSchema = z.strictObject({
  sinks: z.array(z.string()).default([]),
  includeCode: z.boolean().default(false),
  includeOutput: z.boolean().default(false),
});

export const poolSizeSchema = z.union([
  z.number().int().nonnegative(),
  z.strictObject({ clean: z.number().int().nonnegative(), dirty: z.number().int().nonnegative() }),
]);

/** Where a file of a derived image may go: absolute, normalized, and outside what is a tmpfs at run time. */
const imageFilePath = z
  .string()
  .regex(/^\/(?!.*\/\.{1,2}(?:\/|$))(?!.*\/\/)[^\0]*[^/]$/, "expected an absolute path in the image, without '..', '.' or '//' (e.g. /opt/data/x.csv)")
  .refine(
    (p) => !/^\/(sandbox|tmp|run|proc|sys|dev)(\/|$)/.test(p),
    "expected a path outside /sandbox, /tmp, /run, /proc, /sys and /dev (tmpfs or kernel mounts at run time)",
  );

/**
 * An image derived from a runtime's: Debian packages, the runtime's packages (installed with its
 * installer's registries and CA), files and a setup script, built by `isol8 setup` (or `isol8 build`)
 * and tagged by a hash of this recipe. Engines select it with `image: "<name>"`.
 */
export const derivedImageSchema = z.strictObject({
  /** The runtime whose image this one starts from, e.g. "python". */
  runtime: z.string().min(1, "expected a runtime name, e.g. python"),
  /** Debian packages (apt-get install), optionally pinned: "jq" or "jq=1.6-2.1+deb12u1". */
  apt: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+:~-]+)?$/, "expected a Debian package name, e.g. jq or jq=1.6-2.1")).default([]),
  /** The runtime's packages (pip for python, npm for node, bun), checked against its installer's names. */
  packages: z.array(z.string().min(1)).default([]),
  /** Path in the image → a host file or directory (absolute, or relative to the working directory) or inline content. */
  files: z
    .record(imageFilePath, z.union([z.string().min(1), z.strictObject({ content: z.string(), mode: z.number().int().min(0).max(0o777).optional() })]))
    .default({}),
  /** bash run as root at build time (with -e), after packages and files. */
  setupScript: z.string().min(1).optional(),
  /** The build's network: "host" reaches registries on the host's loopback (e.g. a local index on 127.0.0.1). */
  buildNetwork: z.enum(["default", "host"], { error: 'expected "default" or "host"' }).default("default"),
});
export type DerivedImage = z.input<typeof derivedImageSchema>;
export type ResolvedDerivedImage = z.output<typeof derivedImageSchema>;

/** A host request.codeUrl may name: a host name or IP address, exactly; "*.example.com" for the names under example.com. */
const allowedHost = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$/,
    'expected a host name or address, e.g. "code.example.com", "*.example.com" or "10.0.0.5"',
  );

/**
 * Where request.codeUrl may fetch from. The engine's host fetches (never the sandbox), only when
 * enabled, only from allowHosts, never from a private, loopback or link-local address unless
 * allowPrivateAddresses, at most maxBytes within timeoutMs.
 */
export const codeUrlOptionsSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    allowHosts: z.array(allowedHost).default([]),
    maxBytes: sizeSchema.default(1024 ** 2),
    timeoutMs: positiveMs.default(10_000),
    allowPrivateAddresses: z.boolean().default(false),
  })
  .refine((policy) => !policy.enabled || policy.allowHosts.length > 0, {
    path: ["allowHosts"],
    message: "expected at least one host when codeUrl.enabled is true (an empty allow-list would refuse every URL)",
  });

export const engineOptionsSchema = z.strictObject({
  mode: z.enum(["ephemeral", "persistent"]).default("ephemeral"),
  /** The sandbox backend, by the name a plugin registered in `kit.drivers`: "docker" (the core's) or e.g. "kubernetes". */
  driver: z
    .string({ error: 'expected a driver name such as "docker" or "kubernetes"' })
    .min(1, 'expected a driver name such as "docker" or "kubernetes"')
    .default("docker"),
  network: z.string().min(1).default("none"),
  networkFilter: networkFilterSchema.optional(),
  cpuLimit: z.number({ error: "expected a number of CPUs" }).positive("expected a positive number of CPUs").default(1),
  memoryLimit: memorySizeSchema.default(512 * 1024 ** 2),
  pidsLimit: z.number().int().positive("expected a positive number of processes").default(64),
  readonlyRootFs: z.boolean().default(true),
  maxOutputSize: sizeSchema.default(1024 ** 2),
  /**
   * Bound on each file read back from a sandbox (an outputPath, getFile). A larger outputPath is
   * left out and listed in result.omittedFiles; getFile refuses it. Checked in the container, so
   * the file is never sent.
   */
  maxOutputFileSize: sizeSchema.default(10 * 1024 ** 2),
  /** Bound on all outputPaths of one execution together (files past it go to result.omittedFiles). */
  maxOutputFilesSize: sizeSchema.default(50 * 1024 ** 2),
  secrets: z.record(envName, z.string()).default({}),
  timeoutMs: positiveMs.default(30_000),
  /** A Docker image every runtime runs in, or the name of one of `images` (its runtime runs in it, the others in their own). */
  image: z.string().min(1).optional(),
  /** Derived images by name (lowercase letters, digits, ".", "_", "-"): built by `isol8 setup`, selected with `image`. */
  images: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "expected an image name of lowercase letters, digits, '.', '_' and '-'"), derivedImageSchema)
    .default({}),
  sandboxSize: sizeSchema.default(512 * 1024 ** 2),
  tmpSize: sizeSchema.default(256 * 1024 ** 2),
  debug: z.boolean().default(false),
  persist: z.boolean().default(false),
  /**
   * Each sandbox ends with this engine's process: when the engine's connection to it closes
   * (stop(), the process exiting or killed), its executor exits and the backend removes it, so
   * stop() closes the connections and returns without waiting for the removals. For one-shot
   * processes (the CLI's `run` sets it). Sandboxes of the exec launcher, and backends that cannot
   * (Kubernetes), are removed by the engine as before. Not with `persist`.
   */
  endWithProcess: z.boolean().default(false),
  logNetwork: z.boolean().default(false),
  security: z.strictObject({ seccomp: z.string().min(1).optional(), seccompProfile: z.unknown().optional() }).prefault({}),
  audit: auditOptionsSchema.optional(),
  poolStrategy: z.string().min(1).optional(),
  poolSize: poolSizeSchema.optional(),
  /**
   * The OCI runtime Docker runs the sandboxes with, e.g. "runsc" (gVisor: a user-space kernel
   * between the code and the host's kernel). It must be registered with the Docker engine.
   */
  ociRuntime: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected the name of an OCI runtime registered with Docker, e.g. "runsc"')
    .optional(),
  /** Measure CPU time, peak memory and network bytes of each execution (result.resourceUsage). */
  resourceUsage: z.boolean().default(false),
  /**
   * A PEM CA bundle on the host, given to package managers in the sandbox (installPackages), for
   * registries behind a proxy whose certificates the images do not trust.
   */
  caBundle: z.string().min(1).optional(),
  /**
   * How programs start in a container: "executor" (isol8's in-container executor: one round trip
   * per execution), "exec" (one Docker exec per execution), or "auto" (the executor when the image
   * carries one, i.e. the label isol8.executor, else exec). The env var ISOL8_LAUNCHER overrides "auto".
   */
  launcher: z.enum(["auto", "exec", "executor"], { error: 'expected "auto", "exec" or "executor"' }).default("auto"),
  /**
   * Start the runtime's interpreter between executions, so an execution skips its start-up
   * (runtimes with a warm start, e.g. python; executor images only). Each idle container then
   * holds one waiting interpreter. false: every execution starts its interpreter afresh.
   */
  warmStart: z.boolean().default(true),
  /** The operator's rules for request.codeUrl (code the engine's host fetches, pinned by codeHash): off by default. */
  codeUrl: codeUrlOptionsSchema.prefault({}),
});

export type EngineOptions = z.input<typeof engineOptionsSchema>;
export type ResolvedEngineOptions = z.output<typeof engineOptionsSchema>;

/** Renders a zod error as "path: message" lines, so the user sees which key is wrong. */
export function formatZodError(error: z.ZodError, prefix?: string): string {
  // zod reports a bad record key as "Invalid key in record" and keeps the key schema's own
  // message inside: show that one, at the key's path.
  const issues = error.issues.flatMap((issue): z.core.$ZodIssue[] =>
    issue.code === "invalid_key" ? issue.issues.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })) : [issue],
  );
  return issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p)))].filter(Boolean).join(".").replace(/\.\[/g, "[");
      return `${path || "(root)"}: ${issue.message}`;
    })
    .join("; ");
}
