/**
 * Network mode "filtered" against the real Docker engine. All traffic stays on this machine: the
 * only servers are the test site container on a network this file creates, and loopback.
 * Every blocked case sits beside a positive control (the same program doing the allowed thing).
 */
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8, defaultPlugins } from "isol8";
import { filteredNetworkInfo, networkFilter, type FilteredNetworkInfo } from "../src/index.js";
import { TEST_RUN, createTestNetwork, docker, engineLeftovers, pythonProbe, removeTestResources, runOn, startTestServer, type TestServer } from "./helpers.js";

const NET = `isol8-nftest-${TEST_RUN}`;
let server: TestServer;
let subnet: string;
/** Whitelist testsite.internal (a private address: the test network is an operator range). */
let engine: DockerIsol8;
let info: FilteredNetworkInfo;
/** Empty whitelist: everything public not blacklisted; the test network allowed as an operator range. */
let open: DockerIsol8;
/** Whitelist `.*` and no operator range: a rule that matches every name and IP literal. */
let wide: DockerIsol8;

beforeAll(async () => {
  ({ subnet } = await createTestNetwork(NET));
  server = await startTestServer(`isol8-nftest-site-${TEST_RUN}`, NET, ["testsite.internal", "blocked.internal", "other.internal"]);
  engine = new DockerIsol8(
    {
      network: "filtered",
      networkFilter: { whitelist: ["testsite\\.internal", "blocked\\.internal"], blacklist: ["blocked\\.internal"] },
      logNetwork: true,
      timeoutMs: 30_000,
    },
    { plugins: defaultPlugins(networkFilter({ egressNetwork: NET, allowAddresses: [subnet], hosts: { "evil.test": "127.0.0.1" } })) },
  );
  open = new DockerIsol8(
    { network: "filtered", networkFilter: { blacklist: ["blocked\\.internal"] }, logNetwork: true, timeoutMs: 30_000 },
    {
      plugins: defaultPlugins(networkFilter({ egressNetwork: NET, allowAddresses: [subnet], hosts: { "evil.test": "127.0.0.1", "lan.test": "10.255.255.1" } })),
    },
  );
  wide = new DockerIsol8(
    { network: "filtered", networkFilter: { whitelist: [".*"] }, logNetwork: true, timeoutMs: 30_000 },
    { plugins: defaultPlugins(networkFilter({ egressNetwork: NET })) },
  );
  await Promise.all([engine.start(), open.start(), wide.start()]);
  info = filteredNetworkInfo(engine.kit)!;
});

afterAll(async () => {
  const ids = [engine?.id, open?.id, wide?.id].filter(Boolean) as string[];
  await Promise.allSettled([engine?.stop(), open?.stop(), wide?.stop()]);
  await removeTestResources();
  for (const id of ids) expect(await engineLeftovers(id)).toEqual({ containers: [], networks: [] });
});

/** Python helpers every probe program starts with: fetch through the env proxy, raw proxy talk. */
const PY = `
import json, os, socket, ssl, urllib.request, urllib.error
CTX = ssl.create_default_context(cadata=os.environ["CA"])
def fetch(url):
    try:
        r = urllib.request.urlopen(url, timeout=15, context=CTX)
        return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
    except Exception as e:
        return [-1, repr(e)]
def proxy_addr():
    p = urllib.parse.urlparse(os.environ["HTTP_PROXY"])
    return (p.hostname, p.port)
def raw(data, read_after=None):
    s = socket.create_connection(proxy_addr(), timeout=10)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            out += chunk
            if read_after and read_after in out: break
    except Exception as e:
        out += ("<" + type(e).__name__ + ">").encode()
    return s, out.decode("latin1")
def attempt(fn):
    try:
        return "ok: " + str(fn())
    except Exception as e:
        return "error: " + type(e).__name__ + ": " + str(e)
import urllib.parse
`;

const py = (target: DockerIsol8, body: string) => pythonProbe(target, PY, body);

