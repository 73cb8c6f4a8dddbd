import { describe, expect, it } from "vitest";
import { DockerUnavailableError, ExecutionError } from "@isol8/kit";
import { DockerDriver, MultiplexedStreamParser } from "./driver.js";

type Stream = "stdout" | "stderr";

/** One frame of Docker's multiplexed stream: type byte, 3 zero bytes, big-endian length, payload. */
function frame(type: number, payload: string | Buffer): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** A parser that records what it emits, copying each chunk. */
function recorder() {
  const emitted: Array<[Stream, string]> = [];
  const parser = new MultiplexedStreamParser((stream, chunk) => emitted.push([stream, Buffer.from(chunk).toString("utf8")]));
  return { parser, emitted };
}

/** Joins what was emitted per stream, so results do not depend on how frames were split. */
function joined(emitted: Array<[Stream, string]>): Record<Stream, string> {
  return {
    stdout: emitted
      .filter(([s]) => s === "stdout")
      .map(([, d]) => d)
      .join(""),
    stderr: emitted
      .filter(([s]) => s === "stderr")
      .map(([, d]) => d)
      .join(""),
  };
}

describe("MultiplexedStreamParser", () => {
  it("emits a stdout frame (type 1)", () => {
    const { parser, emitted } = recorder();
    parser.push(frame(1, "hello"));
    expect(emitted).toEqual([["stdout", "hello"]]);
  });

  it("emits a stderr frame (type 2)", () => {
    const { parser, emitted } = recorder();
    parser.push(frame(2, "oops"));
    expect(emitted).toEqual([["stderr", "oops"]]);
  });

  it("emits several frames of one chunk in order", () => {
    const { parser, emitted } = recorder();
    parser.push(Buffer.concat([frame(1, "a"), frame(2, "b"), frame(1, "c")]));
    expect(emitted).toEqual([
      ["stdout", "a"],
      ["stderr", "b"],
      ["stdout", "c"],
    ]);
  });

  it("skips zero-length frames", () => {
    const { parser, emitted } = recorder();
    parser.push(Buffer.concat([frame(1, ""), frame(2, "x"), frame(2, ""), frame(1, "")]));
    expect(emitted).toEqual([["stderr", "x"]]);
  });

  it("waits for the rest of a header split inside its 8 bytes", () => {
    const bytes = frame(2, "payload");
    for (let cut = 1; cut < 8; cut++) {
      const { parser, emitted } = recorder();
      parser.push(bytes.subarray(0, cut));
      expect(emitted, `cut at ${cut}`).toEqual([]);
      parser.push(bytes.subarray(cut));
      expect(emitted, `cut at ${cut}`).toEqual([["stderr", "payload"]]);
    }
  });

  it("waits for the rest of a payload split across chunks", () => {
    const { parser, emitted } = recorder();
    const bytes = frame(1, "0123456789");
    parser.push(bytes.subarray(0, 12));
    expect(emitted).toEqual([]);
    parser.push(bytes.subarray(12));
    expect(emitted).toEqual([["stdout", "0123456789"]]);
  });

  it("emits each frame whole whatever single byte boundary the stream is split at", () => {
    const frames: Array<[number, string]> = [
      [1, "first line\n"],
      [2, "warning: é€😀\n"],
      [1, ""],
      [1, "second"],
      [2, "x"],
    ];
    const bytes = Buffer.concat(frames.map(([type, text]) => frame(type, text)));
    const expected = frames.filter(([, text]) => text.length > 0).map(([type, text]) => [type === 2 ? "stderr" : "stdout", text]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { parser, emitted } = recorder();
      parser.push(bytes.subarray(0, cut));
      parser.push(bytes.subarray(cut));
      expect(emitted, `cut at ${cut}`).toEqual(expected);
    }
  });

  it("emits every frame whole when fed one byte at a time", () => {
    const { parser, emitted } = recorder();
    const bytes = Buffer.concat([frame(1, "out"), frame(2, "err"), frame(1, "out2")]);
    for (const byte of bytes) parser.push(Buffer.from([byte]));
    expect(emitted).toEqual([
      ["stdout", "out"],
      ["stderr", "err"],
      ["stdout", "out2"],
    ]);
  });

  it("splits stdout and stderr correctly for random frames and random chunking", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 100; run++) {
      const frames = Array.from({ length: 1 + Math.floor(rand() * 10) }, () => {
        const type = rand() < 0.5 ? 1 : 2;
        const payload = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
        return { type, payload };
      });
      const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.payload)));
      const received: Record<Stream, Buffer[]> = { stdout: [], stderr: [] };
      const parser = new MultiplexedStreamParser((stream, chunk) => received[stream].push(Buffer.from(chunk)));
      for (let offset = 0; offset < bytes.length;) {
        const size = Math.floor(rand() * 20);
        parser.push(bytes.subarray(offset, offset + size));
        offset += size;
      }
      const expected = (type: number) => Buffer.concat(frames.filter((f) => f.type === type).map((f) => f.payload));
      expect(Buffer.concat(received.stdout).equals(expected(1)), `run ${run}`).toBe(true);
      expect(Buffer.concat(received.stderr).equals(expected(2)), `run ${run}`).toBe(true);
    }
  });

  it("keeps binary payloads byte for byte", () => {
    const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const received: Buffer[] = [];
    const parser = new MultiplexedStreamParser((_, chunk) => received.push(Buffer.from(chunk)));
    const bytes = frame(1, payload);
    parser.push(bytes.subarray(0, 100));
    parser.push(bytes.subarray(100));
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  it("reads a payload length that needs all four length bytes", () => {
    const payload = Buffer.alloc(70_000, 0x61); // 0x00011170: three non-zero length bytes
    const received: Buffer[] = [];
    const parser = new MultiplexedStreamParser((_, chunk) => received.push(Buffer.from(chunk)));
    const bytes = frame(2, payload);
    for (let offset = 0; offset < bytes.length; offset += 4096) parser.push(bytes.subarray(offset, offset + 4096));
    expect(received.length).toBe(1);
    expect(received[0]!.equals(payload)).toBe(true);
  });

  it("ignores empty chunks", () => {
    const { parser, emitted } = recorder();
    const bytes = frame(1, "abc");
    parser.push(Buffer.alloc(0));
    parser.push(bytes.subarray(0, 5));
    parser.push(Buffer.alloc(0));
    parser.push(bytes.subarray(5));
    parser.push(Buffer.alloc(0));
    expect(emitted).toEqual([["stdout", "abc"]]);
  });

  it("does not emit a frame twice when more chunks follow", () => {
    const { parser, emitted } = recorder();
    parser.push(frame(1, "once"));
    parser.push(frame(2, "two").subarray(0, 3));
    parser.push(frame(2, "two").subarray(3));
    expect(joined(emitted)).toEqual({ stdout: "once", stderr: "two" });
  });
});

