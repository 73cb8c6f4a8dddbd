import type { ContextKernel } from "@isol8/kit";

/**
 * The python runtime's context kernel (the kernel protocol: @isol8/kit contexts.ts). Cells run in
 * one `__main__` module, as a notebook runs them: the code is parsed with `ast`; when its last
 * statement is an expression, the rest runs first, then the expression is evaluated and its value
 * (unless None) is sent as `display` messages with `result: true`, in the forms `display()` gives
 * (`_isol8_display`, src/display.ts: the object's `_repr_*_` forms, then text/plain = repr; a
 * matplotlib figure as PNG). `display()` itself sends its outputs over fd 4 here instead of writing
 * files: the kernel replaces the module's `_write`. Top-level `await` works (a cell that awaits
 * runs on one event loop that the kernel keeps across cells).
 *
 * At a cell's end, the figures it left open (pyplot's, with isol8's backend) are displayed as PNG
 * and closed, as `plt.show()` does. An exception ends the cell with `done.error` (the class name,
 * str(exc), the traceback as Python prints it from the cell's first frame); `SystemExit`
 * (`sys.exit()`) is reported the same way with its exit code, and the kernel stays, as in a
 * notebook. `os._exit` ends the kernel.
 *
 * SIGINT: while a cell runs it raises KeyboardInterrupt in the cell, except while the kernel itself
 * writes a message on fd 4 (then it is raised right after, so a message is never cut); while the
 * kernel waits for a cell it is ignored. A cell that installs its own SIGINT handler keeps it for
 * its later cells (the kernel uses its own only while it waits).
 */
export const PYTHON_CONTEXT_KERNEL = String.raw`
def _isol8_kernel():
    import ast, base64, builtins, json, linecache, os, signal, sys, traceback, types, _thread

    # fds 3 and 4 are the kernel's: a cell's child processes must not inherit them.
    os.set_inheritable(3, False)
    os.set_inheritable(4, False)
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    namespace = main.__dict__
    main_thread = _thread.get_ident()
    lock = _thread.allocate_lock()
    cell = 0
    running = False  # a cell runs: SIGINT raises KeyboardInterrupt in it
    guarded = 0  # the main thread writes a message: SIGINT waits until it is whole
    interrupted = False
    as_result = False  # display() now sends the value of the cell's last expression
    loop = None  # the event loop of cells that await

    def on_sigint(signum, frame):
        nonlocal interrupted
        if not running:
            return
        if guarded:
            interrupted = True
            return
        raise KeyboardInterrupt

    def send(message):
        nonlocal guarded, interrupted
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        in_main = _thread.get_ident() == main_thread
        if in_main:
            guarded += 1
        try:
            with lock:
                view = memoryview(line)
                while view:
                    view = view[os.write(4, view):]
        finally:
            if in_main:
                guarded -= 1
                if not guarded and interrupted and running:
                    interrupted = False
                    raise KeyboardInterrupt

    def write_output(mime, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        message = {"type": "display", "cell": cell, "mime": mime, "data": base64.b64encode(data).decode("ascii")}
        if as_result and _thread.get_ident() == main_thread:
            message["result"] = True
        send(message)

    try:
        import _isol8_display as outputs
        outputs._write = write_output
        display = outputs.display
    except ImportError:  # an image without isol8's display helper: results as text/plain only
        outputs = None
        display = lambda value: write_output("text/plain", repr(value))

    def run(code):
        nonlocal loop
        if not code.co_flags & 0x80:  # CO_COROUTINE: the cell awaits at top level
            return eval(code, namespace)
        if loop is None:
            import asyncio
            loop = asyncio.new_event_loop()
        return loop.run_until_complete(eval(code, namespace))

    def show_result(value):
        nonlocal as_result
        as_result = True
        try:
            display(value)
        finally:
            as_result = False
        pyplot = sys.modules.get("matplotlib.pyplot")
        if outputs is not None and pyplot is not None and outputs._is_figure(value):
            pyplot.close(value)  # shown: not again with the figures left open

    def show_open_figures():
        backend = sys.modules.get("_isol8_matplotlib")
        if backend is not None and "matplotlib.pyplot" in sys.modules:
            backend.show()

    def run_cell(source):
        filename = "<cell %d>" % cell
        # Tracebacks and inspect show the cell's lines (mtime None: linecache keeps the entry).
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = ast.parse(source, filename)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        run(compile(tree, filename, "exec", flags=flags, dont_inherit=True))
        if last is not None:
            value = run(compile(ast.Expression(last.value), filename, "eval", flags=flags, dont_inherit=True))
            if value is not None:
                show_result(value)
        show_open_figures()

    def describe(error):
        tb = error.__traceback__
        # The traceback starts at the cell's code: the kernel's (and asyncio's) frames before it are left out.
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell "):
            tb = tb.tb_next
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, tb
        lines = "".join(traceback.format_exception(type(error), error, tb)).splitlines()
        try:
            value = str(error)
        except Exception:  # an exception class whose __str__ fails: as the traceback words it
            value = "<exception str() failed>"
        return {"name": type(error).__name__, "value": value, "traceback": lines}

    def flush():
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass

    buffer = bytearray()

    def fill():
        chunk = os.read(3, 65536)
        if not chunk:  # the engine closed the context
            flush()
            os._exit(0)
        buffer.extend(chunk)

    def next_cell():
        while b"\n" not in buffer:
            fill()
        end = buffer.index(b"\n")
        fields = bytes(buffer[:end]).split(b" ")
        del buffer[:end + 1]
        if len(fields) != 2 or not all(field.isdigit() for field in fields):
            sys.stderr.write("isol8 kernel: a cell header is '<cell> <byte length>', got %r\n" % (b" ".join(fields),))
            flush()
            os._exit(2)
        number, length = int(fields[0]), int(fields[1])
        while len(buffer) < length:
            fill()
        source = bytes(buffer[:length]).decode("utf-8", "replace")
        del buffer[:length]
        return number, source

    signal.signal(signal.SIGINT, on_sigint)
    cell_handler = on_sigint
    send({"type": "ready"})
    while True:
        cell, source = next_cell()
        error = None
        exit_code = None
        interrupted = False
        try:
            signal.signal(signal.SIGINT, cell_handler)
            running = True
            run_cell(source)
            running = False
            cell_handler = signal.signal(signal.SIGINT, on_sigint)
        except BaseException as exc:
            running = False
            cell_handler = signal.signal(signal.SIGINT, on_sigint)
            error = describe(exc)
            if isinstance(exc, SystemExit):
                exit_code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        flush()
        done = {"type": "done", "cell": cell}
        if error is not None:
            done["error"] = error
        if exit_code is not None:
            done["exitCode"] = exit_code
        send(done)

_isol8_kernel()
`;

/** How the engine starts a python context: this interpreter, as the sandbox user, in the context's cwd. */
export const pythonContextKernel: ContextKernel = {
  command: ["python3", "-c", PYTHON_CONTEXT_KERNEL],
  interruptible: true,
};
