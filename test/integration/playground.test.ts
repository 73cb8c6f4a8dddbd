import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { serverContainers } from "../../packages/server/test/helpers.js";
import { CLI, REPO_ROOT } from "../../packages/server/test/serve-process.js";

// The web page of `isol8 serve --ui` in a real browser: Debian's Chromium driven by playwright-core,
// against the real server (the built CLI) on 127.0.0.1. Screenshots go to docs/.

const USER_KEY = "playground-user-key-0123456789";
const ADMIN_KEY = "playground-admin-key-0123456789";
const CHROMIUM = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].find((path) => existsSync(path));
const DOCS = join(REPO_ROOT, "docs");
// This file is type-checked without the DOM's types: what a page function uses is typed here.
interface ImageLike {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
}
const COLOR_OF = (element: unknown) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(element).color;

let dir: string;
let server: ChildProcess;
let exited: Promise<number | null>;
let url: string;
let serverId: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

/** `isol8 serve --ui` on a free loopback port; resolves with its URL once it logs "listening". */
async function serveUi(): Promise<string> {
  const config = join(dir, "isol8.config.json");
  // The executor launcher, whatever ISOL8_LAUNCHER says: notebook contexts and interactive stdin need it.
  const file = { defaults: { launcher: "executor" }, server: { keys: [{ key: ADMIN_KEY, tenant: "ops" }], adminTenants: ["ops"], requestLog: true } };
  await writeFile(config, JSON.stringify(file));
  server = spawn(process.execPath, [CLI, "serve", "--ui", "--port", "0", "--config", config], {
    cwd: REPO_ROOT,
    env: { ...process.env, ISOL8_API_KEY: USER_KEY },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  server.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  exited = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
  return new Promise<string>((resolve, reject) => {
    createInterface({ input: server.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { msg?: string; url?: string; serverId?: string };
      if (entry.msg !== "listening") return;
      serverId = entry.serverId!;
      resolve(entry.url!);
    });
    void exited.then(() => reject(new Error(`isol8 serve --ui exited before listening: ${stderr}`)));
  });
}

const api = (path: string, init: RequestInit & { key?: string } = {}) =>
  fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${init.key ?? USER_KEY}`, "content-type": "application/json", ...init.headers } });

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${url}/ui/`);
  return page;
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByTestId("api-key").fill(key);
  await page.getByTestId("sign-in-button").click();
  await expect.poll(() => page.getByTestId("tab-playground").count(), { timeout: 30_000 }).toBe(1);
}

/** Replaces an editor's text (insertText: one input, so CodeMirror adds no indentation or brackets). */
async function setCode(page: Page, editor: ReturnType<Page["locator"]>, code: string): Promise<void> {
  await editor.locator(".cm-content").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(code);
  await expect.poll(() => editor.locator(".cm-content").innerText()).toContain(code.split("\n")[0]!);
}

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Debian's Chromium is missing: run 'bash scripts/bootstrap.sh' (it installs the chromium package)");
  dir = await mkdtemp(join(tmpdir(), "isol8-playground-"));
  url = await serveUi();
  // --no-sandbox: Chromium's own sandbox refuses to start as root (CI runs as root).
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}, 120_000);

afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  if (url) for (const key of [USER_KEY, ADMIN_KEY]) expect((await api("/cleanup", { method: "POST", key })).status).toBe(200);
  server?.kill("SIGTERM");
  expect(await exited).toBe(0);
  // Nothing the server made outlives it (the sessions the page and the API made).
  if (serverId) expect(await serverContainers(serverId)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
}, 120_000);

