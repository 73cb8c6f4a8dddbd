import { DockerDriver, type EngineOptions, type Isol8Plugin } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { createServer, SERVER_LABELS, type Isol8Server, type RequestLogEntry, type ServerConfig } from "@isol8/server";

export const KEY_A = "tenant-a-key-0123456789";
export const KEY_B = "tenant-b-key-9876543210";

export interface TestServer {
  server: Isol8Server;
  url: string;
  logs: RequestLogEntry[];
  /** fetch against the server with tenant A's key (or the one given; null for none). */
  call(path: string, init?: RequestInit & { json?: unknown; key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

/** A real server on 127.0.0.1 (random port) with the python and bash runtimes and two tenants. */
export async function startTestServer(config: ServerConfig = {}, defaults: EngineOptions = {}, extraPlugins: Isol8Plugin[] = []): Promise<TestServer> {
  const logs: RequestLogEntry[] = [];
  const server = createServer({
    plugins: [pythonRuntime(), bashRuntime(), ...extraPlugins],
    defaults,
    config: { ...config, keys: [{ key: KEY_A, tenant: "alpha" }, { key: KEY_B, tenant: "beta" }, ...(config.keys ?? [])] },
    log: (entry) => logs.push(entry),
  });
  const { url } = await server.listen(0, "127.0.0.1");
  return {
    server,
    url,
    logs,
    call(path, init = {}) {
      const { json, key, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== null) headers.set("authorization", `Bearer ${key ?? KEY_A}`);
      if (json !== undefined) headers.set("content-type", "application/json");
      return fetch(`${url}${path}`, { ...rest, headers, ...(json !== undefined && { method: rest.method ?? "POST", body: JSON.stringify(json) }) });
    },
    async close() {
      await server.close({ graceMs: 5_000 });
    },
  };
}

/** Containers (running or not) that carry the server's label. */
export async function serverContainers(serverId: string, extra: Record<string, string> = {}): Promise<string[]> {
  const list = await new DockerDriver().listContainers({ [SERVER_LABELS.server]: serverId, ...extra });
  return list.map((c) => c.Id);
}

export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 15_000, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
