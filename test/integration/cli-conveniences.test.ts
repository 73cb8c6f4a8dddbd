import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { serve, type Served } from "../../packages/server/test/serve-process.js";
import { startPythonIndex, type LocalRegistry } from "../fixtures/local-registries.js";
import { cliPids, containersOfProcesses, expectNoContainersOfProcesses, isol8Cli } from "../helpers.js";

// The built CLI (packages/cli/dist/bin.js) against the real Docker engine: the flags users of the
// reference isol8 type, each mapped to this project's request fields and options.

const KEY = "cli-conveniences-key";
let dir: string;
let served: Served;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-conveniences-"));
  served = await serve(dir, KEY, {});
});
afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await containersOfProcesses([served.child.pid!])).toEqual([]);
  // No CLI run left a container behind.
  expect(cliPids.size).toBeGreaterThan(10);
  await expectNoContainersOfProcesses(cliPids);
  await rm(dir, { recursive: true, force: true });
});

const FAILURE = 125;

describe("isol8 and isol8 config", () => {
  test("isol8 with no command prints the help on stdout and exits 0", async () => {
    const result = await isol8Cli([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: isol8 \[options\] \[command\]/);
    expect(result.stdout).toMatch(/\n {2}run \[options\] \[file\]/);
    expect(result.stderr).toBe("");
  });

  test("config --json prints the same JSON as config (codeUrl off by default)", async () => {
    const plain = await isol8Cli(["config"]);
    const json = await isol8Cli(["config", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(plain.stdout));
    expect(JSON.parse(json.stdout).options.codeUrl).toEqual({
      value: { enabled: false, allowHosts: [], maxBytes: 1024 ** 2, timeoutMs: 10_000, allowPrivateAddresses: false },
      source: "default",
    });
  });
});

describe("isol8 run: --cmd, --setup, --workdir", () => {
  test("--cmd runs a shell command with bash in the runtime's image, its exit code the CLI's", async () => {
    const python = await isol8Cli(["run", "--cmd", 'python3 -c "print(6 * 7)"; echo "$BASH_VERSION" | cut -c1']);
    expect(python).toMatchObject({ stdout: "42\n5\n", code: 0 });
    const node = await isol8Cli(["run", "-r", "node", "--cmd", "node -e 'console.log(\"node\", 6 * 7)'; exit 4"]);
    expect(node).toMatchObject({ stdout: "node 42\n", code: 4 });
  });

  test("--cmd with -e is refused naming both flags", async () => {
    const result = await isol8Cli(["run", "-e", "print(1)", "--cmd", "echo hi"]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toBe("isol8: isol8 run: give one of -e/--eval, a file, --cmd or --code-url, not -e/--eval and --cmd [ISOL8_ERR_INVALID_OPTIONS]\n");
  });

  test("--setup runs first in the same sandbox; a failing setup ends the run with its exit code and the code does not run", async () => {
    const ok = await isol8Cli(["run", "--setup", "echo prepared > /tmp/setup-made", "-e", "print(open('/tmp/setup-made').read().strip(), 'by setup')"]);
    expect(ok).toMatchObject({ stdout: "prepared by setup\n", code: 0 });
    const failed = await isol8Cli(["run", "--setup", "echo setup says; exit 7", "-e", "print('code ran')"]);
    expect(failed.code).toBe(7);
    expect(failed.stdout).toContain("setup says\n");
    expect(failed.stdout).not.toContain("code ran");
  });

  test("--workdir is the program's working directory (made when missing); outside /sandbox and /tmp it is refused naming workdir", async () => {
    const inside = await isol8Cli(["run", "--workdir", "/tmp/work/here", "--cmd", "pwd"]);
    expect(inside).toMatchObject({ stdout: "/tmp/work/here\n", code: 0 });
    const relative = await isol8Cli(["run", "--workdir", "sub", "-e", "import os; print(os.getcwd())"]);
    expect(relative).toMatchObject({ stdout: "/sandbox/sub\n", code: 0 });
    const outside = await isol8Cli(["run", "--workdir", "/etc", "--cmd", "pwd"]);
    expect(outside.code).toBe(FAILURE);
    expect(outside.stderr).toMatch(/^isol8: --workdir \(request\.workdir\): path "\/etc" is outside \/sandbox and \/tmp/);
    expect(outside.stdout).toBe("");
  });
});

describe("isol8 run: --install", () => {
  let first: LocalRegistry;
  let second: LocalRegistry;
  beforeAll(async () => {
    first = await startPythonIndex("isol8_first", "1.0.0", "def hello():\n    return 'first'\n");
    second = await startPythonIndex("isol8_second", "2.0.0", "def hello():\n    return 'second'\n");
  });
  afterAll(async () => {
    await first.close();
    await second.close();
  });

  test("each --install (repeatable) is installed before the code, from the index the environment names", async () => {
    const result = await isol8Cli([
      "run",
      "--net",
      "host",
      "--timeout",
      "120000",
      "--env",
      `PIP_INDEX_URL=${first.url}`,
      "--env",
      `PIP_EXTRA_INDEX_URL=${second.url}`,
      "--install",
      "isol8_first",
      "--install",
      "isol8_second==2.0.0",
      "-e",
      "import isol8_first, isol8_second; print(isol8_first.hello(), isol8_second.hello())",
    ]);
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({ stdout: "first second\n", code: 0 });
    expect(first.requests).toContain("GET /files/isol8_first-1.0.0-py3-none-any.whl");
    expect(second.requests).toContain("GET /files/isol8_second-2.0.0-py3-none-any.whl");
  });

  test("a bad --install names the flag and which one (the second of two here)", async () => {
    const result = await isol8Cli(["run", "--net", "host", "--install", "isol8_first", "--install", "bad;name", "-e", "print('code ran')"]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toMatch(/^isol8: --install \(request\.installPackages\[1\]\): "bad;name" is not a valid python package name/);
    expect(result.stdout).toBe("");
  });

  test("--install with the network none is refused naming --install, before any container", async () => {
    const result = await isol8Cli(["run", "--install", "isol8_first", "-e", "print('code ran')"]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toMatch(/^isol8: --install: the network is "none", so no package registry can be reached: add --net host, or --net filtered/);
    expect(result.stdout).toBe("");
  });
});

describe("isol8 run: --allow and --deny", () => {
  // Python asks the sandbox's proxy (HTTP_PROXY; NO_PROXY, which lists loopback, dropped) for IP
  // literals, so no name is resolved and the proxy dials nothing: it refuses each for its reason.
  const probe = `
import os, urllib.request, urllib.error
print("proxy", bool(os.environ.get("HTTP_PROXY")))
os.environ.pop("NO_PROXY"); os.environ.pop("no_proxy")  # urllib would bypass the proxy for 127.0.0.1
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": os.environ["HTTP_PROXY"]}))
for host in ["127.0.0.2", "127.0.0.3", "127.0.0.1"]:
    try:
        opener.open(f"http://{host}/", timeout=30)
        print(host, "open")
    except urllib.error.HTTPError as e:
        print(host, e.code, e.read().decode().strip())
`;

  test("--allow and --deny become the filtered network's whitelist and blacklist (--net filtered implied)", async () => {
    const result = await isol8Cli(["run", "--allow", "^127\\.0\\.0\\.1$", "--deny", "^127\\.0\\.0\\.2$", "--timeout", "90000", "-e", probe]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe("proxy True");
    expect(lines[1]).toBe("127.0.0.2 403 isol8 network filter: GET http://127.0.0.2/ refused: 127.0.0.2 matches blacklist rule /^127\\.0\\.0\\.2$/");
    expect(lines[2]).toBe("127.0.0.3 403 isol8 network filter: GET http://127.0.0.3/ refused: 127.0.0.3 matches no whitelist rule (/^127\\.0\\.0\\.1$/)");
    // Positive control: the whitelisted host passes the rules; only its loopback address stops it.
    expect(lines[3]).toMatch(
      /^127\.0\.0\.1 403 isol8 network filter: GET http:\/\/127\.0\.0\.1\/ refused: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback address/,
    );
  });

  test("--allow with another --net is refused naming --allow; a rule that does not compile names --deny", async () => {
    const host = await isol8Cli(["run", "--net", "host", "--allow", "^pypi\\.org$", "-e", "print(1)"]);
    expect(host.code).toBe(FAILURE);
    expect(host.stderr).toMatch(/^isol8: --allow: host rules apply to the filtered network: expected --net filtered or no --net, got --net host/);
    const bad = await isol8Cli(["run", "--deny", "(", "-e", "print(1)"]);
    expect(bad.code).toBe(FAILURE);
    expect(bad.stderr).toMatch(/^isol8: --deny: expected a regular expression matching host names, e\.g\. .*, got "\("/);
  });
});

describe("isol8 run: --persistent and --session-id", () => {
  test("--persistent with --host keeps a new server session after the run and prints its id; --session-id continues it", async () => {
    const first = await isol8Cli(["run", "--host", served.url, "--key", KEY, "--persistent", "-r", "bash", "-e", "echo kept > /sandbox/state; echo written"]);
    expect(first).toMatchObject({ stdout: "written\n", code: 0 });
    const id = /the session (cli-[0-9a-f-]{36}) is kept on /.exec(first.stderr)?.[1];
    expect(id).toBeDefined();
    const next = await isol8Cli(["run", "--host", served.url, "--key", KEY, "--session-id", id!, "-r", "bash", "-e", "cat /sandbox/state"]);
    expect(next).toMatchObject({ stdout: "kept\n", stderr: "", code: 0 });
    // Control: without the session, a fresh sandbox has no such file.
    const fresh = await isol8Cli(["run", "--host", served.url, "--key", KEY, "-r", "bash", "-e", "cat /sandbox/state"]);
    expect(fresh.code).toBe(1);
    expect(fresh.stdout).toBe("");
  });

  test("--persistent runs locally (one sandbox for this run)", async () => {
    const result = await isol8Cli(["run", "--persistent", "--setup", "echo one > /sandbox/s", "-e", "print(open('/sandbox/s').read().strip())"]);
    expect(result).toMatchObject({ stdout: "one\n", stderr: "", code: 0 });
  });

  test("--session-id without --host is refused naming --session-id and what to pass", async () => {
    const result = await isol8Cli(["run", "--session-id", "mine", "-e", "print(1)"]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toMatch(/^isol8: --session-id: a named session outlives this process, so it lives on an isol8 server: pass --host <url>/);
  });
});

describe("isol8 run: --code-url and --code-hash", () => {
  const code = "print('from the url', 6 * 7)\n";
  const hash = createHash("sha256").update(code).digest("hex");
  let server: Server;
  let url: string;
  let config: string;
  beforeAll(async () => {
    server = createServer((_req, res) => res.end(code));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hello.py`;
    config = join(dir, "code-url.config.json");
    await writeFile(config, JSON.stringify({ defaults: { codeUrl: { enabled: true, allowHosts: ["127.0.0.1"], allowPrivateAddresses: true } } }));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("the code at --code-url runs when the config enables it and --code-hash matches", async () => {
    const result = await isol8Cli(["run", "--config", config, "--code-url", url, "--code-hash", hash]);
    expect(result).toMatchObject({ stdout: "from the url 42\n", stderr: "", code: 0 });
  });

  test("a wrong --code-hash is refused showing both hashes, and nothing runs", async () => {
    const wrong = "0".repeat(64);
    const result = await isol8Cli(["run", "--config", config, "--code-url", url, "--code-hash", wrong]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toBe(
      `isol8: --code-hash (request.codeHash): the code at ${url} has sha256 ${hash}, expected ${wrong}; nothing was run [ISOL8_ERR_INVALID_REQUEST]\n`,
    );
    expect(result.stdout).toBe("");
  });

  test("without the config's codeUrl option it is refused as disabled", async () => {
    const result = await isol8Cli(["run", "--code-url", url, "--code-hash", hash]);
    expect(result.code).toBe(FAILURE);
    expect(result.stderr).toMatch(/^isol8: --code-url \(request\.codeUrl\): fetching code from a URL is disabled on this engine/);
  });

  test("bad flags name the flag: --code-url without --code-hash, a --code-hash that is not 64 hex digits", async () => {
    const noHash = await isol8Cli(["run", "--code-url", url]);
    expect(noHash.code).toBe(FAILURE);
    expect(noHash.stderr).toMatch(/^isol8: --code-url: needs --code-hash <sha256> \(64 hex digits\)/);
    const short = await isol8Cli(["run", "--code-url", url, "--code-hash", "abc"]);
    expect(short.code).toBe(FAILURE);
    expect(short.stderr).toMatch(/^isol8: --code-hash: expected a SHA-256 as 64 hex digits \(e\.g\. from sha256sum\), got "abc"/);
  });
});
