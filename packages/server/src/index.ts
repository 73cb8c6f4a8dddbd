export {
  createServer,
  startServer,
  Isol8Server,
  VERSION,
  METADATA_TENANT,
  METADATA_REQUEST_ID,
  type ServerOptions,
  type StartServerOptions,
  type ShutdownReport,
  type RequestLogEntry,
} from "./server.js";
export { parseServerConfig, serverConfigSchema, policySchema, limitsSchema, apiKeySchema, type ServerConfig, type ResolvedServerConfig } from "./config.js";
export { KeyRing, type ApiKey } from "./auth.js";
export { applyPolicy, resolvePolicy, type Policy, type PolicyOutcome } from "./policy.js";
export { HttpError, PolicyError, statusOfCode, type ErrorBody, type ServerErrorCode } from "./errors.js";
export { SERVER_LABELS, labelsPlugin } from "./engines.js";
export { openApiDocument } from "./openapi.js";
export * from "./schemas.js";
