// A fleet on one machine: `isol8 serve` nodes on loopback ports (the built CLI, sharing the one
// Docker engine) behind Debian's HAProxy running deploy/haproxy/haproxy.cfg. Used by
// deploy/test/load.mjs (the full load run) and test/integration/fleet.test.ts (the short one).
import { execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(REPO_ROOT, "packages/cli/dist/bin.js");
export const HAPROXY_CFG = join(REPO_ROOT, "deploy/haproxy/haproxy.cfg");
export const NGINX_CONF = join(REPO_ROOT, "deploy/nginx/isol8.conf");

/** A free TCP port on 127.0.0.1 (a node keeps its port across a restart, as HAProxy's config names it). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether Debian's haproxy is installed (scripts/bootstrap.sh installs it). */
export async function haproxyInstalled() {
  try {
    await run("haproxy", ["-v"]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `isol8 serve --node-id <id>` on 127.0.0.1:<port> with a JSON config in `dir` (the
 * server section merged over a fleet node's: drain delay, room for the load's sessions) and waits
 * for its "listening" line.
 */
export async function startNode({ id, port, dir, key, server = {}, wrap = [] }) {
  const config = join(dir, `${id}.config.json`);
  const limits = { drainDelayMs: 3_000, shutdownGraceMs: 20_000, maxSessionsPerTenant: 64, maxSessions: 64, ...server.limits };
  await writeFile(config, JSON.stringify({ server: { requestLog: false, ...server, limits } }));
  // `wrap`: a command the node runs under (e.g. unshare, for a PID namespace of its own).
  const argv = [process.execPath, CLI, "serve", "--port", String(port), "--node-id", id, "--config", config];
  const child = spawn(wrap[0] ?? argv[0], [...wrap.slice(1), ...(wrap.length ? argv : argv.slice(1))], {
    cwd: REPO_ROOT,
    env: { ...process.env, ISOL8_API_KEY: key },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk.toString()));
  const lines = [];
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line);
      lines.push(entry);
      if (entry.msg === "listening") resolve(entry);
    });
    void exited.then(({ code, signal }) => reject(new Error(`isol8 serve ${id} exited (${code ?? signal}) before listening: ${stderr}`)));
  });
  const ready = await listening;
  /** Signals the node's own process: under `wrap` (unshare --fork ignores SIGTERM) the wrapper's child. */
  const signal = async (name) => {
    if (wrap.length === 0) return void child.kill(name);
    const { stdout } = await run("pgrep", ["-P", String(child.pid)]);
    for (const pid of stdout.split("\n").filter(Boolean)) process.kill(Number(pid), name);
  };
  return { id, port, pid: child.pid, url: ready.url, child, exited, lines, stderr: () => stderr, signal };
}

/** deploy/haproxy/haproxy.cfg for these nodes: its bind and server lines rewritten, a stats page added (to see what HAProxy thinks of each node). */
export async function haproxyConfig({ port, statsPort, nodes }) {
  const text = await readFile(HAPROXY_CFG, "utf8");
  const servers = nodes.map((n) => `    server ${n.id} 127.0.0.1:${n.port}`).join("\n");
  let placed = new Set();
  const lines = [];
  let backend;
  for (const line of text.split("\n")) {
    if (/^backend\s/.test(line)) backend = line;
    if (/^\s+bind 127\.0\.0\.1:8080\s*$/.test(line)) {
      lines.push(`    bind 127.0.0.1:${port}`);
      continue;
    }
    if (/^\s+server\s/.test(line)) {
      if (!placed.has(backend)) lines.push(servers);
      placed.add(backend);
      continue;
    }
    lines.push(line);
  }
  if (placed.size !== 3) throw new Error(`expected server lines in 3 backends of ${HAPROXY_CFG}, found ${placed.size}`);
  lines.push("", "frontend stats", `    bind 127.0.0.1:${statsPort}`, "    stats enable", "    stats uri /stats", "    stats refresh 1s", "");
  return lines.join("\n");
}

/**
 * Starts a balancer in the foreground and resolves once `probeUrl` answers (any status): its
 * child, its exit, and what it wrote on stderr so far. Fails when it exits first or does not
 * answer within about 10 s, quoting its stderr.
 */
