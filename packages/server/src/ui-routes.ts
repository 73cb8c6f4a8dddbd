import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "@isol8/kit";
import type { Hono } from "hono";
import type { ServerEnv } from "./env.js";

/** Where the page lives; nothing under it exists unless the server was started with the UI on. */
const UI_PREFIX = "/ui";

/**
 * The page's policy: its own scripts only (no inline script, no eval), CodeMirror's <style>
 * elements by a per-response nonce, images from itself and data: URLs (rich outputs), requests
 * to this server only, frames only of /ui/frame.html (HTML outputs), and never framed itself.
 */
const pageCsp = (styleNonce: string) =>
  [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${styleNonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");

/**
 * The frame of an HTML output: sandboxed by its own header too (an opaque origin even when opened
 * alone), so the output's scripts run there with no storage, no cookies, no network and no access
 * to the page; only this server's page may frame it.
 */
const FRAME_CSP = [
  "sandbox allow-scripts",
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join("; ");

const COMMON_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
  "Cross-Origin-Resource-Policy": "same-origin",
};

const FILES = {
  "index.html": "text/html; charset=utf-8",
  "frame.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};
type UiFile = keyof typeof FILES;

/**
 * The built page: dist/ui beside the built server; running from the sources, the package's
 * dist/ui; bundled into another program (the isol8 CLI), the installed @isol8/server's dist/ui.
 */
function uiDirectory(): string {
  const candidates = [new URL("./ui/", import.meta.url), new URL("../dist/ui/", import.meta.url)].map((url) => fileURLToPath(url));
  try {
    candidates.push(join(dirname(createRequire(import.meta.url).resolve("@isol8/server/package.json")), "dist", "ui") + sep);
  } catch {
    // not installed as a package: the paths above are all there is
  }
  const found = candidates.find((dir) => existsSync(join(dir, "index.html")));
  if (!found)
    throw new ConfigError(
      `server.ui: the page's files are missing (looked in ${candidates.join(", ")}): build @isol8/server (pnpm --filter @isol8/server run build)`,
    );
  return found;
}

/**
 * GET /ui/ (the page), /ui/app.js, /ui/app.css, /ui/frame.html: the files are read once, at
 * start; no other path under /ui exists. Public (the page has no key yet); every call the page
 * makes goes through the API's own routes with the key it is given.
 */
export function mountUi(app: Hono<ServerEnv>): void {
  const dir = uiDirectory();
  const content = Object.fromEntries(Object.keys(FILES).map((name) => [name, readFileSync(join(dir, name))])) as Record<UiFile, Buffer>;
  const page = content["index.html"].toString("utf8");

  app.get(UI_PREFIX, (c) => c.redirect(`${UI_PREFIX}/`, 302));
  app.get(`${UI_PREFIX}/`, (c) => {
    const nonce = randomBytes(16).toString("base64");
    return c.body(page.replace("__STYLE_NONCE__", nonce), 200, {
      ...COMMON_HEADERS,
      "Content-Type": FILES["index.html"],
      "Content-Security-Policy": pageCsp(nonce),
      "X-Frame-Options": "DENY",
      "Cross-Origin-Opener-Policy": "same-origin",
    });
  });
  app.get(`${UI_PREFIX}/frame.html`, (c) =>
    c.body(new Uint8Array(content["frame.html"]), 200, {
      ...COMMON_HEADERS,
      "Content-Type": FILES["frame.html"],
      "Content-Security-Policy": FRAME_CSP,
      "X-Frame-Options": "SAMEORIGIN",
    }),
  );
  for (const name of ["app.js", "app.css"] as const) {
    app.get(`${UI_PREFIX}/${name}`, (c) =>
      c.body(new Uint8Array(content[name]), 200, {
        ...COMMON_HEADERS,
        "Content-Type": FILES[name],
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
      }),
    );
  }
}

/** The paths mountUi serves, which need no API key. */
export const isUiPath = (path: string): boolean => path === UI_PREFIX || path.startsWith(`${UI_PREFIX}/`);
