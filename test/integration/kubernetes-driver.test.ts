import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  baseSandboxSpec,
  DockerIsol8,
  engineOptionsSchema,
  ExecutorLauncher,
  executorMainProcess,
  InvalidOptionsError,
  NotSupportedError,
  packTar,
  type EngineOptions,
  type Isol8Plugin,
  type SandboxSpec,
} from "@isol8/core";
import {
  KubernetesApiError,
  KubernetesDriver,
  kubernetesDriver,
  leaseName,
  UnmappableSpecError,
  type KubernetesDriverOptions,
} from "@isol8/plugin-driver-kubernetes";
import { fastPool } from "@isol8/plugin-pool-fast";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { engineImages, pushedImages } from "../kubernetes-facade/engine.js";
import { KubernetesFacade } from "../kubernetes-facade/server.js";
import { isol8Cli, REPO_ROOT } from "../helpers.js";

/**
 * The Kubernetes driver end to end: @kubernetes/client-node against the test API façade
 * (test/kubernetes-facade), whose pods are real Docker containers. The driver's own Pod spec is
 * checked against the OpenAPI schema in the plugin's unit tests; what runs here is the façade's
 * mapping of that Pod to Docker.
 */
const NAMESPACE = "isol8-test";
const IMAGE = "isol8/python:latest";
const UID = 1_500_000_123;

const docker = new Docker();
const facade = new KubernetesFacade({ podPidsLimit: 64, docker });
let dir: string;
let facadeUrl: string;
let driverOptions: KubernetesDriverOptions;
let driver: KubernetesDriver;
const created: string[] = [];

function sandboxSpec(labels: Record<string, string> = {}): SandboxSpec {
  const spec = baseSandboxSpec(engineOptionsSchema.parse({}), IMAGE, UID, executorMainProcess(UID));
  return { ...spec, labels: { ...spec.labels, "isol8.managed": "true", "isol8.engine": "k8s-driver-test", ...labels } };
}

async function createSandbox(launcher: ExecutorLauncher, spec: SandboxSpec = sandboxSpec()): Promise<string> {
  const id = await driver.create(spec, { beforeStart: (id) => launcher.beforeStart(id) });
  created.push(id);
  await launcher.afterStart(id, UID);
  return id;
}

async function run(launcher: ExecutorLauncher, id: string, argv: string[], payload: Buffer = Buffer.alloc(0)) {
  const output = { stdout: "", stderr: "" };
  const outcome = await launcher.run(id, {
    argv,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    cwd: "/sandbox",
    payload,
    onOutput: (stream, chunk) => void (output[stream] += chunk.toString()),
  });
  return { ...outcome, ...output };
}

beforeAll(async () => {
  const server = await facade.listen();
  facadeUrl = server;
  dir = mkdtempSync(join(tmpdir(), "isol8-k8s-"));
  writeFileSync(join(dir, "kubeconfig"), facade.kubeconfig(server, NAMESPACE));
  driverOptions = {
    kubeconfig: join(dir, "kubeconfig"),
    namespace: NAMESPACE,
    nodePodPidsLimit: 64,
    acceptWeaker: { tmpfsExec: true, nodeLogs: true },
    // What `isol8 setup --push` would record: the pulled reference and the image's labels.
    images: await pushedImages(docker, [IMAGE]),
    startTimeoutMs: 60_000,
  };
  driver = new KubernetesDriver(driverOptions);
});

