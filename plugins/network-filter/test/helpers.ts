import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { expect } from "vitest";
import { CONTAINER_LABELS, DockerDriver, type ExecutionResult, type Isol8Engine } from "@isol8/core";
import { httpGet } from "../../../test/helpers.js";

export { httpGet };

const run = promisify(execFile);

/** Label on everything these tests create themselves, so cleanup removes exactly that. */
export const TEST_LABEL = "isol8-test.network-filter";
export const TEST_RUN = `${process.pid}-${Date.now()}`;
export const IMAGE = "isol8/node:latest";

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run("docker", args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

const FIXTURES = new URL("./fixtures/", import.meta.url);
export const TEST_CERT = readFileSync(new URL("testsite.crt", FIXTURES));
const TEST_KEY = readFileSync(new URL("testsite.key", FIXTURES));

/**
 * The test site: HTTP on 80 and HTTPS on 443 (a self-signed certificate for testsite.internal),
 * a UDP echo on 9999. It answers JSON naming the Host it saw, and GET /__seen lists every Host
 * header it has received, so a test can prove a request never reached it.
 */
const SERVER = `
const http = require("node:http"), https = require("node:https"), dgram = require("node:dgram");
const seen = [];
const handler = (req, res) => {
  if (req.url === "/__seen") { res.setHeader("content-type", "application/json"); return res.end(JSON.stringify(seen)); }
  seen.push(req.headers.host || "");
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ server: "testsite", host: req.headers.host, url: req.url, method: req.method, tls: !!req.socket.encrypted }));
};
http.createServer(handler).listen(80);
https.createServer({ cert: Buffer.from(process.env.CERT, "base64"), key: Buffer.from(process.env.KEY, "base64") }, handler).listen(443);
const udp = dgram.createSocket("udp4");
udp.on("message", (m, r) => udp.send(m, r.port, r.address));
udp.bind(9999);
console.log("testsite ready");
`;

export async function createTestNetwork(name: string, subnet?: string): Promise<{ name: string; subnet: string }> {
  await docker("network", "create", "--label", `${TEST_LABEL}=${TEST_RUN}`, ...(subnet ? ["--subnet", subnet] : []), name);
  const actual = await docker("network", "inspect", name, "--format", "{{(index .IPAM.Config 0).Subnet}}");
  return { name, subnet: actual };
}

export interface TestServer {
  id: string;
  /** Its address on the first network. */
  ip: string;
  seenHosts(): Promise<string[]>;
}

export async function startTestServer(name: string, network: string, aliases: string[]): Promise<TestServer> {
  const id = await docker(
    "run",
    "-d",
    "--name",
    name,
    "--label",
    `${TEST_LABEL}=${TEST_RUN}`,
    "--network",
    network,
    ...aliases.flatMap((a) => ["--network-alias", a]),
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--user",
    "65534:65534",
    "--memory",
    "128m",
    "--pids-limit",
    "64",
    "-e",
    `CERT=${TEST_CERT.toString("base64")}`,
    "-e",
    `KEY=${TEST_KEY.toString("base64")}`,
    IMAGE,
    "node",
    "-e",
    SERVER,
  );
  const ip = await docker("inspect", id, "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`);
  const server: TestServer = {
    id,
    ip,
    seenHosts: async () => JSON.parse(await httpGet(`http://${ip}/__seen`)) as string[],
  };
  // Ready when it answers (this process reaches a normal bridge network by address).
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await httpGet(`http://${ip}/__seen`);
      return server;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`test server did not start: ${String(error)}: ${await docker("logs", id).catch(() => "")}`, { cause: error });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs a program in a throwaway container on a network (not a sandbox: the "direct" positive controls). */
export async function runOn(network: string, image: string, argv: string[], extra: string[] = []): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run("docker", ["run", "--rm", "--label", `${TEST_LABEL}=${TEST_RUN}`, "--network", network, ...extra, image, ...argv], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, code: 0 };
  } catch (error) {
    return { stdout: String((error as { stdout?: string }).stdout ?? ""), code: Number((error as { code?: number }).code ?? 1) };
  }
}

/** Removes every container and network these tests created (by label), containers first. */
export async function removeTestResources(): Promise<void> {
  const containers = (await docker("ps", "-aq", "--filter", `label=${TEST_LABEL}=${TEST_RUN}`)).split("\n").filter(Boolean);
  if (containers.length) await docker("rm", "-f", ...containers);
  const networks = (await docker("network", "ls", "-q", "--filter", `label=${TEST_LABEL}=${TEST_RUN}`)).split("\n").filter(Boolean);
  for (const network of networks) await docker("network", "rm", network).catch(() => undefined);
}

/** Containers and networks carrying an engine's id label. */
export async function engineLeftovers(engineId: string): Promise<{ containers: string[]; networks: string[] }> {
  const driver = new DockerDriver();
  const containers = (await driver.listContainers({ [CONTAINER_LABELS.engine]: engineId })).map((c) => c.Id);
  const byLabel = await driver.docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.engine}=${engineId}`] } });
  const byName = await driver.docker.listNetworks({ filters: { name: [engineId] } });
  return { containers, networks: [...new Set([...byLabel, ...byName].map((n) => n.Name))] };
}

/**
 * Runs a python probe: `prelude` (helper functions), then `body`, which fills the dict `out`;
 * expects exit 0 and returns the result and `out` (printed as the last line of JSON). The test
 * certificate's CA is in the env as CA.
 */
export async function pythonProbe(target: Isol8Engine, prelude: string, body: string): Promise<{ result: ExecutionResult; out: Record<string, unknown> }> {
  const result = await target.execute({ runtime: "python", code: `${prelude}\nout = {}\n${body}\nprint(json.dumps(out))`, env: { CA: TEST_CERT.toString() } });
  expect(result.exitCode, result.stderr).toBe(0);
  return { result, out: JSON.parse(result.stdout.trim().split("\n").at(-1)!) as Record<string, unknown> };
}
