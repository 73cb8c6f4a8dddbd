/**
 * Secrets are masked in every text a caller, a log or an audit sink sees, not only stdout and
 * stderr: network logs (a secret in a host name comes back lowercased from the proxy, so the
 * match ignores case), audit records, the engine's log lines and error messages.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8, Isol8Error, STAGE_DEFAULT, STAGE_OBSERVE, defaultPlugins, type AuditRecord, type Isol8Plugin, type Logger } from "isol8";
import { networkFilter } from "@isol8/plugin-network-filter";
import { serve, type Served } from "../../packages/server/test/serve-process.js";
import { isol8Containers } from "../helpers.js";

/** Mixed case on purpose: the proxy lowercases host names. */
const SECRET = "MixedCaseSecret42";
const ANY_CASE = new RegExp(SECRET, "i");

/** A logger that keeps every line (message and fields) as JSON. */
function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push(JSON.stringify({ level, message, fields }));
  return { lines, logger: { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") } };
}

/** A test plugin: an audit sink named "capture" that keeps the records. */
function captureAudit(records: AuditRecord[]): Isol8Plugin {
  return {
    name: "test:capture-audit",
    apply(kit) {
      kit.auditSinks.register("capture", { write: async (record) => void records.push(record) }, "test:capture-audit");
    },
  };
}

/** Python: a request whose host and path carry the secret; the whitelist refuses it at the proxy. */
const REQUEST_WITH_SECRET = [
  "import os, urllib.request, urllib.error",
  "try:",
  "    urllib.request.urlopen(f\"http://{os.environ['TOKEN']}.invalid/{os.environ['TOKEN']}/p\", timeout=15)",
  "except urllib.error.HTTPError as e:",
  "    print('status', e.code)",
].join("\n");

describe("through the filtered network", () => {
  const records: AuditRecord[] = [];
  const { logger, lines } = capturingLogger();
  let engine: DockerIsol8;
  beforeAll(async () => {
    engine = new DockerIsol8(
      {
        network: "filtered",
        networkFilter: { whitelist: ["allowed\\.invalid"] },
        logNetwork: true,
        secrets: { TOKEN: SECRET },
        audit: { sinks: ["capture"] },
        timeoutMs: 60_000,
      },
      { plugins: defaultPlugins(networkFilter(), captureAudit(records)), logger },
    );
    await engine.start();
  }, 300_000);
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a secret in a request's host (any case) and path is masked in result.networkLogs, the audit record's networkLogs and securityEvents, and the log lines", async () => {
    // The request is refused by the whitelist, so it never leaves the proxy (no outside host is contacted).
    const result = await engine.execute({ runtime: "python", code: REQUEST_WITH_SECRET });
    expect(result.stdout).toBe("status 403\n");

    // Positive control: the request is in the log, blocked, with its reason.
    expect(result.networkLogs).toHaveLength(1);
    const entry = result.networkLogs![0]!;
    expect([entry.method, entry.action]).toEqual(["GET", "BLOCK"]);
    // The proxy lowercased the host: masked all the same.
    expect(entry.host).toBe("***.invalid");
    expect(entry.path).toBe("/***/p");
    expect(entry.reason).toMatch(/^\*\*\*\.invalid matches no whitelist rule/);
    expect(JSON.stringify(result.networkLogs)).not.toMatch(ANY_CASE);

    // The audit record: its network log and its security event.
    await expect.poll(() => records.length).toBe(1);
    const record = records[0]!;
    expect(record.networkLogs?.map((e) => [e.host, e.path])).toEqual([["***.invalid", "/***/p"]]);
    expect(record.networkLogs![0]!.reason).toMatch(/^\*\*\*\.invalid matches no whitelist rule/);
    const blocked = record.securityEvents.filter((e) => e.type === "network-blocked");
    expect(blocked).toHaveLength(1);
    expect(blocked[0]!.detail).toMatch(/^GET \*\*\*\.invalid: \*\*\*\.invalid matches no whitelist rule/);
    expect(JSON.stringify(record)).not.toMatch(ANY_CASE);

    expect(lines.join("\n")).not.toMatch(ANY_CASE);
  });
});

