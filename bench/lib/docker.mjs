// The baselines (no isol8 code): `docker run --rm` and a bare Docker Engine API exec into a running
// container; container memory; the leftover check; a tracer of every Docker API call a client makes.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";
import Docker from "dockerode";
import { now } from "./util.mjs";

export const BENCH_LABEL = "isol8.bench";

export function newDocker() {
  return new Docker();
}

/**
 * The floor's container: the spec the engine created its own containers with (captured from the
 * sandboxSpec hook: read-only root, tmpfs, cap-drop ALL, no-new-privileges, seccomp, limits,
 * network none, init), idling like the engine's exec-path containers, labelled as the bench's.
 */
/**
 * "uid:gid" of the sandbox user of containers made from a captured engine spec: each container has
 * its own (the isol8.uid label; the /sandbox tmpfs belongs to it), and so do the floor's.
 */
export function sandboxUser(spec) {
  const uid = spec.Labels?.["isol8.uid"];
  if (!/^\d+$/.test(uid ?? "")) throw new Error("the captured container spec has no isol8.uid label (the engine's sandbox uid)");
  return `${uid}:${uid}`;
}

export function floorSpec(captured, runId, role = "floor") {
  const spec = structuredClone(captured);
  for (const key of ["OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr", "Tty"]) delete spec[key];
  spec.Cmd = ["sleep", "infinity"];
  spec.Entrypoint = undefined;
  spec.User = "65534:65534";
  spec.Labels = { [BENCH_LABEL]: runId, [`${BENCH_LABEL}.role`]: role, "isol8.uid": captured.Labels?.["isol8.uid"] };
  spec.HostConfig = { ...spec.HostConfig };
  delete spec.HostConfig.CapAdd;
  return spec;
}

export async function startContainer(docker, spec) {
  const container = await docker.createContainer(spec);
  try {
    await container.start();
  } catch (error) {
    await container.remove({ force: true }).catch(() => undefined);
    throw error;
  }
  return container.id;
}

export async function removeContainer(docker, id) {
  await docker
    .getContainer(id)
    .remove({ force: true, v: true })
    .catch((error) => {
      if (error?.statusCode !== 404 && error?.statusCode !== 409) throw error;
    });
}

/**
 * One bare Docker Engine API exec, as a client without isol8 would do it: create, start (hijacked
 * stream), read to the end, inspect for the exit code. With `stdin`, the bytes are written and
 * stdin is half-closed (what isol8's exec path does with its tar).
 */
