/**
 * The filtered network through a real `isol8 serve`: a request's `networkFilter` may only narrow
 * the operator's (the operator's whitelist stays the outer bound and its blacklist always
 * applies), and one tenant's sandbox has no path to another's. All traffic stays on this machine:
 * two test sites on a network this file creates (the operator's egress network).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { httpGet as get } from "../../../test/helpers.js";
import { CLI, REPO_ROOT } from "./serve-process.js";

const run = promisify(execFile);
const KEY = "network-policy-key-0123456789";
/** A second tenant's key (the first key, from ISOL8_API_KEY, is tenant "default"). */
const OTHER_TENANT_KEY = "network-policy-other-tenant-9876543210";
const RUN = `${process.pid}-${Date.now()}`;
const LABEL = "isol8-test.network-policy";
const NET = `isol8-netpolicy-${RUN}`;
const IMAGE = "isol8/node:latest";

const docker = async (...args: string[]) => (await run("docker", args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();

/** A site answering JSON that names itself, on port 80. */
const SITE = `require("node:http").createServer((q, s) => s.end(JSON.stringify({ site: process.env.SITE, url: q.url }))).listen(80)`;

async function startSite(name: string, aliases: string[]): Promise<string> {
  const id = await docker(
    "run",
    "-d",
    "--name",
    `${NET}-${name}`,
    "--label",
    `${LABEL}=${RUN}`,
    "--network",
    NET,
    ...aliases.flatMap((alias) => ["--network-alias", alias]),
    "--read-only",
    "--cap-drop",
    "ALL",
    "--user",
    "65534:65534",
    "--security-opt",
    "no-new-privileges",
    "--memory",
    "64m",
    "-e",
    `SITE=${name}`,
    IMAGE,
    "node",
    "-e",
    SITE,
  );
  return docker("inspect", id, "--format", `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`);
}

interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/** `isol8 serve` with an .mjs config (plugin options need code), on a free loopback port. */
async function serveWith(dir: string, source: string): Promise<Served> {
  const config = join(dir, "isol8.config.mjs");
  await writeFile(config, source);
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--config", config], {
    cwd: REPO_ROOT,
    env: { ...process.env, ISOL8_API_KEY: KEY },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === "listening") resolve(entry.url!);
    });
    void exited.then((code) => reject(new Error(`isol8 serve exited (${code}) before listening: ${stderr}`)));
  });
  return { child, url, exited };
}

let dir: string;
let served: Served;
let allowedIp: string;
let otherIp: string;

beforeAll(async () => {
  await docker("network", "create", "--label", `${LABEL}=${RUN}`, NET);
  const subnet = await docker("network", "inspect", NET, "--format", "{{(index .IPAM.Config 0).Subnet}}");
  [allowedIp, otherIp] = await Promise.all([startSite("allowed", ["allowed.test", "blocked.test"]), startSite("other", ["other.test"])]);
  dir = await mkdtemp(join(tmpdir(), "isol8-network-policy-"));
  const cli = pathToFileURL(join(REPO_ROOT, "packages/cli/dist/index.js")).href;
  const filter = pathToFileURL(join(REPO_ROOT, "plugins/network-filter/dist/index.js")).href;
  // The operator opens the whole test network as an address range; its whitelist names two hosts, its blacklist one of them.
  served = await serveWith(
    dir,
    `import { defaultPlugins } from ${JSON.stringify(cli)};
import { networkFilter } from ${JSON.stringify(filter)};
export default {
  server: { keys: [{ key: ${JSON.stringify(OTHER_TENANT_KEY)}, tenant: "other" }] },
  plugins: defaultPlugins(networkFilter({ egressNetwork: ${JSON.stringify(NET)}, allowAddresses: [${JSON.stringify(subnet)}] })),
  defaults: { network: "filtered", networkFilter: { whitelist: ["^allowed\\\\.test$", "^blocked\\\\.test$"], blacklist: ["^blocked\\\\.test$"] }, poolSize: { clean: 0, dirty: 0 }, timeoutMs: 30000 },
};
`,
  );
});

/** The positive control: both sites listen and are routable on the test network (this process reaches a plain bridge by address). */
async function sitesAnswer(): Promise<void> {
  await expect.poll(() => get(`http://${allowedIp}/`).catch(String), { timeout: 15_000 }).toContain('"site":"allowed"');
  await expect.poll(() => get(`http://${otherIp}/`).catch(String), { timeout: 15_000 }).toContain('"site":"other"');
}

