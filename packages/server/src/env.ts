/** What the server's middleware puts on every request's Hono context, for the routes after it. */
export type ServerEnv = {
  Variables: { requestId: string; startedAt: number; tenant?: string; runtime?: string; sessionId?: string; deferLog?: boolean };
};
