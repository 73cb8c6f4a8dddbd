import { createHash } from "node:crypto";
import { ConfigError, formatBytes, type EngineOptions, type ExecutionRequest, type ResolvedEngineOptions } from "@isol8/kit";
import type * as z from "zod";
import type { policySchema } from "./config.js";
import { PolicyError } from "./errors.js";
import type { ClientOptions, ExecuteBody } from "./schemas.js";

/** The ceilings in force, every one resolved (a ceiling not configured is the engine default). */
export interface Policy {
  maxMemory: number;
  maxCpu: number;
  maxPids: number;
  maxTimeoutMs: number;
  maxOutputSize: number;
  maxSandboxSize: number;
  maxTmpSize: number;
  networks: string[];
  seccompModes: string[];
  /** undefined: every registered runtime. */
  runtimes?: string[];
  /** Interpreter contexts one session may hold (0: none). */
  maxContextsPerSession: number;
  /** Interpreter contexts one tenant may hold over its sessions. */
  maxContextsPerTenant: number;
}

/** Context counts when the config sets none. */
export const DEFAULT_MAX_CONTEXTS_PER_SESSION = 8;
export const DEFAULT_MAX_CONTEXTS_PER_TENANT = 16;

type PolicyInput = z.output<typeof policySchema>;

/**
 * Resolves the ceilings against the engine defaults. A default above its own ceiling is a config
 * error: the server would otherwise hand every client more than it allows any client to ask for.
 */
export function resolvePolicy(input: PolicyInput, defaults: ResolvedEngineOptions, defaultSeccomp: string | undefined): Policy {
  const policy: Policy = {
    maxMemory: input.maxMemory ?? defaults.memoryLimit,
    maxCpu: input.maxCpu ?? defaults.cpuLimit,
    maxPids: input.maxPids ?? defaults.pidsLimit,
    maxTimeoutMs: input.maxTimeoutMs ?? defaults.timeoutMs,
    maxOutputSize: input.maxOutputSize ?? defaults.maxOutputSize,
    maxSandboxSize: input.maxSandboxSize ?? defaults.sandboxSize,
    maxTmpSize: input.maxTmpSize ?? defaults.tmpSize,
    networks: input.networks ?? [defaults.network],
    seccompModes: input.seccompModes ?? (defaultSeccomp ? [defaultSeccomp] : []),
    ...(input.runtimes && { runtimes: input.runtimes }),
    maxContextsPerSession: input.maxContextsPerSession ?? DEFAULT_MAX_CONTEXTS_PER_SESSION,
    maxContextsPerTenant: input.maxContextsPerTenant ?? DEFAULT_MAX_CONTEXTS_PER_TENANT,
  };
  const check = (ceiling: string, value: number, limit: number, option: string, format: (n: number) => string = String) => {
    if (value > limit)
      throw new ConfigError(`Invalid isol8 config: server.policy.${ceiling} (${format(limit)}) is below defaults.${option} (${format(value)})`);
  };
  check("maxMemory", defaults.memoryLimit, policy.maxMemory, "memoryLimit", formatBytes);
  check("maxCpu", defaults.cpuLimit, policy.maxCpu, "cpuLimit");
  check("maxPids", defaults.pidsLimit, policy.maxPids, "pidsLimit");
  check("maxTimeoutMs", defaults.timeoutMs, policy.maxTimeoutMs, "timeoutMs");
  check("maxOutputSize", defaults.maxOutputSize, policy.maxOutputSize, "maxOutputSize", formatBytes);
  check("maxSandboxSize", defaults.sandboxSize, policy.maxSandboxSize, "sandboxSize", formatBytes);
  check("maxTmpSize", defaults.tmpSize, policy.maxTmpSize, "tmpSize", formatBytes);
  return policy;
}

export interface PolicyOutcome {
  /** The request for the engine: files decoded, the options' timeout applied. */
  request: ExecutionRequest;
  /** The client's options that differ from the defaults (what the engine must be built with). */
  overrides: EngineOptions;
  /** Identifies the overrides: equal options share an engine. "" is the defaults. */
  profile: string;
}

const ceilingError = (field: string, asked: number, limit: number, format: (n: number) => string = String) =>
  new PolicyError(field, `${format(asked)} is over this server's limit of ${format(limit)}; ask for less`);

/**
 * Applies the server's ceilings to one request: a request may ask for less, never more. Anything
 * over a ceiling, or a network, seccomp mode or runtime the server does not allow, is refused
 * naming the field; nothing is silently widened or clamped.
 */
