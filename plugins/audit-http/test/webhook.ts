import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AuditRecord } from "@isol8/kit";

export interface ReceivedBatch {
  at: number;
  headers: IncomingMessage["headers"];
  path: string;
  records: AuditRecord[];
}

export interface Webhook {
  url: string;
  port: number;
  batches: ReceivedBatch[];
  /** Every record received with a 2xx answer, in order. */
  accepted(): AuditRecord[];
  close(): Promise<void>;
  server: Server;
}

/**
 * A webhook on 127.0.0.1 for tests. `respond(batch, index)` answers request number `index`
 * (0-based): return a status (and headers), or "hang" to never answer.
 */
export async function startWebhook(
  respond: (batch: ReceivedBatch, index: number) => number | { status: number; headers?: Record<string, string> } | "hang" = () => 200,
): Promise<Webhook> {
  const batches: ReceivedBatch[] = [];
  const statuses: number[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const batch: ReceivedBatch = {
        at: Date.now(),
        headers: req.headers,
        path: req.url ?? "",
        records: (JSON.parse(Buffer.concat(chunks).toString()) as { records: AuditRecord[] }).records,
      };
      const index = batches.length;
      batches.push(batch);
      const answer = respond(batch, index);
      if (answer === "hang") {
        statuses.push(0);
        return;
      }
      const { status, headers } = typeof answer === "number" ? { status: answer, headers: {} } : answer;
      statuses.push(status);
      res.writeHead(status, { "content-type": "text/plain", ...headers }).end(status < 300 ? "ok" : "no");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/audit?source=test`,
    port,
    batches,
    server,
    accepted: () => batches.flatMap((b, i) => (statuses[i]! >= 200 && statuses[i]! < 300 ? b.records : [])),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens (a port that was just freed). */
export async function deadUrl(): Promise<string> {
  const hook = await startWebhook();
  await hook.close();
  return hook.url;
}
