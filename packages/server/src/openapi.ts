import * as z from "zod";
import {
  clientOptionsSchema,
  wireRequestSchema,
  cleanupBodySchema,
  cleanupResultSchema,
  executeBodySchema,
  executionResultSchema,
  fileContentSchema,
  getFileQuerySchema,
  healthSchema,
  okSchema,
  putFileBodySchema,
  runtimesSchema,
  streamEventSchema,
} from "./schemas.js";
import { errorBodySchema, sessionsSchema } from "@isol8/kit";
import { CONTEXT_SCHEMAS, contextPaths } from "./context-openapi.js";

/**
 * The OpenAPI 3.1 document, generated from the zod schemas the server validates with. Request
 * bodies are described as the server accepts them (`io: "input"`: sizes as "512m" or bytes).
 */
export function openApiDocument(version: string): Record<string, unknown> {
  const registry = z.registry<{ id?: string }>();
  const named = {
    ExecutionRequest: wireRequestSchema,
    ClientOptions: clientOptionsSchema,
    ExecuteBody: executeBodySchema,
    PutFileBody: putFileBodySchema,
    GetFileQuery: getFileQuerySchema,
    CleanupBody: cleanupBodySchema,
    ExecutionResult: executionResultSchema,
    StreamEvent: streamEventSchema,
    Error: errorBodySchema,
    Health: healthSchema,
    Sessions: sessionsSchema,
    Runtimes: runtimesSchema,
    FileContent: fileContentSchema,
    Ok: okSchema,
    CleanupResult: cleanupResultSchema,
    ...CONTEXT_SCHEMAS,
  };
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const generated = z.toJSONSchema(registry, { io: "input", target: "draft-2020-12", uri: (id) => `#/components/schemas/${id}` });
  const schemas: Record<string, unknown> = {};
  for (const [id, schema] of Object.entries(generated.schemas)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as Record<string, unknown>;
    schemas[id] = rest;
  }
  const ref = (id: keyof typeof named) => ({ $ref: `#/components/schemas/${id}` });
  const json = (id: keyof typeof named) => ({ "application/json": { schema: ref(id) } });
  const error = (description: string) => ({ description, content: json("Error") });
  const common = {
    "400": error("Malformed JSON, a schema error, or a request over a policy ceiling (the field is named)"),
    "401": error("No Authorization: Bearer header"),
    "403": error("Unknown API key"),
    "413": error("Request body over the server's limit"),
    "429": error("Queue full (Retry-After says when to retry) or session limit reached"),
    "503": error("Shutting down, or Docker unavailable"),
    "504": error("The request's deadline passed"),
  };
  const querySchema = schemas.GetFileQuery as { properties: Record<string, unknown> };
  // The routing keys of a session behind a load balancer (session-routing.ts).
  const sessionHeaders = [
    {
      name: "X-Isol8-Session",
      in: "header",
      required: false,
      schema: { type: "string" },
      description:
        "The session, where a load balancer can hash on it (equal to the body's sessionId when both are given). With it, a session this node does not hold is 404 ISOL8_ERR_SESSION_NOT_FOUND (details: sessionId, node), never a new empty one.",
    },
    {
      name: "X-Isol8-Session-Create",
      in: "header",
      required: false,
      schema: { type: "string", enum: ["1", "true"] },
      description: "With X-Isol8-Session: this execution may create the session (RemoteIsol8 sends it until one succeeded).",
    },
  ];

  return {
    openapi: "3.1.0",
    info: { title: "isol8 server", version, description: "Runs untrusted code in locked-down containers. Authenticate with Authorization: Bearer <API key>." },
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    security: [{ bearer: [] }],
    paths: {
      "/health": {
        get: {
          summary: "Liveness and readiness (no auth)",
          security: [],
          responses: { "200": { description: "Ready", content: json("Health") }, "503": { description: "Not ready or draining", content: json("Health") } },
        },
      },
      "/ready": {
        get: {
          summary: "Readiness for load balancers (no auth): 503 while starting, Docker unavailable, the queue at server.limits.readyMaxQueue, or shutting down",
          security: [],
          responses: {
            "200": { description: "Ready: { ready: true, node, queued, readyMaxQueue }" },
            "503": { description: "Not ready: { ready: false, reason, node, ... }" },
          },
        },
      },
      "/execute": {
        post: {
          summary: "Run code and return the result",
          parameters: sessionHeaders,
          requestBody: { required: true, content: json("ExecuteBody") },
          responses: {
            "200": { description: "The execution's result (the program's own failure is a non-zero exitCode)", content: json("ExecutionResult") },
            "404": error("request.context: no such context in the session (ISOL8_ERR_CONTEXT_NOT_FOUND)"),
            ...common,
          },
        },
      },
      "/execute/stream": {
        post: {
          summary: "Run code, streaming its output as Server-Sent Events (one event per StreamEvent)",
          parameters: sessionHeaders,
          requestBody: { required: true, content: json("ExecuteBody") },
          responses: {
            "200": {
              description: "text/event-stream: `event: stdout|stderr|display|exit|error`, `data: <StreamEvent JSON>`",
              content: { "text/event-stream": { schema: ref("StreamEvent") } },
            },
            "404": error("request.context: no such context in the session (ISOL8_ERR_CONTEXT_NOT_FOUND)"),
            ...common,
          },
        },
      },
      "/execute/ws": {
        get: {
          summary: "Run code interactively over a WebSocket (upgrade): send the ExecuteBody first, then stdin chunks, stdin-end, kill",
          description:
            'Authenticate with `Authorization: Bearer <key>` or the subprotocols `isol8` and `isol8.key.<base64url key>`. Client messages: the ExecuteBody, then `{type:"stdin",data,encoding?:"base64"}`, `{type:"stdin-end"}`, `{type:"kill"}`. Server messages: StreamEvent JSON, as on /execute/stream, and `{type:"warning",reason}`.',
          responses: {
            "101": { description: "Switching Protocols: the WebSocket is open" },
            "426": { description: "Upgrade Required: a plain GET (how a client asks whether the server offers it)" },
            ...common,
          },
        },
      },
      "/file": {
        post: {
          summary: "Write a file into a session's container",
          requestBody: { required: true, content: json("PutFileBody") },
          responses: {
            "200": { description: "Written", content: json("Ok") },
            "404": error("No such session (of this tenant)"),
            "422": error("The file operation failed"),
            ...common,
          },
        },
        get: {
          summary: "Read a file from a session's container",
          parameters: Object.entries(querySchema.properties).map(([name, schema]) => ({ name, in: "query", required: true, schema })),
          responses: {
            "200": { description: "The file, base64", content: json("FileContent") },
            "404": error("No such session (of this tenant)"),
            "422": error("The file operation failed"),
            ...common,
          },
        },
      },
      "/runtimes": {
        get: { summary: "The runtimes code can run in", responses: { "200": { description: "Runtimes", content: json("Runtimes") }, ...common } },
      },
      "/sessions": {
        get: { summary: "The calling tenant's sessions", responses: { "200": { description: "Sessions", content: json("Sessions") }, ...common } },
      },
      "/session/{id}": {
        delete: {
          summary: "Stop one of the calling tenant's sessions and remove its container",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": { description: "Deleted", content: json("Ok") }, "404": error("No such session (of this tenant)"), ...common },
        },
      },
      ...contextPaths({ json, error, common }),
      "/cleanup": {
        post: {
          summary: "Stop every session of the calling tenant (never another tenant's; never images)",
          requestBody: { required: false, content: json("CleanupBody") },
          responses: { "200": { description: "Done", content: json("CleanupResult") }, ...common },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics (text exposition format)",
          responses: { "200": { description: "Metrics", content: { "text/plain": { schema: { type: "string" } } } } },
        },
      },
      "/openapi.json": { get: { summary: "This document (no auth)", security: [], responses: { "200": { description: "OpenAPI 3.1" } } } },
    },
  };
}
