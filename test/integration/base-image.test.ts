import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// What every runtime image has from the base (packages/core/src/images/tags.ts BASE_RECIPE).
let engine: DockerIsol8;

beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 20_000 });
  await engine.start();
});

afterAll(async () => {
  await engine.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

test.each(["bash", "python"])("ps and kill (procps) are in the %s image: a program lists and signals its own processes", async (runtime) => {
  const code =
    runtime === "bash"
      ? "sleep 30 & child=$!; ps -o pid=,comm= -p $child; /usr/bin/kill -TERM $child; wait $child; echo status=$?"
      : [
          "import subprocess",
          "child = subprocess.Popen(['sleep', '30'])",
          "print(subprocess.run(['ps', '-o', 'pid=,comm=', '-p', str(child.pid)], capture_output=True, text=True).stdout.strip())",
          "subprocess.run(['/usr/bin/kill', '-TERM', str(child.pid)], check=True)",
          "print('status=' + str(128 - child.wait()))",
        ].join("\n");
  const result = await engine.execute({ runtime, code });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  const [listed, status] = result.stdout.trim().split("\n");
  // ps found the child by its pid and named it; kill's SIGTERM (15) ended it: 128 + 15.
  expect(listed).toMatch(/^\s*\d+ sleep$/);
  expect(status).toBe("status=143");
});
