import { afterAll, beforeAll, expect, test } from "vitest";
import { CONTAINER_LABELS, ExecutionError, type StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";

let engine: DockerIsol8;
beforeAll(async () => {
  engine = new DockerIsol8({ secrets: { KEY: "stream-secret-1234" } });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
});

/** The one container of `on` whose processes include `command` (the run's container), found while the run is going. */
async function containerRunning(on: DockerIsol8, command: string): Promise<string> {
  let found: string[] = [];
  await expect
    .poll(
      async () => {
        const ids = (await on.docker.listContainers({ [CONTAINER_LABELS.engine]: on.id })).map((c) => c.Id);
        const tops = await Promise.all(ids.map(async (id) => ({ id, top: JSON.stringify((await on.docker.docker.getContainer(id).top()).Processes ?? []) })));
        found = tops.filter((t) => t.top.includes(command)).map((t) => t.id);
        return found.length;
      },
      { timeout: 60_000, interval: 250 },
    )
    .toBe(1);
  return found[0]!;
}

test("events arrive in order, before the program ends", async () => {
  // The program waits after its first line until the test, having received that line, lets it go
  // on: a collected (not streamed) output would never let it finish.
  const events: StreamEvent[] = [];
  for await (const event of engine.executeStream({ runtime: "bash", code: "echo one; until [ -e /tmp/go ]; do sleep 0.05; done; echo two" })) {
    events.push(event);
    if (events.length === 1) {
      const id = await containerRunning(engine, "/sandbox/main.sh");
      // As the container's own sandbox user, so the pool's wipe can remove the file afterwards.
      // Its exit code is not asserted: once the program ends the engine kills every process of
      // that user, which may catch this exec still exiting (137). "two" arriving proves the gate.
      const uid = (await engine.docker.inspectContainer(id))!.Config.Labels[CONTAINER_LABELS.uid];
      expect(uid).toMatch(/^\d+$/);
      await engine.driver.exec(id, { argv: ["touch", "/tmp/go"], user: `${uid}:${uid}` });
    }
  }
  expect(events.map((e) => e.type)).toEqual(["stdout", "stdout", "exit"]);
  expect(events.slice(0, 2)).toEqual([
    { type: "stdout", data: "one\n" },
    { type: "stdout", data: "two\n" },
  ]);
  const exit = events.at(-1) as Extract<StreamEvent, { type: "exit" }>;
  expect(exit.data).toBe("0");
  expect(exit.result.stdout).toBe("one\ntwo\n");
});

test("stream events go through the same pipeline: secrets masked, stderr kept apart", async () => {
  const events: StreamEvent[] = [];
  for await (const event of engine.executeStream({ runtime: "bash", code: 'echo "k=$KEY"; echo oops >&2; exit 2' })) events.push(event);
  expect(
    events
      .filter((e) => e.type === "stdout")
      .map((e) => e.data)
      .join(""),
  ).toBe("k=***\n");
  expect(
    events
      .filter((e) => e.type === "stderr")
      .map((e) => e.data)
      .join(""),
  ).toBe("oops\n");
  expect(events.at(-1)).toMatchObject({ type: "exit", data: "2" });
});

test("breaking out early kills the run and frees the container", async () => {
  const events: StreamEvent[] = [];
  let containerId: string | undefined;
  for await (const event of engine.executeStream({ runtime: "bash", code: "echo started; exec sleep 61; echo never" })) {
    events.push(event);
    if (event.type === "stdout") {
      containerId = await containerRunning(engine, "sleep 61");
      break;
    }
  }
  expect(events).toEqual([{ type: "stdout", data: "started\n" }]);
  // The run's container is never reused after a break: it is destroyed, and its sleep with it.
  await expect.poll(() => engine.docker.inspectContainer(containerId!), { timeout: 60_000, interval: 250 }).toBeUndefined();
});

test("errors become an error event, not a throw", async () => {
  const events: StreamEvent[] = [];
  for await (const event of engine.executeStream({ runtime: "cobol", code: "x" })) events.push(event);
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_UNKNOWN_RUNTIME" });
});

test("a slow consumer gets back-pressure: the run waits instead of buffering without bound", async () => {
  // 32 MiB in 64 KiB writes, far more than the pipes, sockets and the engine's 64-event queue hold.
  // After each write the program records how many it made in /tmp/progress, which the test reads
  // with docker exec while it is not consuming.
  const BLOCKS = 512;
  const BLOCK = 64 * 1024;
  const big = new DockerIsol8({ maxOutputSize: 2 * BLOCKS * BLOCK, timeoutMs: 110_000 });
  try {
    const code = [
      "import os, sys",
      `block = b'x' * (${BLOCK} - 1) + b'\\n'`,
      `for i in range(1, ${BLOCKS} + 1):`,
      "    sys.stdout.buffer.write(block); sys.stdout.buffer.flush()",
      "    with open('/tmp/progress.new', 'w') as f: f.write(str(i))",
      "    os.replace('/tmp/progress.new', '/tmp/progress')",
    ].join("\n");
    const events = big.executeStream({ runtime: "python", code })[Symbol.asyncIterator]();
    const first = await events.next();
    expect(first.value).toMatchObject({ type: "stdout" });
    // The consumer now pauses. The run's container is the engine's one with the progress file
    // (a pool may hold idle containers too).
    const readProgress = async (id: string) => {
      let text = "";
      const { exitCode } = await big.driver.exec(id, { argv: ["cat", "/tmp/progress"], onOutput: (_, chunk) => void (text += chunk.toString()) });
      return exitCode === 0 ? Number(text) : undefined;
    };
    const ids = (await big.docker.listContainers({ [CONTAINER_LABELS.engine]: big.id })).map((c) => c.Id);
    const withProgress = (await Promise.all(ids.map(async (id) => ((await readProgress(id)) === undefined ? [] : [id])))).flat();
    expect(withProgress).toHaveLength(1);
    const progress = async () => (await readProgress(withProgress[0]!)) ?? Number.NaN;
    // The producer stops: two readings a second apart agree...
    let last = -1;
    let stalledAt = -1;
    await expect
      .poll(
        async () => {
          const now = await progress();
          const same = now === last;
          last = now;
          if (same) stalledAt = now;
          return same;
        },
        { timeout: 60_000, interval: 1000 },
      )
      .toBe(true);
    // ...well short of the end: what it wrote while nobody read is bounded (the buffers on the way).
    expect(stalledAt).toBeGreaterThan(0);
    expect(stalledAt, "blocks written while the consumer paused").toBeLessThan(BLOCKS / 2);
    // Reading again resumes it: everything arrives, and the run ends with its exit event.
    let stdout = (first.value as Extract<StreamEvent, { type: "stdout" }>).data;
    let exit: Extract<StreamEvent, { type: "exit" }> | undefined;
    for (let next = await events.next(); !next.done; next = await events.next()) {
      const event = next.value;
      if (event.type === "stdout") stdout += event.data;
      else if (event.type === "exit") exit = event;
      else throw new Error(`unexpected event ${JSON.stringify(event).slice(0, 200)}`);
    }
    expect(exit).toMatchObject({ type: "exit", data: "0" });
    expect(stdout.length).toBe(BLOCKS * BLOCK);
    expect(exit!.result.stdout.length).toBe(BLOCKS * BLOCK);
    expect(exit!.result.truncated).toBe(false);
  } finally {
    await big.stop();
  }
});

test("an AbortSignal stops a silent run and kills it, for execute and executeStream", async () => {
  // execute: aborted once the program is running (seen in its container), not after a fixed delay.
  const controller = new AbortController();
  const pending = engine.execute({ runtime: "bash", code: "exec sleep 601" }, { signal: controller.signal });
  const outcome = pending.then(
    () => "resolved",
    (error: unknown) => error,
  );
  const containerId = await containerRunning(engine, "sleep 601");
  controller.abort();
  const error = await outcome;
  expect(error).toBeInstanceOf(ExecutionError);
  expect((error as ExecutionError).message).toMatch(/aborted; the program and every process it started were killed/);
  await expect.poll(() => engine.docker.inspectContainer(containerId), { timeout: 60_000, interval: 250 }).toBeUndefined();

  // executeStream: aborted at its first output; the stream ends with an error event, never an exit.
  const streamController = new AbortController();
  const events: StreamEvent[] = [];
  let streamContainer: string | undefined;
  for await (const event of engine.executeStream({ runtime: "bash", code: "echo begun; exec sleep 602" }, { signal: streamController.signal })) {
    events.push(event);
    if (event.type === "stdout") {
      streamContainer = await containerRunning(engine, "sleep 602");
      streamController.abort();
    }
  }
  expect(events).toEqual([
    { type: "stdout", data: "begun\n" },
    { type: "error", code: "ISOL8_ERR_EXECUTION", data: expect.stringMatching(/aborted/) },
  ]);
  await expect.poll(() => engine.docker.inspectContainer(streamContainer!), { timeout: 60_000, interval: 250 }).toBeUndefined();
});
