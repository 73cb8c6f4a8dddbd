import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidRequestError } from "@isol8/core";
import { DockerIsol8, RemoteIsol8 } from "isol8";
import { serve, type Served } from "../../packages/server/test/serve-process.js";
import { containersOfProcesses, isol8Containers } from "../helpers.js";

// Code served by this test on 127.0.0.1; the engine's host fetches it (request.codeUrl).
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const program = (marker: string) => `open('/sandbox/${marker}', 'w').write('ran')\nprint('${marker} ran')\n`;
const MAX_BYTES = 1024;
/** 64 MiB of 1 KiB lines behind the oversize program. */
const OVERSIZE_CHUNKS = 64 * 1024;
const oversize = { finished: false, closed: false };

/** Requests the server answered, per path: proves whether a fetch happened at all. */
const hits = new Map<string, number>();
const openResponses = new Set<ServerResponse>();
let server: Server;
let base: string;

/** The persistent engine that may fetch from 127.0.0.1 and localhost (private addresses allowed). */
let engine: DockerIsol8;
/** Enabled with the same hosts, but private addresses refused (the default). */
let publicOnly: DockerIsol8;
/** Every codeUrl option at its default. */
let defaults: DockerIsol8;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? "";
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path.startsWith("/code/")) return res.end(program(path.slice("/code/".length)));
    if (path === "/oversize") {
      // No content-length (the bound must hold while reading, not only on the header), and far
      // more than any socket buffer: written as fast as the reader takes it.
      res.write(program("oversize-marker"));
      let left = OVERSIZE_CHUNKS;
      const pump = () => {
        while (left > 0 && !res.destroyed) {
          left--;
          if (!res.write(`#${"x".repeat(1023)}\n`)) return void res.once("drain", pump);
        }
        if (!res.destroyed) res.end();
      };
      res.on("finish", () => (oversize.finished = true));
      res.on("close", () => (oversize.closed = true));
      return pump();
    }
    if (path === "/never-ends") {
      // Headers and a first line, then nothing: the body never ends.
      openResponses.add(res);
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("print('slow ran')\n");
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const allowHosts = ["127.0.0.1", "localhost"];
  engine = new DockerIsol8({
    mode: "persistent",
    timeoutMs: 60_000,
    codeUrl: { enabled: true, allowHosts, allowPrivateAddresses: true, maxBytes: MAX_BYTES, timeoutMs: 3_000 },
  });
  publicOnly = new DockerIsol8({ poolSize: 0, codeUrl: { enabled: true, allowHosts } });
  defaults = new DockerIsol8({ poolSize: 0 });
  await Promise.all([engine.start(), publicOnly.start(), defaults.start()]);
});

afterAll(async () => {
  for (const res of openResponses) res.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const e of [engine, publicOnly, defaults]) {
    await e.stop();
    expect(await isol8Containers(e.id)).toEqual([]);
  }
});

/** Whether a file exists in the persistent engine's sandbox. */
async function exists(path: string): Promise<string> {
  const result = await engine.execute({ runtime: "python", code: `import os; print(os.path.exists(${JSON.stringify(path)}))` });
  return result.stdout.trim();
}

