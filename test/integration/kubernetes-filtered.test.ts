/**
 * Network mode "filtered" on the Kubernetes driver, end to end through the test API façade: the
 * engine's egress proxy is a pod of its own (labelled egress-proxy), each sandbox a pod labelled
 * filtered, and the façade's CNI gives them what deploy/kubernetes's NetworkPolicy gives them on
 * a cluster (test/kubernetes-facade/networks.ts). All traffic stays on this machine: the only
 * server is the test site container on a network this file creates (the proxies' "outside").
 * Every refusal sits beside its positive control on the same path.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerIsol8, type Isol8Plugin } from "@isol8/core";
import { KubernetesDriver, UnmappableSpecError } from "@isol8/plugin-driver-kubernetes";
import { filteredNetworkInfo, networkFilter, type FilteredNetworkInfo } from "@isol8/plugin-network-filter";
import { fastPool } from "@isol8/plugin-pool-fast";
import { nodeRuntime } from "@isol8/plugin-runtime-node";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { FacadeCluster } from "../kubernetes-facade/engine.js";
import { TEST_RUN, createTestNetwork, pythonProbe, removeTestResources, startTestServer, type TestServer } from "../../plugins/network-filter/test/helpers.js";

const NET = `isol8-k8sfilter-${TEST_RUN}`;
const NAMESPACE = "isol8-filtered";
let cluster: FacadeCluster;
let site: TestServer;
/** Whitelist testsite.internal and blocked.internal, blacklist blocked.internal; logs on. */
let strict: DockerIsol8;
let strictInfo: FilteredNetworkInfo;
/** Another engine on the same cluster: its own proxy, its own rules. */
let other: DockerIsol8;
let otherInfo: FilteredNetworkInfo;

function engine(whitelist: string[], blacklist: string[], plugins: Isol8Plugin[]): DockerIsol8 {
  return new DockerIsol8(
    // The Kubernetes driver starts programs through the executor only: pinned (CI's exec-path pass).
    {
      driver: "kubernetes",
      launcher: "executor",
      network: "filtered",
      networkFilter: { whitelist, blacklist },
      logNetwork: true,
      timeoutMs: 30_000,
      poolSize: 1,
    },
    { plugins },
  );
}

beforeAll(async () => {
  const { subnet } = await createTestNetwork(NET);
  site = await startTestServer(`isol8-k8sfilter-site-${TEST_RUN}`, NET, ["testsite.internal", "blocked.internal"]);
  cluster = await new FacadeCluster(NAMESPACE, { egressNetwork: NET }).start();
  // The test site is on a private network: an operator range the proxies may dial.
  const plugins = await cluster.plugins([pythonRuntime(), nodeRuntime(), fastPool(), networkFilter({ allowAddresses: [subnet] })]);
  strict = engine(["testsite\\.internal", "blocked\\.internal"], ["blocked\\.internal"], plugins);
  other = engine(["testsite\\.internal"], [], plugins);
  await Promise.all([strict.start(), other.start()]);
  strictInfo = filteredNetworkInfo(strict.kit)!;
  otherInfo = filteredNetworkInfo(other.kit)!;
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([strict?.stop(), other?.stop()]);
  await cluster?.close();
  await removeTestResources();
});

/** Python helpers: fetch through the env proxy, and a raw connection to any address. */
const PY = `
import json, os, socket, ssl, urllib.request, urllib.error
CTX = ssl.create_default_context(cadata=os.environ["CA"])
def fetch(url, proxy=None):
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy}) if proxy else urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=CTX))
        r = opener.open(url, timeout=15)
        return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
    except Exception as e:
        return [-1, type(e).__name__ + ": " + str(e)]
def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "connected"
    except Exception as e:
        return "error: " + type(e).__name__
`;

const py = (target: DockerIsol8, body: string) => pythonProbe(target, PY, body);