afterAll(async () => {
  for (const id of created) await driver.remove(id);
  await facade.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Kubernetes driver through the API façade", () => {
  it("answers a ping through the API server, and reports a refused connection as the backend unavailable", async () => {
    await expect(driver.ping()).resolves.toBeUndefined();
    writeFileSync(join(dir, "dead"), facade.kubeconfig("http://127.0.0.1:1", NAMESPACE));
    const dead = new KubernetesDriver({ ...driverOptions, kubeconfig: join(dir, "dead") });
    await expect(dead.ping()).rejects.toMatchObject({ code: "ISOL8_ERR_DOCKER_UNAVAILABLE" });
  });

  it("creates a pod whose executor says HELLO over the attach stream and runs a program as the sandbox uid", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    const result = await run(launcher, id, ["/bin/sh", "-c", "id -u; id -g; echo out; echo err >&2; exit 3"]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe(`${UID}\n${UID}\nout\n`);
    expect(result.stderr).toBe("err\n");
    launcher.forget(id);
  });

  it("gives the program the spec's hardening: read-only root, /sandbox owned 0700 by the sandbox uid, no capabilities, no network", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    const script = [
      "touch /rootfs-probe 2>/dev/null && echo root-writable || echo root-readonly",
      "stat -c '%a %u' /sandbox",
      "stat -c '%a' /tmp",
      "touch /sandbox/probe && echo sandbox-writable",
      "grep CapEff /proc/self/status",
      "grep NoNewPrivs /proc/self/status",
      "ls /sys/class/net",
    ].join("; ");
    const result = await run(launcher, id, ["/bin/sh", "-c", script]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines[0]).toBe("root-readonly");
    expect(lines[1]).toBe(`700 ${UID}`);
    expect(lines[2]).toBe("1777");
    expect(lines[3]).toBe("sandbox-writable"); // positive control of the write probe
    expect(lines[4]).toMatch(/^CapEff:\s+0+$/);
    expect(lines[5]).toMatch(/^NoNewPrivs:\s+1$/);
    expect(lines.slice(6)).toEqual(["lo"]);
    launcher.forget(id);
  });

  it("sends files as the executor's tar payload and wipes the sandbox between runs", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    const payload = await packTar([{ path: "/sandbox/main.py", content: "print(6 * 7)\n" }]);
    const result = await run(launcher, id, ["python3", "/sandbox/main.py"], payload);
    expect(result).toMatchObject({ exitCode: 0, stdout: "42\n", stderr: "" });
    const listed = await run(launcher, id, ["/bin/ls", "/sandbox"]);
    expect(listed.stdout).toBe("main.py\n");
    await launcher.wipe(id);
    const after = await run(launcher, id, ["/bin/ls", "-A", "/sandbox"]);
    expect(after).toMatchObject({ exitCode: 0, stdout: "" });
    launcher.forget(id);
  });

  it("runs a command through pods/exec with stdin, env, working directory and a user", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    let stdout = "";
    const outcome = await driver.exec(id, {
      argv: ["/bin/sh", "-c", 'read line; echo "$line $GREETING $(pwd) $(id -u)"; exit 5'],
      stdin: Buffer.from("from-stdin\n"),
      env: { GREETING: "hello" },
      workdir: "/tmp",
      user: `${UID}:${UID}`,
      onOutput: (_stream, chunk) => void (stdout += chunk.toString()),
    });
    expect(outcome.exitCode).toBe(5);
    expect(stdout).toBe(`from-stdin hello /tmp ${UID}\n`);
    launcher.forget(id);
  });

  it("lists its pods by label and removes them; a removed pod is gone from list and inspect", async () => {
    const launcher = new ExecutorLauncher(driver);
    const a = await createSandbox(launcher, sandboxSpec({ "isol8.session": "list-a" }));
    const b = await createSandbox(launcher, sandboxSpec({ "isol8.session": "list-b" }));
    const listed = await driver.list({ "isol8.engine": "k8s-driver-test", "isol8.session": true });
    expect(listed.map((s) => s.id).sort()).toEqual([a, b].sort());
    expect(listed.every((s) => s.running)).toBe(true);
    expect((await driver.list({ "isol8.session": "list-a" })).map((s) => s.id)).toEqual([a]);
    launcher.forget(a);
    await driver.remove(a);
    expect((await driver.list({ "isol8.session": true })).map((s) => s.id)).toEqual([b]);
    expect(await driver.inspect(a)).toBeUndefined();
    await expect(driver.remove(a)).resolves.toBeUndefined(); // already gone: not an error
    expect(await driver.inspect(b)).toMatchObject({ id: b, running: true });
    launcher.forget(b);
  });

  it("kills the running program when asked and the sandbox serves the next run", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    const abort = new AbortController();
    let started = false;
    const running = launcher.run(id, {
      argv: ["/bin/sh", "-c", "echo started; sleep 600"],
      env: {},
      payload: Buffer.alloc(0),
      onOutput: () => void (started = true),
      signal: abort.signal,
    });
    await expect.poll(() => started, { timeout: 30_000 }).toBe(true);
    abort.abort();
    expect((await running).exitCode).toBe(-1);
    await launcher.killAll(id);
    const next = await run(launcher, id, ["/bin/ps", "-eo", "uid=,comm="]);
    const processes = next.stdout
      .trim()
      .split("\n")
      .map((line) => line.trim().split(/\s+/));
    expect(processes).toContainEqual([String(UID), "ps"]); // the listing sees the sandbox user's processes
    expect(processes.filter(([uid]) => uid === String(UID)).map(([, comm]) => comm)).toEqual(["ps"]);
    launcher.forget(id);
  });
});

