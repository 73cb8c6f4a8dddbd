import { contextInfoSchema, contextsSchema, createContextBodySchema } from "./context-schemas.js";

/** The context schemas /openapi.json names (components.schemas). */
export const CONTEXT_SCHEMAS = { CreateContextBody: createContextBodySchema, ContextInfo: contextInfoSchema, Contexts: contextsSchema };

type Helpers = {
  json: (id: "CreateContextBody" | "ContextInfo" | "Contexts" | "Ok") => unknown;
  error: (description: string) => unknown;
  common: Record<string, unknown>;
};

/** The context routes' part of /openapi.json's paths (contexts.ts). */
export function contextPaths({ json, error, common }: Helpers): Record<string, unknown> {
  const session = { name: "id", in: "path", required: true, schema: { type: "string" }, description: "The session (of the calling tenant)." };
  const context = { name: "contextId", in: "path", required: true, schema: { type: "string" }, description: "The id createContext answered." };
  const notFound = error("No such context in this session of the calling tenant (ISOL8_ERR_CONTEXT_NOT_FOUND; details.contextId)");
  return {
    "/session/{id}/contexts": {
      post: {
        summary:
          "Start an interpreter context in the session's sandbox (the session is made on first use); run cells with POST /execute(/stream) and request.context",
        parameters: [session],
        requestBody: { required: true, content: json("CreateContextBody") },
        responses: {
          "201": { description: "The context", content: json("ContextInfo") },
          "400": error("A schema error, a runtime without contexts (ISOL8_ERR_NOT_SUPPORTED), or a server that allows no contexts (ISOL8_ERR_POLICY)"),
          "429": error(
            "Over maxContextsPerSession or maxContextsPerTenant (ISOL8_ERR_SESSION_LIMIT, details.limit names it), the session caps, or a full queue",
          ),
          ...Object.fromEntries(Object.entries(common).filter(([status]) => status !== "400" && status !== "429")),
        },
      },
      get: {
        summary: "The session's interpreter contexts",
        parameters: [session],
        responses: { "200": { description: "Contexts", content: json("Contexts") }, "404": error("No such session (of this tenant)"), ...common },
      },
    },
    "/session/{id}/contexts/{contextId}": {
      delete: {
        summary: "End a context (its kernel and every process it started)",
        parameters: [session, context],
        responses: { "200": { description: "Deleted", content: json("Ok") }, "404": notFound, ...common },
      },
    },
    "/session/{id}/contexts/{contextId}/restart": {
      post: {
        summary: "Start the context's kernel afresh under the same id: every variable of it is gone",
        parameters: [session, context],
        responses: { "200": { description: "The context", content: json("ContextInfo") }, "404": notFound, ...common },
      },
    },
  };
}