describe("playground", () => {
  test("signs in with an API key kept in the tab's session storage only (no URL, cookie or local storage); a user's key gets the operator view's refusal", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    expect(await page.evaluate('sessionStorage.getItem("isol8.apiKey")')).toBe(USER_KEY);
    expect(await page.evaluate("localStorage.length")).toBe(0);
    expect(await page.evaluate("document.cookie")).toBe("");
    expect(page.url()).toBe(`${url}/ui/`);
    // A user's key is no admin's: the operator view says so, with the server's refusal.
    await page.getByTestId("tab-operator").click();
    const refusal = page.getByTestId("operator-error");
    await expect.poll(() => refusal.count(), { timeout: 30_000 }).toBe(1);
    expect(await refusal.innerText()).toBe(
      "The operator view needs the key of an admin tenant (server.adminTenants): 403 ISOL8_ERR_FORBIDDEN: GET /admin/overview is for admin tenants (server.adminTenants); tenant default is not one",
    );
  });

  test("a wrong key shows a clear error (the server's 403 and its code) and is not kept", async () => {
    const page = await newPage();
    await page.getByTestId("api-key").fill("not-a-key-of-this-server");
    await page.getByTestId("sign-in-button").click();
    const error = page.getByTestId("sign-in-error");
    await expect.poll(() => error.count(), { timeout: 30_000 }).toBe(1);
    expect(await error.innerText()).toBe("The server refused this API key (403 ISOL8_ERR_FORBIDDEN: Invalid API key)");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
  });

  test("runs python and shows 42, then the exit code (screenshot docs/playground.png)", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    // The editor highlights the sample's syntax (CodeMirror's styles load under the CSP nonce).
    const content = page.locator(".playground .cm-content");
    const stringToken = content.locator("span", { hasText: '"Hello from isol8"' });
    expect(await stringToken.evaluate(COLOR_OF)).not.toBe(await content.evaluate(COLOR_OF));
    await page.getByTestId("run").click();
    await expect.poll(() => page.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect(await page.getByTestId("output").innerText()).toBe("Hello from isol8\n42\n");
    expect(await page.getByTestId("exit-code").innerText()).toBe("0");
    await page.screenshot({ path: join(DOCS, "playground.png") });
  });

  test("streams: the first line of a program printing one a second shows before the last is printed; stderr apart", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    const code = 'import sys, time\nfor i in range(1, 5):\n    print(f"line {i}", flush=True)\n    time.sleep(1)\nprint("done", file=sys.stderr)';
    await setCode(page, page.locator(".playground .editor"), code);
    await page.getByTestId("run").click();
    const output = page.getByTestId("output");
    await output.locator("span.stdout", { hasText: "line 1" }).waitFor({ timeout: 90_000 });
    expect(await output.innerText()).not.toContain("line 4");
    await expect.poll(() => page.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect((await output.locator("span.stdout").allInnerTexts()).join("")).toBe("line 1\nline 2\nline 3\nline 4\n");
    expect((await output.locator("span.stderr").allInnerTexts()).join("")).toBe("done\n");
  });

  test("the stdin box feeds the program", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    await setCode(page, page.locator(".playground .editor"), "print(input().upper())");
    await page.getByTestId("stdin").fill("from the page");
    await page.getByTestId("run").click();
    await expect.poll(() => page.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect(await page.getByTestId("output").innerText()).toBe("FROM THE PAGE\n");
  });

  test("interactive: the program's input() is answered from the page over the WebSocket", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    await setCode(page, page.locator(".playground .editor"), 'name = input("name? ")\nprint("hello " + name)');
    await page.getByTestId("interactive").check();
    await page.getByTestId("run").click();
    await page.getByTestId("output").locator("span.stdout", { hasText: "name?" }).waitFor({ timeout: 90_000 });
    expect(await page.getByTestId("exit-code").count()).toBe(0);
    await page.getByTestId("stdin-line").fill("ada");
    await page.getByTestId("stdin-line").press("Enter");
    await expect.poll(() => page.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect(await page.getByTestId("exit-code").innerText()).toBe("0");
    expect(await page.getByTestId("output").innerText()).toBe("name? ada\nhello ada\n");
  });

  test("Stop ends a run: the page says Stopped and the server counts a cancelled execution", async () => {
    const cancelled = async () => {
      const metrics = await (await api("/metrics")).text();
      return Number(/isol8_executions_total\{runtime="python",outcome="cancelled"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const before = await cancelled();
    const page = await newPage();
    await signIn(page, USER_KEY);
    await setCode(page, page.locator(".playground .editor"), 'import time\nprint("started", flush=True)\ntime.sleep(600)');
    await page.getByTestId("run").click();
    await page.getByTestId("output").locator("span", { hasText: "started" }).waitFor({ timeout: 90_000 });
    await page.getByTestId("stop").click();
    await expect.poll(() => page.getByTestId("status").innerText()).toBe("Stopped");
    expect(await page.getByTestId("exit-code").count()).toBe(0);
    expect(await page.getByTestId("run").isEnabled()).toBe(true);
    await expect.poll(cancelled, { timeout: 60_000 }).toBe(before + 1);
  });
});

describe("notebook", () => {
  /** A PNG the python runtime makes itself (_repr_png_): 320×240, as a figure of that size would be. */
  const PNG_CELL = [
    "import struct, zlib",
    "class Figure:",
    "    def __init__(self, w, h): self.w, self.h = w, h",
    "    def _repr_png_(self):",
    '        rows = b"".join(b"\\x00" + bytes([200, 60, 40]) * self.w for _ in range(self.h))',
    "        def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))",
    "        header = struct.pack('>IIBBBBB', self.w, self.h, 8, 2, 0, 0, 0)",
    "        return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')",
    'print("drawing")',
    "display(Figure(320, 240))",
    "display({'rows': 240, 'cols': 320}, mime='application/json')",
  ].join("\n");

  /** HTML whose script tries to read the key and the page; it reports in its own frame, and posts only what it managed to read. */
  const HOSTILE_HTML = `<p id="report">script did not run</p>
<script>
  const seen = {};
  const probe = (name, read) => {
    try { const value = String(read()); seen[name] = "read"; parent.postMessage({ stolen: name, value }, "*"); }
    catch (error) { seen[name] = "denied:" + error.name; }
  };
  probe("localStorage", () => localStorage.length);
  probe("sessionStorage", () => JSON.stringify(Object.entries(sessionStorage)));
  probe("parentSessionStorage", () => parent.sessionStorage.getItem("isol8.apiKey"));
  probe("parentDocument", () => parent.document.body.innerHTML);
  probe("cookie", () => document.cookie);
  probe("parentWrite", () => parent.document.body.insertAdjacentHTML("beforeend", '<p id="pwned">pwned</p>'));
  parent.postMessage({ channel: "open" }, "*");
  document.getElementById("report").textContent = JSON.stringify(seen);
</script>`;

  test("a cell's display of a PNG shows an <img> of its size, JSON collapsible, an error's traceback (screenshot docs/notebook.png)", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    await page.getByTestId("tab-notebook").click();
    await page.getByTestId("nb-start").click();
    await expect.poll(() => page.getByTestId("nb-context").count(), { timeout: 90_000 }).toBe(1);
    const first = page.getByTestId("cell-0");
    await setCode(page, first.locator(".editor"), PNG_CELL);
    await first.getByTestId("cell-run").click();
    await expect.poll(() => first.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect(await first.getByTestId("cell-output-0").innerText()).toBe("drawing\n");
    const image = first.locator("img.rich-image");
    expect(await image.count()).toBe(1);
    await expect.poll(() => image.evaluate((img) => (img as unknown as ImageLike).complete && (img as unknown as ImageLike).naturalWidth)).toBe(320);
    expect(await image.evaluate((img) => (img as unknown as ImageLike).naturalHeight)).toBe(240);
    const json = first.locator("details.json-output");
    expect(await json.locator("pre").innerText()).toBe('{\n  "rows": 240,\n  "cols": 320\n}');
    await json.locator("summary").click();
    expect(await json.evaluate((details) => (details as unknown as { open: boolean }).open)).toBe(false);

    await page.getByTestId("nb-add").click();
    const second = page.getByTestId("cell-1");
    await setCode(page, second.locator(".editor"), "w = Figure(1, 1).w\n1 / (w - 1)");
    await second.getByTestId("cell-run").click();
    await expect.poll(() => second.getByTestId("traceback").count(), { timeout: 90_000 }).toBe(1);
    expect(await second.getByTestId("traceback").innerText()).toMatch(/^ZeroDivisionError: division by zero\n[\s\S]*Traceback/);
    await page.screenshot({ path: join(DOCS, "notebook.png"), fullPage: true });
  });

  test("upload to the session's /sandbox, a cell reads it, download it back; restart drops the context's state; delete removes the context; leaving the page ends the session", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    await page.getByTestId("tab-notebook").click();
    await page.getByTestId("nb-start").click();
    await expect.poll(() => page.getByTestId("nb-context").count(), { timeout: 90_000 }).toBe(1);
    const sessionId = /session (\S+)/.exec(await page.locator(".notebook .filename").innerText())![1]!;
    const cell = page.getByTestId("cell-0");
    const run = async (code: string) => {
      await setCode(page, cell.locator(".editor"), code);
      await cell.getByTestId("cell-run").click();
      await expect.poll(() => cell.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
      return cell.getByTestId("cell-output-0").innerText();
    };

    await page.getByTestId("nb-upload").setInputFiles({ name: "data.txt", mimeType: "text/plain", buffer: Buffer.from("uploaded from the page") });
    await expect.poll(() => page.getByTestId("nb-status").innerText(), { timeout: 60_000 }).toBe("Upload: done");
    expect(await run('x = 41\nprint(open("/sandbox/data.txt").read())')).toBe("uploaded from the page\n");
    expect(await run("x += 1\nprint(x)")).toBe("42\n");

    await page.getByTestId("nb-download-path").fill("/sandbox/data.txt");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("nb-download").click()]);
    expect(download.suggestedFilename()).toBe("data.txt");
    const chunks: Buffer[] = [];
    for await (const chunk of (await download.createReadStream()) as AsyncIterable<Buffer>) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe("uploaded from the page");

    await page.getByTestId("nb-restart").click();
    await expect.poll(() => page.getByTestId("nb-status").innerText(), { timeout: 60_000 }).toBe("Restart: done");
    expect(await run('print("x" in globals())')).toBe("False\n");

    await page.getByTestId("nb-delete").click();
    await expect.poll(() => page.getByTestId("nb-start").count(), { timeout: 60_000 }).toBe(1);
    const listed = await api(`/session/${sessionId}/contexts`);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ contexts: [] });

    // Leaving the page ends its session.
    const sessions = async () => ((await (await api("/sessions")).json()) as { sessions: { id: string }[] }).sessions.map((x) => x.id);
    expect(await sessions()).toContain(sessionId);
    await page.goto("about:blank");
    await expect.poll(sessions, { timeout: 60_000 }).not.toContain(sessionId);
  });

  test("an HTML output's script runs only in a sandboxed frame: it reads no storage, key or parent document and changes nothing in the page", async () => {
    const page = await newPage();
    await signIn(page, USER_KEY);
    // The page's own message log, before the output exists: what the frame posts lands here.
    await page.evaluate('window.received = []; window.addEventListener("message", (event) => window.received.push(event.data))');
    const pageBefore = await page.locator("header").innerHTML();
    await page.getByTestId("tab-notebook").click();
    await page.getByTestId("nb-start").click();
    await expect.poll(() => page.getByTestId("nb-context").count(), { timeout: 90_000 }).toBe(1);
    const cell = page.getByTestId("cell-0");
    await setCode(page, cell.locator(".editor"), `display(${JSON.stringify(HOSTILE_HTML)}, mime="text/html")`);
    await cell.getByTestId("cell-run").click();
    await expect.poll(() => cell.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    expect(await cell.locator("iframe.html-output").getAttribute("sandbox")).toBe("allow-scripts");

    // Positive control: the script ran, inside the frame, and wrote its findings there.
    const report = page.frameLocator("iframe.html-output").locator("#report");
    await expect.poll(() => report.innerText(), { timeout: 30_000 }).not.toBe("script did not run");
    expect(JSON.parse(await report.innerText())).toEqual({
      localStorage: "denied:SecurityError",
      sessionStorage: "denied:SecurityError",
      parentSessionStorage: "denied:SecurityError",
      parentDocument: "denied:SecurityError",
      cookie: "denied:SecurityError",
      parentWrite: "denied:SecurityError",
    });
    // Positive control of the channel: its harmless message reached the page, so a stolen value would have.
    await expect.poll(() => page.evaluate("JSON.stringify(window.received)")).toContain('{"channel":"open"}');
    const received = await page.evaluate<Record<string, unknown>[]>("window.received");
    expect(received.filter((message) => "stolen" in message)).toEqual([]);
    expect(JSON.stringify(received)).not.toContain(USER_KEY);
    expect(await page.locator("#pwned").count()).toBe(0);
    expect(await page.locator("header").innerHTML()).toBe(pageBefore);
    expect(await page.evaluate('sessionStorage.getItem("isol8.apiKey")')).toBe(USER_KEY);
  });
});

