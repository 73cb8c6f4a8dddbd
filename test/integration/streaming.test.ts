import { afterAll, beforeAll, expect, test } from "vitest";
import type { StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";

let engine: DockerIsol8;
beforeAll(async () => {
  engine = new DockerIsol8({ secrets: { KEY: "stream-secret-1234" } });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
});

test("events arrive in order, before the program ends", async () => {
  const started = Date.now();
  const seen: { event: StreamEvent; at: number }[] = [];
  for await (const event of engine.executeStream({ runtime: "python", code: "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')" })) {
    seen.push({ event, at: Date.now() - started });
  }
  const types = seen.map((s) => s.event.type);
  expect(types.at(-1)).toBe("exit");
  expect(new Set(types.slice(0, -1))).toEqual(new Set(["stdout"]));
  // Output printed before the sleep came well before the end: it was streamed, not collected.
  // (The tail "st" may be held back a moment: it could be the start of the secret "stream-…".)
  const early = seen.filter((s) => s.at < seen.at(-1)!.at - 700 && s.event.type === "stdout").map((s) => s.event.data).join("");
  expect(early).toMatch(/^fir/);
  const exit = seen.at(-1)!.event as Extract<StreamEvent, { type: "exit" }>;
  expect(exit.data).toBe("0");
  expect(exit.result.stdout).toBe("first\nsecond\n");
});

test("stream events go through the same pipeline: secrets masked, stderr kept apart", async () => {
  const events: StreamEvent[] = [];
  for await (const event of engine.executeStream({ runtime: "bash", code: 'echo "k=$KEY"; echo oops >&2; exit 2' })) events.push(event);
  expect(events.filter((e) => e.type === "stdout").map((e) => e.data).join("")).toBe("k=***\n");
  expect(events.filter((e) => e.type === "stderr").map((e) => e.data).join("")).toBe("oops\n");
  expect(events.at(-1)).toMatchObject({ type: "exit", data: "2" });
});

test("breaking out early kills the run and frees the container", async () => {
  let containerId: string | undefined;
  const started = Date.now();
  for await (const event of engine.executeStream({ runtime: "bash", code: "echo started; sleep 60; echo never" })) {
    if (event.type === "stdout") break;
  }
  expect(Date.now() - started).toBeLessThan(20_000);
  // The engine holds no container of that run: list what carries its label.
  const ids = (await engine.driver.listContainers({ "isol8.engine": engine.id })).map((c) => c.Id);
  for (const id of ids) {
    const top = await engine.driver.docker.getContainer(id).top().catch(() => undefined);
    expect(JSON.stringify(top?.Processes ?? [])).not.toContain("sleep 60");
  }
  void containerId;
});

test("errors become an error event, not a throw", async () => {
  const events: StreamEvent[] = [];
  for await (const event of engine.executeStream({ runtime: "cobol", code: "x" })) events.push(event);
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_UNKNOWN_RUNTIME" });
});

test("a slow consumer gets back-pressure: the run waits instead of buffering without bound", async () => {
  let chunks = 0;
  const events = engine.executeStream({ runtime: "python", code: "import sys\nfor i in range(5000):\n    sys.stdout.write('x' * 100 + '\\n')\n    sys.stdout.flush()" });
  for await (const event of events) {
    if (event.type === "stdout") {
      chunks++;
      if (chunks % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    if (event.type === "exit") expect(event.result.stdout.length).toBe(5000 * 101);
  }
  expect(chunks).toBeGreaterThan(0);
});

test("an AbortSignal stops a silent run at once, for execute and executeStream", async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 1500);
  const error = await engine.execute({ runtime: "bash", code: "sleep 60" }, { signal: controller.signal }).catch((e) => e);
  expect(error).toBeInstanceOf(Error);
  expect(Date.now() - started).toBeLessThan(20_000);

  const streamController = new AbortController();
  const events: StreamEvent[] = [];
  setTimeout(() => streamController.abort(), 1500);
  for await (const event of engine.executeStream({ runtime: "bash", code: "echo begun; sleep 60" }, { signal: streamController.signal })) events.push(event);
  expect(events[0]).toMatchObject({ type: "stdout", data: "begun\n" });
  expect(events.at(-1)?.type).not.toBe("exit");
  expect(Date.now() - started).toBeLessThan(40_000);
});
