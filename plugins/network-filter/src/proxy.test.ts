/**
 * The proxy itself, run in this process on loopback (no container): the protocol handling that
 * the integration tests then prove again through Docker. Upstreams listen on 127.0.0.2, which the
 * proxy reaches only because an operator range (allowAddresses) covers it (loopback is otherwise refused).
 */
import * as crypto from "node:crypto";
import * as dns from "node:dns";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runProxy, type ProxyConfig, type ProxyLogRecord, type RunningProxy } from "./proxy-script.js";
import { proxyScriptSource } from "./script.js";

const FIXTURES = new URL("../test/fixtures/", import.meta.url);
const cert = readFileSync(new URL("testsite.crt", FIXTURES));
const key = readFileSync(new URL("testsite.key", FIXTURES));
const UPSTREAM = "127.0.0.2";

let httpUpstream: http.Server;
let tlsUpstream: tls.Server;
let httpPort: number;
let tlsPort: number;
const seen: { host?: string; url?: string; method?: string }[] = [];

let proxy: RunningProxy;
let open: RunningProxy;

function baseConfig(overrides: Partial<ProxyConfig>): ProxyConfig {
  return {
    whitelist: [],
    blacklist: [],
    bounds: [],
    ports: [httpPort, tlsPort],
    proxyPort: 0,
    logPort: 0,
    proxySubnets: ["127.0.0.1/32"],
    sandboxSubnets: [],
    logSubnets: ["127.0.0.1/32"],
    registeredClients: false,
    token: "t0ken",
    ringSize: 100,
    maxConnectionsPerClient: 8,
    connectTimeoutMs: 2_000,
    idleTimeoutMs: 10_000,
    inspectTunnels: true,
    dnsCacheMs: 0,
    allowAddresses: [`${UPSTREAM}/32`],
    hosts: { "site.test": [UPSTREAM], "blocked.test": [UPSTREAM], "evil.test": ["127.0.0.3"], "other.test": [UPSTREAM] },
    ...overrides,
  };
}

const listenOn = (server: net.Server) =>
  new Promise<number>((resolve) => server.listen(0, UPSTREAM, () => resolve((server.address() as net.AddressInfo).port)));

beforeAll(async () => {
  httpUpstream = http.createServer((req, res) => {
    seen.push({ host: req.headers.host, url: req.url, method: req.method });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ host: req.headers.host, url: req.url, via: "upstream" }));
  });
  tlsUpstream = tls.createServer({ cert, key }, (socket) => {
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nover-tls\n"));
  });
  httpPort = await listenOn(httpUpstream);
  tlsPort = await listenOn(tlsUpstream);
  proxy = await runProxy(baseConfig({ whitelist: ["site\\.test", "blocked\\.test", "evil\\.test", "127\\.0\\.0\\.1"], blacklist: ["blocked\\.test"] }), {
    http,
    net,
    dns,
    os,
    crypto,
  });
  open = await runProxy(baseConfig({ whitelist: [".*"], blacklist: ["blocked\\.test"], allowAddresses: [] }), { http, net, dns, os, crypto });
});

afterAll(async () => {
  await Promise.all([proxy?.close(), open?.close()]);
  httpUpstream?.closeAllConnections();
  await new Promise((r) => httpUpstream?.close(r));
  await new Promise((r) => tlsUpstream?.close(r));
});

/** Sends raw bytes to a proxy and returns everything it answers until it closes (or a timeout). */
function raw(p: RunningProxy, data: string | Buffer, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(p.proxyPort, p.proxyAddress);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("data", (c) => chunks.push(c));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.on("error", () => undefined);
    socket.write(data);
  });
}

function get(p: RunningProxy, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A proxy client sends the target's authority as Host (as curl, urllib and undici do).
    const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(url)?.[1];
    const all = { ...(authority ? { host: authority } : {}), ...headers };
    const req = http.request({ host: p.proxyAddress, port: p.proxyPort, path: url, headers: all, setHost: false, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** CONNECT, then (when the proxy says 200) the given continuation on the tunnel socket. */
function connect(p: RunningProxy, authority: string): Promise<{ status: number; head: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: p.proxyAddress, port: p.proxyPort, method: "CONNECT", path: authority, agent: false });
    req.on("connect", (res, socket, head) => resolve({ status: res.statusCode!, head: head.toString(), socket }));
    req.on("error", reject);
    req.end();
  });
}

async function logs(p: RunningProxy, query = "client=127.0.0.1", token = "t0ken"): Promise<{ status: number; records: ProxyLogRecord[] }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: p.logAddress, port: p.logPort, path: `/logs?${query}`, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, records: res.statusCode === 200 ? JSON.parse(body) : [] }));
      })
      .on("error", reject);
  });
}