describe("operator view", () => {
  test("an admin tenant's key sees a session another tenant created through the API, the queue and a failure with its code (screenshot docs/operator.png)", async () => {
    const sessionId = `operator-${Date.now()}`;
    const created = await api("/execute", { method: "POST", body: JSON.stringify({ sessionId, request: { runtime: "python", code: "print(1)" } }) });
    expect(created.status, await created.clone().text()).toBe(200);
    expect((await api("/runtimes", { key: "wrong-key-for-the-operator-view" })).status).toBe(403);

    const page = await newPage();
    await signIn(page, ADMIN_KEY);
    await page.getByTestId("tab-operator").click();
    const row = page.getByTestId("sessions").locator("tbody tr", { hasText: sessionId });
    await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(1);
    expect(await row.locator("td").allInnerTexts()).toEqual(["default", sessionId, "python", expect.stringMatching(/^\d+ s$/), "1", "no"]);
    expect(await page.getByTestId("queue-depth").innerText()).toBe("0/32");
    const failure = page.getByTestId("failures").locator("tbody tr", { hasText: "/runtimes" }).first();
    expect(await failure.locator("td").nth(4).innerText()).toBe("ISOL8_ERR_FORBIDDEN");
    await expect.poll(() => page.getByTestId("exec-rate").innerText(), { timeout: 30_000 }).toMatch(/^\d+\.\d\d$/);
    await page.screenshot({ path: join(DOCS, "operator.png") });
    expect((await api(`/session/${sessionId}`, { method: "DELETE" })).status).toBe(200);
  });
});

