import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { STAGE_POLICY, type Isol8Plugin } from "@isol8/core";
import { KEY_B, serverContainers, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer(
    {
      policy: {
        maxMemory: "512m",
        maxCpu: 1,
        maxPids: 64,
        maxTimeoutMs: 20_000,
        maxOutputSize: "1m",
        networks: ["none"],
        seccompModes: [],
        runtimes: ["python", "bash"],
      },
      limits: { bodyLimit: "64k", maxConcurrent: 2, maxQueue: 8 },
    },
    { timeoutMs: 15_000 },
  );
});
afterAll(async () => {
  await t.close();
  expect(await serverContainers(t.server.id)).toEqual([]);
});

const py = (code: string) => ({ request: { runtime: "python", code } });

describe("auth", () => {
  test("/health and /openapi.json need no key; everything else does", async () => {
    const health = await t.call("/health", { key: null });
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", ready: true });
    expect((await t.call("/openapi.json", { key: null })).status).toBe(200);
    for (const [method, path] of [
      ["POST", "/execute"],
      ["POST", "/execute/stream"],
      ["GET", "/sessions"],
      ["GET", "/metrics"],
      ["POST", "/cleanup"],
      ["DELETE", "/session/x"],
      ["GET", "/file?sessionId=a&path=b"],
    ]) {
      const response = await t.call(path!, { method, key: null });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_UNAUTHORIZED" });
    }
  });

  test("401 for a malformed header, 403 for a wrong key (same body whatever the wrong key), a case-insensitive scheme works", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"]) {
      expect((await fetch(`${t.url}/sessions`, { headers: { authorization } })).status, authorization).toBe(401);
    }
    const bodies = new Set<string>();
    for (const key of ["wrong", "tenant-a-key-012345678", "tenant-a-key-01234567890", "x".repeat(5000)]) {
      const response = await t.call("/sessions", { key });
      expect(response.status).toBe(403);
      const { requestId: _id, ...rest } = (await response.json()) as Record<string, unknown>;
      bodies.add(JSON.stringify(rest));
    }
    expect(bodies.size).toBe(1);
    expect((await fetch(`${t.url}/sessions`, { headers: { authorization: `bEaReR ${KEY_B}` } })).status).toBe(200);
    // A key in the query string is never looked at.
    expect((await fetch(`${t.url}/sessions?apiKey=${KEY_B}&token=${KEY_B}`)).status).toBe(401);
  });
});