describe("allowed traffic (the positive controls)", () => {
  test("HTTP and HTTPS to the whitelisted host go through the proxy (urllib, env proxy)", async () => {
    const { out } = await py(engine, `out["http"] = fetch("http://testsite.internal/hello?x=1")\nout["https"] = fetch("https://testsite.internal/secure")`);
    const [httpStatus, httpBody] = out.http as [number, string];
    const [httpsStatus, httpsBody] = out.https as [number, string];
    expect(httpStatus, httpBody).toBe(200);
    expect(JSON.parse(httpBody)).toMatchObject({ server: "testsite", host: "testsite.internal", url: "/hello?x=1", tls: false });
    expect(httpsStatus, httpsBody).toBe(200);
    expect(JSON.parse(httpsBody)).toMatchObject({ server: "testsite", url: "/secure", tls: true });
  });

  test("Node's fetch uses the proxy too (NODE_USE_ENV_PROXY)", async () => {
    const result = await engine.execute({
      runtime: "node",
      code: `const r = await fetch("http://testsite.internal/from-node"); console.log(r.status, (await r.json()).url);`,
      fileExtension: ".mjs",
    });
    expect(result.stdout.trim(), result.stderr).toBe("200 /from-node");
    expect(result.stderr).toBe(""); // no "EnvHttpProxyAgent is experimental" warning in the user's stderr
  });

  test("the sandbox holds no capability and sits on a network of its own, shared with the proxy only", async () => {
    const result = await engine.execute({ runtime: "bash", code: "grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status; ls /sys/class/net | tr '\\n' ' '" });
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(5);
    for (const line of lines.slice(0, 4)) expect(line).toMatch(/^Cap(Eff|Prm|Bnd|Amb):\s+0000000000000000$/);
    expect(lines[4]!.trim().split(" ").sort()).toEqual(["eth0", "lo"]);
    const sandbox = JSON.parse(await docker("inspect", result.containerId!))[0];
    const networks = Object.keys(sandbox.NetworkSettings.Networks);
    expect(networks).toHaveLength(1);
    const own = JSON.parse(await docker("network", "inspect", networks[0]!))[0];
    expect(own).toMatchObject({
      Internal: true,
      EnableIPv6: false,
      Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
      Labels: { "isol8.engine": engine.id, "isol8.role": "network-filter-sandbox" },
    });
    expect(own.IPAM.Config[0].Subnet).toMatch(/^10\.213\.\d+\.\d+\/29$/);
    expect(Object.keys(own.Containers).sort()).toEqual([info.proxyContainerId, result.containerId].sort());
    const kept = JSON.parse(await docker("inspect", info.proxyContainerId))[0];
    expect(kept.HostConfig).toMatchObject({ ReadonlyRootfs: true, CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"], CapAdd: null });
    expect(kept.Config.User).toBe("65534:65534");
  });
});

describe("blocked by the rules", () => {
  test("a blacklisted host gets 403 naming the rule; a host no whitelist rule names gets 403 too", async () => {
    const { out } = await py(
      engine,
      `out["ok"] = fetch("http://testsite.internal/")\nout["black"] = fetch("http://blocked.internal/")\nout["other"] = fetch("http://other.internal/")`,
    );
    expect((out.ok as [number])[0]).toBe(200);
    expect(out.black).toEqual([403, expect.stringContaining("blocked.internal matches blacklist rule /blocked\\.internal/")]);
    expect(out.other).toEqual([403, expect.stringContaining("other.internal matches no whitelist rule")]);
    expect(await server.seenHosts()).not.toContain("blocked.internal");
  });

  test("CONNECT to a blacklisted host is refused (403), CONNECT to the allowed one is established", async () => {
    const { out } = await py(
      engine,
      `s, out["allowed"] = raw(b"CONNECT testsite.internal:443 HTTP/1.1\\r\\nHost: testsite.internal:443\\r\\n\\r\\n", b"\\r\\n\\r\\n")
s.close()
s, out["blocked"] = raw(b"CONNECT blocked.internal:443 HTTP/1.1\\r\\nHost: blocked.internal:443\\r\\n\\r\\n")
out["https_blocked"] = fetch("https://blocked.internal/")`,
    );
    expect(out.allowed).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    expect(out.blocked).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(out.blocked).toContain("matches blacklist rule /blocked\\.internal/");
    expect((out.https_blocked as [number, string])[0]).toBe(-1); // urllib: "Tunnel connection failed: 403"
    expect((out.https_blocked as [number, string])[1]).toContain("403");
  });

  test("host-header trick: an allowed absolute URL with Host: blocked.internal never reaches the blocked host", async () => {
    const { out } = await py(
      engine,
      `s, out["trick"] = raw(b"GET http://testsite.internal/trick HTTP/1.1\\r\\nHost: blocked.internal\\r\\nConnection: close\\r\\n\\r\\n")
s, out["control"] = raw(b"GET http://testsite.internal/control HTTP/1.1\\r\\nHost: testsite.internal\\r\\nConnection: close\\r\\n\\r\\n")`,
    );
    expect(out.control).toMatch(/^HTTP\/1\.1 200/);
    expect(out.trick).toMatch(/^HTTP\/1\.1 403/);
    expect(out.trick).toContain('the Host header "blocked.internal" does not match the request target testsite.internal');
    expect(await server.seenHosts()).not.toContain("blocked.internal");
  });

  test("a whitelist rule matching every name and IP literal (.*) opens no private address; the operator range does (the control)", async () => {
    const urls = `out["name"] = fetch("http://testsite.internal/wide")\nout["literal"] = fetch("http://${server.ip}/wide")`;
    const { out } = await py(wide, urls);
    expect(out.name).toEqual([403, expect.stringContaining(`testsite.internal resolves to ${server.ip}, a private address`)]);
    expect(out.literal).toEqual([403, expect.stringContaining(`${server.ip} resolves to ${server.ip}, a private address`)]);
    // Control: the same requests from an engine whose operator range covers the test network.
    const control = await py(open, urls);
    expect((control.out.name as [number])[0]).toBe(200);
    expect((control.out.literal as [number])[0]).toBe(200);
  });

  test("a name that maps to 127.0.0.1 is refused as loopback; a private address only inside an operator range", async () => {
    const { out } = await py(
      open,
      `out["ok"] = fetch("http://testsite.internal/open")\nout["evil"] = fetch("http://evil.test/")\nout["lan"] = fetch("http://lan.test/")\nout["literal"] = fetch("http://127.0.0.2/")\nout["meta"] = fetch("http://169.254.169.254/latest/meta-data/")`,
    );
    expect((out.ok as [number, string])[0], String((out.ok as string[])[1])).toBe(200);
    expect(out.evil).toEqual([403, expect.stringContaining("evil.test resolves to 127.0.0.1, a loopback address")]);
    expect(out.lan).toEqual([403, expect.stringContaining("lan.test resolves to 10.255.255.1, a private address")]);
    expect(out.literal).toEqual([403, expect.stringContaining("a loopback address")]);
    expect(out.meta).toEqual([403, expect.stringContaining("a metadata address")]);
    // Under the explicit whitelist the same evil.test is refused by the whitelist, before any lookup.
    const strict = await py(engine, `out["evil"] = fetch("http://evil.test/")`);
    expect(strict.out.evil).toEqual([403, expect.stringContaining("evil.test matches no whitelist rule")]);
  });

  test("non-HTTP protocols fail cleanly: raw bytes, a non-TLS tunnel, a tunnel to another port", async () => {
    const { out } = await py(
      engine,
      `s, out["ssh"] = raw(b"SSH-2.0-OpenSSH_9.2\\r\\n")
s, out["tunnel_head"] = raw(b"CONNECT testsite.internal:443 HTTP/1.1\\r\\nHost: testsite.internal:443\\r\\n\\r\\n", b"\\r\\n\\r\\n")
s.sendall(b"SSH-2.0-OpenSSH_9.2\\r\\n")
s.settimeout(15)
out["tunnel_after"] = attempt(lambda: s.recv(100))
s, out["port22"] = raw(b"CONNECT testsite.internal:22 HTTP/1.1\\r\\nHost: testsite.internal:22\\r\\n\\r\\n")
s, out["ftp"] = raw(b"GET ftp://testsite.internal/ HTTP/1.1\\r\\nHost: testsite.internal\\r\\n\\r\\n")`,
    );
    expect(out.ssh).toMatch(/^HTTP\/1\.1 400 Bad Request[\s\S]*not a valid HTTP request/);
    expect(out.tunnel_head).toMatch(/^HTTP\/1\.1 200/);
    expect(out.tunnel_after).toMatch(/^ok: b''$|^error: (ConnectionResetError|BrokenPipeError)/); // closed without a byte from upstream
    expect(out.port22).toMatch(/^HTTP\/1\.1 403[\s\S]*port 22 is not allowed/);
    expect(out.ftp).toMatch(/^HTTP\/1\.1 400[\s\S]*scheme "ftp" is not supported/);
  });
});

describe("no other way out", () => {
  const directProbe = (ip: string) => `
import socket, json
out = {}
def attempt(fn):
    try:
        return "ok: " + str(fn())
    except Exception as e:
        return "error: " + type(e).__name__ + ": " + str(e)
def tcp():
    s = socket.create_connection(("${ip}", 80), timeout=4); s.sendall(b"GET /direct HTTP/1.0\\r\\n\\r\\n"); return s.recv(12)
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(b"ping", ("${ip}", 9999)); return s.recvfrom(100)[0]
def dns():
    return socket.gethostbyname("testsite.internal")
def rawsock():
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).fileno() >= 0
def v6():
    s = socket.create_connection(("2001:db8::1", 80), timeout=4); return "connected"
def v6_addresses():
    try: return [l.split()[-1] for l in open("/proc/net/if_inet6")]
    except FileNotFoundError: return []
out["tcp"] = attempt(tcp); out["udp"] = attempt(udp); out["dns"] = attempt(dns); out["raw"] = attempt(rawsock); out["v6"] = attempt(v6); out["v6_ifaces"] = v6_addresses()
print(json.dumps(out))`;

  test("direct TCP, UDP, DNS, raw sockets and IPv6 all fail in the sandbox, and work from a plain container (the controls)", async () => {
    const sandbox = await engine.execute({ runtime: "python", code: directProbe(server.ip) });
    const probed = JSON.parse(sandbox.stdout.trim()) as Record<string, string>;
    // Control: the same program as root in an ordinary container on the test network (Docker's default capabilities).
    const control = await runOn(NET, "isol8/python:latest", ["python3", "-c", directProbe(server.ip)]);
    const direct = JSON.parse(control.stdout.trim()) as Record<string, string>;
    expect(direct.tcp).toMatch(/^ok: b'HTTP\/1\.1 2/);
    expect(direct.udp).toBe("ok: b'ping'");
    expect(direct.dns).toBe(`ok: ${server.ip}`);
    expect(direct.raw).toBe("ok: True");

    // Unreachable (errno 101: no route off the sandbox's own /29), never refused or timed out at a listener.
    expect(probed.tcp).toMatch(/^error: OSError: \[Errno 101\]/);
    expect(probed.udp).toMatch(/^error: OSError: \[Errno 101\]/);
    expect(probed.dns).toMatch(/^error: gaierror/);
    expect(probed.raw).toMatch(/^error: PermissionError/);
    expect(probed.v6).toMatch(/^error: OSError: \[Errno 101\]/);
    // No interface but loopback has an IPv6 address (Docker 23+ keeps ::1 on lo, as 127.0.0.1 is kept).
    expect((probed.v6_ifaces as unknown as string[]).filter((name) => name !== "lo")).toEqual([]);
  });

  test("neither the host (the egress gateway) nor the proxy's egress address is reachable directly: unreachable, where a plain container connects (the controls)", async () => {
    const gateway = await docker("network", "inspect", NET, "--format", "{{(index .IPAM.Config 0).Gateway}}");
    // A listener of this process on the host's address on the egress network.
    // It accepts and closes (writing nothing: the probe closes at once, a write could meet a reset).
    const listener = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listener.listen(0, gateway, resolve));
    const hostPort = (listener.address() as AddressInfo).port;
    try {
      const probe = `
import socket, json
out = {}
for name, ip, port in [("host", "${gateway}", ${hostPort}), ("log", "${info.egressAddress}", 3129)]:
    try:
        socket.create_connection((ip, port), timeout=5).close(); out[name] = "connected"
    except TimeoutError:
        out[name] = "timed out"
    except OSError as e:
        out[name] = "errno " + str(e.errno)
print(json.dumps(out))`;
      const control = await runOn(NET, "isol8/python:latest", ["python3", "-c", probe]);
      expect(JSON.parse(control.stdout.trim())).toEqual({ host: "connected", log: "connected" });
      const sandbox = await engine.execute({ runtime: "python", code: probe });
      const probed = JSON.parse(sandbox.stdout.trim()) as Record<string, string>;
      // 101: network unreachable, 113: no route to host; never "connected", never refused.
      expect(probed.host).toMatch(/^(timed out|errno 101|errno 113)$/);
      expect(probed.log).toMatch(/^(timed out|errno 101|errno 113)$/);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

describe("request logs (logNetwork)", () => {
  test("each execution gets its own requests: method, host, path, decision, reason, duration", async () => {
    const first = await py(
      engine,
      `out["a"] = fetch("http://testsite.internal/first")\nout["b"] = fetch("http://blocked.internal/nope")\nout["c"] = fetch("https://testsite.internal/tls")`,
    );
    const second = await py(engine, `out["a"] = fetch("http://testsite.internal/second")`);
    const logs1 = first.result.networkLogs!;
    const logs2 = second.result.networkLogs!;
    expect(logs1.map((e) => [e.method, e.host, e.path, e.action])).toEqual([
      ["GET", "testsite.internal", "/first", "ALLOW"],
      ["GET", "blocked.internal", "/nope", "BLOCK"],
      ["CONNECT", "testsite.internal", null, "ALLOW"],
    ]);
    expect(logs1[1]!.reason).toContain("blacklist rule /blocked\\.internal/");
    // The status the proxy answered with: the upstream's for the allowed request, its own 403 for the blocked one.
    expect(logs1[0]!.status).toBe(200);
    expect(logs1[1]!.status).toBe(403);
    for (const entry of logs1) {
      expect(Date.parse(entry.timestamp)).toBeGreaterThanOrEqual(Date.parse(first.result.timestamp));
      expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(logs2.map((e) => [e.method, e.host, e.path, e.action])).toEqual([["GET", "testsite.internal", "/second", "ALLOW"]]);
  });

  test("a run without network use has an empty log", async () => {
    const result = await engine.execute({ runtime: "bash", code: "echo quiet" });
    expect(result.networkLogs).toEqual([]);
  });
});
