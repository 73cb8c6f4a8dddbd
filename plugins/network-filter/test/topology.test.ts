/**
 * The filtered network's topology: what engine.start() creates (both networks and the proxy,
 * locked down), that a server placed on the engine's own egress network is reachable, and that
 * stop() (or a failed start) leaves nothing behind.
 */
import { afterAll, describe, expect, test } from "vitest";
import { DockerIsol8, defaultPlugins, InvalidOptionsError } from "isol8";
import { filteredNetworkInfo, networkFilter } from "../src/index.js";
import { TEST_RUN, docker, engineLeftovers, removeTestResources, startTestServer } from "./helpers.js";

afterAll(async () => {
  await removeTestResources();
});

describe("the default topology (the engine creates both networks)", () => {
  test("start() builds an egress network and a locked-down proxy; each sandbox gets a network of its own; stop() removes all of it", async () => {
    // The egress network gets an address from Docker's default pools: the operator opens them.
    const engine = new DockerIsol8(
      { network: "filtered", networkFilter: { whitelist: ["testsite\\.internal"] }, logNetwork: true, poolSize: { clean: 0, dirty: 0 } },
      { plugins: defaultPlugins(networkFilter({ allowAddresses: ["172.16.0.0/12", "192.168.0.0/16"], spareNetworks: 0 })) },
    );
    await engine.start();
    try {
      const info = filteredNetworkInfo(engine.kit)!;
      expect(info).toMatchObject({ ownsEgressNetwork: true, logTransport: "http", sandboxRange: "10.213.0.0/16", sandboxNetworks: [] });
      const [egress] = JSON.parse(await docker("network", "inspect", info.egressNetwork));
      expect(egress).toMatchObject({ Internal: false, EnableIPv6: false, Labels: { "isol8.engine": engine.id, "isol8.role": "network-filter-egress" } });
      const proxy = JSON.parse(await docker("inspect", info.proxyContainerId))[0];
      expect(proxy.Config.Labels).toMatchObject({ "isol8.managed": "true", "isol8.engine": engine.id, "isol8.role": "network-filter-proxy" });
      expect(proxy.Config.User).toBe("65534:65534");
      expect(proxy.HostConfig).toMatchObject({
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        Memory: 128 * 1024 ** 2,
        PidsLimit: 64,
      });
      expect(Object.keys(proxy.NetworkSettings.Networks)).toEqual([info.egressNetwork]);
      // It forwards no packet between the networks it sits on (read from inside its namespace).
      expect(
        (await docker("exec", info.proxyContainerId, "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")).split("\n").slice(0, 2),
      ).toEqual(["0", "0"]);

      // A test server placed on the engine's egress network is what the sandbox reaches.
      await startTestServer(`isol8-nftopo-site-${TEST_RUN}`, info.egressNetwork, ["testsite.internal"]);
      const result = await engine.execute({
        runtime: "python",
        code: "import urllib.request\nprint(urllib.request.urlopen('http://testsite.internal/topology', timeout=15).read().decode())",
      });
      expect(JSON.parse(result.stdout)).toMatchObject({ server: "testsite", url: "/topology" });
      expect(result.networkLogs).toEqual([expect.objectContaining({ method: "GET", host: "testsite.internal", path: "/topology", action: "ALLOW" })]);
      // No pool (clean 0, dirty 0) and no spare networks: the sandbox was removed after its execution, and its network with it.
      await expect.poll(() => filteredNetworkInfo(engine.kit)!.sandboxNetworks, { timeout: 30_000 }).toEqual([]);
      expect(await docker("network", "ls", "-q", "--filter", `label=isol8.engine=${engine.id}`, "--filter", "label=isol8.role=network-filter-sandbox")).toBe(
        "",
      );
      // The server stays attached to the egress network: stop() must still remove it (it disconnects strays).
    } finally {
      await engine.stop();
    }
    expect(await engineLeftovers(engine.id)).toEqual({ containers: [], networks: [] });
  });
});

