import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLI } from "./helpers.js";

const run = promisify(execFile);
// The MCP Inspector's command-line mode (@modelcontextprotocol/inspector-cli, a dev dependency).
const INSPECTOR_DIR = join(dirname(createRequire(import.meta.url).resolve("@modelcontextprotocol/inspector-cli/package.json")), "build");

/** Runs the inspector CLI against `isol8 mcp` (it reads its own package.json relative to its cwd: run it in its build folder). */
async function inspect(args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [join(INSPECTOR_DIR, "index.js"), process.execPath, CLI, "mcp", ...args], {
    cwd: INSPECTOR_DIR,
    timeout: 120_000,
  });
  return JSON.parse(stdout);
}

describe("MCP Inspector CLI against isol8 mcp", () => {
  it("lists the tools", async () => {
    const listed = (await inspect(["--method", "tools/list"])) as { tools: { name: string }[] };
    expect(listed.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["run_code", "create_session", "list_runtimes"]));
  });

  it("calls run_code", async () => {
    const result = (await inspect(["--method", "tools/call", "--tool-name", "run_code", "--tool-arg", "runtime=python", "--tool-arg", "code=print(6*7)"])) as {
      structuredContent: { stdout: string; exitCode: number };
    };
    expect(result.structuredContent).toMatchObject({ stdout: "42\n", exitCode: 0 });
  });
});