describe("plain HTTP through the proxy", () => {
  test("an allowed GET reaches the upstream, with the Host header rebuilt from the target", async () => {
    const before = seen.length;
    const res = await get(proxy, `http://SITE.test:${httpPort}/hello?x=1`, { host: `site.test:${httpPort}`, "proxy-authorization": "secret" });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ host: `site.test:${httpPort}`, url: "/hello?x=1", via: "upstream" });
    expect(seen.length).toBe(before + 1);
  });

  test("a blacklisted host gets 403 naming the rule, and the upstream sees nothing", async () => {
    const before = seen.length;
    const res = await get(proxy, `http://blocked.test:${httpPort}/`);
    expect(res.status).toBe(403);
    expect(res.body).toContain("blocked.test matches blacklist rule /blocked\\.test/");
    expect(seen.length).toBe(before);
  });

  test("host-header trick: an allowed URL with Host: blocked.test is refused and never forwarded", async () => {
    const before = seen.length;
    const answer = await raw(proxy, `GET http://site.test:${httpPort}/ HTTP/1.1\r\nHost: blocked.test\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
    expect(answer).toContain('the Host header "blocked.test" does not match the request target');
    expect(seen.length).toBe(before);
    // positive control on the same raw path: the consistent request goes through
    const ok = await raw(proxy, `GET http://site.test:${httpPort}/ HTTP/1.1\r\nHost: site.test:${httpPort}\r\nConnection: close\r\n\r\n`);
    expect(ok).toMatch(/^HTTP\/1\.1 200/);
  });

  test("a loopback address is refused outside the operator's ranges, though a whitelist rule (.*) matches the name or literal", async () => {
    const res = await get(open, `http://evil.test:${httpPort}/`);
    expect(res.status).toBe(403);
    expect(res.body).toContain("evil.test resolves to 127.0.0.3, a loopback address");
    // and so is the IP literal, in any spelling
    for (const literal of ["127.0.0.2", "0x7f000002", "2130706434", "[::ffff:127.0.0.2]"]) {
      const r = await get(open, `http://${literal}:${httpPort}/`);
      expect(r.status, literal).toBe(403);
    }
    // positive control: the same upstream through the proxy whose operator range covers it
    expect((await get(proxy, `http://site.test:${httpPort}/`)).status).toBe(200);
    // the proxy's own address is never dialled, even when whitelisted
    const self = await get(proxy, `http://127.0.0.1:${httpPort}/`);
    expect(self.status).toBe(403);
    expect(self.body).toContain("the proxy's own address");
  });

  test("a connection that arrives on an address outside proxySubnets (the egress side) is closed unanswered; one inside is served", async () => {
    const request = `GET http://site.test:${httpPort}/ HTTP/1.1\r\nHost: site.test:${httpPort}\r\nConnection: close\r\n\r\n`;
    expect(await raw({ ...proxy, proxyAddress: "127.0.0.9" }, request)).toBe("");
    expect(await raw({ ...proxy, proxyAddress: "127.0.0.1" }, request)).toMatch(/^HTTP\/1\.1 200/);
  });

  test("ports outside the list, other schemes and origin-form requests are refused", async () => {
    expect((await get(proxy, "http://site.test:22/")).body).toContain("port 22 is not allowed");
    expect((await get(proxy, "ftp://site.test/")).status).toBe(400);
    expect((await get(proxy, "/just-a-path")).status).toBe(400);
  });

  test("non-HTTP bytes get 400 and a log record; smuggling shapes are refused by the parser", async () => {
    expect(await raw(proxy, "\x16\x03\x01\x02\x00garbage\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(proxy, "SSH-2.0-OpenSSH_9.2\r\n")).toMatch(/^HTTP\/1\.1 400/);
    const cl_te = `POST http://site.test:${httpPort}/ HTTP/1.1\r\nHost: site.test:${httpPort}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`;
    expect(await raw(proxy, cl_te)).toMatch(/^HTTP\/1\.1 400/);
    const { records } = await logs(proxy);
    expect(records.some((r) => r.method === "-" && r.action === "BLOCK" && /not a valid HTTP request/.test(r.reason ?? ""))).toBe(true);
  });

  test("protocol upgrades on http:// are refused", async () => {
    const answer = await raw(
      proxy,
      `GET http://site.test:${httpPort}/ws HTTP/1.1\r\nHost: site.test:${httpPort}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
    expect(answer).toContain("protocol upgrades");
  });
});

describe("CONNECT tunnels", () => {
  test("an allowed CONNECT carries TLS end to end (the proxy never sees inside)", async () => {
    const { status, socket } = await connect(proxy, `site.test:${tlsPort}`);
    expect(status).toBe(200);
    const body = await new Promise<string>((resolve, reject) => {
      const secure = tls.connect({ socket, servername: "site.test", ca: cert }, () => secure.write("GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"));
      let text = "";
      secure.on("data", (c) => (text += c));
      secure.on("end", () => resolve(text));
      secure.on("error", reject);
    });
    expect(body).toContain("over-tls");
  });

  test("plain HTTP inside a tunnel (as Node's fetch sends http:// URLs) passes when its Host is the target", async () => {
    const send = async (host: string) => {
      const { status, socket } = await connect(proxy, `site.test:${httpPort}`);
      expect(status).toBe(200);
      return new Promise<string>((resolve) => {
        let text = "";
        socket.on("data", (c: Buffer) => (text += c.toString()));
        socket.on("close", () => resolve(text));
        socket.on("error", () => undefined);
        socket.write(`GET /tunnelled HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      });
    };
    expect(await send(`site.test:${httpPort}`)).toMatch(/^HTTP\/1\.1 200[\s\S]*"url":"\/tunnelled"/);
    expect(await send("blocked.test")).toBe("");
  });

  test("CONNECT to a blacklisted host is refused with 403", async () => {
    const { status, socket } = await connect(proxy, `blocked.test:${tlsPort}`);
    socket.destroy();
    expect(status).toBe(403);
  });

  test("a tunnel that does not start with TLS is cut, and the record says why", async () => {
    const { status, socket } = await connect(proxy, `site.test:${tlsPort}`);
    expect(status).toBe(200);
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => undefined);
    socket.write("SSH-2.0-OpenSSH_9.2\r\n");
    await closed;
    const { records } = await logs(proxy, "client=127.0.0.1&settle=500");
    expect(records.some((r) => r.method === "CONNECT" && r.action === "BLOCK" && /did not start with a TLS handshake/.test(r.reason ?? ""))).toBe(true);
  });

  test("a TLS server name other than the CONNECT host is cut (no fronting through an allowed tunnel)", async () => {
    const { socket } = await connect(proxy, `site.test:${tlsPort}`);
    const outcome = await new Promise<string>((resolve) => {
      const secure = tls.connect({ socket, servername: "other.test", ca: cert }, () => resolve("handshake completed"));
      secure.on("error", (e) => resolve(`error: ${e.message}`));
      secure.on("close", () => resolve("closed"));
    });
    expect(outcome).not.toBe("handshake completed");
    const { records } = await logs(proxy, "client=127.0.0.1&settle=500");
    expect(records.some((r) => /TLS server name "other.test" does not match the CONNECT host site.test/.test(r.reason ?? ""))).toBe(true);
  });
});

