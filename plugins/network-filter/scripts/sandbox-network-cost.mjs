#!/usr/bin/env node
// What a network of its own costs each sandbox of the filtered mode, as ratios measured in one run
// (interleaved rounds, medians; the machine is noisy). Needs the built packages (pnpm -r build) and
// the runtime images (isol8 setup). Usage: node plugins/network-filter/scripts/sandbox-network-cost.mjs [rounds]
//
// 1. Docker only: one container's create + start + remove, on
//    none      NetworkMode none (the floor),
//    shared    one internal network all sandboxes share (the design before per-sandbox networks),
//    own       its own /29 internal network, made for it and removed after it, with the proxy
//              connected to it and disconnected (what prepare() and release do).
// 2. Through the engine: one execution, network none vs filtered, on the fast pool (the warm path)
//    and on the secure pool (a fresh container each, so the network's creation is on its path).
import { randomBytes } from "node:crypto";
import { DockerDriver } from "../../../packages/core/dist/index.js";
import { DockerIsol8, defaultPlugins } from "../../../packages/cli/dist/index.js";
import { networkFilter } from "../dist/index.js";

const rounds = Number(process.argv[2] ?? 15);
const run = randomBytes(4).toString("hex");
const LABELS = { "isol8-bench.sandbox-network-cost": run };
const driver = new DockerDriver();
const docker = driver.docker;
const IMAGE = "isol8/python:latest";
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const internal = (name, subnet) => ({
  Name: name,
  Driver: "bridge",
  Internal: true,
  EnableIPv6: false,
  Labels: LABELS,
  Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
  IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
});

async function container(networkMode) {
  const c = await docker.createContainer({ Image: IMAGE, Cmd: ["sleep", "infinity"], Labels: LABELS, HostConfig: { NetworkMode: networkMode, Init: true } });
  await c.start();
  return c;
}

const shared = `isol8-bench-shared-${run}`;
await docker.createNetwork(internal(shared, "10.214.0.0/24"));
// A stand-in proxy on an egress bridge, connected to each sandbox's own network as the real one is.
const egress = `isol8-bench-egress-${run}`;
await docker.createNetwork({ Name: egress, Driver: "bridge", Labels: LABELS });
const proxy = await container(egress);
let slot = 0;

const sides = {
  none: async () => {
    const c = await container("none");
    await c.remove({ force: true });
  },
  shared: async () => {
    const c = await container(shared);
    await c.remove({ force: true });
  },
  own: async () => {
    const name = `isol8-bench-own-${run}-${slot}`;
    const base = `10.215.${Math.floor(slot / 32)}.${(slot % 32) * 8}`;
    slot++;
    await docker.createNetwork(internal(name, `${base}/29`));
    const network = docker.getNetwork(name);
    await network.connect({ Container: proxy.id, EndpointConfig: { IPAMConfig: { IPv4Address: base.replace(/\d+$/, (d) => String(Number(d) + 2)) } } });
    const c = await container(name);
    await c.remove({ force: true });
    await network.disconnect({ Container: proxy.id, Force: true });
    await network.remove();
  },
};

const times = { none: [], shared: [], own: [] };
try {
  for (let i = 0; i < rounds + 2; i++) {
    const order = Object.keys(sides);
    for (let k = 0; k < i % order.length; k++) order.push(order.shift());
    for (const name of order) {
      const t = performance.now();
      await sides[name]();
      if (i >= 2) times[name].push(performance.now() - t); // two warm-up rounds
    }
  }
} finally {
  await proxy.remove({ force: true });
  await docker.getNetwork(shared).remove();
  await docker.getNetwork(egress).remove();
}
const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
console.log(
  `Docker only (median of ${rounds}): create+start+remove none ${m.none.toFixed(0)} ms, shared internal network ${m.shared.toFixed(0)} ms, own network ${m.own.toFixed(0)} ms`,
);
console.log(
  `  own ÷ shared: ${(m.own / m.shared).toFixed(2)}×  (adds ${(m.own - m.shared).toFixed(0)} ms per sandbox: network create + proxy connect + disconnect + remove)`,
);

// Through the engine: the fast pool (containers made ahead and reused: the warm path) and the
// secure pool (a fresh container each: its creation, network included, is what the pool refills).
async function engineRatio(label, poolStrategy, pluginOptions = [{}, {}], networks = ["none", "filtered"]) {
  const engines = networks.map((network, i) => new DockerIsol8({ network, poolStrategy }, { plugins: defaultPlugins(networkFilter(pluginOptions[i])) }));
  await Promise.all(engines.map((e) => e.start()));
  const exec = [[], []];
  try {
    for (let i = 0; i < rounds + 2; i++) {
      for (const k of i % 2 ? [0, 1] : [1, 0]) {
        const t = performance.now();
        const result = await engines[k].execute({ runtime: "python", code: "print(1)" });
        if (result.stdout !== "1\n") throw new Error(`${label}: unexpected output ${JSON.stringify(result)}`);
        if (i >= 2) exec[k].push(performance.now() - t);
      }
    }
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
  }
  const [a, b] = exec.map(median);
  console.log(`Engine, ${label} (median of ${rounds}): ${a.toFixed(0)} ms vs ${b.toFixed(0)} ms: ${(b / a).toFixed(2)}×`);
}
await engineRatio("fast pool, network none vs filtered", "fast");
await engineRatio("secure pool, network none vs filtered", "secure");
await engineRatio("secure pool, filtered with spareNetworks 0 vs 4", "secure", [{ spareNetworks: 0 }, { spareNetworks: 4 }], ["filtered", "filtered"]);
const leftovers = await docker.listNetworks({ filters: { label: [`isol8-bench.sandbox-network-cost=${run}`] } });
if (leftovers.length) console.log(`left networks: ${leftovers.map((n) => n.Name).join(", ")}`);
