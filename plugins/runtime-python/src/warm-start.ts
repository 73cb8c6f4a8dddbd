import { createHash } from "node:crypto";
import { PYTHON_QUICK_EXIT } from "./quick-exit.js";

/**
 * The python runtime's warm-start program (packages/core/executor/PROTOCOL.md, "The standby"):
 * started between executions (PYTHON_WARM_START_COMMAND), as the sandbox user, it waits on fd 3
 * for the next GO message. A GO with the warm flag for `python3 <file>` runs the file in this
 * interpreter as `__main__`, as `python3 <file>` would: argv, environment, working directory,
 * stdin, sys.path[0], the module's attributes, tracebacks that start at the user's file, exit
 * codes. Anything else (another command, no warm flag) is exec'd as it is.
 *
 * What differs from a fresh `python3 <file>`, on purpose: /proc/self/cmdline shows this program,
 * and the CPU time reported includes the interpreter's start. The engine sends the warm flag only
 * when the variables the interpreter reads at start (PYTHON*, LC_*, LANG, HOME) are the ones
 * this program was started with.
 *
 * It imports nothing beyond what the interpreter already loaded, so the user's program sees
 * the same sys.modules as after a normal start. Its frames are named "<string>" (as `python3 -c`
 * names them), which is how it leaves them out of the user's tracebacks.
 */
export const PYTHON_WARM_START =
  PYTHON_QUICK_EXIT +
  String.raw`

def _isol8_flush_io():
    """What a fresh interpreter does once its file has run, before it reports an error or exits:
    flush stderr, then stdout, ignoring any error (python3 -c, this program's own way, does not)."""
    import sys
    for name in ("stderr", "stdout"):
        try:
            getattr(sys, name).flush()
        except BaseException:
            pass


def _isol8_warm_start():
    import os, sys
    startup = _isol8_startup()
    # Ready: closing fd 4 tells the executor this interpreter now waits for its request.
    try:
        os.close(4)
    except OSError:
        pass
    def read(n):
        data = b""
        while len(data) < n:
            chunk = os.read(3, n - len(data))
            if not chunk:
                os._exit(0)
            data += chunk
        return data
    msg = read(int.from_bytes(read(4), "big"))
    at = 0
    def u32():
        nonlocal at
        at += 4
        return int.from_bytes(msg[at - 4:at], "big")
    def raw():
        nonlocal at
        n = u32()
        at += n
        return msg[at - n:at]
    flags = u32()
    argv = [os.fsdecode(raw()) for _ in range(u32())]
    env = dict(entry.split(b"=", 1) for entry in [raw() for _ in range(u32())])
    cwd = os.fsdecode(raw())
    stdin_path = os.fsdecode(raw())
    del msg
    os.close(3)
    try:
        os.chdir(cwd)
        if stdin_path or not flags & 4:
            fd = os.open(stdin_path or "/dev/null", os.O_RDONLY)
            if fd != 0:
                os.dup2(fd, 0)
                os.close(fd)
    except OSError as error:
        sys.stderr.write("isol8: %s: %s\n" % (error.filename, error.strerror))
        os._exit(1 if stdin_path else 126)
    if not (flags & 2 and len(argv) == 2 and argv[0] == "python3" and not argv[1].startswith("-")):
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as error:
            sys.stderr.write("isol8: %s: %s\n" % (argv[0], error.strerror))
            os._exit(127 if isinstance(error, FileNotFoundError) else 126)
    path = argv[1]
    # The request's environment; plus LC_CTYPE if the interpreter set it at start-up (PEP 538
    # locale coercion), as it would have for a fresh start with the same start-up variables.
    coerced = os.environb.get(b"LC_CTYPE")
    os.environb.clear()
    os.environb.update(env)
    if coerced is not None and b"LC_CTYPE" not in env:
        os.environb[b"LC_CTYPE"] = coerced
    sys.argv = argv[1:]
    sys.orig_argv = list(argv)
    if not sys.flags.safe_path:
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    sys.path_importer_cache.clear()
    main = type(sys)("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = __builtins__
    main.__loader__ = sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", path)
    sys.modules["__main__"] = main
    try:
        with open(path, "rb") as source:
            data = source.read()
        try:
            code = compile(data, path, "exec", dont_inherit=True)
        except SyntaxError as error:
            # Source the interpreter cannot decode (PEP 263): a fresh one words that error its
            # own way, so let one report it. Nothing of the program has run yet.
            text = str(error.msg)
            if "codec can't decode" in text or text.startswith(("unknown encoding", "encoding problem")):
                os.execvpe(argv[0], argv, env)
            raise
        exec(code, main.__dict__)
    except SystemExit as stop:
        _isol8_flush_io()
        # The interpreter prints any other code (and its exit status is then 1): it handles those.
        exit_code = stop.code
        if exit_code is not None and not (type(exit_code) is int and -2**31 <= exit_code < 2**31):
            raise
        status = 0 if exit_code is None else exit_code
    except BaseException as error:
        _isol8_flush_io()
        # The traceback starts at the user's file, as it would without this program.
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        # As the interpreter reports it: sys.last_* first (they keep the error's objects alive to the end).
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error.with_traceback(tb), tb
        sys.excepthook(type(error), error, tb)
        if type(error) is KeyboardInterrupt:
            # An unhandled ^C (that very class, not a subclass): the interpreter finalizes, then
            # dies by SIGINT. Quickly when the teardown would show nothing; else the interpreter
            # does it, handed the error (its traceback is out: its excepthook call prints nothing).
            _isol8_quick_exit(130, startup, sigint=True)
            hook = sys.excepthook
            def printed(*args):
                sys.excepthook = hook
            sys.excepthook = printed
            raise error
        status = 1
    else:
        _isol8_flush_io()
        status = 0
    _isol8_quick_exit(status, startup)
    raise SystemExit(status)


if __name__ == "__main__":
    _isol8_warm_start()
`;