async function startBalancer(command, args, probeUrl) {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let written = "";
  child.stderr.on("data", (chunk) => (written += chunk.toString()));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  for (let i = 0; ; i++) {
    try {
      await fetch(probeUrl);
      break;
    } catch (error) {
      if (i > 100 || child.exitCode !== null) throw new Error(`${command} did not start: ${written || error}`, { cause: error });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { child, exited, stderr: () => written };
}

/** Runs HAProxy in the foreground (-db) with the fleet's config; resolves once it accepts connections. */
export async function startHaproxy({ dir, nodes, port, statsPort }) {
  port ??= await freePort();
  statsPort ??= await freePort();
  const cfg = join(dir, `haproxy-${port}.cfg`);
  await writeFile(cfg, await haproxyConfig({ port, statsPort, nodes }));
  await run("haproxy", ["-c", "-q", "-f", cfg]);
  const url = `http://127.0.0.1:${port}`;
  const statsUrl = `http://127.0.0.1:${statsPort}/stats;csv`;
  const { child, exited, stderr } = await startBalancer("haproxy", ["-db", "-f", cfg], statsUrl);
  return {
    url,
    child,
    exited,
    stderr,
    /** What HAProxy thinks of each node in each backend: "UP", "DOWN", "UP 1/2", ... by "backend/node". */
    async states() {
      const csv = await (await fetch(statsUrl)).text();
      const [header, ...rows] = csv.trim().split("\n");
      const cols = header.replace(/^# /, "").split(",");
      const at = (name) => cols.indexOf(name);
      const states = {};
      for (const row of rows) {
        const f = row.split(",");
        if (f[at("svname")] === "FRONTEND" || f[at("svname")] === "BACKEND") continue;
        states[`${f[at("pxname")]}/${f[at("svname")]}`] = f[at("status")];
      }
      return states;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * nginx (`nginx -g "daemon off;"`) with deploy/nginx/isol8.conf, its listen and server lines
 * rewritten for these nodes. nginx has no active health checks: no `states`.
 */
export async function startNginx({ dir, nodes, port }) {
  port ??= await freePort();
  const text = await readFile(NGINX_CONF, "utf8");
  const lines = [];
  let placed = 0;
  let inUpstream = false;
  for (const line of text.split("\n")) {
    if (/^upstream\s/.test(line)) inUpstream = true;
    if (inUpstream && /^}/.test(line)) inUpstream = false;
    if (/^\s+listen 127\.0\.0\.1:8080;/.test(line)) {
      lines.push(`    listen 127.0.0.1:${port};`);
      continue;
    }
    if (inUpstream && /^\s+server\s/.test(line)) {
      const options = line.replace(/^\s+server\s+\S+/, "").trim();
      if (!lines.at(-1)?.includes("server 127.0.0.1:")) {
        for (const n of nodes) lines.push(`    server 127.0.0.1:${n.port} ${options}`);
        placed++;
      }
      continue;
    }
    lines.push(line);
  }
  if (placed !== 3) throw new Error(`expected server lines in 3 upstreams of ${NGINX_CONF}, found ${placed}`);
  const site = join(dir, `nginx-site-${port}.conf`);
  await writeFile(site, lines.join("\n"));
  const main = join(dir, `nginx-${port}.conf`);
  await writeFile(
    main,
    `pid ${dir}/nginx-${port}.pid;\nerror_log ${dir}/nginx-${port}-error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  include ${site};\n}\n`,
  );
  await run("nginx", ["-t", "-q", "-c", main, "-p", dir]);
  const url = `http://127.0.0.1:${port}`;
  const { child, exited, stderr } = await startBalancer("nginx", ["-c", main, "-p", dir, "-g", "daemon off;"], `${url}/ready`);
  return {
    url,
    child,
    exited,
    stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGQUIT");
      await exited;
    },
  };
}

/** Resolves once every backend sees every named node as `state` ("UP" or "DOWN"). */
export async function waitForState(haproxy, ids, state, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await haproxy.states();
    const pending = Object.entries(states).filter(([key, s]) => ids.includes(key.split("/")[1]) && s !== state);
    if (pending.length === 0 && Object.keys(states).length > 0) return;
    if (Date.now() > deadline) throw new Error(`HAProxy did not see ${ids.join(", ")} ${state} within ${timeoutMs} ms: ${JSON.stringify(states)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Container ids (running or not) carrying isol8's owner-pid label for this process. */
export async function containersOfPid(pid) {
  const { stdout } = await run("docker", ["ps", "-aq", "--filter", `label=isol8.owner-pid=${pid}`]);
  return stdout.split("\n").filter(Boolean);
}

/** One POST /execute; the answer with the node that gave it (X-Isol8-Node). Never throws for an HTTP status; a transport failure is status 0. */
export async function execute(url, key, body, headers = {}) {
  try {
    const response = await fetch(`${url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, node: response.headers.get("x-isol8-node"), json, text };
  } catch (error) {
    return { status: 0, node: null, json: undefined, text: String(error?.cause ?? error) };
  }
}
