import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  CONTAINER_LABELS,
  DockerDriver,
  DockerIsol8,
  ExecutionError,
  FileOperationError,
  InvalidRequestError,
  Isol8Error,
  UnknownRuntimeError,
  type EngineOptions,
  type Isol8Engine,
  type Isol8Plugin,
  type StreamEvent,
} from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { RemoteIsol8 } from "@isol8/remote";
import { createServer, SERVER_LABELS, type Isol8Server } from "@isol8/server";
import { topRows } from "../../../test/helpers.js";
import { FacadeCluster } from "../../../test/kubernetes-facade/engine.js";

/**
 * One contract, four engines: every case runs against the local DockerIsol8, against
 * RemoteIsol8 talking to a real server on 127.0.0.1, against DockerIsol8 on the Kubernetes
 * driver (`driver: "kubernetes"`) through the test API façade, and against RemoteIsol8 talking to
 * a server whose engines run on that driver; each must pass the same way.
 */

const plugins = () => [pythonRuntime(), bashRuntime()];
const API_KEY = "contract-key-0123456789";
const OPTIONS: EngineOptions = { timeoutMs: 20_000, memoryLimit: "256m", secrets: { API_TOKEN: "tok-contract-5150" }, poolSize: 0 };

let server: Isol8Server;
let url: string;
/** `isol8 serve` whose engines choose the Kubernetes driver. */
let kubernetesServer: Isol8Server;
let kubernetesUrl: string;
const cluster = new FacadeCluster("isol8-contract");
let kubernetesPlugins: Isol8Plugin[];
beforeAll(async () => {
  await cluster.start();
  kubernetesPlugins = await cluster.plugins(plugins());
  server = createServer({
    plugins: plugins(),
    defaults: { timeoutMs: 20_000, poolSize: 0 },
    config: { keys: [{ key: API_KEY, tenant: "contract" }], limits: { maxConcurrent: 2 } },
    log: () => undefined,
  });
  ({ url } = await server.listen(0, "127.0.0.1"));
  kubernetesServer = createServer({
    plugins: kubernetesPlugins,
    // The Kubernetes driver runs programs through the executor only: pinned, so CI's exec-path pass
    // (ISOL8_LAUNCHER=exec) runs the Docker subjects on the exec path and these on the executor.
    defaults: { timeoutMs: 20_000, poolSize: 0, driver: "kubernetes", launcher: "executor" },
    config: { keys: [{ key: API_KEY, tenant: "contract" }], limits: { maxConcurrent: 2 } },
    log: () => undefined,
  });
  ({ url: kubernetesUrl } = await kubernetesServer.listen(0, "127.0.0.1"));
});
afterAll(async () => {
  await server.close({ graceMs: 5_000 });
  await kubernetesServer.close({ graceMs: 5_000 });
  await cluster.close();
});

interface Subject {
  name: string;
  /** An ephemeral engine. */
  ephemeral(): Isol8Engine;
  /** A persistent one: a local persistent engine, or a remote session. */
  persistent(id: string): Isol8Engine;
  /** The Docker containers this subject's ephemeral engine runs programs in. */
  containers(engine: Isol8Engine): Promise<string[]>;
}

