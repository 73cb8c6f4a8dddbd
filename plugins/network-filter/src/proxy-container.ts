/**
 * The proxy's sandbox (what it runs, locked down) and how the engine talks to it: its log
 * endpoint over HTTP from this process, or by exec inside the proxy when the egress network is
 * not reachable from here (Docker on another machine, or this process in a container).
 */
import { request } from "node:http";
import type { SandboxDriver, SandboxNetwork, SandboxSpec } from "@isol8/kit";
import { LOG_PORT, PLUGIN } from "./names.js";
import type { ProxyConfig } from "./proxy/types.js";
import { proxyScriptSource } from "./script.js";

/** The running proxy as the engine reaches it. */
export interface ProxyEndpoint {
  readonly driver: SandboxDriver;
  readonly id: string;
  /** Its address on the egress network (where its log endpoint listens). */
  readonly egressIp: string;
  /** Bearer token of its log endpoint. */
  readonly token: string;
}

/** The proxy's sandbox: the proxy program as nobody, read-only, no capability, bounded, never forwarding a packet. */
export function proxySandboxSpec(options: {
  image: string;
  /** Its egress side: Docker's egress network, or a policy driver's "egress". */
  network: SandboxNetwork;
  /** A policy driver's pod: one interface (nothing to forward between, and its sysctls are unsafe ones) and no capped restarts. */
  policy: boolean;
  config: ProxyConfig;
  labels: Record<string, string>;
  memoryLimit: number;
  cpuLimit: number;
  pidsLimit: number;
}): SandboxSpec {
  const heapMb = Math.max(32, Math.floor((options.memoryLimit / 1024 ** 2) * 0.6));
  return {
    image: options.image,
    command: ["node", `--max-old-space-size=${heapMb}`, "-e", proxyScriptSource(), JSON.stringify(options.config)],
    user: "65534:65534",
    workdir: "/",
    env: { NODE_ENV: "production" },
    labels: options.labels,
    attachStdio: false,
    init: true,
    readonlyRootFs: true,
    tmpfs: {},
    capabilities: [],
    noNewPrivileges: true,
    memoryBytes: options.memoryLimit,
    cpus: options.cpuLimit,
    pidsLimit: options.pidsLimit,
    seccomp: { kind: "default" },
    network: options.network,
    // The proxy sits on every sandbox's network: it must never route between them (the
    // sandboxes have no route to use it, but nothing should depend on that alone).
    ...(!options.policy && { sysctls: { "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0" }, restartOnFailure: 5 }),
    // The proxy's own diagnostics only (never a sandbox's output), capped.
    logs: "capped",
  };
}

/**
 * Polls the proxy's health endpoint until it answers: over HTTP from this process when it can
 * reach the egress network, else by exec. Fails at once when the proxy exits or restarts.
 */
export async function waitReady(proxy: ProxyEndpoint, timeoutMs: number): Promise<"http" | "exec"> {
  const deadline = Date.now() + timeoutMs;
  const started = Date.now();
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      await queryHttp(proxy, "/health", 1_000);
      return "http";
    } catch (error) {
      lastError = String(error);
    }
    const info = await proxy.driver.inspect(proxy.id);
    if (info && (!info.running || (info.restarts ?? 0) > 0)) {
      throw new Error(`${PLUGIN}: the proxy container exited${info.exitCode !== undefined ? ` (code ${info.exitCode})` : ""}: ${await proxyLogs(proxy)}`);
    }
    // Docker on another machine (DOCKER_HOST) or this process in a container: the egress
    // network is not reachable from here, so read through the proxy container instead. Only
    // once the proxy answers there, and HTTP still fails, is HTTP given up.
    if (Date.now() - started > 3_000) {
      try {
        await queryExec(proxy, "/health");
      } catch (error) {
        lastError = String(error);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        await queryHttp(proxy, "/health", 3_000);
        return "http";
      } catch {
        return "exec";
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${PLUGIN}: the proxy did not answer within ${timeoutMs} ms (${lastError}): ${await proxyLogs(proxy)}`);
}

/** Asks the log endpoint (GET a path, or POST one that changes its state) by the transport waitReady chose. */
export function queryProxy(proxy: ProxyEndpoint, transport: "http" | "exec", path: string, method: "GET" | "POST" = "GET"): Promise<string> {
  return transport === "http" ? queryHttp(proxy, path, 10_000, method) : queryExec(proxy, path, method);
}

function queryHttp(proxy: ProxyEndpoint, path: string, timeoutMs: number, method: "GET" | "POST" = "GET"): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: proxy.egressIp, port: LOG_PORT, path, method, headers: { authorization: `Bearer ${proxy.token}` }, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`log endpoint answered ${res.statusCode}`)),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`log endpoint ${proxy.egressIp}:${LOG_PORT} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

const EXEC_QUERY =
  'const [url, token, method] = process.argv.slice(1); require("node:http").request(url, { method, headers: { authorization: "Bearer " + token } }, (r) => { const b = []; r.on("data", (c) => b.push(c)); r.on("end", () => { process.stdout.write(Buffer.concat(b)); process.exit(r.statusCode === 200 ? 0 : 1); }); }).on("error", (e) => { process.stderr.write(String(e)); process.exit(1); }).end();';

async function queryExec(proxy: ProxyEndpoint, path: string, method: "GET" | "POST" = "GET"): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { exitCode } = await proxy.driver.exec(proxy.id, {
    argv: ["node", "-e", EXEC_QUERY, `http://${proxy.egressIp}:${LOG_PORT}${path}`, proxy.token, method],
    onOutput: (stream, chunk) => void (stream === "stdout" ? out : err).push(chunk),
  });
  if (exitCode !== 0) throw new Error(`log query in the proxy container failed (${exitCode}): ${Buffer.concat(err).toString().trim()}`);
  return Buffer.concat(out).toString();
}

/** The proxy's last lines of output, for an error message. */
async function proxyLogs(proxy: Pick<ProxyEndpoint, "driver" | "id">): Promise<string> {
  try {
    return (
      (await proxy.driver.logs(proxy.id, 20))
        .replace(/[\x00-\x08]/g, "")
        .trim()
        .slice(-2000) || "(no output)"
    );
  } catch {
    return "(logs unavailable)";
  }
}
