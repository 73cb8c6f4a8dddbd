import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver, InvalidRequestError, type StreamEvent } from "@isol8/core";
import { RemoteIsol8 } from "../../remote/src/index.js";
import { serve, type Served } from "./serve-process.js";

/** cmd, setupScript and workdir through a real `isol8 serve` (packages/cli/dist), with RemoteIsol8 and plain HTTP. */

const KEY = "cmd-setup-key-0123456789";

let dir: string;
let served: Served;
let remote: RemoteIsol8;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cmd-setup-"));
  served = await serve(dir, KEY, { defaults: { poolSize: { clean: 1, dirty: 1 } } });
  remote = new RemoteIsol8({ host: served.url, apiKey: KEY });
  await remote.start();
}, 180_000);
afterAll(async () => {
  await remote?.close();
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await new DockerDriver().listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
  await rm(dir, { recursive: true, force: true });
}, 120_000);

describe("through isol8 serve and RemoteIsol8", () => {
  test("a cmd runs with the runtime's interpreter on PATH", async () => {
    const result = await remote.execute({ runtime: "python", cmd: "python3 -c 'print(6 * 7)'; pwd" });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("42\n/sandbox\n");
  });

  test("the stream carries the setup's output first, marked setup, then the code's, marked code; the result keeps them apart", async () => {
    const events: StreamEvent[] = [];
    for await (const event of remote.executeStream({
      runtime: "python",
      workdir: "/tmp/w",
      setupScript: 'echo "setup in $(pwd)"',
      code: "import os\nprint('code in', os.getcwd())",
    }))
      events.push(event);
    // The program may write in several chunks: the events are joined per phase.
    const output = events.slice(0, -1) as Extract<StreamEvent, { type: "stdout" }>[];
    expect(output.length).toBeGreaterThanOrEqual(2);
    expect(new Set(output.map((e) => e.type))).toEqual(new Set(["stdout"]));
    const phases = output.map((e) => e.phase);
    expect(phases).toEqual([...phases.filter((p) => p === "setup"), ...phases.filter((p) => p === "code")]);
    const text = (phase: string) =>
      output
        .filter((e) => e.phase === phase)
        .map((e) => e.data)
        .join("");
    expect(text("setup")).toBe("setup in /tmp/w\n");
    expect(text("code")).toBe("code in /tmp/w\n");
    const exit = events.at(-1) as Extract<StreamEvent, { type: "exit" }>;
    expect(exit.type).toBe("exit");
    expect(exit.result.stdout).toBe("code in /tmp/w\n");
    expect(exit.result.setup).toMatchObject({ stdout: "setup in /tmp/w\n", stderr: "", exitCode: 0, truncated: false });
  });

  test("a failing setup ends the run with its exit code and the code's output never comes (the same code prints after a setup that succeeds)", async () => {
    const code = "print('code ran')";
    const failed = await remote.execute({ runtime: "python", setupScript: "exit 4", code });
    expect(failed.exitCode).toBe(4);
    expect(failed.stdout).toBe("");
    expect(failed.setup).toMatchObject({ exitCode: 4 });
    expect(failed.setup!.stderr).toContain("the code was not run");
    const control = await remote.execute({ runtime: "python", setupScript: "true", code });
    expect(control.exitCode).toBe(0);
    expect(control.stdout).toBe("code ran\n");
  });

  test("bad input is refused with 400, naming the field: code and cmd together, a workdir outside the roots, an empty setupScript", async () => {
    await expect(remote.execute({ runtime: "python", code: "print(1)", cmd: "echo 1" })).rejects.toThrow(
      /request\.cmd: expected exactly one of code, cmd or codeUrl: got code and cmd/,
    );
    const outside = await remote.execute({ runtime: "python", code: "print(1)", workdir: "/etc" }).catch((error: unknown) => error);
    expect(outside).toBeInstanceOf(InvalidRequestError);
    expect((outside as Error).message).toMatch(/request\.workdir: path "\/etc" is outside \/sandbox and \/tmp/);
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ request: { runtime: "python", code: "print(1)", setupScript: "" } }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "request.setupScript" });
  });

  test("the OpenAPI document describes cmd, setupScript, workdir and the stream's phase", async () => {
    const document = (await (await fetch(`${served.url}/openapi.json`)).json()) as {
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const request = document.components.schemas.ExecutionRequest!;
    expect(Object.keys(request.properties!)).toEqual(expect.arrayContaining(["code", "cmd", "codeUrl", "codeHash", "setupScript", "workdir"]));
    expect(JSON.stringify(document)).toContain("Present only when the request has a setupScript");
  });

  test("RemoteIsol8.runtimes() lists the server's runtimes (GET /runtimes, which needs the key)", async () => {
    const runtimes = await remote.runtimes();
    expect(runtimes.find((r) => r.name === "python")).toMatchObject({ name: "python", extensions: [".py"], packages: true, contexts: true });
    expect(runtimes.find((r) => r.name === "deno")).toMatchObject({ name: "deno", contexts: false });
    expect(runtimes.find((r) => r.name === "python")!.version).toMatch(/\S/);
    expect(runtimes.map((r) => r.name)).toEqual(expect.arrayContaining(["python", "node", "bash"]));
    const anonymous = await fetch(`${served.url}/runtimes`);
    expect(anonymous.status).toBe(401);
  });
});