const { poolSize: _local, ...remoteOptions } = OPTIONS;
const subjects: Subject[] = [
  {
    name: "DockerIsol8",
    ephemeral: () => new DockerIsol8(OPTIONS, { plugins: plugins() }),
    persistent: () => new DockerIsol8({ ...OPTIONS, mode: "persistent" }, { plugins: plugins() }),
    containers: (engine) => dockerContainers({ [CONTAINER_LABELS.engine]: (engine as DockerIsol8).id }),
  },
  {
    name: "RemoteIsol8",
    ephemeral: () => new RemoteIsol8({ host: url, apiKey: API_KEY }, remoteOptions),
    persistent: (id) => new RemoteIsol8({ host: url, apiKey: API_KEY, sessionId: id }, remoteOptions),
    containers: () => dockerContainers({ [SERVER_LABELS.server]: server.id }),
  },
  {
    name: "DockerIsol8 on Kubernetes",
    ephemeral: () => new DockerIsol8({ ...OPTIONS, driver: "kubernetes", launcher: "executor" }, { plugins: kubernetesPlugins }),
    persistent: () => new DockerIsol8({ ...OPTIONS, driver: "kubernetes", launcher: "executor", mode: "persistent" }, { plugins: kubernetesPlugins }),
    // Its pods, listed through the API server; their main containers are the façade's Docker containers.
    containers: async (engine) => {
      const { driver, id } = engine as DockerIsol8;
      expect(driver.kind).toBe("kubernetes"); // the engine runs on the chosen driver, not on Docker
      return cluster.mainContainers((await driver.list({ [CONTAINER_LABELS.engine]: id })).map((pod) => pod.id));
    },
  },
  {
    name: "RemoteIsol8 to isol8 serve on Kubernetes",
    ephemeral: () => new RemoteIsol8({ host: kubernetesUrl, apiKey: API_KEY }, remoteOptions),
    persistent: (id) => new RemoteIsol8({ host: kubernetesUrl, apiKey: API_KEY, sessionId: id }, remoteOptions),
    containers: () => cluster.containersOfPods({ [SERVER_LABELS.server]: kubernetesServer.id }),
  },
];

const driver = new DockerDriver();

async function dockerContainers(labels: Record<string, string>): Promise<string[]> {
  return (await driver.listContainers(labels)).map((c) => c.Id);
}

/** Processes running in these containers whose command line contains `marker`. */
async function processes(containers: Promise<string[]>, marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const id of await containers) {
    for (const row of await topRows(driver, id)) if (row.at(-1)?.includes(marker)) found.push(row.at(-1)!);
  }
  return found;
}

async function collect(stream: AsyncIterable<StreamEvent>): Promise<{ events: StreamEvent[]; times: number[] }> {
  const started = Date.now();
  const events: StreamEvent[] = [];
  const times: number[] = [];
  for await (const event of stream) {
    events.push(event);
    times.push(Date.now() - started);
  }
  return { events, times };
}