describe("DockerDriver.wrap", () => {
  // A Docker client that is never called: wrap() only classifies errors.
  const driver = new DockerDriver({} as never);

  it("turns a missing or refused socket into a DockerUnavailableError", () => {
    for (const code of ["ENOENT", "ECONNREFUSED", "EACCES"]) {
      const cause = Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });
      const wrapped = driver.wrap(cause);
      expect(wrapped, code).toBeInstanceOf(DockerUnavailableError);
      expect(wrapped.cause).toBe(cause);
    }
  });

  it("turns a connection that broke mid-call (reset, hung up, broken pipe) into a DockerUnavailableError that says Docker stopped answering", () => {
    const causes = [
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      Object.assign(new Error("write EPIPE"), { code: "EPIPE" }),
      new Error("socket hang up"),
    ];
    for (const cause of causes) {
      const wrapped = driver.wrap(cause);
      expect(wrapped, cause.message).toBeInstanceOf(DockerUnavailableError);
      expect(wrapped.message).toContain(`stopped answering: ${cause.message}`);
    }
  });

  it("returns an error already classified unchanged", () => {
    const error = new DockerUnavailableError("down");
    expect(driver.wrap(error)).toBe(error);
  });

  it("returns other errors unchanged", () => {
    const error = Object.assign(new Error("conflict"), { statusCode: 409 });
    expect(driver.wrap(error)).toBe(error);
  });

  it("wraps a thrown non-Error value in an ExecutionError", () => {
    const wrapped = driver.wrap("socket hang up");
    expect(wrapped).toBeInstanceOf(ExecutionError);
    expect(wrapped.message).toBe("socket hang up");
  });
});
