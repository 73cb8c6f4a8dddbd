import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CLI, containersOfProcesses, dieExitCodes, docker, expectNoContainersOfProcesses, isol8Cli } from "../helpers.js";

// `isol8 run` as a one-shot: ISOL8_PROFILE=1 says where its time goes, and its container is gone
// when the process has exited. Run from an empty directory (no config found), as the bench does.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-profile-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The step names of the profile lines on stderr, in order ("isol8 profile: <ms> ms +<ms> <step>"). */
function profileSteps(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("isol8 profile: "))
    .map((line) => line.replace(/^isol8 profile:\s+[\d.]+ ms\s+\+\s*[\d.]+\s+/, ""));
}

test("ISOL8_PROFILE=1 prints a line per step of a one-shot run, in order, on stderr only; the program's output is unchanged", async () => {
  // The default launcher (the executor: its attach and HELLO are steps), also in CI's ISOL8_LAUNCHER=exec pass.
  const profiled = await isol8Cli(["run", "-e", "print(1)"], { cwd: dir, env: { ISOL8_PROFILE: "1", ISOL8_LAUNCHER: "" } });
  expect(profiled.stdout).toBe("1\n");
  expect(profiled.code).toBe(0);
  const steps = profileSteps(profiled.stderr);
  // Every stderr line is a profile line.
  expect(profiled.stderr.split("\n").filter(Boolean)).toHaveLength(steps.length);
  const at = (pattern: RegExp) => {
    const index = steps.findIndex((step) => pattern.test(step));
    expect(index, `a profile line matching ${pattern} in:\n${steps.join("\n")}`).toBeGreaterThanOrEqual(0);
    return index;
  };
  const order = [
    at(/^bin loaded/),
    at(/^run command's modules loaded$/),
    at(/^config loaded$/),
    at(/^engine constructed$/),
    at(/^docker GET \/_ping: answered/),
    at(/^docker POST \/containers\/create: answered/),
    at(/^docker POST \/containers\/:id\/attach: answered/),
    at(/^attach stream: first bytes/),
    at(/^event: stdout$/),
    at(/^event: exit$/),
    at(/^engine stopped/),
    at(/^process exits$/),
  ];
  expect(order).toEqual([...order].sort((a, b) => a - b));
  // The start's answer may come after the HELLO (the executor writes it as it starts): between the create and the output.
  const started = at(/^docker POST \/containers\/:id\/start: answered/);
  expect(started).toBeGreaterThan(at(/^docker POST \/containers\/create: answered/));
  expect(started).toBeLessThan(at(/^event: stdout$/));
  // Its container ends with the connection (Docker removes it): the run never waits on a DELETE.
  expect(steps.filter((step) => /^docker DELETE/.test(step))).toEqual([]);
  // A one-shot creates exactly one container (no pool refill, no prewarm).
  expect(steps.filter((step) => /^docker POST \/containers\/create/.test(step))).toHaveLength(1);

  // Without the variable: no profile line at all.
  const plain = await isol8Cli(["run", "-e", "print(1)"], { cwd: dir });
  expect(plain).toMatchObject({ stdout: "1\n", stderr: "", code: 0 });
});

/** A CLI run of a python program that prints "up" and then sleeps; resolves its exit once it ends. */
function longRun(seconds: number): { pid: number; up: Promise<void>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> } {
  const child = spawn(process.execPath, [CLI, "run", "-e", `import time; print("up", flush=True); time.sleep(${seconds}); print("done")`], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    // The default launcher (the executor, whose container ends with the CLI's connection), also in CI's ISOL8_LAUNCHER=exec pass.
    env: { ...process.env, ISOL8_LAUNCHER: "" },
  });
  let stdout = "";
  const up = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("up\n")) resolve();
    });
    child.once("exit", () => reject(new Error(`the CLI exited before its program printed "up"; stdout: ${stdout}`)));
  });
  up.catch(() => undefined); // observed by the test
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stdout })),
  );
  return { pid: child.pid!, up, exited };
}

test("a one-shot run's container is created to remove itself (AutoRemove, stdin once) and is gone once the CLI has exited", async () => {
  const run = longRun(2);
  await run.up;
  // Positive control: while the program runs, its container is found by the CLI's pid.
  const [container] = await containersOfProcesses([run.pid]);
  expect(container).toBeDefined();
  const info = JSON.parse(await docker("inspect", container!))[0];
  expect(info.HostConfig.AutoRemove).toBe(true);
  expect(info.Config.StdinOnce).toBe(true);
  const { code, stdout } = await run.exited;
  expect(code).toBe(0);
  expect(stdout).toBe("up\ndone\n");
  await expectNoContainersOfProcesses([run.pid]);
});

test("Ctrl-C (SIGINT) stops a one-shot run and exits 130; its container is then gone", async () => {
  const run = longRun(60);
  await run.up;
  expect(await containersOfProcesses([run.pid])).toHaveLength(1);
  process.kill(run.pid, "SIGINT");
  const { code, stdout } = await run.exited;
  expect(code).toBe(130);
  expect(stdout).toBe("up\n");
  await expectNoContainersOfProcesses([run.pid]);
});

test("a one-shot run killed with SIGKILL leaves no container: its executor sees the connection end and exits 0, and Docker removes the container", async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const run = longRun(60);
  await run.up;
  const [container] = await containersOfProcesses([run.pid]);
  expect(container).toBeDefined();
  process.kill(run.pid, "SIGKILL");
  const { signal } = await run.exited;
  expect(signal).toBe("SIGKILL");
  // No engine code ran after the kill: the container goes by itself.
  await expectNoContainersOfProcesses([run.pid]);
  // By itself, not by another engine's reaper (which kills: exit 137): its main process ended 0.
  expect(await dieExitCodes(container!, since)).toEqual(["0"]);
});
