import { describe, expect, test } from "vitest";
import { NotSupportedError } from "@isol8/kit/errors";
import type { StreamEvent } from "@isol8/kit";
import { RemoteIsol8 } from "./remote.js";

// No server listens here: a refusal must come before any request (a request would fail as unreachable instead).
const HOST = "http://127.0.0.1:9";

describe("RemoteIsol8 contexts without a sessionId", () => {
  const engine = new RemoteIsol8({ host: HOST, apiKey: "k-0123456789" });

  test("createContext, listContexts, restartContext and deleteContext refuse with NotSupportedError naming sessionId", async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ["createContext", () => engine.createContext({ runtime: "python" })],
      ["listContexts", () => engine.listContexts()],
      ["restartContext", () => engine.restartContext("c1")],
      ["deleteContext", () => engine.deleteContext("c1")],
    ];
    expect(calls).toHaveLength(4);
    for (const [name, call] of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(NotSupportedError);
      expect((error as Error).message, name).toContain(`${name} needs a persistent session on the server`);
      expect((error as Error).message, name).toContain("{ host, apiKey, sessionId }");
    }
  });

  test("execute with context throws NotSupportedError; executeStream yields it as an error event", async () => {
    const error = await engine.execute({ runtime: "python", code: "1", context: "c1" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toContain("execute() with context needs a persistent session");
    const events: StreamEvent[] = [];
    for await (const event of engine.executeStream({ runtime: "python", code: "1", context: "c1" })) events.push(event);
    expect(events).toEqual([
      { type: "error", code: "ISOL8_ERR_NOT_SUPPORTED", data: expect.stringContaining("executeStream() with context needs a persistent session") },
    ]);
  });
});