describe("policy before resolution, and bounds", () => {
  test("a refused name is never resolved (no DNS exfiltration through the proxy); an allowed one is, once per cache period", async () => {
    const looked: string[] = [];
    const fakeDns = {
      lookup: (host: string, _options: unknown, callback: (e: Error | null, list: { address: string; family: number }[]) => void) => {
        looked.push(host);
        callback(null, [{ address: UPSTREAM, family: 4 }]);
      },
    } as unknown as typeof dns;
    const p = await runProxy(baseConfig({ whitelist: ["(.*\\.)?allowed\\.test"], blacklist: ["(.*\\.)?denied\\.test"], hosts: {}, dnsCacheMs: 60_000 }), {
      http,
      net,
      dns: fakeDns,
      os,
      crypto,
    });
    try {
      expect((await get(p, `http://secret-data.denied.test:${httpPort}/`)).status).toBe(403);
      expect((await get(p, `http://secret-data.elsewhere.test:${httpPort}/`)).status).toBe(403);
      expect((await get(p, `http://secret-data.allowed.test:22/`)).status).toBe(403); // port refused before lookup
      expect(looked).toEqual([]);
      expect((await get(p, `http://www.allowed.test:${httpPort}/`)).status).toBe(200);
      expect((await get(p, `http://www.allowed.test:${httpPort}/again`)).status).toBe(200);
      expect(looked).toEqual(["www.allowed.test"]);
    } finally {
      await p.close();
    }
  });

  test("concurrent requests per client are capped (429), and the cap frees up", async () => {
    const p = await runProxy(baseConfig({ whitelist: ["site\\.test"], maxConnectionsPerClient: 2 }), { http, net, dns, os, crypto });
    try {
      const a = await connect(p, `site.test:${tlsPort}`);
      const b = await connect(p, `site.test:${tlsPort}`);
      const c = await connect(p, `site.test:${tlsPort}`);
      expect([a.status, b.status, c.status]).toEqual([200, 200, 429]);
      const closed = new Promise((r) => a.socket.on("close", r));
      a.socket.destroy();
      await closed;
      await new Promise((r) => setTimeout(r, 50));
      const d = await connect(p, `site.test:${tlsPort}`);
      expect(d.status).toBe(200);
      for (const x of [b, c, d]) x.socket.destroy();
    } finally {
      await p.close();
    }
  });
});

