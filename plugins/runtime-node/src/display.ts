import { createHash } from "node:crypto";
import { RICH_OUTPUTS_DIR } from "@isol8/kit";

/** Where the node image keeps the display preload (outside /sandbox and /tmp: nothing a program can change). */
export const NODE_DISPLAY_PATH = "/usr/local/lib/isol8/node-display.cjs";

/**
 * How the preload reaches every node program (a cold start, the warm start's standby, child
 * processes, worker threads): node's own NODE_OPTIONS, in the runtime's env. A request that
 * sets NODE_OPTIONS replaces it (and display() with it) unless it keeps this option.
 */
export const NODE_DISPLAY_OPTIONS = `--require=${NODE_DISPLAY_PATH}`;

/**
 * NODE_OPTIONS of every node program: the display preload, and no "EnvHttpProxyAgent is
 * experimental" warning: the filtered network mode turns on node's own proxy support
 * (NODE_USE_ENV_PROXY, Node 22), and this variable, set per execution, replaces the container's.
 */
export const NODE_RUNTIME_OPTIONS = `${NODE_DISPLAY_OPTIONS} --disable-warning=UNDICI-EHPA`;

/**
 * The preload: a global `display(value, mime?)` and nothing else (it loads only `fs` and `util`,
 * which node has loaded already). Each output is one file in RICH_OUTPUTS_DIR (see @isol8/kit):
 * the name starts with the monotonic clock (execution order, across processes too), the content
 * is the output's bytes.
 */
export const NODE_DISPLAY = String.raw`"use strict";
(function isol8Display() {
  if (typeof globalThis.display !== "undefined") return;
  const fs = require("fs");
  const DIR = ${JSON.stringify(RICH_OUTPUTS_DIR)};
  const MIME = /^[A-Za-z0-9.+-]+\/[A-Za-z0-9.+-]+$/;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  let last = 0n;
  const bytesOf = (value) =>
    value instanceof ArrayBuffer ? Buffer.from(value) : ArrayBuffer.isView(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : undefined;
  const startsWith = (bytes, magic) => magic.every((byte, i) => bytes[i] === byte);
  const write = (mime, data) => {
    try {
      fs.mkdirSync(DIR, { mode: 0o700 });
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
    }
    let now = process.hrtime.bigint();
    if (now <= last) now = last + 1n;
    last = now;
    const path = DIR + "/" + String(now).padStart(20, "0") + "-" + process.pid + "-" + mime.replace("/", "_");
    fs.writeFileSync(path + ".part", data, { flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600 });
    fs.renameSync(path + ".part", path);
  };
  const inspect = (value) => require("util").inspect(value);
  /**
   * display(value, mime?): one rich output (result.outputs). With mime, value is its data: a
   * string, bytes (Buffer, a typed array, an ArrayBuffer), or for a JSON type any value (JSON).
   * Without: a string is text/plain, PNG or JPEG bytes are image/png or image/jpeg, an object or
   * array is application/json (text/plain when it does not serialize), anything else text/plain.
   */
  function display(value, mime) {
    if (mime !== undefined) {
      if (typeof mime !== "string" || !MIME.test(mime)) {
        throw new TypeError("display(value, mime): mime must be a type like \"text/html\" or \"image/png\", got " + inspect(mime));
      }
      const bytes = bytesOf(value);
      if (bytes) write(mime, bytes);
      else if (typeof value === "string") write(mime, value);
      else if (/[/+]json$/.test(mime)) write(mime, JSON.stringify(value) ?? "null");
      else write(mime, String(value));
      return;
    }
    const bytes = bytesOf(value);
    if (bytes) {
      if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return write("image/png", bytes);
      if (startsWith(bytes, [0xff, 0xd8, 0xff])) return write("image/jpeg", bytes);
      throw new TypeError("display(bytes): not PNG or JPEG: give the mime type, display(bytes, \"image/gif\")");
    }
    if (typeof value === "string") return write("text/plain", value);
    if (value !== null && typeof value === "object" && typeof value.then !== "function") {
      let json;
      try {
        json = JSON.stringify(value);
      } catch {}
      if (typeof json === "string") return write("application/json", json);
    }
    write("text/plain", inspect(value));
  }
  Object.defineProperty(globalThis, "display", { value: display, writable: true, configurable: true, enumerable: false });
})();
`;

/** Part of the image's version: a changed preload is a new image. */
export const NODE_DISPLAY_HASH = createHash("sha256").update(NODE_DISPLAY).digest("hex").slice(0, 12);
