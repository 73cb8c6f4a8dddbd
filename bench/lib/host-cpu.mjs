// Host CPU accounting for the CPU-per-execution section (Linux /proc only). Two independent meters:
//   - attributed: utime+stime+cutime+cstime (/proc/[pid]/stat) of dockerd, containerd, and for each
//     container of the side being measured its containerd-shim and every live descendant of that
//     shim (the container's init, its processes, exec'd programs); plus the engine process's own
//     process.cpuUsage(). runc and exec'd programs are children of the shim (a subreaper): when they
//     exit, the shim reaps them and their whole CPU lands in its cutime/cstime, so short-lived
//     processes are counted without being seen alive. No cgroup counter is added on top: a
//     container's cgroup usage would count the exec'd programs a second time (once in the cgroup,
//     once in the shim's cutime).
//   - host-wide: busy jiffies of the whole machine (/proc/stat: user+nice+system+irq+softirq), with
//     the background rate measured in a paired idle window right before subtracted.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's counters (USER_HZ). */
const CLK_TCK = (() => {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim();
  const n = Number(out);
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

const ticksToMs = (ticks) => (ticks * 1000) / CLK_TCK;

/** Whether this host has the /proc files the meters read. */
export function hostCpuSupported() {
  try {
    readFileSync("/proc/stat", "utf8");
    readFileSync("/proc/self/stat", "utf8");
    return true;
  } catch {
    return false;
  }
}

/** The machine's busy and total jiffies, all CPUs summed (the first line of /proc/stat). */
function hostTicks() {
  const first = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = first.trim().split(/\s+/).slice(1, 9).map(Number);
  return { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** pid → { ppid, own, reaped } (ticks) for every process readable now. */
function processTable() {
  const table = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited while we listed
    }
    // Fields after "(comm)": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    table.set(Number(name), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
  }
  return table;
}

function readCmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

function readComm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * The processes to meter for a set of containers: the Docker daemons (by name) and the shim of
 * each container (its command line carries `-id <container id>`). Throws when a container has no
 * shim visible from here (e.g. Docker in another VM): the figure would be wrong, not just low.
 */
export function meterTargets(containerIds) {
  const daemons = [];
  const shims = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const comm = readComm(pid);
    if (comm === "dockerd" || comm === "containerd") daemons.push({ pid, comm });
    else if (comm.startsWith("containerd-shim")) {
      const argv = readCmdline(pid);
      const id = argv[argv.indexOf("-id") + 1];
      if (argv.includes("-id") && containerIds.includes(id)) shims.set(id, pid);
    }
  }
  const missing = containerIds.filter((id) => !shims.has(id));
  if (daemons.length === 0) throw new Error("no dockerd or containerd process is visible in /proc (Docker runs elsewhere): host CPU cannot be metered");
  if (missing.length) throw new Error(`no containerd-shim is visible for container(s) ${missing.map((id) => id.slice(0, 12)).join(", ")}`);
  return { daemons, shims: [...shims.values()] };
}

/** One reading of both meters (ticks), the engine process's CPU (µs) and the time. */
export function sampleCpu(targets) {
  const table = processTable();
  const hostNow = hostTicks();
  const total = (pid) => {
    const p = table.get(pid);
    return p ? p.own + p.reaped : 0;
  };
  let daemons = 0;
  for (const d of targets.daemons) daemons += total(d.pid);
  // Every live descendant of the shims: the containers' processes.
  const children = new Map();
  for (const [pid, p] of table) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(pid);
  }
  let shims = 0;
  let containers = 0;
  let processes = 0;
  for (const shim of targets.shims) {
    shims += total(shim);
    const stack = [...(children.get(shim) ?? [])];
    while (stack.length) {
      const pid = stack.pop();
      containers += total(pid);
      processes++;
      stack.push(...(children.get(pid) ?? []));
    }
  }
  const engine = process.cpuUsage();
  return { at: performance.now(), host: hostNow, daemons, shims, containers, processes, engineUs: engine.user + engine.system };
}

/** CPU milliseconds between two readings, per meter. */
export function cpuDelta(a, b) {
  const engine = (b.engineUs - a.engineUs) / 1000;
  const daemons = ticksToMs(b.daemons - a.daemons);
  const shims = ticksToMs(b.shims - a.shims);
  const containers = ticksToMs(b.containers - a.containers);
  return {
    wallMs: b.at - a.at,
    engine,
    daemons,
    shims,
    containers,
    attributed: engine + daemons + shims + containers,
    host: ticksToMs(b.host.busy - a.host.busy),
    hostCapacity: ticksToMs(b.host.total - a.host.total),
  };
}

/** Sums of cpuDelta results (same keys). */
export function addDeltas(list) {
  const out = { wallMs: 0, engine: 0, daemons: 0, shims: 0, containers: 0, attributed: 0, host: 0, hostCapacity: 0 };
  for (const d of list) for (const k of Object.keys(out)) out[k] += d[k];
  return out;
}

/**
 * Whether the host-wide meter had no headroom: when the CPUs were mostly busy with other work in
 * the idle windows, a measured window cannot be much busier than its idle one and the difference
 * means nothing (the attributed meter is unaffected).
 */
export function hostSaturated(cpu) {
  return Math.max(cpu.isol8?.hostBackground ?? 1, cpu.floor?.hostBackground ?? 1) >= 0.8;
}
