import type { ExecutionResult } from "@isol8/kit";
import { describe, expect, it } from "vitest";
import { toolErrorResult } from "./errors.js";
import { imageMimeType, outputContents } from "./outputs.js";
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
