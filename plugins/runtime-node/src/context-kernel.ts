import type { ContextKernel } from "@isol8/kit";
import { NODE_DISPLAY } from "./display.js";

/**
 * The interrupt watcher (a worker thread of the kernel; see the kernel's comment). Its session
 * with the main thread lives only while it handles one interrupt: a connected session would make
 * node wait for it to disconnect when the process exits.
 */
const NODE_INTERRUPT_WATCHER = String.raw`"use strict";
const { Session } = require("inspector");
const { spawn } = require("child_process");
const shared = require("worker_threads").workerData;
const stop = () => {
  const cell = Atomics.load(shared, 0);
  if (cell === 0) return;
  const session = new Session();
  session.connectToMainThread();
  const cells = new Set();
  session.on("Debugger.scriptParsed", ({ params }) => {
    if (params.url.startsWith("<cell-")) cells.add(params.scriptId);
  });
  session.on("Debugger.paused", ({ params }) => {
    const current = Atomics.load(shared, 0);
    if (current !== 0 && params.callFrames.some((frame) => cells.has(frame.location.scriptId))) {
      Atomics.store(shared, 1, current);
      // Not awaited: its answer comes when the terminated code has ended, after the resume.
      session.post("Runtime.terminateExecution");
    }
    session.post("Debugger.resume");
    session.post("Debugger.disable", () => session.disconnect());
  });
  session.post("Debugger.enable");
  session.post("Debugger.pause");
};
const relay = () => {
  // Ends on SIGINT (the engine signals the kernel's process group), or when the kernel's end closes its stdin.
  const child = spawn("sh", ["-c", "read line"], { argv0: "isol8-interrupt-relay", stdio: ["pipe", "ignore", "ignore"] });
  child.on("error", () => {}); // no sh: busy cells are not interruptible, awaiting ones still are
  child.on("exit", (code, signal) => {
    if (signal !== "SIGINT") return;
    relay();
    stop();
  });
};
relay();
`;

/**
 * The node runtime's context kernel (the kernel protocol: @isol8/kit contexts.ts): a REPL-like
 * context. Each cell is evaluated in the process's global scope through node's in-process
 * inspector (`Runtime.evaluate` with `replMode`, what DevTools' console uses): top-level `await`
 * works and a later cell may declare a `let`/`const` again. `require` resolves from the kernel's
 * working directory. `import()` is not available to code the inspector compiles (node gives it
 * no module loader), so the kernel rewrites each `import(` call of a cell (outside strings,
 * comments, regular expressions and templates' text) into a call of its own function, which
 * imports from the kernel (relative specifiers from the current directory).
 *
 * The value of the last expression, unless undefined, is sent as text/plain (util.inspect, as
 * the REPL shows it) with `result: true`. `display(value, mime?)` is the preload's
 * (src/display.ts), run here with a file system that sends each output over fd 4 instead of
 * writing it: the same forms, and no second copy of its rules. An error thrown by a cell ends it
 * with `done.error` (name, message, the stack without the kernel's frames); errors of earlier
 * cells' asynchronous work (uncaught exceptions, unhandled rejections) are printed on stderr as
 * the REPL prints them, and the kernel stays. `process.exit` ends the kernel.
 *
 * SIGINT ends the running cell with an `Interrupt` error and the state stays: a cell that awaits
 * (a timer, I/O, a promise) at once, the work it awaited going on in the background; a cell busy
 * in JavaScript is terminated first, by the interrupt watcher above (vm's breakOnSigint would
 * break the inspector's context). A cell blocked in a synchronous call (execSync, Atomics.wait)
 * ends when the call returns (its child processes get the SIGINT too).
 */