export function applyPolicy(
  body: Pick<ExecuteBody, "request" | "options">,
  policy: Policy,
  defaults: ResolvedEngineOptions,
  context: { defaultSeccomp: string | undefined; isRegisteredRuntime: (name: string) => boolean },
): PolicyOutcome {
  const options: ClientOptions = body.options ?? {};
  const wire = body.request;

  if (options.timeoutMs !== undefined && options.timeoutMs > policy.maxTimeoutMs)
    throw ceilingError("options.timeoutMs", options.timeoutMs, policy.maxTimeoutMs);
  if (wire.timeoutMs !== undefined && wire.timeoutMs > policy.maxTimeoutMs) throw ceilingError("request.timeoutMs", wire.timeoutMs, policy.maxTimeoutMs);
  if (options.memoryLimit !== undefined && options.memoryLimit > policy.maxMemory)
    throw ceilingError("options.memoryLimit", options.memoryLimit, policy.maxMemory, formatBytes);
  if (options.cpuLimit !== undefined && options.cpuLimit > policy.maxCpu) throw ceilingError("options.cpuLimit", options.cpuLimit, policy.maxCpu);
  if (options.pidsLimit !== undefined && options.pidsLimit > policy.maxPids) throw ceilingError("options.pidsLimit", options.pidsLimit, policy.maxPids);
  if (options.maxOutputSize !== undefined && options.maxOutputSize > policy.maxOutputSize) {
    throw ceilingError("options.maxOutputSize", options.maxOutputSize, policy.maxOutputSize, formatBytes);
  }
  if (options.sandboxSize !== undefined && options.sandboxSize > policy.maxSandboxSize) {
    throw ceilingError("options.sandboxSize", options.sandboxSize, policy.maxSandboxSize, formatBytes);
  }
  if (options.tmpSize !== undefined && options.tmpSize > policy.maxTmpSize)
    throw ceilingError("options.tmpSize", options.tmpSize, policy.maxTmpSize, formatBytes);
  if (options.network !== undefined && !policy.networks.includes(options.network)) {
    throw new PolicyError(
      "options.network",
      `network mode "${options.network}" is not allowed by this server (allowed: ${policy.networks.join(", ") || "none may be chosen"})`,
    );
  }
  const seccomp = options.security?.seccomp;
  if (seccomp !== undefined && !policy.seccompModes.includes(seccomp)) {
    throw new PolicyError(
      "options.security.seccomp",
      `seccomp mode "${seccomp}" is not allowed by this server (allowed: ${policy.seccompModes.join(", ") || "none may be chosen"})`,
    );
  }
  if (policy.runtimes && !policy.runtimes.includes(wire.runtime) && context.isRegisteredRuntime(wire.runtime)) {
    throw new PolicyError("request.runtime", `runtime "${wire.runtime}" is not allowed by this server (allowed: ${policy.runtimes.join(", ")})`);
  }
  if (options.networkFilter?.bounds?.length) {
    throw new PolicyError(
      "options.networkFilter.bounds",
      "bounds are set by this server's operator (its filter bounds every request's); send whitelist and blacklist only",
    );
  }

  // Only what differs from the defaults shapes an engine: a client repeating a default shares the main one.
  const resolvedDefault: Record<string, unknown> = {
    memoryLimit: defaults.memoryLimit,
    cpuLimit: defaults.cpuLimit,
    pidsLimit: defaults.pidsLimit,
    maxOutputSize: defaults.maxOutputSize,
    sandboxSize: defaults.sandboxSize,
    tmpSize: defaults.tmpSize,
    network: defaults.network,
    networkFilter: defaults.networkFilter,
    secrets: defaults.secrets,
    logNetwork: defaults.logNetwork,
    resourceUsage: defaults.resourceUsage,
  };
  const overrides: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === "timeoutMs" || value === undefined) continue;
    if (key === "security") {
      const mode = (value as { seccomp?: string }).seccomp;
      if (mode !== undefined && mode !== (defaults.security.seccomp ?? context.defaultSeccomp)) overrides.security = { ...defaults.security, seccomp: mode };
      continue;
    }
    if (key === "networkFilter") {
      const narrowed = narrowNetworkFilter(value as NetworkFilter, defaults.networkFilter);
      if (narrowed) overrides.networkFilter = narrowed;
      continue;
    }
    if (key === "secrets" && Object.keys(value as object).length === 0 && Object.keys(defaults.secrets).length === 0) continue;
    if (canonical(value) !== canonical(resolvedDefault[key])) overrides[key] = value;
  }
  if (overrides.secrets) overrides.secrets = { ...defaults.secrets, ...(overrides.secrets as Record<string, string>) };

  const { files, code, stdin, ...rest } = wire;
  const bytes = (content: string | { base64: string }) => (typeof content === "string" ? content : Buffer.from(content.base64, "base64"));
  const request: ExecutionRequest = {
    ...rest,
    ...(code !== undefined && { code: bytes(code) }),
    ...(stdin !== undefined && { stdin: bytes(stdin) }),
    ...(wire.timeoutMs === undefined && options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...(files && {
      files: Object.fromEntries(Object.entries(files).map(([path, content]) => [path, bytes(content)])),
    }),
  };
  return { request, overrides: overrides as EngineOptions, profile: profileKey(overrides) };
}

type NetworkFilter = NonNullable<ResolvedEngineOptions["networkFilter"]>;

/**
 * A request's networkFilter inside the operator's: the operator's filter (and its own bounds)
 * become bounds that every host must pass too, so a request can narrow (its whitelist and
 * blacklist apply as well) but never widen (its `.*` or empty whitelist allows nothing the
 * operator's does not). undefined when the request adds no rule (the operator's filter as is).
 */
function narrowNetworkFilter(requested: NetworkFilter, operator: NetworkFilter | undefined): NetworkFilter | undefined {
  if (requested.whitelist.length === 0 && requested.blacklist.length === 0) return undefined;
  const bounds = operator
    ? [{ whitelist: operator.whitelist, blacklist: operator.blacklist }, ...(operator.bounds ?? [])].filter(
        (b) => b.whitelist.length > 0 || b.blacklist.length > 0,
      )
    : [];
  return { whitelist: requested.whitelist, blacklist: requested.blacklist, bounds };
}

/** JSON with sorted keys, so equal options give equal text. */
function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
        : v,
    ) ?? "undefined"
  );
}

/** The overrides as a key; secrets enter it hashed. */
function profileKey(overrides: Record<string, unknown>): string {
  if (Object.keys(overrides).length === 0) return "";
  const { secrets, ...rest } = overrides;
  return canonical({ ...rest, ...(secrets !== undefined && { secrets: createHash("sha256").update(canonical(secrets)).digest("hex") }) });
}