describe("failures", () => {
  test("a start that fails half way (after the internal network exists) removes what it made", async () => {
    const engine = new DockerIsol8({ network: "filtered" }, { plugins: defaultPlugins(networkFilter({ egressNetwork: `isol8-nftest-missing-${TEST_RUN}` })) });
    await expect(engine.start()).rejects.toThrow(/egressNetwork "isol8-nftest-missing-.*" does not exist/);
    expect(await engineLeftovers(engine.id)).toEqual({ containers: [], networks: [] });
  });

  test("a proxy that cannot start fails engine.start() with its own message, and leaves nothing", async () => {
    const engine = new DockerIsol8(
      { network: "filtered" },
      { plugins: defaultPlugins(networkFilter({ sandboxRange: "10.213.77.0/28", image: "isol8/bash:latest" })) },
    );
    // The proxy (no node in that image) dies at once: seen as its exit, or as no address yet.
    await expect(engine.start()).rejects.toThrow(/proxy container (exited|has no address)|did not answer/);
    expect(await engineLeftovers(engine.id)).toEqual({ containers: [], networks: [] });
  });

  test("a bad rule fails when the engine is constructed, naming the pattern, before anything is created", () => {
    let error: unknown;
    try {
      new DockerIsol8(
        { network: "filtered", networkFilter: { whitelist: ["ok\\.test"], blacklist: ["(unclosed"] } },
        { plugins: defaultPlugins(networkFilter()) },
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(String(error)).toMatch(/networkFilter\.blacklist\[0\]: expected a valid regular expression, got "\(unclosed"/);
  });

  test("bad plugin options fail when the factory is called, naming the plugin", () => {
    expect(() => networkFilter({ ports: [0] } as never)).toThrow(/isol8:network-filter/);
    expect(() => networkFilter({ allowAddresses: ["10.0.0.0"] })).toThrow(/CIDR/);
    expect(() => networkFilter({ sandboxRange: "10.213.0.0/30" })).toThrow(/IPv4 CIDR range from \/8 to \/28/);
    expect(() => networkFilter({ hosts: { "a.test": "nope" } })).toThrow(/IPv4 or IPv6/);
  });

  test('without the plugin, network "filtered" names the plugin to add', () => {
    const withoutFilter = defaultPlugins().filter((p) => p.name !== "isol8:network-filter");
    expect(() => new DockerIsol8({ network: "filtered" }, { plugins: withoutFilter })).toThrow(/@isol8\/plugin-network-filter/);
  });
});

describe("spare sandbox networks", () => {
  test("a removed sandbox's network, holding only the proxy, is reused by the next sandbox instead of a new one", async () => {
    const engine = new DockerIsol8({ network: "filtered", poolSize: { clean: 0, dirty: 0 } }, { plugins: defaultPlugins(networkFilter({ spareNetworks: 1 })) });
    await engine.start();
    try {
      const first = await engine.execute({ runtime: "bash", code: "echo one" });
      expect(first.stdout).toBe("one\n");
      const info = () => filteredNetworkInfo(engine.kit)!;
      await expect
        .poll(async () => info().sandboxNetworks.length === 1 && (await docker("ps", "-aq", "--filter", `id=${first.containerId}`)) === "", { timeout: 30_000 })
        .toBe(true);
      const [spare] = info().sandboxNetworks;
      const endpoints = JSON.parse(await docker("network", "inspect", spare!, "--format", "{{json .Containers}}")) as Record<string, { IPv4Address: string }>;
      expect(Object.keys(endpoints)).toEqual([info().proxyContainerId]);
      const proxyIp = endpoints[info().proxyContainerId]!.IPv4Address.replace(/\/\d+$/, "");
      // The next sandbox is given the spare: its proxy is the proxy's address on that network.
      const second = await engine.execute({ runtime: "bash", code: "echo $HTTP_PROXY" });
      expect(second.stdout).toBe(`http://${proxyIp}:3128\n`);
      expect(info().sandboxNetworks).toEqual([spare]);
    } finally {
      await engine.stop();
    }
    expect(await engineLeftovers(engine.id)).toEqual({ containers: [], networks: [] });
  });
});
