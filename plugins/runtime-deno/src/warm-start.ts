import { createHash } from "node:crypto";

/** Where the deno image keeps the warm-start preload (outside /sandbox and /tmp: nothing a program can change). */
export const DENO_WARM_START_PATH = "/usr/local/lib/isol8/deno-warm-start.js";

/** The command a warm start can run: `command(file)` for code given inline (`.mts`, the only extension). */
const DENO_WARM_ARGV = ["deno", "run", "--allow-all", "--no-prompt", "/sandbox/main.mts"];

/**
 * The standby (packages/core/executor/PROTOCOL.md, "The standby"): a real `deno run --allow-all
 * --no-prompt /sandbox/main.mts` with a `--preload` module that waits for the GO message. Deno
 * evaluates preloads before it loads the main module (it reads the file only then), so after the
 * preload's evaluation the program runs on deno's own path: `Deno.mainModule`, `import.meta.main`,
 * TypeScript, stack traces, uncaught errors and rejections, exit codes. stdin is /dev/null from
 * the start (as a fresh run without stdin has it); the executor's stdin pipe waits on fd 62. The
 * control and ready pipes move to fds 60 and 61 (bash: dash takes only one digit), so deno's own
 * descriptors get the numbers a fresh start gives them.
 */
export const DENO_WARM_START_COMMAND = [
  "bash",
  "-c",
  `exec ${DENO_WARM_ARGV.slice(0, -1).join(" ")} --preload ${DENO_WARM_START_PATH} ${DENO_WARM_ARGV.at(-1)} 60<&3 3<&- 61<&4 4<&- 62<&0 </dev/null`,
];

/**
 * The preload (plain JavaScript: nothing to transpile, so nothing of it in DENO_DIR's emit cache).
 * It reads the GO message on fd 60 through libc (Deno has no raw descriptors); with the warm flag,
 * the request's argv equal to the standby's, and none of the files deno reads at start-up in
 * /sandbox (deno.json, package.json, node_modules...: this deno looked for them when /sandbox did
 * not have them yet), it puts stdin in place (dup2), applies the working directory and the
 * environment, closes its descriptors and returns: deno goes on to load the main module. Anything
 * else is exec'd (execvpe) with the same set-up, as the executor would start it.
 * It declares nothing: its names are local to its module.
 */
export const DENO_WARM_START = String.raw`
const libc = Deno.dlopen("libc.so.6", {
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  execvpe: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
});
const c = libc.symbols;
const errno = () => new Deno.UnsafePointerView(c.__errno_location()).getInt32();
const strerror = (code) => Deno.UnsafePointerView.getCString(c.strerror(code));
const cString = (text) => new TextEncoder().encode(text + "\0");
const fail = (what, code, exitCode) => {
  Deno.stderr.writeSync(new TextEncoder().encode("isol8: " + what + ": " + strerror(code) + "\n"));
  Deno.exit(exitCode);
};
// Ready: closing the ready pipe (fd 4 as the executor gave it) tells the executor this process now waits for its request.
c.close(61);
const read = (n) => {
  const buffer = new Uint8Array(n);
  for (let at = 0; at < n; ) {
    const got = Number(c.read(60, buffer.subarray(at), BigInt(n - at)));
    if (got === 0) Deno.exit(0);
    if (got < 0) {
      if (errno() === 4 || errno() === 11) continue;
      Deno.exit(1);
    }
    at += got;
  }
  return buffer;
};
const length = new DataView(read(4).buffer).getUint32(0);
const message = read(length);
const view = new DataView(message.buffer);
const decoder = new TextDecoder();
let at = 0;
const u32 = () => { at += 4; return view.getUint32(at - 4); };
const string = () => { const n = u32(); at += n; return decoder.decode(message.subarray(at - n, at)); };
const list = () => Array.from({ length: u32() }, string);
const flags = u32();
const argv = list();
const envEntries = list();
const requestEnv = [...envEntries];
const cwd = string();
const stdinPath = string();
c.close(60);
const expected = ${JSON.stringify(DENO_WARM_ARGV)};
const readAtStart = ["deno.json", "deno.jsonc", "package.json", "node_modules", "deno.lock", "import_map.json", ".npmrc", "tsconfig.json", "jsconfig.json"];
// One directory read rather than a stat per name: a stat of a missing file throws, and making
// nine errors (stack traces included) cost more than the rest of the hand-over.
const inSandbox = () => { try { return Array.from(Deno.readDirSync("/sandbox"), (entry) => entry.name); } catch { return readAtStart; } };
const warm = flags & 2 && envEntries.some((entry) => entry.startsWith("PATH=")) && argv.length === expected.length && argv.every((arg, i) => arg === expected[i]) &&
  !inSandbox().some((name) => readAtStart.includes(name));
try {
  Deno.chdir(cwd);
} catch {
  fail(cwd, 2, 126);
}
if (stdinPath) {
  const fd = c.open(cString(stdinPath), 0);
  if (fd < 0) fail(stdinPath, errno(), 1);
  c.dup2(fd, 0);
  c.close(fd);
} else if (flags & 4) {
  c.dup2(62, 0);
}
c.close(62);
// The request's environment; plus what deno set for itself while starting (its node shim's mark),
// as it would have for a fresh start.
const own = Object.fromEntries(["DENO_NODE_SHIM_ACTIVE"].filter((name) => Deno.env.has(name)).map((name) => [name, Deno.env.get(name)]));
// Its node shim's directory, which it put in front of PATH.
const shims = (Deno.env.get("PATH") ?? "").split(":").filter((dir, i, dirs) => dirs.slice(0, i + 1).every((d) => d.endsWith("/node_compat_bin")));
for (const name of Object.keys(Deno.env.toObject())) Deno.env.delete(name);
for (const [name, value] of Object.entries(own)) if (!envEntries.some((entry) => entry.startsWith(name + "="))) envEntries.push(name + "=" + value);
const pathAt = envEntries.findIndex((entry) => entry.startsWith("PATH="));
if (pathAt >= 0) {
  const dirs = envEntries[pathAt].slice(5).split(":");
  envEntries[pathAt] = "PATH=" + [...shims.filter((dir) => !dirs.includes(dir)), ...dirs].join(":");
}
for (const entry of envEntries) {
  const eq = entry.indexOf("=");
  if (eq > 0) Deno.env.set(entry.slice(0, eq), entry.slice(eq + 1));
}
if (!warm) {
  const strings = (items) => items.map(cString);
  const pointers = (items) => BigUint64Array.from([...items.map((item) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(item)))), 0n]);
  const args = strings(argv);
  const envs = strings(requestEnv);
  c.execvpe(args[0], pointers(args), pointers(envs));
  const code = errno();
  fail(argv[0], code, code === 2 ? 127 : 126);
}
libc.close();
`;

/** Part of the image's version: a changed preload is a new image. */
export const DENO_WARM_START_HASH = createHash("sha256").update(DENO_WARM_START).digest("hex").slice(0, 12);
