import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerIsol8, Isol8Error, defaultPlugins, type Logger } from "isol8";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isol8Containers } from "../../../test/helpers.js";
import { seccomp, strictProfile } from "../src/index.js";

/** A logger that keeps warnings, so a test can read them. */
function recordingLogger(): Logger & { warnings: { message: string; fields?: Record<string, unknown> }[] } {
  const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  return { warnings, debug() {}, info() {}, warn: (message, fields) => void warnings.push({ message, fields }), error() {} };
}

const plugins = () => defaultPlugins(seccomp());
const engines: DockerIsol8[] = [];
function engineWith(options: ConstructorParameters<typeof DockerIsol8>[0], logger: Logger = recordingLogger()): DockerIsol8 {
  const engine = new DockerIsol8({ timeoutMs: 30_000, ...options }, { plugins: plugins(), logger });
  engines.push(engine);
  return engine;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-seccomp-it-"));
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop()));
  for (const engine of engines) expect(await isol8Containers(engine.id)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

describe("unconfined", () => {
  test("logs one warning per engine, and allows what strict refuses (a user namespace)", async () => {
    const logger = recordingLogger();
    const unconfined = engineWith({ security: { seccomp: "unconfined" } }, logger);
    const strict = engineWith({});
    const code = "unshare -U true; echo unshare=$?";
    const first = await unconfined.execute({ runtime: "bash", code });
    const second = await unconfined.execute({ runtime: "bash", code: "echo again" });
    const strictResult = await strict.execute({ runtime: "bash", code });

    // Without any capability, only seccomp stands between the program and a new user namespace.
    expect(first.stdout).toBe("unshare=0\n");
    expect(strictResult.stdout).toBe("unshare=1\n");
    expect(strictResult.stderr).toMatch(/Operation not permitted/);
    expect(second.stdout).toBe("again\n");

    const warnings = logger.warnings.filter((w) => /seccomp is unconfined/.test(w.message));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({ plugin: "isol8:seccomp", engineId: unconfined.id });
  });

  test("every other protection stays on: no capabilities, no new privileges, the sandbox user", async () => {
    const unconfined = engineWith({ security: { seccomp: "unconfined" } });
    const result = await unconfined.execute({ runtime: "bash", code: "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status" });
    // The container's own sandbox uid (from 1e9 to 2e9 - 1), not root.
    expect(result.stdout).toMatch(/^1\d{9}\nCapEff:\s+0{16}\nNoNewPrivs:\s+1\nSeccomp:\s+0\n$/);
  });
});

describe("custom", () => {
  // strict, with mkdir and mkdirat answered by EACCES instead of allowed: a custom profile built on strict.
  function strictWithoutMkdir() {
    const profile = strictProfile();
    const blocked = ["mkdir", "mkdirat"];
    return {
      ...profile,
      syscalls: [
        ...profile.syscalls.map((rule) => ({ ...rule, names: rule.names?.filter((n) => !blocked.includes(n)) })),
        { names: blocked, action: "SCMP_ACT_ERRNO" as const, errnoRet: 13 },
      ],
    };
  }

  const MKDIR_PROGRAM = [
    "mkdir /sandbox/made 2>&1; echo mkdir=$?",
    "python3 -c \"import os; os.mkdir('/tmp/made')\" 2>&1 | tail -1",
    "echo written > /sandbox/file && cat /sandbox/file",
    "ls /sandbox | sort | tr '\\n' ' '; echo",
  ].join("\n");

  test("an inline profile that denies mkdir: mkdir fails, the rest works (strict is the control)", async () => {
    const custom = engineWith({ security: { seccomp: "custom", seccompProfile: strictWithoutMkdir() } });
    const result = await custom.execute({ runtime: "python", code: `import subprocess\nsubprocess.run(['bash', '-c', ${JSON.stringify(MKDIR_PROGRAM)}])` });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /^mkdir: cannot create directory .\/sandbox\/made.: Permission denied\nmkdir=1\nPermissionError: \[Errno 13\] Permission denied: '\/tmp\/made'\nwritten\nfile main\.py \n$/,
    );

    const strict = engineWith({});
    const control = await strict.execute({ runtime: "python", code: `import subprocess\nsubprocess.run(['bash', '-c', ${JSON.stringify(MKDIR_PROGRAM)}])` });
    expect(control.stdout).toBe("mkdir=0\nwritten\nfile made main.py \n");
  });

  test("a profile file works the same way", async () => {
    const path = join(dir, "no-mkdir.json");
    await writeFile(path, JSON.stringify(strictWithoutMkdir()));
    const custom = engineWith({ security: { seccomp: "custom", seccompProfile: path } });
    const result = await custom.execute({ runtime: "bash", code: "mkdir /sandbox/d; echo mkdir=$?; echo still-running" });
    expect(result.stdout).toBe("mkdir=1\nstill-running\n");
    expect(result.stderr).toMatch(/Permission denied/);
  });

  test("a profile path that does not exist fails clearly, before any container is created", async () => {
    const missing = join(dir, "does-not-exist.json");
    const custom = engineWith({ security: { seccomp: "custom", seccompProfile: missing } });
    const error = await custom.execute({ runtime: "bash", code: "echo never" }).catch((e: unknown) => e);
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_INVALID_OPTIONS");
    expect((error as Error).message).toBe(`security.seccompProfile: cannot read the seccomp profile file ${missing}: no such file.`);
    expect(await isol8Containers(custom.id)).toEqual([]);
  });

  test("an invalid inline profile fails naming the field, before any container is created", async () => {
    const custom = engineWith({
      security: { seccomp: "custom", seccompProfile: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALOW" }] } },
    });
    const stream = custom.executeStream({ runtime: "bash", code: "echo never" });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events).toEqual([
      expect.objectContaining({
        type: "error",
        code: "ISOL8_ERR_INVALID_OPTIONS",
        data: expect.stringMatching(/profile\.syscalls\[0\]\.action: expected one of SCMP_ACT_KILL/),
      }),
    ]);
    expect(await isol8Containers(custom.id)).toEqual([]);
  });

  test("custom without a profile is refused", async () => {
    const custom = engineWith({ security: { seccomp: "custom" } });
    await expect(custom.execute({ runtime: "bash", code: "true" })).rejects.toThrow(/security\.seccompProfile: seccomp mode "custom" needs a profile/);
    expect(await isol8Containers(custom.id)).toEqual([]);
  });
});

test("an unknown mode names the plugin's modes at construction", () => {
  expect(() => engineWith({ security: { seccomp: "paranoid" } })).toThrow(/Unknown seccomp mode "paranoid". Registered: strict, unconfined, custom/);
});

// What the strict profile costs at container start is a figure, not a property: `pnpm bench`
// (overheads, "seccomp strict vs unconfined (cold execution)") measures it.
