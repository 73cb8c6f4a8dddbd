import type { ExecutionResult } from "@isol8/kit";
import { describe, expect, it } from "vitest";
import { toolErrorResult } from "./errors.js";
import { imageMimeType, outputContents, richOutputContents } from "./outputs.js";
import { cellToolResult } from "./result.js";
import { parseListing } from "./sandbox-programs.js";

const result = (files: Record<string, string>): ExecutionResult => ({
  stdout: "",
  stderr: "",
  exitCode: 0,
  durationMs: 1,
  truncated: false,
  timedOut: false,
  oomKilled: false,
  executionId: "x",
  runtime: "python",
  timestamp: new Date(0).toISOString(),
  coldStart: false,
  files,
});

describe("outputContents", () => {
  it("maps image files to image content and other files to embedded blob resources", () => {
    const contents = outputContents(result({ "/sandbox/a.PNG": "iVBORw==", "/sandbox/b.svg": "PHN2Zz4=", "/sandbox/data.csv": "YSxi" }));
    expect(contents).toEqual([
      { type: "image", data: "iVBORw==", mimeType: "image/png" },
      { type: "image", data: "PHN2Zz4=", mimeType: "image/svg+xml" },
      { type: "resource", resource: { uri: "file:///sandbox/data.csv", mimeType: "application/octet-stream", blob: "YSxi" } },
    ]);
  });

  it("knows the image types by extension, and nothing else", () => {
    expect(imageMimeType("/sandbox/x.jpeg")).toBe("image/jpeg");
    expect(imageMimeType("/sandbox/x.png.txt")).toBeUndefined();
    expect(imageMimeType("/sandbox/noext")).toBeUndefined();
  });
});

describe("richOutputContents", () => {
  it("maps binary images to image content and every text form to text under a header naming its mime type, in order", () => {
    const contents = richOutputContents([
      { type: "text/html", data: "<b>x</b>" },
      { type: "image/png", data: "iVBORw==", result: true },
      { type: "image/jpeg", data: "/9j/", result: true },
      { type: "image/svg+xml", data: "<svg/>" },
      { type: "application/json", data: '{"a":1}' },
      { type: "text/markdown", data: "# T" },
      { type: "text/plain", data: "42", result: true },
    ]);
    expect(contents).toEqual([
      { type: "text", text: "display text/html:\n<b>x</b>" },
      { type: "image", data: "iVBORw==", mimeType: "image/png" },
      { type: "image", data: "/9j/", mimeType: "image/jpeg" },
      { type: "text", text: "display image/svg+xml:\n<svg/>" },
      { type: "text", text: 'display application/json:\n{"a":1}' },
      { type: "text", text: "display text/markdown:\n# T" },
      { type: "text", text: "result text/plain:\n42" },
    ]);
  });

  it("says an output was left out, with why and its size, instead of an empty image", () => {
    expect(richOutputContents([{ type: "image/png", data: "", truncated: true, omitted: "output-too-large", sizeBytes: 9000000 }])).toEqual([
      { type: "text", text: "display image/png: left out (output-too-large, 9000000 bytes)" },
    ]);
  });
});

describe("cellToolResult", () => {
  it("is not an error when the cell raised: the summary names the exception and its traceback, structuredContent carries it", () => {
    const tool = cellToolResult(
      {
        ...result({}),
        exitCode: 1,
        stdout: "before\n",
        error: { name: "ZeroDivisionError", value: "division by zero", traceback: ["line 1", "ZeroDivisionError: division by zero"] },
      },
      "s1",
      "c1",
    );
    expect(tool.isError).toBe(false);
    const text = (tool.content[0] as { text: string }).text;
    expect(text).toContain("cell raised ZeroDivisionError");
    expect(text).toContain("stdout:\nbefore\n");
    expect(text).toContain("error: ZeroDivisionError: division by zero");
    expect(text).toContain("traceback:\nline 1\nZeroDivisionError: division by zero");
    expect(tool.structuredContent).toMatchObject({
      session: "s1",
      context: "c1",
      exitCode: 1,
      outputs: [],
      contextRestarted: false,
      error: { name: "ZeroDivisionError", value: "division by zero" },
    });
  });

  it("says when the context restarted (its state is gone)", () => {
    const tool = cellToolResult({ ...result({}), contextRestarted: true }, "s1", "c1");
    expect((tool.content[0] as { text: string }).text).toContain("the context restarted");
    expect(tool.structuredContent).toMatchObject({ contextRestarted: true });
  });
});

describe("toolErrorResult", () => {
  it("gives a typed error's code and message", () => {
    expect(toolErrorResult(Object.assign(new Error("Unknown runtime"), { code: "ISOL8_ERR_UNKNOWN_RUNTIME" }))).toEqual({
      isError: true,
      content: [{ type: "text", text: "ISOL8_ERR_UNKNOWN_RUNTIME: Unknown runtime" }],
    });
  });

  it("hides an untyped error's text (it may name host paths)", () => {
    const original = process.stderr.write.bind(process.stderr);
    let logged = "";
    process.stderr.write = ((chunk: string) => ((logged += chunk), true)) as typeof process.stderr.write;
    try {
      expect(toolErrorResult(new Error("ENOENT /home/secret/path"))).toEqual({
        isError: true,
        content: [{ type: "text", text: "ISOL8_ERR_INTERNAL: internal error (see the server's log)" }],
      });
    } finally {
      process.stderr.write = original;
    }
    expect(logged).toContain("/home/secret/path");
  });
});

describe("parseListing", () => {
  it("reads bash's tab-separated lines and the JSON of the other runtimes alike", () => {
    const expected = [
      { path: "dir", type: "directory", sizeBytes: 4096 },
      { path: "dir/a b.txt", type: "file", sizeBytes: 3 },
    ];
    expect(parseListing("bash", "directory\t4096\tdir\nfile\t3\tdir/a b.txt\n")).toEqual(expected);
    expect(parseListing("python", '[["dir", "directory", 4096], ["dir/a b.txt", "file", 3]]\n')).toEqual(expected);
  });
});
