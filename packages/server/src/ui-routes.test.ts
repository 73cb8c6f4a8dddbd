import { describe, expect, test } from "vitest";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { createServer } from "./server.js";

const KEY = "ui-routes-key-0123456789";
const ADMIN_KEY = "ui-routes-admin-0123456789";
const server = (extra: Record<string, unknown> = {}) =>
  createServer({
    plugins: [bashRuntime()],
    config: {
      keys: [
        { key: KEY, tenant: "t" },
        { key: ADMIN_KEY, tenant: "ops" },
      ],
      ...extra,
    },
    log: () => undefined,
  });
const get = (s: ReturnType<typeof server>, path: string, key?: string) =>
  s.app.fetch(new Request(`http://127.0.0.1${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} }));

const UI_PATHS = ["/ui", "/ui/", "/ui/app.js", "/ui/app.css", "/ui/frame.html"];

describe("the web page (server.ui)", () => {
  test("off by default: no /ui route and no static file, with a key (404) or without (401)", async () => {
    const off = server();
    expect(off.config.ui).toBe(false);
    for (const path of UI_PATHS) {
      const withKey = await get(off, path, KEY);
      expect(withKey.status, path).toBe(404);
      expect(await withKey.json(), path).toMatchObject({ code: "ISOL8_ERR_NOT_FOUND" });
      expect((await get(off, path)).status, path).toBe(401);
    }
    expect(UI_PATHS).toHaveLength(5);
  });

  test("on: the page and its files without a key, under a strict CSP (no inline script, never framed)", async () => {
    const on = server({ ui: true });
    const page = await get(on, "/ui/");
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await page.text();
    expect(html).toContain(`<meta name="isol8-style-nonce" content="${nonce}" />`);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    // A fresh nonce for each response.
    const again = (await get(on, "/ui/")).headers.get("content-security-policy")!;
    expect(again).not.toBe(csp);

    const script = await get(on, "/ui/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await get(on, "/ui/app.css")).status).toBe(200);
    expect((await get(on, "/ui")).headers.get("location")).toBe("/ui/");
    // Nothing else under /ui, and the API still wants its key.
    expect((await get(on, "/ui/package.json")).status).toBe(404);
    // A dot-dot path is the URL's own path once normalised: outside /ui, it needs the key.
    expect((await get(on, "/ui/../package.json")).status).toBe(401);
    expect((await get(on, "/ui/index.html")).status).toBe(404);
    expect((await get(on, "/runtimes")).status).toBe(401);
  });

  test("on: the HTML output frame is sandboxed by its own CSP (scripts, opaque origin), framable by the page only", async () => {
    const frame = await get(server({ ui: true }), "/ui/frame.html");
    expect(frame.status).toBe(200);
    const csp = frame.headers.get("content-security-policy")!;
    expect(csp).toMatch(/^sandbox allow-scripts;/);
    expect(csp).not.toContain("allow-same-origin");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'self'");
    expect(frame.headers.get("x-frame-options")).toBe("SAMEORIGIN");
  });
});

describe("GET /admin/overview (server.adminTenants)", () => {
  test("no route without admin tenants", async () => {
    const response = await get(server(), "/admin/overview", ADMIN_KEY);
    expect(response.status).toBe(404);
  });

  test("403 for a tenant that is not an admin; the overview for one that is, with the failure listed", async () => {
    const s = server({ adminTenants: ["ops"] });
    const refused = await get(s, "/admin/overview", KEY);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "ISOL8_ERR_FORBIDDEN" });
    expect((await get(s, "/runtimes", "not-a-known-key-000")).status).toBe(403);
    const response = await get(s, "/admin/overview", ADMIN_KEY);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { sessions: unknown[]; queue: unknown; executionsTotal: number; failures: Record<string, unknown>[] };
    expect(body.sessions).toEqual([]);
    expect(body.queue).toEqual({ running: 0, queued: 0, maxConcurrent: 4, maxQueue: 32 });
    expect(body.executionsTotal).toBe(0);
    expect(body.failures).toHaveLength(2);
    expect(body.failures[0]).toMatchObject({
      tenant: null,
      method: "GET",
      path: "/runtimes",
      status: 403,
      code: "ISOL8_ERR_FORBIDDEN",
      message: "Invalid API key",
    });
    expect(body.failures[1]).toMatchObject({ tenant: "t", path: "/admin/overview", status: 403, code: "ISOL8_ERR_FORBIDDEN" });
  });

  test("POST /admin/drain: 403 for a tenant that is not an admin; for an admin, GET /ready says draining from then on", async () => {
    const s = server({ adminTenants: ["ops"] });
    const post = (key: string) => s.app.fetch(new Request("http://127.0.0.1/admin/drain", { method: "POST", headers: { authorization: `Bearer ${key}` } }));
    const readyReason = async () => ((await (await get(s, "/ready")).json()) as { reason?: string }).reason;
    // Not started here, so not ready anyway: the reason is what changes.
    expect(await readyReason()).toBe("starting");
    const refused = await post(KEY);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "ISOL8_ERR_FORBIDDEN" });
    expect(await readyReason()).toBe("starting");
    const drained = await post(ADMIN_KEY);
    expect(drained.status).toBe(200);
    expect(await drained.json()).toEqual({ ok: true, draining: true });
    expect(await readyReason()).toBe("draining");
    expect(((await (await get(s, "/admin/overview", ADMIN_KEY)).json()) as { draining: boolean }).draining).toBe(true);
  });
});