describe("engine log lines and error messages", () => {
  const { logger, lines } = capturingLogger();
  let engine: DockerIsol8;
  /** Plugins that quote the secret in their errors (a real plugin may quote a value it was given). */
  const quoting: Isol8Plugin = {
    name: "test:quotes-secrets",
    apply(kit) {
      kit.hooks.beforeExec.tapPromise({ name: "test:quotes-secrets", stage: STAGE_DEFAULT }, async (request, ctx) => {
        if (request.metadata?.refuse === "yes") throw new Error(`refused: the token ${ctx.options.secrets.TOKEN} is not allowed`);
        return request;
      });
      kit.hooks.afterExec.tapPromise({ name: "test:quotes-secrets", stage: STAGE_OBSERVE }, async (_result, ctx) => {
        if (ctx.request?.metadata?.failAfter === "yes") throw new Error(`metrics could not tag ${ctx.options.secrets.TOKEN}`);
      });
    },
  };
  beforeAll(async () => {
    engine = new DockerIsol8({ secrets: { TOKEN: SECRET }, timeoutMs: 60_000 }, { plugins: defaultPlugins(quoting), logger });
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a log line the engine writes about a failing tap masks the secret", async () => {
    const result = await engine.execute({ runtime: "bash", code: "echo ran", metadata: { failAfter: "yes" } });
    expect(result.stdout).toBe("ran\n");
    // Positive control: the line was written (with the error's text, masked).
    await expect.poll(() => lines.filter((l) => l.includes("an afterExec tap failed")).length).toBe(1);
    const line = lines.find((l) => l.includes("an afterExec tap failed"))!;
    expect(line).toContain("metrics could not tag ***");
    expect(lines.join("\n")).not.toMatch(ANY_CASE);
  });

  test("execute() rejects with the error's message and stack masked, the plugin's own error kept as the named cause", async () => {
    const error = await engine.execute({ runtime: "bash", code: "echo never", metadata: { refuse: "yes" } }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error).toBeInstanceOf(Error);
    // A tap's untyped error is named: the plugin and the hook (the kit's PluginError), its own error as the cause.
    expect(Isol8Error.isInstance(error) && error.code).toBe("ISOL8_ERR_PLUGIN");
    expect(error!.message).toBe("Plugin test:quotes-secrets failed in hook beforeExec: refused: the token *** is not allowed");
    expect(String(error!.stack)).not.toMatch(ANY_CASE);
    const cause = error!.cause as Error;
    expect(Isol8Error.isInstance(cause)).toBe(false); // the plugin's own error: masked, not replaced
    expect(cause.message).toBe("refused: the token *** is not allowed");
    expect(String(cause.stack)).not.toMatch(ANY_CASE);
  });
});

describe("through a real isol8 serve", () => {
  const KEY = "secret-fields-key-0123456789";
  let dir: string | undefined;
  let served: Served;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-secret-fields-"));
    served = await serve(dir, KEY, {
      defaults: {
        network: "filtered",
        networkFilter: { whitelist: ["allowed\\.invalid"] },
        logNetwork: true,
        secrets: { TOKEN: SECRET },
        audit: { sinks: ["stdout"] },
        timeoutMs: 60_000,
      },
    });
  }, 300_000);
  afterAll(async () => {
    served.child.kill("SIGTERM");
    expect((await served.exited).code).toBe(0);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  test("POST /execute: the response's networkLogs and the audit record the server writes mask the secret (any case)", async () => {
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ request: { runtime: "python", code: REQUEST_WITH_SECRET } }),
    });
    expect(response.status).toBe(200);
    const body = await response.text();
    const result = JSON.parse(body) as { stdout: string; networkLogs: Array<{ host: string; path: string; action: string; reason: string }> };
    expect(result.stdout).toBe("status 403\n");
    // Positive control: the request is in the response's log, blocked.
    expect(result.networkLogs.map((e) => [e.host, e.path, e.action])).toEqual([["***.invalid", "/***/p", "BLOCK"]]);
    expect(body).not.toMatch(ANY_CASE);
    // The stdout audit sink's record (a line of the server's stdout) for this execution.
    await expect.poll(() => served.lines.filter((line) => Array.isArray(line.securityEvents)).length, { timeout: 30_000 }).toBe(1);
    const record = served.lines.find((line) => Array.isArray(line.securityEvents))!;
    expect(JSON.stringify(record.securityEvents)).toContain("network-blocked");
    expect(JSON.stringify(served.lines)).not.toMatch(ANY_CASE);
  });
});