export const NODE_CONTEXT_KERNEL = String.raw`"use strict";
(function isol8Kernel() {
  const fs = require("fs");
  const path = require("path");
  const util = require("util");
  const { Session } = require("inspector");
  const { createRequire } = require("module");
  const { pathToFileURL } = require("url");

  // fds 3 and 4 opened again: node opens close-on-exec, so a cell's child processes do not inherit them.
  let input = 3, output = 4;
  try {
    input = fs.openSync("/proc/self/fd/3", fs.constants.O_RDONLY);
    output = fs.openSync("/proc/self/fd/4", fs.constants.O_WRONLY);
    fs.closeSync(3);
    fs.closeSync(4);
  } catch {}

  const send = (message) => {
    const line = Buffer.from(JSON.stringify(message) + "\n");
    for (let at = 0; at < line.length; ) {
      try {
        at += fs.writeSync(output, line, at);
      } catch (error) {
        if (error.code !== "EAGAIN") throw error;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  };

  let cell = 0;
  let asResult = false;
  const emit = (mime, data) => {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    send({ type: "display", cell, mime, data: bytes.toString("base64"), ...(asResult && { result: true }) });
  };

  // The preload's display(), given a file system whose one write is an output: its file name ends with the type.
  const outputs = {
    constants: fs.constants,
    mkdirSync() {},
    renameSync() {},
    writeFileSync(file, data) {
      const name = path.basename(file, ".part");
      const type = name.slice(name.indexOf("-", name.indexOf("-") + 1) + 1);
      emit(type.replace("_", "/"), data);
    },
  };
  const scope = {};
  new Function("require", "globalThis", ${JSON.stringify(NODE_DISPLAY)})((id) => (id === "fs" ? outputs : require(id)), scope);
  Object.defineProperty(globalThis, "display", { value: scope.display, writable: true, configurable: true, enumerable: false });
  globalThis.require = createRequire(path.join(process.cwd(), "[cell]"));

  const IMPORT = "__isol8_import";
  Object.defineProperty(globalThis, IMPORT, {
    value: (specifier, options) => {
      if (typeof specifier === "string" && /^\.{1,2}\/|^\//.test(specifier)) specifier = pathToFileURL(path.resolve(specifier)).href;
      return import(specifier, options);
    },
    enumerable: false,
  });

  /** Positions of the dynamic import() calls of a cell's code (a scan, not a parse: what a string, comment, regex or template text holds is left alone). */
  const BEFORE_EXPRESSION = new Set(["return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"]);
  const rewriteImports = (code) => {
    if (!/\bimport\s*\(/.test(code)) return code;
    const at = [];
    const templates = [];
    const n = code.length;
    let i = 0, depth = 0, regexAllowed = true;
    const isWord = (c) => c !== undefined && (/[\w$]/.test(c) || c > "\x7f");
    const templateText = () => {
      while (i < n) {
        const c = code[i];
        if (c === "\\") i += 2;
        else if (c === "${"`"}") { i++; regexAllowed = false; return; }
        else if (c === "$" && code[i + 1] === "{") { i += 2; templates.push(depth++); regexAllowed = true; return; }
        else i++;
      }
    };
    while (i < n) {
      const c = code[i];
      if (c === "/" && code[i + 1] === "/") { const end = code.indexOf("\n", i); i = end < 0 ? n : end; }
      else if (c === "/" && code[i + 1] === "*") { const end = code.indexOf("*/", i + 2); i = end < 0 ? n : end + 2; }
      else if (c === "'" || c === '"') {
        for (i++; i < n && code[i] !== c && code[i] !== "\n"; i += code[i] === "\\" ? 2 : 1);
        i++;
        regexAllowed = false;
      } else if (c === "${"`"}") { i++; templateText(); }
      else if (c === "/" && regexAllowed) {
        let inClass = false;
        for (i++; i < n && code[i] !== "\n"; i++) {
          if (code[i] === "\\") i++;
          else if (code[i] === "[") inClass = true;
          else if (code[i] === "]") inClass = false;
          else if (code[i] === "/" && !inClass) break;
        }
        for (i++; isWord(code[i]); i++);
        regexAllowed = false;
      } else if (isWord(c)) {
        let j = i;
        while (isWord(code[j])) j++;
        const word = code.slice(i, j);
        if (word === "import" && code[i - 1] !== "." && /^\s*\(/.test(code.slice(j, j + 200))) at.push(i);
        regexAllowed = BEFORE_EXPRESSION.has(word);
        i = j;
      } else if (c === "{") { depth++; regexAllowed = true; i++; }
      else if (c === "}") {
        i++;
        if (templates.length && templates[templates.length - 1] === depth - 1) { templates.pop(); depth--; templateText(); }
        else { depth--; regexAllowed = true; }
      } else if (c === ")" || c === "]") { regexAllowed = false; i++; }
      else if (/\s/.test(c)) i++;
      else { regexAllowed = true; i++; }
    }
    let rewritten = "", from = 0;
    for (const position of at) {
      rewritten += code.slice(from, position) + IMPORT;
      from = position + "import".length;
    }
    return rewritten + code.slice(from);
  };

  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

  // A remote object of the inspector as the value it stands for.
  const TAKE = Symbol.for("isol8.kernel.take");
  let taken;
  Object.defineProperty(globalThis, TAKE, { value: (value) => (taken = value), enumerable: false });
  const valueOf = async (remote) => {
    if (remote.objectId === undefined) {
      if ("value" in remote) return remote.value;
      const text = remote.unserializableValue;
      if (text === undefined) return undefined;
      return text.endsWith("n") ? BigInt(text.slice(0, -1)) : Number(text);
    }
    await post("Runtime.callFunctionOn", { objectId: remote.objectId, functionDeclaration: "function () { 'use strict'; globalThis[Symbol.for('isol8.kernel.take')](this); }" });
    return taken;
  };

  const describe = (thrown) => {
    if (thrown instanceof Error || (thrown && typeof thrown === "object" && typeof thrown.stack === "string")) {
      const lines = String(thrown.stack).split("\n");
      // The kernel's frames: from the inspector's call on (a cell's own frames are named after it).
      const own = lines.findIndex((line) => /^\s+at .*\((node:inspector|\[eval\])/.test(line) || /^\s+at (node:inspector|\[eval\])/.test(line));
      return { name: String(thrown.name ?? "Error"), value: String(thrown.message ?? ""), traceback: own < 0 ? lines : lines.slice(0, own) };
    }
    const text = util.inspect(thrown);
    return { name: "Uncaught", value: text, traceback: ["Uncaught " + text] };
  };

  process.on("uncaughtException", (error) => {
    try { fs.writeSync(2, "Uncaught " + util.inspect(error) + "\n"); } catch {}
  });
  process.on("unhandledRejection", (reason) => {
    try { fs.writeSync(2, "Uncaught (in promise) " + util.inspect(reason) + "\n"); } catch {}
  });

  // Shared with the interrupt watcher: [0] the running cell (0: none), [1] the cell it stopped.
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const INTERRUPT = { name: "Interrupt", value: "the cell was interrupted (SIGINT)", traceback: [] };
  let running = null;
  const finish = (token, done) => {
    if (running !== token) return;
    running = null;
    Atomics.store(shared, 0, 0);
    send({ type: "done", cell: token.cell, ...done });
    token.finished();
  };
  // A cell that awaits: this handler runs and ends it. A cell busy in JavaScript: the watcher stops
  // it first, then this handler runs (the signal waited in the event loop) and ends it.
  process.on("SIGINT", () => {
    if (running) finish(running, { error: INTERRUPT });
  });
  /**
   * The interrupt watcher, a worker thread: node delivers signals to the main thread's event loop
   * only, which a busy cell blocks, so a child process in the kernel's process group (the relay,
   * which SIGINT ends) tells the worker. If a cell runs, the worker pauses the main thread through
   * the inspector (that works in a busy loop) and, when the paused code is a cell's, terminates it
   * (Runtime.terminateExecution: the inspector's own way, which leaves its context usable).
   */
  const WATCHER = ${JSON.stringify(NODE_INTERRUPT_WATCHER)};
  try {
    const watcher = new (require("worker_threads").Worker)(WATCHER, { eval: true, workerData: shared, stdout: false, stderr: false });
    watcher.on("error", (error) => fs.writeSync(2, "isol8 kernel: the interrupt watcher failed: " + util.inspect(error) + "\n"));
    watcher.unref();
  } catch (error) {
    fs.writeSync(2, "isol8 kernel: no interrupt watcher (a cell busy in JavaScript cannot be interrupted): " + error.message + "\n");
  }

  /** Runs one cell; resolves when its done is sent, even if what it awaited never settles (an interrupt). */
  const runCell = (number, code) => {
    cell = number;
    const token = { cell: number };
    const finished = new Promise((resolve) => (token.finished = resolve));
    running = token;
    Atomics.store(shared, 0, number);
    evaluate(token, code);
    return finished;
  };
  const evaluate = async (token, code) => {
    const objectGroup = "isol8-cell-" + token.cell;
    let done = {};
    try {
      const { result, exceptionDetails } = await post("Runtime.evaluate", {
        // Stack frames of the cell's code are named after it.
        expression: rewriteImports(code) + "\n//# sourceURL=<cell-" + token.cell + ">",
        replMode: true,
        awaitPromise: true,
        objectGroup,
      });
      if (running !== token) return;
      if (exceptionDetails) {
        const thrown = exceptionDetails.exception ? await valueOf(exceptionDetails.exception) : new Error(exceptionDetails.text);
        done = { error: describe(thrown) };
      } else if (result.type !== "undefined") {
        const value = await valueOf(result);
        if (running !== token) return;
        asResult = true;
        try {
          emit("text/plain", util.inspect(value));
        } finally {
          asResult = false;
        }
      }
    } catch (error) {
      // The watcher terminated the cell (the inspector answers with an error).
      done = { error: Atomics.load(shared, 1) === token.cell ? INTERRUPT : describe(error) };
    } finally {
      taken = undefined;
      session.post("Runtime.releaseObjectGroup", { objectGroup });
    }
    finish(token, done);
  };

  // Cells on fd 3: "<cell> <byte length>\n" then the code's bytes.
  let pending = Buffer.alloc(0);
  let queue = Promise.resolve();
  // A socket on the pipe (epoll), not fs reads: a read blocked in libuv's thread pool would keep process.exit from ending the process.
  const stream = new (require("net").Socket)({ fd: input, readable: true, writable: false });
  stream.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const end = pending.indexOf(10);
      if (end < 0) return;
      const header = /^(\d+) (\d+)$/.exec(pending.subarray(0, end).toString("latin1"));
      if (!header) {
        fs.writeSync(2, "isol8 kernel: a cell header is '<cell> <byte length>', got " + JSON.stringify(pending.subarray(0, end).toString()) + "\n");
        process.exit(2);
      }
      const length = Number(header[2]);
      if (pending.length < end + 1 + length) return;
      const code = pending.subarray(end + 1, end + 1 + length).toString("utf8");
      pending = pending.subarray(end + 1 + length);
      queue = queue.then(() => runCell(Number(header[1]), code));
    }
  });
  stream.on("end", () => process.exit(0));
  send({ type: "ready" });
})();
`;

/** How the engine starts a node context: node with the runtime's options (the display preload), in the context's cwd. */
export const nodeContextKernel: ContextKernel = {
  command: ["node", "-e", NODE_CONTEXT_KERNEL],
  interruptible: true,
};
