/**
 * JavaScript shared by the warm-start preloads of the JavaScript runtimes (node, bun): waiting for
 * the GO message (packages/core/executor/PROTOCOL.md, "The standby"). Their warm-start commands
 * move the executor's control pipe (fd 3) to fd 60 and its ready pipe (fd 4) to fd 61, so the
 * runtime's own descriptors get the numbers a fresh start gives them.
 *
 * Inserted in the preload's function, it closes fd 61 (the executor then counts the process as
 * ready), blocks until the GO message is read whole from fd 60 (a closed pipe: "not needed", the
 * process exits 0), closes fd 60, and leaves `fs` (node's fs module) and `go` (`flags`, `argv`,
 * `envEntries` as "NAME=value" strings, `cwd`, `stdinPath`) in scope.
 */
export const JS_WARM_START_READ_GO = String.raw`const fs = require("fs");
  // Ready: closing the ready pipe (fd 4 as the executor gave it) tells the executor this process now waits for its request.
  try { fs.closeSync(61); } catch {}
  const read = (n) => {
    const buffer = Buffer.alloc(n);
    for (let at = 0; at < n; ) {
      let got;
      try {
        got = fs.readSync(60, buffer, at, n - at, null);
      } catch (error) {
        if (error.code === "EAGAIN" || error.code === "EINTR") continue;
        throw error;
      }
      if (got === 0) process.exit(0);
      at += got;
    }
    return buffer;
  };
  const message = read(read(4).readUInt32BE(0));
  let at = 0;
  const u32 = () => { at += 4; return message.readUInt32BE(at - 4); };
  const string = () => { const n = u32(); at += n; return message.toString("utf8", at - n, at); };
  const list = () => Array.from({ length: u32() }, string);
  const go = { flags: u32(), argv: list(), envEntries: list(), cwd: string(), stdinPath: string() };
  fs.closeSync(60);`;