describe("network filtered on the Kubernetes driver", () => {
  it("starts a proxy pod per engine (policy isolation, the pod's own address) and labels it egress-proxy, its sandboxes filtered", async () => {
    expect(strictInfo).toMatchObject({ isolation: "policy", egressNetwork: "", sandboxNetworks: [] });
    expect(strictInfo.egressAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(otherInfo.egressAddress).not.toBe(strictInfo.egressAddress);
    const driver = new KubernetesDriver(cluster.driverOptions({}));
    const proxies = await driver.list({ "isol8.engine": strict.id, "isol8.role": "network-filter-proxy" });
    expect(proxies.map((p) => [p.id, p.labels["isol8.network"]])).toEqual([[strictInfo.proxyContainerId, "egress-proxy"]]);
    const result = await strict.execute({ runtime: "python", code: "print(1)" });
    const sandbox = await driver.inspect(result.containerId!);
    expect(sandbox?.labels["isol8.network"]).toBe("filtered");
  });

  it("a sandbox fetches the whitelisted host over HTTP and HTTPS through its proxy, and python and node read the proxy from the env", async () => {
    const { out } = await py(
      strict,
      `out["http"] = fetch("http://testsite.internal/hello")\nout["https"] = fetch("https://testsite.internal/secure")\nout["proxy"] = os.environ["HTTP_PROXY"]`,
    );
    const [httpStatus, httpBody] = out.http as [number, string];
    const [httpsStatus, httpsBody] = out.https as [number, string];
    expect(httpStatus, httpBody).toBe(200);
    expect(JSON.parse(httpBody)).toMatchObject({ server: "testsite", host: "testsite.internal", url: "/hello", tls: false });
    expect(httpsStatus, httpsBody).toBe(200);
    expect(JSON.parse(httpsBody)).toMatchObject({ server: "testsite", url: "/secure", tls: true });
    expect(out.proxy).toBe(`http://${strictInfo.egressAddress}:3128`);
    const node = await strict.execute({
      runtime: "node",
      code: `const r = await fetch("http://testsite.internal/from-node"); console.log(r.status, (await r.json()).url);`,
      fileExtension: ".mjs",
    });
    expect(node.stdout.trim(), node.stderr).toBe("200 /from-node");
  });

  it("the blacklisted host is refused by the proxy with 403 naming the rule, where the whitelisted one is served", async () => {
    const { out } = await py(strict, `out["blocked"] = fetch("http://blocked.internal/x")\nout["allowed"] = fetch("http://testsite.internal/x")`);
    const [blockedStatus, blockedBody] = out.blocked as [number, string];
    expect(blockedStatus).toBe(403);
    expect(blockedBody).toContain("blacklist rule /blocked\\.internal/");
    expect((out.allowed as [number, string])[0]).toBe(200);
  });

  it("no way around the proxy: the test site's address is unreachable directly, where through the proxy it answers", async () => {
    const { out } = await py(strict, `out["direct"] = connect("${site.ip}", 80)\nout["proxied"] = fetch("http://testsite.internal/via-proxy")`);
    expect(out.direct).toMatch(/^error: /);
    expect((out.proxied as [number, string])[0]).toBe(200);
  });

  it("an engine's proxy serves only its own sandboxes: another engine's sandbox is cut off there, and served by its own proxy", async () => {
    const { out } = await py(
      other,
      `out["foreign"] = fetch("http://testsite.internal/foreign", "http://${strictInfo.egressAddress}:3128")\nout["own"] = fetch("http://testsite.internal/own", "http://${otherInfo.egressAddress}:3128")`,
    );
    const [foreignStatus, foreignBody] = out.foreign as [number, string];
    expect(foreignStatus, foreignBody).toBe(-1);
    expect(foreignBody).toMatch(/RemoteDisconnected|ConnectionResetError|Connection reset|BadStatusLine|closed/i);
    expect((out.own as [number, string])[0]).toBe(200);
  });

  it("logNetwork attributes each request to the sandbox pod that made it", async () => {
    const first = await py(strict, `out["a"] = fetch("http://testsite.internal/first")\nout["b"] = fetch("http://blocked.internal/nope")`);
    const second = await py(strict, `out["a"] = fetch("http://testsite.internal/second")`);
    expect(first.result.networkLogs!.map((e) => [e.method, e.host, e.path, e.action])).toEqual([
      ["GET", "testsite.internal", "/first", "ALLOW"],
      ["GET", "blocked.internal", "/nope", "BLOCK"],
    ]);
    expect(second.result.networkLogs!.map((e) => [e.method, e.host, e.path, e.action])).toEqual([["GET", "testsite.internal", "/second", "ALLOW"]]);
  });

  it("a proxy the cluster cannot run (a PID limit under the nodes') fails start() naming the proxy and the field, and leaves no pod; the default limit starts (the other engines)", async () => {
    const plugins = await cluster.plugins([pythonRuntime(), nodeRuntime(), fastPool(), networkFilter({ pidsLimit: 32 })]);
    const engine = new DockerIsol8({ driver: "kubernetes", launcher: "executor", network: "filtered" }, { plugins });
    const error = await engine.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnmappableSpecError);
    expect((error as UnmappableSpecError).field).toBe("pidsLimit");
    expect((error as Error).message).toMatch(
      /^isol8:network-filter: the egress proxy's sandbox \(this plugin's memoryLimit, cpuLimit, pidsLimit\): .*podPidsLimit \(64\) is above the spec's 32/,
    );
    const driver = new KubernetesDriver(cluster.driverOptions({}));
    expect(await driver.list({ "isol8.engine": engine.id })).toEqual([]);
    await engine.stop();
    expect(strictInfo.proxyContainerId).toBeTruthy();
  });

  it("stop() removes the engine's proxy pod and sandbox pods, and leaves the other engine's", async () => {
    const driver = new KubernetesDriver(cluster.driverOptions({}));
    expect((await driver.list({ "isol8.engine": other.id })).length).toBeGreaterThan(0);
    await other.stop();
    expect(await driver.list({ "isol8.engine": other.id })).toEqual([]);
    expect((await driver.list({ "isol8.engine": strict.id, "isol8.role": "network-filter-proxy" })).length).toBe(1);
  });
});