describe("the page's own traffic", () => {
  test("the page's CSP refuses inline script, and the browser reports it (the control of the check below)", async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const lines: string[] = [];
    page.on("console", (message) => lines.push(message.text()));
    await page.goto(`${url}/ui/`);
    await page.getByTestId("api-key").waitFor();
    await page.evaluate('const s = document.createElement("script"); s.textContent = "window.inlineRan = true"; document.body.append(s)');
    await expect.poll(() => lines.filter((line) => /Content Security Policy/i.test(line)).length).toBe(1);
    expect(await page.evaluate("window.inlineRan === undefined")).toBe(true);
  });

  test("a page that runs a program and shows an HTML output requests only this server (an output's third-party image is blocked by CSP); no other CSP violation", async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const requested: string[] = [];
    const failed = new Map<string, string | undefined>();
    context.on("request", (request) => requested.push(request.url()));
    context.on("requestfailed", (request) => failed.set(request.url(), request.failure()?.errorText));
    const page = await context.newPage();
    const lines: string[] = [];
    page.on("console", (message) => lines.push(message.text()));
    await page.goto(`${url}/ui/`);
    await signIn(page, USER_KEY);
    await page.getByTestId("run").click();
    await expect.poll(() => page.getByTestId("exit-code").count(), { timeout: 90_000 }).toBe(1);
    await page.getByTestId("tab-notebook").click();
    await page.getByTestId("nb-start").click();
    await expect.poll(() => page.getByTestId("nb-context").count(), { timeout: 90_000 }).toBe(1);
    const cell = page.getByTestId("cell-0");
    await setCode(page, cell.locator(".editor"), 'display("<p id=shown>shown</p><img src=https://example.invalid/x.png>", mime="text/html")');
    await cell.getByTestId("cell-run").click();
    await expect.poll(() => page.frameLocator("iframe.html-output").locator("#shown").count(), { timeout: 90_000 }).toBe(1);

    const origin = new URL(url).origin;
    for (const path of ["/ui/", "/ui/app.js", "/ui/app.css", "/runtimes", "/execute/stream", "/ui/frame.html"]) expect(requested).toContain(`${origin}${path}`);
    // The only address elsewhere is the output's own <img>, which the frame's CSP (img-src data:) blocks before it leaves.
    const third = "https://example.invalid/x.png";
    expect(requested.filter((address) => !address.startsWith("data:") && new URL(address).origin !== origin)).toEqual([third]);
    await expect.poll(() => failed.get(third)).toBe("csp");
    expect(lines.filter((line) => /Content Security Policy/i.test(line) && !line.includes(third))).toEqual([]);
  });
});

// Last: a drained node still serves, but /ready fails from then on.
describe("operator view: drain", () => {
  test("Drain this node makes GET /ready answer 503 draining (200 before); the node still runs code", async () => {
    const before = await fetch(`${url}/ready`);
    expect(before.status).toBe(200);
    const page = await newPage();
    await signIn(page, ADMIN_KEY);
    await page.getByTestId("tab-operator").click();
    await page.getByTestId("drain").click();
    await expect.poll(() => page.getByTestId("draining").count(), { timeout: 30_000 }).toBe(1);
    const after = await fetch(`${url}/ready`);
    expect(after.status).toBe(503);
    expect(await after.json()).toMatchObject({ ready: false, reason: "draining" });
    const run = await api("/execute", { method: "POST", body: JSON.stringify({ request: { runtime: "python", code: "print(6 * 7)" } }) });
    expect(run.status).toBe(200);
    expect(await run.json()).toMatchObject({ stdout: "42\n", exitCode: 0 });
  });
});