describe("the log endpoint", () => {
  test("needs the token", async () => {
    expect((await logs(proxy, "client=127.0.0.1", "wrong")).status).toBe(401);
  });

  test("returns one client's records in a time window, oldest first, each with its decision", async () => {
    const since = Date.now();
    await get(proxy, `http://site.test:${httpPort}/windowed`);
    await get(proxy, `http://blocked.test:${httpPort}/x`);
    const { records } = await logs(proxy, `client=127.0.0.1&since=${since}`);
    expect(records.map((r) => [r.method, r.host, r.path, r.action])).toEqual([
      ["GET", "site.test", "/windowed", "ALLOW"],
      ["GET", "blocked.test", "/x", "BLOCK"],
    ]);
    expect(records[1]!.reason).toContain("blacklist rule");
    expect((await logs(proxy, `client=10.9.9.9&since=${since}`)).records).toEqual([]);
  });

  test("the ring is bounded", async () => {
    const small = await runProxy(baseConfig({ ringSize: 16 }), { http, net, dns, os, crypto });
    try {
      for (let i = 0; i < 40; i++) await get(small, `http://evil.test:${httpPort}/${i}`);
      const { records } = await logs(small);
      expect(records).toHaveLength(16);
      expect(records.at(-1)!.path).toBe("/39");
    } finally {
      await small.close();
    }
  });
});

describe("the shipped program", () => {
  test("the source evaluates on its own: node -e <source> <config> serves the proxy", async () => {
    const config = baseConfig({ whitelist: ["site\\.test"] });
    const child = spawn(process.execPath, ["-e", proxyScriptSource(), JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        let err = "";
        child.stdout.on("data", (c) => {
          out += c;
          if (out.includes("\n")) resolve(out);
        });
        child.stderr.on("data", (c) => (err += c));
        child.on("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      const [, proxyAt] = /ready (\S+) (\S+)/.exec(line)!;
      const [address, port] = proxyAt!.split(":");
      const running = { proxyAddress: address!, proxyPort: Number(port) } as RunningProxy;
      const res = await get(running, `http://site.test:${httpPort}/shipped`);
      expect(res.status).toBe(200);
      expect((await get(running, `http://other.test:${httpPort}/`)).status).toBe(403);
    } finally {
      child.kill("SIGTERM");
    }
  });

  test("the source has no reference to this module system (imports, exports, bundler helpers)", () => {
    const source = proxyScriptSource();
    expect(source).not.toMatch(/__vi_|__vite|import\s*\(|\bexports\.|__name\(|require\("\.\//);
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- compiling the shipped script (never running it) is the check
    expect(() => new Function(source.replace(/^[^\n]*runProxy[^\n]*\(JSON\.parse[\s\S]*$/m, ""))).not.toThrow();
  });
});

describe("registered clients (a policy driver: one address for sandboxes and engine)", () => {
  let registered: RunningProxy;
  beforeAll(async () => {
    registered = await runProxy(baseConfig({ whitelist: ["site\\.test"], registeredClients: true, proxySubnets: ["0.0.0.0/0"], logSubnets: [] }), {
      http,
      net,
      dns,
      os,
      crypto,
    });
  });
  afterAll(() => registered?.close());

  const clients = (change: string, token = "t0ken") =>
    new Promise<number>((resolve, reject) => {
      http
        .request(
          {
            host: "127.0.0.1",
            port: registered.logPort,
            method: "POST",
            path: `/clients?${change}`,
            headers: { authorization: `Bearer ${token}` },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
          },
        )
        .on("error", reject)
        .end();
    });
  const request = () =>
    raw(
      { ...registered, proxyAddress: "127.0.0.1" },
      `GET http://site.test:${httpPort}/registered HTTP/1.1\r\nHost: site.test:${httpPort}\r\nConnection: close\r\n\r\n`,
    );

  test("both endpoints listen on every address; a peer not registered is cut before a byte is answered", async () => {
    expect(registered.proxyAddress).toBe("0.0.0.0");
    expect(registered.logAddress).toBe("0.0.0.0");
    expect(await request()).toBe("");
  });

  test("once the engine registers the peer it is served; once removed it is cut again", async () => {
    expect(await clients("add=127.0.0.1")).toBe(200);
    expect(await request()).toMatch(/^HTTP\/1\.1 200 /);
    expect(await clients("remove=127.0.0.1")).toBe(200);
    expect(await request()).toBe("");
  });

  test("registering needs the log endpoint's token: without it 401, and the peer stays cut (the control: with it, served)", async () => {
    expect(await clients("add=127.0.0.1", "wrong")).toBe(401);
    expect(await request()).toBe("");
    expect(await clients("add=127.0.0.1")).toBe(200);
    expect(await request()).toMatch(/^HTTP\/1\.1 200 /);
    await clients("remove=127.0.0.1");
  });
});
