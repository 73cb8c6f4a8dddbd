import * as z from "zod";
import { clientOptionsSchema } from "./schemas.js";

/**
 * The wire format of interpreter contexts (the kit's contexts.ts) under a session: the body of
 * POST /session/{id}/contexts and what the context routes answer. GET /openapi.json documents
 * them from these same schemas.
 */

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");

/** A context id as a path segment: what createContext answered (ids are the engine's; this only bounds their shape). */
export const CONTEXT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export const createContextBodySchema = z
  .strictObject({
    runtime: z
      .string({ error: "expected the name of a runtime that has contexts (GET /runtimes: contexts: true)" })
      .min(1, "expected the name of a runtime that has contexts (GET /runtimes: contexts: true)"),
    cwd: z
      .string({ error: "expected a directory inside /sandbox or /tmp" })
      .min(1, "expected a directory inside /sandbox or /tmp")
      .optional()
      .meta({ description: "The kernel's working directory, inside /sandbox or /tmp (default /sandbox)." }),
    env: z
      .record(envName, z.string({ error: "expected the variable's value as a string" }))
      .optional()
      .meta({ description: "Environment of the kernel (over the runtime's)." }),
    options: clientOptionsSchema.optional().meta({
      description:
        "The session's engine options: made with these on first use (as POST /execute with a sessionId); an existing session needs the same ones or none.",
    }),
  })
  .meta({ description: "Starts an interpreter context in the session's sandbox (the session is made on first use)." });

export const CREATE_CONTEXT_KEYS = Object.keys(createContextBodySchema.shape);

export const contextInfoSchema = z
  .object({
    id: z.string().meta({ description: "Send it as request.context (with the sessionId) to run a cell in this context." }),
    runtime: z.string(),
    cwd: z.string().meta({ description: "The kernel's working directory." }),
    createdAt: z.string().meta({ description: "ISO time of the context's creation." }),
    cells: z.number().int().meta({ description: "Cells run in it (over restarts)." }),
    restarts: z.number().int().meta({ description: "Times its kernel was started afresh (restart, a kill after an interrupt, an exit)." }),
  })
  .meta({ description: "An interpreter context of a session." });

export const contextsSchema = z.object({ contexts: z.array(contextInfoSchema) }).meta({ description: "The session's interpreter contexts." });

export type CreateContextBody = z.output<typeof createContextBodySchema>;
