import { posix } from "node:path";
import { InvalidRequestError, SANDBOX_DIR, WRITABLE_ROOTS, type RuntimeDefinition, type ValidatedRequest } from "@isol8/kit";
import type { TarEntry } from "./sandbox-files.js";

/** Where a request's cmd is unpacked; bash runs it from there (the command never travels in argv). */
export const CMD_PATH = "/tmp/.isol8-cmd";
/** Where a request's setupScript is unpacked. */
export const SETUP_PATH = "/tmp/.isol8-setup";
/** The first stderr line of a refused workdir (the wrapper's exit code is 125, as an unpack failure's). */
export const WORKDIR_REFUSED = "isol8: could not enter the workdir: ";

/**
 * Enters the request's workdir, then execs the program ("$@"). It walks the path from "/" part
 * by part as the unpackers walk a file's parent directories: a part that is a symbolic link or
 * not a directory is refused, a missing one is created (as the sandbox user, mode 0755). The
 * walk runs in the sandbox, right before the program, so it sees what a setupScript or an
 * earlier execution of a persistent session left there. Exits 125 with WORKDIR_REFUSED on a
 * refusal. No single quote inside (it travels as one argv entry).
 */
const ENTER_WORKDIR = [
  `fail() { printf "${WORKDIR_REFUSED}%s\\n" "$1" >&2; exit 125; }`,
  "d=; r=${1#/}; shift",
  'while [ -n "$r" ]; do',
  "  p=${r%%/*}; case $r in */*) r=${r#*/};; *) r=;; esac",
  "  d=$d/$p",
  '  if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then fail "$d is a symbolic link or not a directory"; fi',
  '  [ -d "$d" ] || mkdir -- "$d" 2>/dev/null || fail "could not create $d"',
  "done",
  'cd -- "$d" || fail "could not enter $d"',
  'exec "$@"',
].join("\n");
if (ENTER_WORKDIR.includes("'")) throw new Error("ENTER_WORKDIR must not contain a single quote");

/** What a request runs, ready for the launcher: argv of the program (and of its setup), and their payload entries. */
export interface Program {
  /** argv of the code (the runtime's command for the code file) or of the cmd (bash). */
  argv: string[];
  /** argv of the setupScript (bash), when the request has one. */
  setupArgv?: string[];
  /** The working directory, absolute, when the request set one (else the launcher's, /sandbox). */
  workdir?: string;
  /** The code file, or the cmd and setup scripts, for the payload. */
  entries: TarEntry[];
}

/**
 * The request's workdir as an absolute path inside /sandbox or /tmp (the roots themselves
 * included; relative paths from /sandbox): the same rules as files, refused by name.
 */
export function resolveWorkdir(workdir: string, field = "request.workdir"): string {
  const expected = `expected a directory inside ${WRITABLE_ROOTS.join(" or ")}`;
  if (workdir.includes("\0")) throw new InvalidRequestError(`${field}: path ${JSON.stringify(workdir)} contains a NUL byte: ${expected}`);
  if (workdir.split("/").includes("..")) throw new InvalidRequestError(`${field}: path ${JSON.stringify(workdir)} contains "..": ${expected}`);
  const absolute = posix.normalize(workdir.startsWith("/") ? workdir : posix.join(SANDBOX_DIR, workdir)).replace(/(.)\/+$/, "$1");
  if (!WRITABLE_ROOTS.some((root) => absolute === root || absolute.startsWith(`${root}/`))) {
    throw new InvalidRequestError(`${field}: path ${JSON.stringify(workdir)} is outside ${WRITABLE_ROOTS.join(" and ")}: ${expected}`);
  }
  return absolute;
}

/** The program of a request: code (a file the runtime's command runs) or cmd (bash), its setup and its workdir. */
export function programOf(runtime: RuntimeDefinition, request: ValidatedRequest): Program {
  const entries: TarEntry[] = [];
  let argv: string[];
  if (request.cmd !== undefined) {
    entries.push({ path: CMD_PATH, content: request.cmd, mode: 0o600 });
    argv = ["bash", CMD_PATH];
  } else if (request.code !== undefined) {
    const codePath = `${SANDBOX_DIR}/main${request.fileExtension ?? runtime.extensions[0] ?? ""}`;
    entries.push({ path: codePath, content: request.code });
    argv = runtime.command(codePath);
  } else {
    // The schema let a codeUrl through: the step that fetches it puts its code in request.code first.
    throw new InvalidRequestError("request.codeUrl: this engine does not fetch code from URLs (expected code or cmd)");
  }
  let setupArgv: string[] | undefined;
  if (request.setupScript !== undefined) {
    entries.push({ path: SETUP_PATH, content: request.setupScript, mode: 0o600 });
    setupArgv = ["bash", SETUP_PATH];
  }
  const workdir = request.workdir !== undefined ? resolveWorkdir(request.workdir) : undefined;
  const enter = (command: string[]) => (workdir ? ["sh", "-c", ENTER_WORKDIR, "isol8-workdir", workdir, ...command] : command);
  return { argv: enter(argv), ...(setupArgv && { setupArgv: enter(setupArgv) }), ...(workdir && { workdir }), entries };
}