describe("Kubernetes driver errors", () => {
  it("an RBAC refusal is a KubernetesApiError with status 403 and reason Forbidden", async () => {
    facade.denied.add("create pods");
    try {
      const error = await driver.create(sandboxSpec()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubernetesApiError);
      expect(error).toMatchObject({ status: 403, reason: "Forbidden" });
      expect((error as Error).message).toMatch(/cannot create resource "pods"/);
    } finally {
      facade.denied.delete("create pods");
    }
  });

  it("an image the node cannot pull fails the start with reason ErrImagePull, and the pod is deleted", async () => {
    const missing = "isol8/no-such-image:never";
    const broken = new KubernetesDriver({ ...driverOptions, images: { [missing]: { reference: missing, labels: {} } } });
    const error = await broken.create({ ...sandboxSpec({ "isol8.session": "pull" }), image: missing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect(error).toMatchObject({ reason: "ErrImagePull" });
    expect(await driver.list({ "isol8.session": "pull" })).toEqual([]);
  });

  it("a quota exceeded is a 403 naming the quota", async () => {
    const limited = new KubernetesFacade({ podPidsLimit: 64, maxPods: 0, docker });
    const server = await limited.listen();
    writeFileSync(join(dir, "quota"), limited.kubeconfig(server, NAMESPACE));
    try {
      const error = await new KubernetesDriver({ ...driverOptions, kubeconfig: join(dir, "quota") }).create(sandboxSpec()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubernetesApiError);
      expect(error).toMatchObject({ status: 403, reason: "Forbidden" });
      expect((error as Error).message).toMatch(/exceeded quota/);
    } finally {
      await limited.close();
    }
  });

  it("a 422 names the invalid field", async () => {
    const error = await driver.create(sandboxSpec(), { name: "Not_Valid" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnmappableSpecError);
    expect(error).toMatchObject({ field: "name" });
    const raw = await driver.create({ ...sandboxSpec(), driverExtensions: { kubernetes: { spec: { containers: [] } } } }).catch((e: unknown) => e);
    expect(raw).toBeInstanceOf(KubernetesApiError);
    expect(raw).toMatchObject({ status: 422, reason: "Invalid" });
    expect((raw as KubernetesApiError).causes.map((c) => c.field)).toContain("spec.containers");
  });

  it("a pod evicted mid-run ends the executor's connection and inspect tells it is not running", async () => {
    const launcher = new ExecutorLauncher(driver);
    const id = await createSandbox(launcher);
    const running = launcher.run(id, { argv: ["/bin/sh", "-c", "sleep 600"], env: {}, payload: Buffer.alloc(0), onOutput: () => undefined });
    const failed = expect(running).rejects.toThrow(/connection to container .* closed/);
    await facade.store.evict(NAMESPACE, id);
    await failed;
    expect(await driver.inspect(id)).toMatchObject({ id, running: false });
    launcher.forget(id);
  });
});

describe('an engine on the Kubernetes driver (driver: "kubernetes")', () => {
  /** An engine choosing the driver by name, the plugin configured for the façade. */
  async function kubernetesEngine(options: EngineOptions, plugins: Isol8Plugin[], extra: KubernetesDriverOptions = {}): Promise<DockerIsol8> {
    const images = await engineImages(docker, plugins);
    return new DockerIsol8({ ...options, driver: "kubernetes" }, { plugins: [...plugins, kubernetesDriver({ ...driverOptions, images, ...extra })] });
  }

  it("runs code, files and a persistent session's state through pods, none as a Docker sandbox, and removes its pods at stop()", async () => {
    const engine = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" }, [pythonRuntime()]);
    expect(engine.driver).toBeInstanceOf(KubernetesDriver);
    expect(engine.driver).not.toBe(engine.docker); // image building stays on Docker
    await engine.start();
    try {
      const first = await engine.execute({
        runtime: "python",
        code: "import os\nopen('/sandbox/kept.txt', 'w').write('kept')\nprint(os.getuid() >= 1_000_000_000)",
      });
      expect(first).toMatchObject({ exitCode: 0, stdout: "True\n" });
      const second = await engine.execute({ runtime: "python", code: "print(open('/sandbox/kept.txt').read())" });
      expect(second).toMatchObject({ exitCode: 0, stdout: "kept\n" });
      const pods = await driver.list({ "isol8.engine": engine.id });
      expect(pods.map((p) => p.id)).toEqual([first.containerId]);
      // Not one Docker container carries the engine's label: the sandbox is the façade's pod.
      expect(await engine.docker.listContainers({ "isol8.engine": engine.id })).toEqual([]);
    } finally {
      await engine.stop();
    }
    expect(await driver.list({ "isol8.engine": engine.id })).toEqual([]);
  });

  it("an ephemeral engine on a pool runs each execution in a clean pod, ends a timed-out run, returns output files, and removes its pods at stop()", async () => {
    const engine = await kubernetesEngine({ mode: "ephemeral", network: "none", launcher: "executor", poolStrategy: "fast", timeoutMs: 5_000 }, [
      pythonRuntime(),
      fastPool(),
    ]);
    await engine.start();
    try {
      const written = await engine.execute({
        runtime: "python",
        code: "open('/sandbox/out.txt', 'w').write('made here')\nprint('done')",
        outputPaths: ["/sandbox/out.txt"],
      });
      expect(written).toMatchObject({ exitCode: 0, stdout: "done\n", files: { "/sandbox/out.txt": Buffer.from("made here").toString("base64") } });
      const clean = await engine.execute({ runtime: "python", code: "import os\nprint(sorted(os.listdir('/sandbox')))" });
      expect(clean).toMatchObject({ exitCode: 0, stdout: "['main.py']\n" }); // its own code file only: out.txt was wiped
      const slow = await engine.execute({ runtime: "python", code: "import time\nprint('begun', flush=True)\ntime.sleep(600)", timeoutMs: 2_000 });
      expect(slow).toMatchObject({ timedOut: true, stdout: "begun\n" });
      const after = await engine.execute({ runtime: "python", code: "print('still serving')" });
      expect(after).toMatchObject({ exitCode: 0, stdout: "still serving\n" });
    } finally {
      await engine.stop();
    }
    await expect.poll(async () => (await driver.list({ "isol8.engine": engine.id })).length, { timeout: 30_000 }).toBe(0);
  });

  it("refuses launcher exec at start() with ISOL8_ERR_NOT_SUPPORTED naming the option; no pod is made", async () => {
    const engine = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "exec" }, [pythonRuntime()]);
    const error = await engine.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toMatch(/^launcher "exec".*kubernetes driver runs programs through the in-container executor only/);
    expect(await driver.list({ "isol8.engine": engine.id })).toEqual([]);
    await engine.stop();
  });

  it("an ociRuntime the driver does not offer fails start() naming the option and the driver's runtimeClasses; one it offers starts", async () => {
    const refused = await kubernetesEngine({ ociRuntime: "runsc", launcher: "executor" }, [pythonRuntime()]);
    const error = await refused.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toBe(
      'ociRuntime: the kubernetes driver offers no runtime "runsc" (it offers none); see that driver\'s options (Kubernetes: runtimeClasses, the RuntimeClasses of your cluster).',
    );
    await refused.stop();
    const offered = await kubernetesEngine({ ociRuntime: "runsc", launcher: "executor" }, [pythonRuntime()], { runtimeClasses: ["runsc"] });
    await offered.start();
    await offered.stop();
  });

  it("refuses a network mode other than none and filtered at start() naming the option", async () => {
    const engine = await kubernetesEngine({ network: "host" }, [pythonRuntime()]);
    const error = await engine.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toMatch(/^network "host": the kubernetes driver gives sandboxes network "none", "filtered" only/);
    await engine.stop();
  });

  it("refuses, at create, an image without the executor (launcher auto would need exec) naming the option; no pod is left", async () => {
    const image = new DockerIsol8({}, { plugins: [pythonRuntime()] }).imageFor("python");
    const engine = await kubernetesEngine({ mode: "persistent", launcher: "auto" }, [pythonRuntime()], {
      images: { [image]: { reference: image, labels: {} } },
    });
    await engine.start();
    try {
      const error = await engine.execute({ runtime: "python", code: "print(1)" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotSupportedError);
      expect((error as Error).message).toMatch(/^launcher "auto": the image .* has no isol8 executor .* kubernetes driver cannot run the exec launcher/);
      expect(await driver.list({ "isol8.engine": engine.id })).toEqual([]);
    } finally {
      await engine.stop();
    }
  });

  it("an unknown driver is refused at construction naming the registered ones; kubernetes without its plugin names the plugin", () => {
    const unknown = () => new DockerIsol8({ driver: "nomad" }, { plugins: [pythonRuntime(), kubernetesDriver(driverOptions)] });
    expect(unknown).toThrow(InvalidOptionsError);
    expect(unknown).toThrow(/Unknown driver "nomad"\. Registered: docker, kubernetes\./);
    const missing = () => new DockerIsol8({ driver: "kubernetes" }, { plugins: [pythonRuntime()] });
    expect(missing).toThrow(InvalidOptionsError);
    expect(missing).toThrow(/Unknown driver "kubernetes"\. Registered: docker\. Add kubernetesDriver/);
  });
});

describe("engine Leases and the start-up reaper on the Kubernetes driver", () => {
  /** Short Leases, so that only renewal keeps an engine alive past a few seconds. */
  const SHORT_LEASE: KubernetesDriverOptions = { leaseDurationSeconds: 2, leaseRenewMs: 500 };
  const leaseOf = (engineId: string) => facade.leases.list(NAMESPACE, `isol8.engine=${engineId}`);
  const renewTime = (engineId: string) => Date.parse(String(facade.leases.get(NAMESPACE, leaseName(engineId)).spec?.renewTime));

  async function kubernetesEngine(options: EngineOptions, extra: KubernetesDriverOptions = {}): Promise<DockerIsol8> {
    const plugins = [pythonRuntime()];
    const images = await engineImages(docker, plugins);
    return new DockerIsol8({ ...options, driver: "kubernetes" }, { plugins: [...plugins, kubernetesDriver({ ...driverOptions, images, ...extra })] });
  }

  it("an engine holds a Lease named after it (holder = engine id) while started, renews it, and deletes it at stop()", async () => {
    const engine = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" }, SHORT_LEASE);
    expect(leaseOf(engine.id)).toEqual([]);
    await engine.start();
    try {
      const [lease] = leaseOf(engine.id);
      expect(lease?.metadata?.name).toBe(leaseName(engine.id));
      expect(lease?.spec).toMatchObject({ holderIdentity: engine.id, leaseDurationSeconds: 2 });
      const first = renewTime(engine.id);
      expect(Number.isFinite(first)).toBe(true);
      await expect.poll(() => renewTime(engine.id), { timeout: 30_000 }).toBeGreaterThan(first);
      expect(facade.requests).toContain(`PUT /apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${leaseName(engine.id)}`);
    } finally {
      await engine.stop();
    }
    expect(leaseOf(engine.id)).toEqual([]);
  });

  it("another engine's start reaps the pods of engines whose Lease expired or never existed, and leaves a live engine's and a persist engine's pods", async () => {
    const live = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" }, SHORT_LEASE);
    await live.start();
    const launcher = new ExecutorLauncher(driver);
    const persisted: string[] = [];
    let reaper: DockerIsol8 | undefined;
    try {
      const livePod = (await live.execute({ runtime: "python", code: "open('/sandbox/alive.txt', 'w').write('alive')" })).containerId!;
      expect(livePod).toMatch(/\S/);
      const noLease = await createSandbox(launcher, sandboxSpec({ "isol8.engine": "dead-engine-without-lease" }));
      const expired = await createSandbox(launcher, sandboxSpec({ "isol8.engine": "dead-engine-expired" }));
      facade.leases.create(NAMESPACE, {
        metadata: { name: leaseName("dead-engine-expired"), labels: { "isol8.engine": "dead-engine-expired" } },
        spec: { holderIdentity: "dead-engine-expired", leaseDurationSeconds: 2, renewTime: new Date(Date.now() - 60_000).toISOString() as never },
      });
      const kept = await createSandbox(launcher, sandboxSpec({ "isol8.engine": "dead-engine-persist", "isol8.persist": "true" }));
      persisted.push(kept);
      for (const id of [noLease, expired, kept]) launcher.forget(id);
      // The live engine outlived its first Lease term: only its renewals keep it alive now.
      const acquired = Date.parse(String(facade.leases.get(NAMESPACE, leaseName(live.id)).spec?.acquireTime));
      await expect.poll(() => renewTime(live.id) - acquired, { timeout: 30_000 }).toBeGreaterThan(3_000);

      reaper = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" });
      await reaper.start(); // resolves once its reaper is done

      expect(await driver.inspect(noLease)).toBeUndefined();
      expect(await driver.inspect(expired)).toBeUndefined();
      expect(leaseOf("dead-engine-expired")).toEqual([]); // the dead engine's Lease went with its pods
      expect(await driver.inspect(livePod)).toMatchObject({ id: livePod, running: true });
      expect(leaseOf(live.id)).toHaveLength(1);
      expect(await driver.inspect(kept)).toMatchObject({ id: kept, running: true });
      // The live engine's session (its pod and what it wrote) still serves it.
      const after = await live.execute({ runtime: "python", code: "print(open('/sandbox/alive.txt').read())" });
      expect(after).toMatchObject({ exitCode: 0, stdout: "alive\n", containerId: livePod });
    } finally {
      await reaper?.stop();
      await live.stop();
      for (const id of persisted) await driver.remove(id);
    }
  });

  it("a live engine whose Lease was deleted under it (a reaper judged it expired) claims it again at its next renewal", async () => {
    const engine = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" }, SHORT_LEASE);
    await engine.start();
    try {
      const before = facade.leases.get(NAMESPACE, leaseName(engine.id)).metadata?.uid;
      facade.leases.delete(NAMESPACE, leaseName(engine.id));
      expect(leaseOf(engine.id)).toEqual([]);
      await expect.poll(() => leaseOf(engine.id).length, { timeout: 30_000 }).toBe(1);
      const [again] = leaseOf(engine.id);
      expect(again?.spec?.holderIdentity).toBe(engine.id);
      expect(again?.metadata?.uid).not.toBe(before); // a new object, not the old one
    } finally {
      await engine.stop();
    }
    expect(leaseOf(engine.id)).toEqual([]);
  });

  it("the façade's Lease replace is optimistic: a stale resourceVersion is a 409 Conflict, the current one succeeds", async () => {
    const name = "isol8-engine-conflict-probe";
    const url = `${facadeUrl}/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`;
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${facade.token}`, "content-type": "application/json" },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return {
        status: response.status,
        body: (await response.json()) as { metadata?: { resourceVersion?: string }; spec?: { holderIdentity?: string }; reason?: string },
      };
    };
    const created = await call("POST", "", { metadata: { name }, spec: { holderIdentity: "a", leaseDurationSeconds: 5 } });
    expect(created.status).toBe(201);
    try {
      expect((await call("POST", "", { metadata: { name } })).body).toMatchObject({ code: 409, reason: "AlreadyExists" });
      const current = { metadata: { name, resourceVersion: created.body.metadata?.resourceVersion }, spec: { holderIdentity: "c" } };
      const updated = await call("PUT", `/${name}`, current);
      expect(updated).toMatchObject({ status: 200, body: { spec: { holderIdentity: "c" } } });
      const stale = await call("PUT", `/${name}`, { ...current, spec: { holderIdentity: "b" } });
      expect(stale).toMatchObject({ status: 409, body: { reason: "Conflict" } });
      expect((await call("GET", `/${name}`)).body.spec?.holderIdentity).toBe("c");
    } finally {
      expect((await call("DELETE", `/${name}`)).status).toBe(200);
    }
    expect((await call("GET", `/${name}`)).body).toMatchObject({ code: 404, reason: "NotFound" });
  });

  it("a start denied the Lease (RBAC) fails with the 403 naming leases, makes no pod, and holds no claim", async () => {
    facade.denied.add("create leases");
    const engine = await kubernetesEngine({ mode: "persistent", network: "none", launcher: "executor" });
    try {
      const error = await engine.start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubernetesApiError);
      expect(error).toMatchObject({ status: 403, reason: "Forbidden" });
      expect((error as Error).message).toMatch(/cannot create resource "leases" in API group "coordination.k8s.io"/);
    } finally {
      facade.denied.delete("create leases");
      await engine.stop();
    }
    expect(await driver.list({ "isol8.engine": engine.id })).toEqual([]);
    expect(leaseOf(engine.id)).toEqual([]);
  });
});

describe("isol8 setup with a Kubernetes config", () => {
  it("builds (finds up to date) the images with the local Docker without reading the kubeconfig, where run with the same config needs it", async () => {
    const config = join(dir, "isol8.k8s-setup.config.mjs");
    const pluginEntry = pathToFileURL(join(REPO_ROOT, "plugins/driver-kubernetes/dist/index.js")).href;
    const options = { ...driverOptions, kubeconfig: join(dir, "no-such-kubeconfig") };
    writeFileSync(
      config,
      `import { defaultPlugins } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, "packages/cli/dist/index.js")).href)};\nimport { kubernetesDriver } from ${JSON.stringify(pluginEntry)};\n` +
        `export default { plugins: defaultPlugins(kubernetesDriver(${JSON.stringify(options)})), defaults: { driver: "kubernetes" } };\n`,
    );
    const setup = await isol8Cli(["setup", "--runtime", "bash", "-c", config]);
    expect(setup.stderr).not.toMatch(/kubeconfig|no-such-kubeconfig/i);
    expect(setup.code).toBe(0);
    expect(setup.stdout).toMatch(/^bash\s+up-to-date\s+isol8\/bash:/m);
    // The control: the config does choose Kubernetes, whose driver reads the (missing) kubeconfig.
    const run = await isol8Cli(["run", "-r", "bash", "-e", "echo never", "-c", config]);
    expect(run.code).toBe(125);
    expect(run.stderr).toContain(`kubeconfig "${options.kubeconfig}" could not be read: ENOENT`);
  });
});

describe("isol8 cleanup --driver kubernetes", () => {
  const CLEANUP_NAMESPACE = "isol8-cleanup";

  it("lists isol8's pods through the driver of the config's plugin and removes them with --force, leaving a pod without isol8's labels", async () => {
    writeFileSync(join(dir, "cleanup-kubeconfig"), facade.kubeconfig(facadeUrl, CLEANUP_NAMESPACE));
    const options = { ...driverOptions, kubeconfig: join(dir, "cleanup-kubeconfig"), namespace: CLEANUP_NAMESPACE };
    const config = join(dir, "isol8.config.mjs");
    const pluginEntry = pathToFileURL(join(REPO_ROOT, "plugins/driver-kubernetes/dist/index.js")).href;
    writeFileSync(
      config,
      `import { kubernetesDriver } from ${JSON.stringify(pluginEntry)};\nexport default { plugins: [kubernetesDriver(${JSON.stringify(options)})] };\n`,
    );
    const inNamespace = new KubernetesDriver(options);
    const launcher = new ExecutorLauncher(inNamespace);
    const isol8Pods = [
      await inNamespace.create(sandboxSpec({ "isol8.engine": "engine-a" }), { beforeStart: (id) => launcher.beforeStart(id) }),
      await inNamespace.create(sandboxSpec({ "isol8.engine": "engine-b" }), { beforeStart: (id) => launcher.beforeStart(id) }),
    ];
    const foreign = await inNamespace.create({ ...sandboxSpec(), labels: { purpose: "not-isol8" } });
    for (const id of isol8Pods) launcher.forget(id);
    try {
      expect((await inNamespace.list({ "isol8.engine": true })).map((p) => p.id).sort()).toEqual([...isol8Pods].sort());

      // Without --force and no terminal: it says what it would remove, and removes nothing.
      const asked = await isol8Cli(["cleanup", "--driver", "kubernetes", "-c", config]);
      expect(asked.code).toBe(1);
      expect(asked.stderr).toMatch(/would remove 2 sandbox\(es\), 0 network\(s\) \(driver kubernetes\); pass --force/);
      expect(await inNamespace.list({ "isol8.engine": true })).toHaveLength(2);

      const done = await isol8Cli(["cleanup", "--driver", "kubernetes", "--force", "-c", config]);
      expect(done.stderr).toBe("");
      expect(done.code).toBe(0);
      expect(done.stdout).toBe("Removed 2 sandbox(es), 0 network(s) (driver kubernetes); 0 failed.\n");
      expect(await inNamespace.list({ "isol8.engine": true })).toEqual([]);
      expect(await inNamespace.inspect(foreign)).toMatchObject({ id: foreign, running: true }); // not isol8's: left alone

      const again = await isol8Cli(["cleanup", "--driver", "kubernetes", "--force", "-c", config]);
      expect(again).toMatchObject({ code: 0, stdout: "Nothing to clean up (driver kubernetes).\n" });
    } finally {
      for (const id of [...isol8Pods, foreign]) await inNamespace.remove(id);
    }
  });

  it("refuses a driver no plugin of the config registers, naming the registered ones, and --images with it", async () => {
    const unknown = await isol8Cli(["cleanup", "--driver", "nomad", "--force"]);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toMatch(/Unknown driver "nomad"\. Registered: docker\. .*\[ISOL8_ERR_INVALID_OPTIONS\]/);
    const images = await isol8Cli(["cleanup", "--driver", "kubernetes", "--images", "--force"]);
    expect(images.code).toBe(125);
    expect(images.stderr).toMatch(/--images: the kubernetes driver's images are in a registry/);
  });
});