describe.each(subjects)("contract: $name", (subject) => {
  let engine: Isol8Engine;
  beforeAll(async () => {
    engine = subject.ephemeral();
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
  });

  test("execute: stdout, stderr, exit code, stdin, env, files in and out", async () => {
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import os, sys",
        "print('out', os.environ['GREETING'])",
        "print('err', file=sys.stderr)",
        "print(sys.stdin.read().upper())",
        "print(open('/sandbox/in.txt').read())",
        "data = open('/sandbox/blob.bin', 'rb').read()",
        "open('/sandbox/out.bin', 'wb').write(bytes(reversed(data)))",
        "sys.exit(3)",
      ].join("\n"),
      stdin: "piped",
      env: { GREETING: "hello" },
      files: { "in.txt": "text file", "blob.bin": Buffer.from([0, 1, 2, 255]) },
      outputPaths: ["/sandbox/out.bin"],
    });
    expect(result.stdout).toBe("out hello\nPIPED\ntext file\n");
    expect(result.stderr).toBe("err\n");
    expect(result.exitCode).toBe(3);
    expect(result.timedOut).toBe(false);
    expect(result.runtime).toBe("python");
    expect(Buffer.from(result.files!["/sandbox/out.bin"]!, "base64")).toEqual(Buffer.from([255, 2, 1, 0]));
  });

  test("execute: secrets are masked, the time limit is reported as timedOut", async () => {
    const masked = await engine.execute({ runtime: "bash", code: 'echo "token=$API_TOKEN"' });
    expect(masked.stdout).toBe("token=***\n");
    const slow = await engine.execute({ runtime: "bash", code: "echo before; sleep 10", timeoutMs: 1_500 });
    expect(slow.timedOut).toBe(true);
    expect(slow.stdout).toBe("before\n");
    expect(slow.stderr).toMatch(/timed out after 1500 ms/);
  });

  test("stream: events arrive as the program writes, exit last with the full result", async () => {
    const { events, times } = await collect(
      engine.executeStream({
        runtime: "python",
        code: "import time, sys\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\nprint('e', file=sys.stderr)",
      }),
    );
    const last = events.at(-1)!;
    expect(last).toMatchObject({ type: "exit", data: "0" });
    const result = (last as Extract<StreamEvent, { type: "exit" }>).result;
    expect(result.stdout).toBe("first\nsecond\n");
    expect(
      events
        .filter((e) => e.type === "stdout")
        .map((e) => e.data)
        .join(""),
    ).toBe("first\nsecond\n");
    expect(
      events
        .filter((e) => e.type === "stderr")
        .map((e) => e.data)
        .join(""),
    ).toBe("e\n");
    // "first" came well before the end: streamed, not buffered until exit.
    const firstAt = times[events.findIndex((e) => e.type === "stdout")]!;
    expect(times.at(-1)! - firstAt).toBeGreaterThan(1_000);
  });

  test("stream: failures are an error event with the isol8 code, not a throw", async () => {
    const { events } = await collect(engine.executeStream({ runtime: "cobol", code: "x" }));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_UNKNOWN_RUNTIME" });
    expect((events[0] as { data: string }).data).toMatch(/Unknown runtime "cobol".*python, bash/);
    const invalid = await collect(engine.executeStream({ runtime: "python", code: "" }));
    expect(invalid.events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_INVALID_REQUEST" });
  });

  test("stream: leaving early stops the run; the engine is usable right after", async () => {
    const containers = () => subject.containers(engine);
    const seen: StreamEvent[] = [];
    for await (const event of engine.executeStream({ runtime: "bash", code: "echo started; sleep 971; echo never" })) {
      seen.push(event);
      // Positive control: the program runs (seen in its container) when the loop is left.
      await expect.poll(() => processes(containers(), "sleep 971"), { timeout: 30_000, interval: 250 }).toEqual(["sleep 971"]);
      break;
    }
    expect(seen).toEqual([{ type: "stdout", data: "started\n" }]);
    // Leaving early stops the run: the program is killed long before its 20 s time limit.
    await expect.poll(() => processes(containers(), "sleep 971"), { timeout: 15_000, interval: 250 }).toEqual([]);
    // The engine is usable right after.
    expect(await engine.execute({ runtime: "bash", code: "echo next" })).toMatchObject({ stdout: "next\n", exitCode: 0 });
  });

  test("abort: execute rejects with ExecutionError and the program is killed", async () => {
    const containers = () => subject.containers(engine);
    const controller = new AbortController();
    const pending = engine.execute({ runtime: "bash", code: "sleep 973; echo never" }, { signal: controller.signal }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Positive control: the program runs before the abort.
    await expect.poll(() => processes(containers(), "sleep 973"), { timeout: 30_000, interval: 250 }).toEqual(["sleep 973"]);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(ExecutionError);
    expect(error).toMatchObject({ code: "ISOL8_ERR_EXECUTION", message: expect.stringMatching(/aborted/) });
    await expect.poll(() => processes(containers(), "sleep 973"), { timeout: 15_000, interval: 250 }).toEqual([]);
  });

  test("abort: executeStream ends with an ISOL8_ERR_EXECUTION error event and the program is killed", async () => {
    const containers = () => subject.containers(engine);
    const controller = new AbortController();
    const events: StreamEvent[] = [];
    for await (const event of engine.executeStream({ runtime: "bash", code: "echo started; sleep 975; echo never" }, { signal: controller.signal })) {
      events.push(event);
      if (events.length === 1) {
        await expect.poll(() => processes(containers(), "sleep 975"), { timeout: 30_000, interval: 250 }).toEqual(["sleep 975"]);
        controller.abort();
      }
    }
    expect(events).toHaveLength(2);
    expect(events[0]).toEqual({ type: "stdout", data: "started\n" });
    expect(events[1]).toMatchObject({ type: "error", code: "ISOL8_ERR_EXECUTION", data: expect.stringMatching(/aborted/) });
    await expect.poll(() => processes(containers(), "sleep 975"), { timeout: 15_000, interval: 250 }).toEqual([]);
  });

  test("abort: a signal aborted before the call runs nothing (ExecutionError; an error event)", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await engine.execute({ runtime: "bash", code: "sleep 979" }, { signal: controller.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ExecutionError);
    expect(error).toMatchObject({ code: "ISOL8_ERR_EXECUTION", message: expect.stringMatching(/aborted before it started/) });
    const { events } = await collect(engine.executeStream({ runtime: "bash", code: "sleep 979" }, { signal: controller.signal }));
    expect(events).toEqual([{ type: "error", code: "ISOL8_ERR_EXECUTION", data: expect.stringMatching(/aborted before it started/) }]);
    expect(await processes(subject.containers(engine), "sleep 979")).toEqual([]);
  });

  test("errors: the same isol8 error classes, codes and field names", async () => {
    const unknown = await engine.execute({ runtime: "cobol", code: "x" }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(UnknownRuntimeError);
    expect(unknown).toMatchObject({ code: "ISOL8_ERR_UNKNOWN_RUNTIME", runtime: "cobol", registered: ["python", "bash"] });

    for (const [request, message] of [
      [{ runtime: "python", code: "" }, /request\.code: expected non-empty code/],
      [{ runtime: "python", code: "1", timeoutMs: -5 }, /request\.timeoutMs/],
      [{ runtime: "python", code: "1", colour: "red" }, /colour/],
      [{ runtime: "python", code: "1", files: { "../etc/passwd": "x" } }, /\.\./],
    ] as const) {
      const error = await engine.execute(request as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(request)).toBeInstanceOf(InvalidRequestError);
      expect((error as Error).message).toMatch(message);
    }

    await expect(engine.putFile("/sandbox/x", "x")).rejects.toThrow(FileOperationError);
    await expect(engine.getFile("/sandbox/x")).rejects.toThrow(FileOperationError);
  });

  describe("files in a session", () => {
    let session: Isol8Engine;
    beforeAll(async () => {
      session = subject.persistent(`contract-${subject.name.replace(/[^A-Za-z0-9]+/g, "-")}-${process.pid}`);
      await session.start();
    });
    afterAll(async () => {
      await session.stop();
    });

    test("file calls before the first execute fail as on a fresh persistent engine", async () => {
      const error = await session.getFile("/sandbox/none").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FileOperationError);
      expect((error as Error).message).toMatch(/call execute\(\) first/);
    });

    test("state, putFile and getFile persist across calls, byte-exact", async () => {
      const first = await session.execute({ runtime: "python", code: "open('/sandbox/state.txt','w').write('kept')" });
      const data = randomBytes(256 * 1024);
      await session.putFile("/sandbox/data.bin", data);
      await session.putFile("notes/hello.txt", "héllo");
      const check = await session.execute({
        runtime: "python",
        code: "import hashlib\nprint(open('/sandbox/state.txt').read())\nprint(hashlib.sha256(open('/sandbox/data.bin','rb').read()).hexdigest())\nopen('/sandbox/made.txt','w').write('by code')",
      });
      expect(check.stdout).toBe(`kept\n${createHash("sha256").update(data).digest("hex")}\n`);
      expect(check.containerId).toBe(first.containerId);
      expect((await session.getFile("/sandbox/data.bin")).equals(data)).toBe(true);
      expect((await session.getFile("/sandbox/notes/hello.txt")).toString()).toBe("héllo");
      expect((await session.getFile("/sandbox/made.txt")).toString()).toBe("by code");
    });

    test("file errors: a missing file, a path outside the sandbox, another runtime", async () => {
      const missing = await session.getFile("/sandbox/missing.txt").catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(FileOperationError);
      expect((missing as Error).message).toMatch(/no such file/);
      for (const path of ["../etc/passwd", "/etc/passwd"]) {
        const error = await session.getFile(path).catch((e: unknown) => e);
        expect(Isol8Error.isInstance(error), path).toBe(true);
        expect(error).toBeInstanceOf(InvalidRequestError);
      }
      await expect(session.execute({ runtime: "bash", code: "echo" })).rejects.toThrow(/persistent engine runs "python"/);
    });
  });
});