afterAll(async () => {
  if (served) {
    served.child.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    expect(await new DockerDriver().listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
  }
  const containers = (await docker("ps", "-aq", "--filter", `label=${LABEL}=${RUN}`)).split("\n").filter(Boolean);
  if (containers.length) await docker("rm", "-f", ...containers);
  await docker("network", "rm", NET);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Fetches each URL through the sandbox's proxy; answers [status, body] per URL. */
const FETCH = (urls: string[]) => `
import json, urllib.request, urllib.error
out = []
for url in ${JSON.stringify(urls)}:
    try:
        r = urllib.request.urlopen(url, timeout=15)
        out.append([r.status, r.read().decode()])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.read().decode()])
print(json.dumps(out))`;

async function execute(urls: string[], options: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${served.url}/execute`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ request: { runtime: "python", code: FETCH(urls) }, options }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function outcomes(body: Record<string, unknown>): [number, string][] {
  expect(body.exitCode, String(body.stderr)).toBe(0);
  return JSON.parse(String(body.stdout)) as [number, string][];
}

describe("a request's networkFilter narrows the operator's, never widens it", () => {
  test("whitelist ['.*'] in a request does not reach a host the operator did not allow; the allowed host still works", async () => {
    await sitesAnswer();
    const { status, body } = await execute(["http://allowed.test/", "http://other.test/", `http://${otherIp}/`], { networkFilter: { whitelist: [".*"] } });
    expect(status, JSON.stringify(body)).toBe(200);
    const [allowed, byName, byAddress] = outcomes(body);
    expect(allowed![0], allowed![1]).toBe(200);
    expect(JSON.parse(allowed![1])).toMatchObject({ site: "allowed" });
    expect(byName).toEqual([403, expect.stringContaining("other.test matches no whitelist rule")]);
    expect(byAddress).toEqual([403, expect.stringContaining(`${otherIp} matches no whitelist rule`)]);
  });

  test("an empty whitelist in a request keeps the operator's whitelist", async () => {
    await sitesAnswer();
    const { status, body } = await execute(["http://allowed.test/", `http://${otherIp}/`], { networkFilter: { whitelist: [] } });
    expect(status, JSON.stringify(body)).toBe(200);
    const [allowed, byAddress] = outcomes(body);
    expect(allowed![0], allowed![1]).toBe(200);
    expect(byAddress).toEqual([403, expect.stringContaining(`${otherIp} matches no whitelist rule`)]);
  });

  test("the operator's blacklist still applies when a request brings its own (empty) blacklist", async () => {
    await sitesAnswer();
    const { status, body } = await execute(["http://allowed.test/", "http://blocked.test/"], { networkFilter: { whitelist: [".*"], blacklist: [] } });
    expect(status, JSON.stringify(body)).toBe(200);
    const [allowed, blocked] = outcomes(body);
    expect(allowed![0], allowed![1]).toBe(200);
    expect(blocked).toEqual([403, expect.stringContaining("blocked.test matches blacklist rule /^blocked\\.test$/")]);
  });

  test("a request's blacklist narrows the operator's whitelist further", async () => {
    const { status, body } = await execute(["http://allowed.test/"], { networkFilter: { blacklist: ["allowed\\..*"] } });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(outcomes(body)).toEqual([[403, expect.stringContaining("allowed.test matches blacklist rule /allowed\\..*/")]]);
  });

  test("an operator-only field in a request's networkFilter is refused with 400 naming it", async () => {
    const { status, body } = await execute(["http://allowed.test/"], { networkFilter: { whitelist: [".*"], bounds: [{ whitelist: [".*"] }] } });
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: "ISOL8_ERR_POLICY", field: "options.networkFilter.bounds" });
  });
});

/** Listens on TCP 7000, proves from its own sandbox that the listener accepts on its address, then serves until cancelled. */
const LISTENER = `
import os, socket, urllib.parse, threading
proxy = urllib.parse.urlparse(os.environ["HTTP_PROXY"])
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((proxy.hostname, proxy.port))
me = probe.getsockname()[0]
server = socket.socket()
server.bind(("0.0.0.0", 7000))
server.listen(8)
def serve():
    while True:
        conn, peer = server.accept()
        conn.sendall(b"hello from the listener")
        conn.close()
threading.Thread(target=serve, daemon=True).start()
own = socket.create_connection((me, 7000), timeout=5).recv(100).decode()
print("READY", me, own, flush=True)
threading.Event().wait()
`;

describe("tenants' sandboxes on the filtered network", () => {
  test("one tenant's listener is unreachable from another tenant's sandbox, which still reaches the allowed host through the proxy", async () => {
    await sitesAnswer();
    const cancel = new AbortController();
    const stream = await fetch(`${served.url}/execute/stream`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ request: { runtime: "python", code: LISTENER } }),
      signal: cancel.signal,
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let stdout = "";
    let ready: RegExpExecArray | null = null;
    while (!ready) {
      const { done, value } = await reader.read();
      expect(done, text).toBe(false);
      text += decoder.decode(value, { stream: true });
      // Server-sent events: the listener's stdout arrives as "data: {type, data}" lines.
      const complete = text.lastIndexOf("\n\n");
      if (complete < 0) continue;
      for (const line of text.slice(0, complete + 2).split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const event = JSON.parse(line.slice(6)) as { type: string; data: string };
        expect(event.type, line).toBe("stdout");
        stdout += event.data;
      }
      text = text.slice(complete + 2);
      ready = /READY (\S+) (.*)\n/.exec(stdout);
    }
    const [, ip, own] = ready;
    // Positive control: the listener accepts connections on that address (from its own sandbox).
    expect(own).toBe("hello from the listener");

    const peer = `
import json, socket, urllib.request
out = {}
try:
    out["peer"] = "connected: " + socket.create_connection(("${ip}", 7000), timeout=5).recv(100).decode()
except TimeoutError:
    out["peer"] = "timed out"
except OSError as e:
    out["peer"] = "errno " + str(e.errno)
r = urllib.request.urlopen("http://allowed.test/from-other-tenant", timeout=15)
out["proxy"] = [r.status, json.loads(r.read())["site"]]
print(json.dumps(out))`;
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${OTHER_TENANT_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ request: { runtime: "python", code: peer } }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.exitCode, String(body.stderr)).toBe(0);
    const out = JSON.parse(String(body.stdout)) as { peer: string; proxy: [number, string] };
    // 101: network unreachable, 113: no route to host. Not "connected", not refused.
    expect(out.peer).toMatch(/^(timed out|errno 101|errno 113)$/);
    expect(out.proxy).toEqual([200, "allowed"]);
    cancel.abort();
    await expect(reader.read()).rejects.toThrow(/abort/i);
  });
});
