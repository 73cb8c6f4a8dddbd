/**
 * File names the tar formats carry differently, through the real engine: a request's files and
 * putFile are packed on the host (ustar; a name past 100 bytes split into prefix + name, past 255
 * bytes a PAX header), outputPaths and getFile are packed by GNU tar in the container (a name past
 * 100 bytes as a ././@LongLink entry). Each must arrive whole, under its full path.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

/** A path under /sandbox of about `length` characters, in directories of 50. */
function longPath(length: number, leaf: string): string {
  const dirs = Array.from({ length: Math.ceil(length / 51) }, (_, i) => `${String(i).padStart(2, "0")}${"d".repeat(48)}`);
  return `/sandbox/${dirs.join("/")}/${leaf}`;
}

const MEDIUM = longPath(180, "medium-name.txt"); // past ustar's 100-byte name, within prefix + name
const LONG = longPath(400, "long-name.bin"); // past prefix + name: a PAX header on the host, GNU's LongLink in the container
const ACCENTED = "/sandbox/out/résumé-€-😀.txt";

describe("file names past tar's 100 bytes", () => {
  let engine: DockerIsol8;
  beforeAll(async () => {
    engine = new DockerIsol8({ timeoutMs: 60_000 });
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("request files at long paths arrive whole, and outputPaths at long and non-ASCII paths come back under their full paths", async () => {
    expect(MEDIUM.length).toBeGreaterThan(100);
    expect(MEDIUM.length).toBeLessThan(255);
    expect(LONG.length).toBeGreaterThan(300);
    const binary = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff));
    const result = await engine.execute({
      runtime: "bash",
      code: [
        `cat "${MEDIUM}"`,
        `sha256sum < "${LONG}" | cut -c1-16`,
        `mkdir -p /sandbox/out && cp "${LONG}" "${LONG}.copy" && printf 'accented' > "${ACCENTED}"`,
      ].join("\n"),
      files: { [MEDIUM]: "medium in", [LONG]: binary },
      outputPaths: [`${LONG}.copy`, ACCENTED],
    });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    // The request's files, each whole at its full path (the second as the first 16 hex digits of its sha256).
    expect(result.stdout).toBe(`medium in${createHash("sha256").update(binary).digest("hex").slice(0, 16)}\n`);
    expect(Object.keys(result.files ?? {}).sort()).toEqual([`${LONG}.copy`, ACCENTED].sort());
    expect(Buffer.from(result.files![`${LONG}.copy`]!, "base64").equals(binary)).toBe(true);
    expect(Buffer.from(result.files![ACCENTED]!, "base64").toString()).toBe("accented");
    expect(result.omittedFiles ?? []).toEqual([]);
  });
});

describe("putFile and getFile at long paths", () => {
  let engine: DockerIsol8;
  beforeAll(async () => {
    engine = new DockerIsol8({ mode: "persistent", timeoutMs: 60_000 });
    await engine.start();
    // The first execute creates the persistent container (and fixes its runtime).
    await engine.execute({ runtime: "bash", code: "true" });
  });
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a file put at a path past 300 bytes reads back byte-exact, and the program sees it there", async () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff));
    await engine.putFile(LONG, data);
    const check = await engine.execute({ runtime: "bash", code: `stat -c %s "${LONG}"` });
    expect(check.stdout).toBe(`${data.length}\n`);
    const back = await engine.getFile(LONG);
    expect(back.equals(data)).toBe(true);
  });

  test("a file the program wrote at a long non-ASCII path reads back whole", async () => {
    const path = longPath(200, "naïve-ünïcode-€.txt");
    await engine.execute({ runtime: "bash", code: `mkdir -p "$(dirname "${path}")" && printf 'written inside' > "${path}"` });
    expect((await engine.getFile(path)).toString()).toBe("written inside");
  });
});