export async function bareExec(docker, containerId, { argv, env = [], user, workdir = "/sandbox", stdin, marks }) {
  if (!user) throw new Error("bareExec: no user (the container's sandbox user, sandboxUser(spec))");
  const exec = await docker.getContainer(containerId).exec({
    Cmd: argv,
    User: user,
    Env: env,
    WorkingDir: workdir,
    AttachStdin: stdin !== undefined,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  if (marks) marks.created = now();
  const stream = await exec.start({ hijack: true, stdin: stdin !== undefined });
  if (marks) marks.started = now();
  const out = [];
  const err = [];
  await new Promise((resolve, reject) => {
    docker.modem.demuxStream(stream, { write: (c) => out.push(c) }, { write: (c) => err.push(c) });
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", reject);
    if (stdin !== undefined) {
      stream.write(stdin);
      stream.end();
    }
  });
  if (marks) marks.ended = now();
  const info = await exec.inspect();
  return { exitCode: info.ExitCode, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Docker CLI flags equivalent to a container spec (the engine's hardening), for `docker run --rm`. */
export function dockerRunArgs(spec, { runId, env, argv, seccompDir }) {
  const h = spec.HostConfig ?? {};
  const args = ["run", "--rm", "--label", `${BENCH_LABEL}=${runId}`, "--label", `${BENCH_LABEL}.role=docker-run`];
  if (h.Init) args.push("--init");
  if (h.ReadonlyRootfs) args.push("--read-only");
  for (const [path, opts] of Object.entries(h.Tmpfs ?? {})) args.push("--tmpfs", `${path}:${opts}`);
  for (const cap of h.CapDrop ?? []) args.push("--cap-drop", cap);
  for (const opt of h.SecurityOpt ?? []) {
    const m = /^seccomp[=:](.*)$/s.exec(opt);
    if (m && m[1].trim().startsWith("{")) {
      // The API takes the profile's JSON; the CLI takes a file.
      mkdirSync(seccompDir, { recursive: true });
      const file = join(seccompDir, `seccomp-${runId}.json`);
      writeFileSync(file, m[1]);
      args.push("--security-opt", `seccomp=${file}`);
    } else args.push("--security-opt", opt);
  }
  if (h.Memory) args.push("--memory", `${h.Memory}b`);
  if (h.MemorySwap) args.push("--memory-swap", `${h.MemorySwap}b`);
  if (h.NanoCpus) args.push("--cpus", String(h.NanoCpus / 1e9));
  if (h.PidsLimit) args.push("--pids-limit", String(h.PidsLimit));
  if (h.IpcMode) args.push("--ipc", h.IpcMode);
  if (h.LogConfig?.Type) args.push("--log-driver", h.LogConfig.Type);
  args.push("--network", h.NetworkMode && h.NetworkMode !== "default" ? h.NetworkMode : "none");
  args.push("--user", sandboxUser(spec), "-w", spec.WorkingDir ?? "/sandbox");
  for (const e of [...(spec.Env ?? []), ...env]) args.push("-e", e);
  args.push(spec.Image, ...argv);
  return args;
}

/** One `docker run --rm`: wall time from spawn to exit, and its output. */
export function dockerRun(args, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn("docker", args, { stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ ms: now() - t0, exitCode: code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/** Memory charged to a container's cgroup (v1 here; v2 and `docker stats` as fallbacks). */
export async function containerMemory(docker, id) {
  const read = (p) => readFileSync(p, "utf8");
  try {
    const base = `/sys/fs/cgroup/memory/docker/${id}`;
    const usage = Number(read(`${base}/memory.usage_in_bytes`));
    const stat = read(`${base}/memory.stat`);
    const rss = Number(/^total_rss (\d+)$/m.exec(stat)?.[1] ?? /^rss (\d+)$/m.exec(stat)?.[1] ?? NaN);
    return { usage, rss, source: "cgroup v1" };
  } catch {
    // not cgroup v1: try v2
  }
  try {
    const usage = Number(read(`/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.current`));
    const stat = read(`/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.stat`);
    return { usage, rss: Number(/^anon (\d+)$/m.exec(stat)?.[1] ?? NaN), source: "cgroup v2" };
  } catch {
    // neither readable from here: ask Docker
  }
  const stats = await docker.getContainer(id).stats({ stream: false, "one-shot": true });
  return { usage: stats.memory_stats?.usage ?? NaN, rss: stats.memory_stats?.stats?.rss ?? NaN, source: "docker stats" };
}

/** Containers of an engine (by its id label) and their memory. */
export async function engineContainersMemory(docker, engineId) {
  const list = await docker.listContainers({ filters: { label: [`isol8.engine=${engineId}`] } });
  let usage = 0;
  let rss = 0;
  let source;
  const each = [];
  for (const c of list) {
    const m = await containerMemory(docker, c.Id).catch(() => undefined);
    if (!m) continue;
    usage += m.usage;
    rss += Number.isFinite(m.rss) ? m.rss : 0;
    source = m.source;
    each.push({ id: c.Id.slice(0, 12), usage: m.usage, rss: m.rss });
  }
  return { containers: list.length, usage, rss, perContainer: list.length ? usage / list.length : null, source, each };
}

/**
 * What the run left: containers labelled with this run's id, and containers or networks whose
 * isol8 owner is one of our processes. Removes them (they are ours) and reports.
 */
export async function sweepLeftovers(docker, runId, pids, since) {
  const ours = new Map();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${BENCH_LABEL}=${runId}`] } })) ours.set(c.Id, c);
  // An engine's containers carry its process id and host: ours are those of our processes, made
  // during this run (so a recycled process id of someone else's older engine is never matched).
  const host = os.hostname();
  for (const pid of pids) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`isol8.owner-pid=${pid}`, `isol8.owner-host=${host}`] } })) {
      if (c.Created * 1000 >= since - 2000) ours.set(c.Id, c);
    }
  }
  const removed = [];
  for (const [id, c] of ours) {
    await removeContainer(docker, id).catch(() => undefined);
    removed.push(`${id.slice(0, 12)} ${c.Image} ${c.Labels?.[`${BENCH_LABEL}.role`] ?? c.Labels?.["isol8.mode"] ?? ""}`.trim());
  }
  const networks = [];
  for (const pid of pids) {
    for (const n of await docker.listNetworks({ filters: { label: [`isol8.owner-pid=${pid}`, `isol8.owner-host=${host}`] } })) {
      if (Date.parse(n.Created) < since - 2000) continue;
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
      networks.push(n.Name);
    }
  }
  return { containers: removed, networks };
}

/** Normalises an Engine API path: ids become :id, the version prefix and query go. */
function normalisePath(path) {
  return path
    .replace(/^\/v[0-9.]+/, "")
    .replace(/\?.*$/, "")
    .replace(/\/(containers|exec|images|networks)\/[^/]+/, (_, kind) => `/${kind}/:id`);
}

/**
 * Times every Docker API call a dockerode client makes (dial → response or upgrade → end of a
 * hijacked stream), without touching isol8: the engine gets this client as `assembly.docker`.
 * `fakeExecInspect` (a what-if): answers GET /exec/:id/json for the given exec ids locally.
 */
export function traceDocker(docker, { fakeExecInspect } = {}) {
  const calls = [];
  const execKinds = new Map();
  const modem = docker.modem;
  const dial = modem.dial.bind(modem);
  const tracer = { calls, execKinds, enabled: true, captureStdin: false, captured: undefined, sampleBodies: 3 };
  modem.dial = (options, callback) => {
    const path = normalisePath(options.path);
    const rec = { method: options.method, path, t0: now(), t1: undefined, t2: undefined };
    const rawPath = options.path;
    let cmd;
    if (path === "/containers/:id/exec") cmd = options.options?.Cmd;
    if (path === "/exec/:id/json" && fakeExecInspect) {
      const id = /\/exec\/([^/]+)\/json/.exec(rawPath)?.[1];
      if (id && execKinds.get(id) === "run" && fakeExecInspect.enabled) {
        rec.t1 = now();
        rec.faked = true;
        if (tracer.enabled) calls.push(rec);
        queueMicrotask(() => callback(null, { ID: id, Running: false, ExitCode: 0 }));
        return;
      }
    }
    if (tracer.enabled) calls.push(rec);
    return dial(options, (err, data) => {
      rec.t1 = now();
      if (err) rec.error = String(err.message ?? err).slice(0, 120);
      if (cmd && data?.Id) {
        const kind = cmd.includes("isol8-run") ? "run" : /ipcrm|find \/sandbox/.test(cmd.join(" ")) ? "wipe" : "other";
        execKinds.set(data.Id, kind);
        rec.kind = kind;
        if (kind === "run" && tracer.captureStdin && !tracer.captured)
          tracer.captured = { Cmd: cmd, Env: options.options.Env, User: options.options.User, WorkingDir: options.options.WorkingDir };
        if (kind === "wipe" && tracer.captureStdin && !tracer.capturedWipe)
          tracer.capturedWipe = { Cmd: cmd, Env: options.options.Env, User: options.options.User, WorkingDir: options.options.WorkingDir };
      }
      if (path.startsWith("/exec/:id")) rec.kind = execKinds.get(/\/exec\/([^/]+)\//.exec(rawPath)?.[1]);
      if (path === "/containers/:id/json" && tracer.sampleBodies > 0 && data && typeof data === "object") {
        tracer.sampleBodies--;
        rec.bodyRef = data; // sized at analysis time, off the timed path
      }
      if (options.hijack && data && typeof data.on === "function") {
        const done = () => (rec.t2 ??= now());
        data.once("end", done);
        data.once("close", done);
        if (rec.kind === "run" && tracer.captureStdin && tracer.captured && !tracer.captured.stdin) {
          const write = data.write.bind(data);
          const chunks = [];
          data.write = (chunk, ...rest) => {
            if (chunk) chunks.push(Buffer.from(chunk));
            tracer.captured.stdin = Buffer.concat(chunks);
            return write(chunk, ...rest);
          };
        }
      }
      callback(err, data);
    });
  };
  return tracer;
}
