/**
 * Sandboxes of the filtered network have no path to each other: one listens, another (of the same
 * engine, running at the same time) cannot connect to it, while each still reaches the proxy.
 * All traffic stays on this machine: the test site is a container on a network this file creates.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8, defaultPlugins, type StreamEvent } from "isol8";
import { networkFilter } from "../src/index.js";
import { TEST_RUN, createTestNetwork, docker, engineLeftovers, removeTestResources, startTestServer } from "./helpers.js";

const NET = `isol8-nfiso-${TEST_RUN}`;
let subnet: string;

beforeAll(async () => {
  ({ subnet } = await createTestNetwork(NET));
  await startTestServer(`isol8-nfiso-site-${TEST_RUN}`, NET, ["testsite.internal"]);
});

afterAll(async () => {
  await removeTestResources();
});

/** Listens on TCP 7000; proves from inside its own sandbox that the listener accepts on its address; then serves until stopped. */
const LISTENER = `
import os, socket, urllib.parse, threading
proxy = urllib.parse.urlparse(os.environ["HTTP_PROXY"])
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((proxy.hostname, proxy.port))
me = probe.getsockname()[0]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", 7000))
server.listen(8)
def serve():
    while True:
        conn, peer = server.accept()
        print("accepted", peer[0], flush=True)
        conn.sendall(b"hello from the listener")
        conn.close()
threading.Thread(target=serve, daemon=True).start()
own = socket.create_connection((me, 7000), timeout=5).recv(100).decode()
print("READY", me, own, flush=True)
threading.Event().wait()
`;

/** Connects to the listener by address (must fail: unreachable or timed out, never refused), and fetches the allowed site through the proxy. */
const PEER = (ip: string) => `
import json, socket, urllib.request
out = {}
try:
    out["peer"] = "connected: " + socket.create_connection(("${ip}", 7000), timeout=5).recv(100).decode()
except TimeoutError:
    out["peer"] = "timed out"
except OSError as e:
    out["peer"] = "errno " + str(e.errno)
r = urllib.request.urlopen("http://testsite.internal/from-peer", timeout=15)
out["proxy"] = [r.status, json.loads(r.read())["url"]]
print(json.dumps(out))
`;

describe("sandboxes of one filtered engine", () => {
  test("cannot reach each other: a listener in one is unreachable from another, which still reaches an allowed host through the proxy; no network holds two sandboxes, and stop() leaves none", async () => {
    const engine = new DockerIsol8(
      { network: "filtered", networkFilter: { whitelist: ["testsite\\.internal"] }, timeoutMs: 60_000 },
      { plugins: defaultPlugins(networkFilter({ egressNetwork: NET, allowAddresses: [subnet] })) },
    );
    await engine.start();
    try {
      const stop = new AbortController();
      const events = engine.executeStream({ runtime: "python", code: LISTENER }, { signal: stop.signal })[Symbol.asyncIterator]();
      let listenerOut = "";
      while (!/READY \S+ .*\n/.test(listenerOut)) {
        const next = await events.next();
        expect(next.done, listenerOut).toBe(false);
        const event = next.value as StreamEvent;
        expect(event.type, JSON.stringify(event)).not.toBe("exit");
        if (event.type === "stdout") listenerOut += event.data;
      }
      const [, ip, own] = /READY (\S+) (.*)\n/.exec(listenerOut)!;
      // Positive control: the listener accepts connections on that address (from its own sandbox).
      expect(own).toBe("hello from the listener");

      const peer = await engine.execute({ runtime: "python", code: PEER(ip!) });
      expect(peer.exitCode, peer.stderr).toBe(0);
      const out = JSON.parse(peer.stdout) as { peer: string; proxy: [number, string] };
      // 101: network unreachable, 113: no route to host. Not "connected", not refused.
      expect(out.peer).toMatch(/^(timed out|errno 101|errno 113)$/);
      // Positive control on the peer's side: the proxy is reachable and works.
      expect(out.proxy).toEqual([200, "/from-peer"]);

      const sandboxes = async () =>
        (await docker("ps", "-aq", "--no-trunc", "--filter", `label=isol8.engine=${engine.id}`, "--filter", "label=isol8.launcher"))
          .split("\n")
          .filter(Boolean)
          .sort();
      const networks = async () =>
        (await docker("network", "ls", "-q", "--filter", `label=isol8.engine=${engine.id}`, "--filter", "label=isol8.role=network-filter-sandbox"))
          .split("\n")
          .filter(Boolean);
      const endpoints = async (network: string) =>
        Object.values(JSON.parse(await docker("network", "inspect", network, "--format", "{{json .Containers}}")) as Record<string, { IPv4Address: string }>);
      const listenerNetworks: string[] = [];
      for (const network of await networks()) if ((await endpoints(network)).some((e) => e.IPv4Address.startsWith(`${ip}/`))) listenerNetworks.push(network);
      expect(listenerNetworks).toHaveLength(1);

      stop.abort();
      // The listener ends as an aborted execution: an error event, never an exit result.
      const rest: StreamEvent[] = [];
      for (let next = await events.next(); !next.done; next = await events.next()) rest.push(next.value as StreamEvent);
      for (const event of rest) if (event.type === "stdout") listenerOut += event.data;
      expect(rest.at(-1)).toMatchObject({ type: "error", data: expect.stringMatching(/aborted/) });
      // Only the listener's own connection was ever accepted.
      expect(listenerOut.match(/^accepted /gm)).toEqual(["accepted "]);

      // The aborted listener's container is destroyed; its network then holds the proxy only (a
      // spare for the next sandbox) or is gone. No network ever holds two sandboxes.
      const proxyOnly = async () => !(await networks()).includes(listenerNetworks[0]!) || (await endpoints(listenerNetworks[0]!)).length === 1;
      await expect.poll(proxyOnly, { timeout: 30_000 }).toBe(true);
      // Once the pool settles: each live sandbox on a network of its own with the proxy (2
      // endpoints), other networks spares with the proxy only (1).
      const snapshot = async () => {
        const live = (await sandboxes()).length;
        const attached = await Promise.all((await networks()).map(async (n) => (await endpoints(n)).length));
        return { live, withSandbox: attached.filter((count) => count === 2).length, other: attached.filter((count) => count !== 1 && count !== 2) };
      };
      await expect
        .poll(
          async () => {
            const now = await snapshot();
            return now.live > 0 && now.withSandbox === now.live && now.other.length === 0;
          },
          { timeout: 30_000 },
        )
        .toBe(true);
    } finally {
      await engine.stop();
    }
    expect(await engineLeftovers(engine.id)).toEqual({ containers: [], networks: [] });
  });
});