describe("request.codeUrl + codeHash", () => {
  test("code fetched by the host runs when its sha256 matches", async () => {
    const url = `${base}/code/ok-marker`;
    const result = await engine.execute({ runtime: "python", codeUrl: url, codeHash: sha256(program("ok-marker")) });
    expect(result).toMatchObject({ stdout: "ok-marker ran\n", exitCode: 0 });
    expect(hits.get("/code/ok-marker")).toBe(1);
    expect(await exists("/sandbox/ok-marker")).toBe("True");
  });

  test("a hash mismatch is an error showing both hashes, and nothing runs", async () => {
    const url = `${base}/code/mismatch-marker`;
    const actual = sha256(program("mismatch-marker"));
    const wrong = sha256("something else");
    const attempt = engine.execute({ runtime: "python", codeUrl: url, codeHash: wrong });
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(`request.codeHash: the code at ${url} has sha256 ${actual}, expected ${wrong}; nothing was run`);
    expect(hits.get("/code/mismatch-marker")).toBe(1); // it was fetched, then refused
    expect(await exists("/sandbox/mismatch-marker")).toBe("False");
    // Positive control: the same URL with the right hash writes the marker.
    const ok = await engine.execute({ runtime: "python", codeUrl: url, codeHash: actual });
    expect(ok.stdout).toBe("mismatch-marker ran\n");
    expect(await exists("/sandbox/mismatch-marker")).toBe("True");
  });

  test("disabled by default: refused naming request.codeUrl and the option, nothing fetched", async () => {
    const url = `${base}/code/disabled`;
    const attempt = defaults.execute({ runtime: "python", codeUrl: url, codeHash: sha256(program("disabled")) });
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(/^request\.codeUrl: fetching code from a URL is disabled on this engine .*codeUrl: \{ enabled: true/);
    expect(defaults.options.codeUrl).toMatchObject({ enabled: false, allowHosts: [], allowPrivateAddresses: false });
    expect(hits.get("/code/disabled")).toBeUndefined();
  });

  test("a host not on the allow-list is refused, nothing fetched", async () => {
    const narrow = new DockerIsol8({ poolSize: 0, codeUrl: { enabled: true, allowHosts: ["code.example.com"], allowPrivateAddresses: true } });
    try {
      const url = `${base}/code/not-listed`;
      const attempt = narrow.execute({ runtime: "python", codeUrl: url, codeHash: sha256(program("not-listed")) });
      await expect(attempt).rejects.toThrow(InvalidRequestError);
      await expect(attempt).rejects.toThrow('request.codeUrl: host "127.0.0.1" is not on this engine\'s allow-list (codeUrl.allowHosts: code.example.com)');
      expect(hits.get("/code/not-listed")).toBeUndefined();
    } finally {
      await narrow.stop();
    }
  });

  test("a private (loopback) address is refused without allowPrivateAddresses, after resolving the name; with it, the code runs", async () => {
    const port = (server.address() as AddressInfo).port;
    const byName = `http://localhost:${port}/code/private-marker`;
    const hash = sha256(program("private-marker"));
    const refused = publicOnly.execute({ runtime: "python", codeUrl: byName, codeHash: hash });
    await expect(refused).rejects.toThrow(InvalidRequestError);
    await expect(refused).rejects.toThrow(
      /^request\.codeUrl: "localhost" resolves to (127\.0\.0\.1|::1), a loopback address; .*codeUrl\.allowPrivateAddresses/,
    );
    const literal = publicOnly.execute({ runtime: "python", codeUrl: `${base}/code/private-marker`, codeHash: hash });
    await expect(literal).rejects.toThrow('request.codeUrl: "127.0.0.1" resolves to 127.0.0.1, a loopback address');
    expect(hits.get("/code/private-marker")).toBeUndefined();
    // Positive control: the same name and server with allowPrivateAddresses.
    const allowed = await engine.execute({ runtime: "python", codeUrl: byName, codeHash: hash });
    expect(allowed).toMatchObject({ stdout: "private-marker ran\n", exitCode: 0 });
    expect(hits.get("/code/private-marker")).toBe(1);
  });

  test("a body over maxBytes is refused (reading stops at the bound), and nothing runs", async () => {
    const attempt = engine.execute({ runtime: "python", codeUrl: `${base}/oversize`, codeHash: sha256("whatever") });
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(`request.codeUrl: ${base}/oversize sent over 1.0 KiB (codeUrl.maxBytes); nothing was run`);
    // The engine hung up: the server's 64 MiB response closed without finishing.
    await expect.poll(() => oversize.closed, { timeout: 30_000 }).toBe(true);
    expect(oversize.finished).toBe(false);
    expect(await exists("/sandbox/oversize-marker")).toBe("False");
  });

  test("a server that never ends the body is cut at codeUrl.timeoutMs", async () => {
    const attempt = engine.execute({ runtime: "python", codeUrl: `${base}/never-ends`, codeHash: sha256("print('slow ran')\n") });
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(`request.codeUrl: fetching ${base}/never-ends took over 3000 ms (codeUrl.timeoutMs); nothing was run`);
    expect(hits.get("/never-ends")).toBe(1);
  });

  test("codeUrl without codeHash is refused naming request.codeHash", async () => {
    const attempt = engine.execute({ runtime: "python", codeUrl: `${base}/code/no-hash` });
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(/request\.codeHash: expected the SHA-256 of the code at codeUrl/);
    expect(hits.get("/code/no-hash")).toBeUndefined();
  });

  test("enabling codeUrl with an empty allow-list is refused at construction, naming codeUrl.allowHosts", () => {
    expect(() => new DockerIsol8({ codeUrl: { enabled: true } })).toThrow(/codeUrl\.allowHosts: expected at least one host when codeUrl\.enabled is true/);
  });
});

describe("request.codeUrl through a real isol8 serve", () => {
  const KEY = "code-url-key";
  let dir: string;
  let served: Served;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-code-url-"));
    // The operator's rules live in the server's config; a client cannot send them.
    served = await serve(dir, KEY, { defaults: { codeUrl: { enabled: true, allowHosts: ["127.0.0.1"], allowPrivateAddresses: true } } });
  });
  afterAll(async () => {
    served.child.kill("SIGTERM");
    expect((await served.exited).code).toBe(0);
    expect(await containersOfProcesses([served.child.pid!])).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  test("the server's host fetches the code and runs it; a mismatch is refused showing both hashes, nothing run", async () => {
    const remote = new RemoteIsol8({ host: served.url, apiKey: KEY });
    const url = `${base}/code/served-marker`;
    const result = await remote.execute({ runtime: "python", codeUrl: url, codeHash: sha256(program("served-marker")) });
    expect(result).toMatchObject({ stdout: "served-marker ran\n", exitCode: 0 });
    expect(hits.get("/code/served-marker")).toBe(1);
    const wrong = sha256("not it");
    const mismatch = remote.execute({ runtime: "python", codeUrl: url, codeHash: wrong });
    await expect(mismatch).rejects.toThrow(InvalidRequestError);
    await expect(mismatch).rejects.toThrow(
      `request.codeHash: the code at ${url} has sha256 ${sha256(program("served-marker"))}, expected ${wrong}; nothing was run`,
    );
    expect(hits.get("/code/served-marker")).toBe(2);
  });

  test("a client cannot widen the operator's rules: options.codeUrl is refused (400)", async () => {
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        request: { runtime: "python", codeUrl: `${base}/code/widened`, codeHash: sha256(program("widened")) },
        options: { codeUrl: { enabled: true, allowHosts: ["localhost"] } },
      }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/options.*codeUrl/);
    expect(hits.get("/code/widened")).toBeUndefined();
  });
});
