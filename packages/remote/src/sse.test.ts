import { describe, expect, test } from "vitest";
import { SseParser } from "./sse.js";

describe("SseParser", () => {
  test("events split at every byte boundary parse the same as whole", () => {
    const text = 'event: stdout\ndata: {"type":"stdout","data":"é✓"}\nid: 0\n\n: keep-alive\n\nevent: exit\r\ndata: a\r\ndata: b\r\n\r\n';
    const bytes = Buffer.from(text);
    const whole = new SseParser().push(bytes);
    expect(whole).toEqual([
      { event: "stdout", data: '{"type":"stdout","data":"é✓"}', id: "0" },
      { event: "exit", data: "a\nb", id: "0" },
    ]);
    for (let size = 1; size <= 7; size++) {
      const parser = new SseParser();
      const out = [];
      for (let i = 0; i < bytes.length; i += size) out.push(...parser.push(bytes.subarray(i, i + size)));
      out.push(...parser.end());
      expect(out, `chunks of ${size}`).toEqual(whole);
    }
  });

  test("CR line endings, a CR LF split across chunks, default event name, comments and unknown fields", () => {
    const parser = new SseParser();
    expect(parser.push("data: x\r")).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ event: "message", data: "x" }]);
    expect(parser.push("retry: 10\r:c\rdata\rdata:y\r\r")).toEqual([{ event: "message", data: "\ny" }]);
  });

  test("an event without its closing blank line is not dispatched", () => {
    const parser = new SseParser();
    expect(parser.push("data: half")).toEqual([]);
    expect(parser.end()).toEqual([]);
  });
});
