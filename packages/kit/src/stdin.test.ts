import { describe, expect, test } from "vitest";
import { createStdin, isStdinSource } from "./stdin.js";

describe("createStdin", () => {
  test("hands out what was written, in order, as bytes; end() ends the iteration after the queue", async () => {
    const stdin = createStdin();
    expect(stdin.write("a\n")).toBe(true);
    expect(stdin.write(new Uint8Array([98, 10]))).toBe(true);
    stdin.end();
    const chunks: string[] = [];
    for await (const chunk of stdin) chunks.push(new TextDecoder().decode(chunk));
    expect(chunks).toEqual(["a\n", "b\n"]);
    expect(stdin.write("late")).toBe(false);
  });

  test("a reader waiting for the next chunk gets it when it is written", async () => {
    const stdin = createStdin();
    const iterator = stdin[Symbol.asyncIterator]();
    const next = iterator.next();
    stdin.write("x");
    expect(new TextDecoder().decode((await next).value)).toBe("x");
  });

  test("when the reader stops (the run ended) later writes are refused and queued bytes are counted as dropped", async () => {
    const stdin = createStdin();
    stdin.write("abc");
    stdin.write("de");
    stdin.write("f");
    const iterator = stdin[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await iterator.next()).value)).toBe("abc");
    await iterator.return!();
    expect(stdin.closed).toBe(true);
    expect(stdin.dropped).toBe(3);
    expect(stdin.write("more")).toBe(false);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test("a reader waiting for a chunk is released when the reader side returns", async () => {
    const stdin = createStdin();
    const iterator = stdin[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await iterator.return!();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  test("a chunk that is neither text nor bytes is refused, naming what was expected", () => {
    expect(() => createStdin().write(42 as never)).toThrow(/stdin chunk: expected a string or a Uint8Array/);
  });
});

test("isStdinSource: iterables of chunks are sources; strings, bytes and plain objects are not", () => {
  expect(isStdinSource(createStdin())).toBe(true);
  expect(isStdinSource(["a"])).toBe(true);
  expect(isStdinSource((async function* () {})())).toBe(true);
  expect(isStdinSource("text")).toBe(false);
  expect(isStdinSource(new Uint8Array(1))).toBe(false);
  expect(isStdinSource({ write() {} })).toBe(false);
});