describe("bad requests get 400 with the path of the bad field; nothing crashes", () => {
  test("malformed JSON", async () => {
    for (const body of ["{", '{"request": }', "not json", ""]) {
      const response = await t.call("/execute", { method: "POST", body, headers: { "content-type": "application/json" } });
      expect(response.status, body).toBe(400);
      const json = (await response.json()) as { code: string; error: string; field: string };
      expect(json).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "(body)" });
      expect(json.error).toMatch(/Malformed JSON/);
      expect(json.error).not.toContain("not json");
    }
  });

  test("schema errors name the field", async () => {
    const cases: [unknown, string, string][] = [
      [{ request: { runtime: "python", code: "" } }, "request.code", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python" } }, "request.code", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python", code: "1", timeoutMs: -1 } }, "request.timeoutMs", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python", code: "1", timeoutMs: "soon" } }, "request.timeoutMs", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python", code: "1", colour: "red" } }, "request.colour", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python", code: "1", files: { "a.bin": { base64: "%%%" } } } }, "request.files.a.bin.base64", "ISOL8_ERR_INVALID_REQUEST"],
      [{ request: { runtime: "python", code: "1" }, options: { image: "alpine" } }, "options.image", "ISOL8_ERR_INVALID_OPTIONS"],
      [{ request: { runtime: "python", code: "1" }, options: { readonlyRootFs: false } }, "options.readonlyRootFs", "ISOL8_ERR_INVALID_OPTIONS"],
      [{ request: { runtime: "python", code: "1" }, options: { pidsLimit: 0 } }, "options.pidsLimit", "ISOL8_ERR_INVALID_OPTIONS"],
      [{ request: { runtime: "python", code: "1" }, options: { memoryLimit: "lots" } }, "options.memoryLimit", "ISOL8_ERR_INVALID_OPTIONS"],
      [
        { request: { runtime: "python", code: "1" }, options: { security: { seccompProfile: {} } } },
        "options.security.seccompProfile",
        "ISOL8_ERR_INVALID_OPTIONS",
      ],
      [{ request: { runtime: "python", code: "1" }, sessionId: "../x" }, "sessionId", "ISOL8_ERR_INVALID_REQUEST"],
      ['{"__proto__":{"admin":true},"request":{"runtime":"python","code":"1"}}', "__proto__", "ISOL8_ERR_INVALID_REQUEST"],
      [[1, 2], "(root)", "ISOL8_ERR_INVALID_REQUEST"],
    ];
    for (const [body, field, code] of cases) {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      const response = await t.call("/execute", { method: "POST", body: text, headers: { "content-type": "application/json" } });
      expect(response.status, text).toBe(400);
      const json = (await response.json()) as { field: string; code: string; error: string };
      expect(json.field, text).toBe(field);
      expect(json.code, text).toBe(code);
      expect(json.error).toContain(field === "(root)" ? "(root)" : field);
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  test("a non-JSON content type is 415; an unknown route is a JSON 404", async () => {
    const response = await t.call("/execute", { method: "POST", body: "x=1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(response.status).toBe(415);
    const missing = await t.call("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "ISOL8_ERR_NOT_FOUND" });
  });
});

describe("body size limit", () => {
  test("413 for a body over the limit, with Content-Length or chunked", async () => {
    const big = JSON.stringify(py(`print(${JSON.stringify("x".repeat(70 * 1024))})`));
    const response = await t.call("/execute", { method: "POST", body: big, headers: { "content-type": "application/json" } });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_BODY_TOO_LARGE" });

    // Chunked (no Content-Length): the server counts as it reads and stops at the limit.
    const url = new URL(`${t.url}/execute`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: { authorization: `Bearer tenant-a-key-0123456789`, "content-type": "application/json", "transfer-encoding": "chunked" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("x".repeat(10 * 1024));
      req.end();
    });
    expect(status).toBe(413);
  });

  test("a body under the limit is served", async () => {
    const response = await t.call("/execute", { json: py(`print(len(${JSON.stringify("x".repeat(30 * 1024))}))`) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { stdout: string }).stdout).toBe(`${30 * 1024}\n`);
  });
});

describe("policy ceilings", () => {
  test("a request over a ceiling is refused with 400 naming the field (nothing runs)", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...py("1"), options: { memoryLimit: "1g" } }, "options.memoryLimit"],
      [{ ...py("1"), options: { cpuLimit: 2 } }, "options.cpuLimit"],
      [{ ...py("1"), options: { pidsLimit: 1000 } }, "options.pidsLimit"],
      [{ ...py("1"), options: { timeoutMs: 60_000 } }, "options.timeoutMs"],
      [{ request: { runtime: "python", code: "1", timeoutMs: 60_000 } }, "request.timeoutMs"],
      [{ ...py("1"), options: { maxOutputSize: "10m" } }, "options.maxOutputSize"],
      [{ ...py("1"), options: { network: "host" } }, "options.network"],
      [{ ...py("1"), options: { security: { seccomp: "unconfined" } } }, "options.security.seccomp"],
    ];
    for (const [body, field] of cases) {
      const response = await t.call("/execute", { json: body });
      expect(response.status, field).toBe(400);
      const json = (await response.json()) as { field: string; code: string; error: string };
      expect(json).toMatchObject({ field, code: "ISOL8_ERR_POLICY" });
      expect(json.error).toMatch(/over this server's limit|not allowed/);
    }
  });

  test("asking for less is honoured in the container itself", async () => {
    const response = await t.call("/execute", {
      json: {
        request: {
          runtime: "bash",
          code: "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        },
        options: { memoryLimit: "128m", pidsLimit: 32 },
      },
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as { stdout: string; exitCode: number };
    expect(result.stdout.trim().split("\n")).toEqual([String(128 * 1024 * 1024), "32"]);
  });

  test("the output ceiling and a lower output cap apply", async () => {
    const response = await t.call("/execute", { json: { ...py("print('y' * 100000)"), options: { maxOutputSize: "1k" } } });
    const result = (await response.json()) as { stdout: string; truncated: boolean };
    expect(result.truncated).toBe(true);
    expect(result.stdout.length).toBeLessThanOrEqual(1024 + 200);
  });
});

describe("observability", () => {
  test("each request is one JSON log line with id, tenant, runtime, status and duration; X-Request-Id is echoed", async () => {
    const response = await t.call("/execute", { json: py("print(2)"), headers: { "x-request-id": "trace-123" } });
    expect(response.headers.get("x-request-id")).toBe("trace-123");
    const line = t.logs.find((l) => l.id === "trace-123");
    expect(line).toMatchObject({ msg: "request", method: "POST", path: "/execute", tenant: "alpha", runtime: "python", status: 200 });
    expect(typeof line!.durationMs).toBe("number");
    expect(JSON.stringify(t.logs)).not.toContain("tenant-a-key");
  });

  test("/metrics is Prometheus text", async () => {
    const response = await t.call("/metrics");
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toMatch(/isol8_http_requests_total\{method="POST",route="\/execute",status="200"\} \d+/);
    expect(text).toMatch(/isol8_executions_total\{runtime="python",outcome="ok"\} \d+/);
    expect(text).toMatch(/isol8_rejected_total\{reason="body_too_large"\} \d+/);
    expect(text).toContain("# TYPE isol8_queue_length gauge");
  });

  test("/openapi.json describes the request schema the server validates with", async () => {
    const doc = (await (await t.call("/openapi.json", { key: null })).json()) as {
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.components.schemas.ClientOptions!.properties!)).toEqual(expect.arrayContaining(["memoryLimit", "network", "security"]));
    expect(Object.keys(doc.components.schemas.ExecutionRequest!.properties!)).toEqual(expect.arrayContaining(["code", "runtime", "files"]));
  });
});

describe("admission by tenant", () => {
  test("every execution carries its tenant in metadata (a client cannot forge it), so a beforeAcquire plugin can refuse per tenant", async () => {
    const seen: Record<string, string>[] = [];
    const onlyAlpha: Isol8Plugin = {
      name: "test:only-alpha",
      apply(kit) {
        kit.hooks.beforeAcquire.tap({ name: "test:only-alpha", stage: STAGE_POLICY }, (request) => {
          seen.push({ ...request.metadata });
          return request.metadata["isol8.tenant"] === "alpha" ? undefined : { reason: "tenant not admitted" };
        });
      },
    };
    const s = await startTestServer({}, {}, [onlyAlpha]);
    try {
      const forged = { request: { runtime: "python", code: "print(1)", metadata: { "isol8.tenant": "alpha", job: "j1" } } };
      const denied = await s.call("/execute", { key: KEY_B, json: forged });
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ code: "ISOL8_ERR_ADMISSION_DENIED" });
      const allowed = await s.call("/execute", { json: forged, headers: { "x-request-id": "adm-1" } });
      expect(allowed.status).toBe(200);
      expect(seen).toEqual([
        { "isol8.tenant": "beta", job: "j1", "isol8.request-id": expect.any(String) },
        { "isol8.tenant": "alpha", job: "j1", "isol8.request-id": "adm-1" },
      ]);
    } finally {
      await s.close();
    }
  });
});
