import { afterAll, expect, test } from "vitest";
import { AdmissionDeniedError, definePlugin, STAGE_DEFAULT, STAGE_OBSERVE, STAGE_POLICY, type ExecutionResult } from "@isol8/core";
import { DockerIsol8, defaultPlugins } from "isol8";
import { isol8Containers } from "../helpers.js";

const engines: DockerIsol8[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop()));
});

function engineWith(...plugins: ReturnType<ReturnType<typeof definePlugin>>[]) {
  const engine = new DockerIsol8({}, { plugins: defaultPlugins(...plugins) });
  engines.push(engine);
  return engine;
}

test("a plugin tapping the four hooks sees them fire in order with the right data", async () => {
  const seen: string[] = [];
  let afterResult: ExecutionResult | undefined;
  const recorder = definePlugin({
    name: "test:recorder",
    setup: () => (kit) => {
      kit.hooks.beforeExec.tapPromise("test:recorder", async (request, ctx) => {
        seen.push(`beforeExec:${request.runtime}:${request.code}:${ctx.executionId.length}`);
        return request;
      });
      kit.hooks.beforeAcquire.tapPromise("test:recorder", async (acquire) => {
        seen.push(`beforeAcquire:${acquire.runtime}:${acquire.image.startsWith("isol8/bash:")}:${acquire.metadata.user}`);
        return undefined;
      });
      kit.hooks.onOutput.tap("test:recorder", (chunk) => {
        seen.push(`onOutput:${chunk.stream}:${chunk.data.trim()}`);
        return chunk;
      });
      kit.hooks.afterExec.tapPromise("test:recorder", async (result) => {
        seen.push(`afterExec:${result.exitCode}`);
        afterResult = result;
      });
    },
  });
  const engine = engineWith(recorder());
  const result = await engine.execute({ runtime: "bash", code: "echo out; sleep 0.2; echo err >&2; exit 4", metadata: { user: "u1" } });
  expect(seen).toEqual([
    "beforeExec:bash:echo out; sleep 0.2; echo err >&2; exit 4:36",
    "beforeAcquire:bash:true:u1",
    "onOutput:stdout:out",
    "onOutput:stderr:err",
    "afterExec:4",
  ]);
  expect(afterResult).toEqual(result);
});

test("a beforeExec tap can rewrite the request", async () => {
  const injector = definePlugin({
    name: "test:injector",
    setup: () => (kit) =>
      kit.hooks.beforeExec.tap("test:injector", (request) => ({
        ...request,
        env: { ...request.env, INJECTED: "yes" },
        code: `${request.code}\necho rewritten`,
      })),
  });
  const result = await engineWith(injector()).execute({ runtime: "bash", code: 'echo "injected=$INJECTED"' });
  expect(result.stdout).toBe("injected=yes\nrewritten\n");
});

test("an onOutput tap can rewrite chunks, after secrets are masked", async () => {
  const shouter = definePlugin({
    name: "test:shouter",
    setup: () => (kit) => kit.hooks.onOutput.tap({ name: "test:shouter", stage: STAGE_DEFAULT }, (chunk) => ({ ...chunk, data: chunk.data.toUpperCase() })),
  });
  const engine = new DockerIsol8({ secrets: { KEY: "lowersecret" } }, { plugins: defaultPlugins(shouter()) });
  engines.push(engine);
  const result = await engine.execute({ runtime: "bash", code: 'echo "hello $KEY"' });
  expect(result.stdout).toBe("HELLO ***\n");
});

test("taps order by stage, whatever order the plugins are listed in", async () => {
  const order: string[] = [];
  const observer = definePlugin({
    name: "test:observer",
    setup: () => (kit) => kit.hooks.beforeExec.tap({ name: "test:observer", stage: STAGE_OBSERVE }, (request) => (order.push("observe"), request)),
  });
  const policy = definePlugin({
    name: "test:policy",
    setup: () => (kit) => kit.hooks.beforeExec.tap({ name: "test:policy", stage: STAGE_POLICY }, (request) => (order.push("policy"), request)),
  });
  await engineWith(observer(), policy()).execute({ runtime: "bash", code: "true" });
  expect(order).toEqual(["policy", "observe"]);
});

test("a beforeAcquire denial refuses the execution before any container is made", async () => {
  const quota = definePlugin({
    name: "test:quota",
    setup: () => (kit) =>
      kit.hooks.beforeAcquire.tap("test:quota", (acquire) => (acquire.metadata.tenant === "blocked" ? { reason: "quota exhausted" } : undefined)),
  });
  const engine = engineWith(quota());
  // Every container the engine starts goes through its driver: record them (the real call runs).
  const started: string[] = [];
  const startContainer = engine.docker.startContainer.bind(engine.docker);
  engine.docker.startContainer = async (...args) => {
    const id = await startContainer(...args);
    started.push(id);
    return id;
  };
  const error = await engine.execute({ runtime: "bash", code: "true", metadata: { tenant: "blocked" } }).catch((e) => e);
  expect(error).toBeInstanceOf(AdmissionDeniedError);
  expect(error.message).toMatch(/quota exhausted/);
  expect(started).toEqual([]);
  expect(await isol8Containers(engine.id)).toEqual([]);
  // The control: an admitted execution on the same engine does start one.
  const admitted = await engine.execute({ runtime: "bash", code: "echo ok", metadata: { tenant: "fine" } });
  expect(admitted.stdout).toBe("ok\n");
  // (The pool may start a spare beside it.)
  expect(started).toContain(admitted.containerId);
});

test("a failing afterExec tap never fails the user's execution", async () => {
  const broken = definePlugin({
    name: "test:broken-sink",
    setup: () => (kit) =>
      kit.hooks.afterExec.tapPromise("test:broken-sink", async () => {
        throw new Error("sink down");
      }),
  });
  const result = await engineWith(broken()).execute({ runtime: "bash", code: "echo fine" });
  expect(result.stdout).toBe("fine\n");
});

test("a network mode's prepared sandbox hears `created` with the new container's id before the program runs; a failing `created` removes the container and its release follows", async () => {
  /** Per prepared sandbox (by its number): the container `created` heard, and whether it was released. */
  const prepared: { created?: string; released: boolean }[] = [];
  let fail = false;
  const mode = definePlugin({
    name: "test:created-mode",
    setup: () => (kit) =>
      kit.networkModes.register("test-created", {
        shapeSpec: (spec) => ({ ...spec, network: { kind: "none" } }),
        prepare: async (spec) => {
          const record: { created?: string; released: boolean } = { released: false };
          prepared.push(record);
          return {
            spec,
            created: async (id) => {
              record.created = id;
              if (fail) throw new Error("the proxy refused the registration");
            },
            release: async () => void (record.released = true),
          };
        },
      }),
  });
  const engine = new DockerIsol8({ network: "test-created", poolStrategy: "secure", poolSize: 0 }, { plugins: defaultPlugins(mode()) });
  engines.push(engine);
  const result = await engine.execute({ runtime: "bash", code: "echo ran" });
  expect(result.stdout).toBe("ran\n");
  expect(prepared.map((p) => p.created)).toContain(result.containerId);

  fail = true;
  const before = prepared.length;
  await expect(engine.execute({ runtime: "bash", code: "echo never" })).rejects.toThrow("the proxy refused the registration");
  const failed = prepared.slice(before);
  expect(failed.length).toBeGreaterThanOrEqual(1);
  for (const record of failed) {
    expect(record.created).toMatch(/^[0-9a-f]{64}$/);
    expect(record.released).toBe(true);
    expect(await isol8Containers(engine.id)).not.toContain(record.created);
  }
});
