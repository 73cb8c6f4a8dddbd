/**
 * A request's `networkFilter` through a real `isol8 serve` may only narrow the operator's: the
 * operator's whitelist stays the outer bound and its blacklist always applies. All traffic stays
 * on this machine: two test sites on a network this file creates (the operator's egress network).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { CLI, REPO_ROOT } from "./serve-process.js";

const run = promisify(execFile);
const KEY = "network-policy-key-0123456789";
const RUN = `${process.pid}-${Date.now()}`;
const LABEL = "isol8-test.network-policy";
const NET = `isol8-netpolicy-${RUN}`;
const IMAGE = "isol8/node:latest";

const docker = async (...args: string[]) => (await run("docker", args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();

/** A site answering JSON that names itself, on port 80. */
const SITE = `require("node:http").createServer((q, s) => s.end(JSON.stringify({ site: process.env.SITE, url: q.url }))).listen(80)`;

async function startSite(name: string, aliases: string[]): Promise<string> {
  const id = await docker(
    "run", "-d", "--name", `${NET}-${name}`, "--label", `${LABEL}=${RUN}`, "--network", NET, ...aliases.flatMap((alias) => ["--network-alias", alias]),
    "--read-only", "--cap-drop", "ALL", "--user", "65534:65534", "--security-opt", "no-new-privileges", "--memory", "64m",
    "-e", `SITE=${name}`, IMAGE, "node", "-e", SITE,
  );
  return docker("inspect", id, "--format", `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`);
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 3_000, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
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
