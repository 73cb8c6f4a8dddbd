import { closedLoopbackPort } from "../../../test/helpers.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FileOperationError, InvalidOptionsError, Isol8Error } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { RemoteError, RemoteIsol8, type RemoteErrorInfo } from "@isol8/remote";
import { createServer, type Isol8Server } from "@isol8/server";

const KEY = "remote-key-0123456789";
const OTHER = "remote-other-0123456789";
let server: Isol8Server;
let url: string;
let connections = 0;

beforeAll(async () => {
  server = createServer({
    plugins: [pythonRuntime(), bashRuntime()],
    config: {
      keys: [
        { key: KEY, tenant: "one" },
        { key: OTHER, tenant: "two" },
      ],
      limits: { maxConcurrent: 2 },
    },
    log: () => undefined,
  });
  server.httpServer.on("connection", () => connections++);
  ({ url } = await server.listen(0, "127.0.0.1"));
});
afterAll(async () => {
  await server.close({ graceMs: 5_000 });
});

describe("RemoteIsol8", () => {
  test("start() checks /health and names the URL when it fails", async () => {
    await new RemoteIsol8({ host: url, apiKey: KEY }).start();
    const port = await closedLoopbackPort();
    const error = await new RemoteIsol8({ host: `http://127.0.0.1:${port}`, apiKey: KEY }).start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as Error).message).toMatch(new RegExp(`^Remote server health check failed: http://127\\.0\\.0\\.1:${port}/health: `));
    expect((error as RemoteError).code).toBe("ISOL8_ERR_REMOTE_UNAVAILABLE");
  });

  test("bad options fail at construction, as for a local engine", () => {
    expect(() => new RemoteIsol8({ host: url, apiKey: KEY }, { memoryLimit: "lots" })).toThrow(InvalidOptionsError);
    expect(() => new RemoteIsol8({ host: "not a url", apiKey: KEY })).toThrow(/host: expected a URL/);
  });

  test("errors carry the server's message, HTTP status, code and field", async () => {
    const forbidden = await new RemoteIsol8({ host: url, apiKey: "not-the-key-000" }).execute({ runtime: "python", code: "1" }).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(RemoteError);
    expect(forbidden).toMatchObject({ status: 403, code: "ISOL8_ERR_FORBIDDEN", message: "Invalid API key" });
    expect(Isol8Error.isInstance(forbidden)).toBe(true);

    const policy = await new RemoteIsol8({ host: url, apiKey: KEY }, { memoryLimit: "4g" }).execute({ runtime: "python", code: "1" }).catch((e: unknown) => e);
    expect(policy).toMatchObject({ status: 400, code: "ISOL8_ERR_POLICY", field: "options.memoryLimit" });
    expect((policy as Error).message).toMatch(/^options\.memoryLimit: 4\.0 GiB is over this server's limit of 512 MiB/);
    expect((policy as RemoteErrorInfo).requestId).toMatch(/\S/);

    const notAllowed = await new RemoteIsol8({ host: url, apiKey: KEY }, { image: "alpine" })
      .execute({ runtime: "python", code: "1" })
      .catch((e: unknown) => e);
    expect(notAllowed).toBeInstanceOf(InvalidOptionsError);
    expect(notAllowed).toMatchObject({ status: 400, field: "options.image" });

    const streamed: unknown[] = [];
    for await (const event of new RemoteIsol8({ host: url, apiKey: KEY }, { network: "host" }).executeStream({ runtime: "python", code: "1" }))
      streamed.push(event);
    expect(streamed).toEqual([
      { type: "error", code: "ISOL8_ERR_POLICY", data: expect.stringMatching(/^options\.network: network mode "host" is not allowed/) },
    ]);
  });

  test("putFile/getFile without a sessionId are refused", async () => {
    const engine = new RemoteIsol8({ host: url, apiKey: KEY });
    await expect(engine.putFile("/sandbox/a", "x")).rejects.toThrow(FileOperationError);
    await expect(engine.putFile("/sandbox/a", "x")).rejects.toThrow(/^File operations require a sessionId/);
    await expect(engine.getFile("/sandbox/a")).rejects.toThrow(/^File operations require a sessionId/);
  });

  test("stop() deletes the remote session only when sessionId is set; close() keeps it", async () => {
    const kept = new RemoteIsol8({ host: url, apiKey: KEY, sessionId: "kept-session" });
    await kept.execute({ runtime: "bash", code: "echo 1 > /sandbox/n" });
    await kept.close();
    const again = new RemoteIsol8({ host: url, apiKey: KEY, sessionId: "kept-session" });
    expect((await again.execute({ runtime: "bash", code: "cat /sandbox/n" })).stdout).toBe("1\n");
    expect((await again.listSessions()).map((s) => s.id)).toContain("kept-session");

    // An engine without a session leaves the tenant's sessions alone.
    const plain = new RemoteIsol8({ host: url, apiKey: KEY });
    await plain.stop();
    expect((await again.listSessions()).map((s) => s.id)).toContain("kept-session");

    // Another tenant's stop() with the same id deletes nothing of ours (it has no such session: a 404, ignored).
    await new RemoteIsol8({ host: url, apiKey: OTHER, sessionId: "kept-session" }).stop();
    expect((await again.listSessions()).map((s) => s.id)).toContain("kept-session");

    await again.stop();
    expect((await new RemoteIsol8({ host: url, apiKey: KEY }).listSessions()).map((s) => s.id)).not.toContain("kept-session");
  });

  test("connections are reused across calls", async () => {
    const before = connections;
    const engine = new RemoteIsol8({ host: url, apiKey: KEY });
    await engine.start();
    for (let i = 0; i < 10; i++) await engine.listSessions();
    await engine.execute({ runtime: "bash", code: "echo 1" });
    for await (const _event of engine.executeStream({ runtime: "bash", code: "echo 2" })) {
      // drain
    }
    for (let i = 0; i < 10; i++) await engine.listSessions();
    // 23 sequential calls over a few kept-alive sockets (undici may open a second one while the
    // first is being released, and replaces one idle past its keep-alive), never one per call.
    expect(connections - before).toBeLessThan(5);
    await engine.stop();
  });

  test("a request past the client's deadline is reported as ISOL8_ERR_TIMEOUT", async () => {
    const engine = new RemoteIsol8({ host: url, apiKey: KEY, timeoutMs: 1_000 });
    const error = await engine.execute({ runtime: "bash", code: "sleep 3" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ISOL8_ERR_TIMEOUT", status: 0 });
    expect((error as Error).message).toMatch(/no answer within 1000 ms/);
    await engine.stop();
  });
});
