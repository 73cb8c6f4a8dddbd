import { describe, expect, test } from "vitest";
import { KernelMessageReader, parseKernelMessage } from "./kernel-messages.js";

describe("KernelMessageReader", () => {
  test("splits messages across any chunking, in order", () => {
    const reader = new KernelMessageReader(1024);
    const bytes = Buffer.from('{"type":"ready"}\n{"type":"display","cell":1,"mime":"text/plain","data":"NDI=","result":true}\n{"type":"done","cell":1}\n');
    const lines = [];
    for (let at = 0; at < bytes.length; at += 7) lines.push(...reader.push(bytes.subarray(at, at + 7)));
    expect(lines).toEqual([{ type: "ready" }, { type: "display", cell: 1, mime: "text/plain", data: "NDI=", result: true }, { type: "done", cell: 1 }]);
  });

  test("a line past the bound is never held whole: it comes back oversized with its byte count and mime, and the next line still parses", () => {
    const reader = new KernelMessageReader(100);
    const big = `{"type":"display","cell":2,"mime":"image/png","data":"${"A".repeat(10_000)}"}`;
    const lines = [...reader.push(Buffer.from(big.slice(0, 5000))), ...reader.push(Buffer.from(`${big.slice(5000)}\n{"type":"done","cell":2}\n`))];
    expect(lines).toEqual([
      { type: "oversized", bytes: Buffer.byteLength(big), mime: "image/png" },
      { type: "done", cell: 2 },
    ]);
  });

  test("a line within the bound is kept (positive control of the bound)", () => {
    const reader = new KernelMessageReader(100);
    expect(reader.push(Buffer.from('{"type":"done","cell":3}\n'))).toEqual([{ type: "done", cell: 3 }]);
  });
});

describe("parseKernelMessage", () => {
  test("a done carries a well-formed error and an integer exit code; malformed ones are dropped field by field", () => {
    expect(parseKernelMessage('{"type":"done","cell":1,"error":{"name":"E","value":"v","traceback":["a"]},"exitCode":1}')).toEqual({
      type: "done",
      cell: 1,
      error: { name: "E", value: "v", traceback: ["a"] },
      exitCode: 1,
    });
    expect(parseKernelMessage('{"type":"done","cell":1,"error":{"name":5},"exitCode":"x"}')).toEqual({ type: "done", cell: 1 });
  });

  test("what is not a message is reported invalid, naming why", () => {
    expect(parseKernelMessage("nope")).toEqual({ type: "invalid", reason: "not JSON" });
    expect(parseKernelMessage('{"type":"display","cell":1}')).toEqual({ type: "invalid", reason: "a display without cell, mime or data" });
    expect(parseKernelMessage('{"type":"done"}')).toEqual({ type: "invalid", reason: "a done without its cell" });
    expect(parseKernelMessage('{"type":"other"}')).toEqual({ type: "invalid", reason: 'unknown type "other"' });
  });
});
