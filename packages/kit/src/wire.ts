import * as z from "zod";

/**
 * Shapes both ends of the HTTP API speak: `isol8 serve` answers with them (and documents them in
 * its OpenAPI), `RemoteIsol8` reads them. One definition, so the two cannot drift.
 */

/** The JSON body of every error response. */
export const errorBodySchema = z.object({
  error: z.string(),
  code: z.string().meta({ description: "Stable code: ISOL8_ERR_*" }),
  field: z.string().optional().meta({ description: "Path of the offending field." }),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  requestId: z.string().optional(),
});

export type ErrorBody = z.output<typeof errorBodySchema>;

/** One persistent session, as `GET /sessions` lists it. */
export const sessionInfoSchema = z.object({
  id: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string(),
  active: z.boolean(),
  executions: z.number().int(),
  runtime: z.string().optional(),
});

export type SessionInfo = z.output<typeof sessionInfoSchema>;

export const sessionsSchema = z.object({ sessions: z.array(sessionInfoSchema) });