/** Where the image keeps the warm-start program (outside /sandbox and /tmp: nothing a program can change). */
const WARM_START_DIR = "/usr/local/lib/isol8";
/** The build context's file holding the program's source. */
const WARM_START_FILE = "python-warm-start.py";
/** The program's source in the image (what tests load to probe its functions without starting it). */
export const PYTHON_WARM_START_SOURCE = `${WARM_START_DIR}/${WARM_START_FILE}`;
/** The program compiled, in the image: what a standby runs. */
export const PYTHON_WARM_START_CODE = `${WARM_START_DIR}/python-warm-start.code`;

/** The build context's entry for the program's source. */
export const PYTHON_WARM_START_CONTEXT = { [WARM_START_FILE]: { content: PYTHON_WARM_START, mode: 0o644 } };

/**
 * The image compiles the program once, at build (marshal: the code object as that python3 writes
 * it), so a standby loads it instead of compiling it on every start (about 0.5 ms of CPU per
 * execution). `marshal` is built in and already loaded at start-up: sys.modules stays as it is.
 * An image without the file ends the standby at once: the engine then starts programs cold.
 */
export const PYTHON_WARM_START_COMMAND = [
  "python3",
  "-c",
  `import marshal\nwith open(${JSON.stringify(PYTHON_WARM_START_CODE)}, "rb") as file:\n    code = marshal.loads(file.read())\nexec(code)`,
];

/** The image's build step that writes PYTHON_WARM_START_CODE from PYTHON_WARM_START_SOURCE (PYTHON_WARM_START_CONTEXT). */
export const PYTHON_WARM_START_DOCKERFILE =
  `COPY ${WARM_START_FILE} ${WARM_START_DIR}/\n` +
  `RUN python3 -c 'import marshal, sys; source = open(sys.argv[1]).read(); open(sys.argv[2], "wb").write(marshal.dumps(compile(source, "<string>", "exec", dont_inherit=True)))' ` +
  `${PYTHON_WARM_START_SOURCE} ${PYTHON_WARM_START_CODE}\n`;

/** Part of the image's version: a changed program is a new image. */
export const PYTHON_WARM_START_HASH = createHash("sha256").update(PYTHON_WARM_START).digest("hex").slice(0, 12);
