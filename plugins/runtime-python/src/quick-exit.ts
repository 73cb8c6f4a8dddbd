/**
 * The end of a warm execution (src/warm-start.ts), in Python: leave without the interpreter's
 * teardown when the teardown would do nothing a program or its user could see.
 *
 * Why: `Py_FinalizeEx` frees every object and module of the interpreter one by one; for a
 * program that prints a line that is most of its time in the container (about 1.5 ms of CPU
 * and of latency per execution here). Its effects that can be seen are few, and come in this
 * order: non-daemon threads are joined, atexit callbacks run, stdout and stderr are flushed
 * (an error there makes the exit status 120), then objects die: `__del__` methods, weakref
 * callbacks, generators' `finally` blocks, files flushing what they buffered, ResourceWarnings.
 *
 * So `_isol8_quick_exit(status)` runs the first part exactly as the interpreter would (the
 * same atexit function), then proves that nothing which dies could run code or flush anything:
 * every live object the collector tracks (all instances of classes defined in Python, every
 * container) is of a type known to die silently, or a finished generator, a closed file, the
 * standard streams, a weakref whose callback only tidies a weak collection; every module loaded
 * since start-up is Python code or a C module known to make only such types; warnings are as at
 * start-up (ResourceWarning ignored). Only then does it flush the standard streams and call
 * `os._exit(status)`. Anything else, or any doubt, returns: the caller then raises
 * `SystemExit(status)` and the interpreter finalizes as it always does (a check that returns
 * has run nothing twice: atexit callbacks are removed as they run, and threading, if imported,
 * sends every case to the interpreter before anything runs).
 *
 * `_isol8_startup()` notes what a fresh interpreter holds (taken before the request arrives).
 *
 * One difference is left, on purpose: a thread that an atexit callback starts (with threading
 * imported only then) is joined by the interpreter's finalization after this check declines, where
 * a fresh interpreter (which joins threads before atexit) would not wait for it.
 */
export const PYTHON_QUICK_EXIT = String.raw`
# C modules whose types hold no resource and run no code when they die (an object of one of
# their types is checked like any other: its class, the objects it holds).
_ISOL8_SILENT_C_MODULES = frozenset((
    "_abc", "_ast", "_bisect", "_blake2", "_codecs", "_collections", "_contextvars", "_csv", "_datetime",
    "_decimal", "_functools", "_hashlib", "_heapq", "_json", "_locale", "_md5", "_opcode",
    "_operator", "_pickle", "_random", "_sha1", "_sha256", "_sha3", "_sha512", "_sre",
    "_stat", "_statistics", "_string", "_struct", "_typing", "_weakref", "array", "atexit",
    "binascii", "cmath", "errno", "gc", "grp", "itertools", "math", "posix", "pwd", "time",
    "unicodedata", "zlib",
))
# What the C types of those modules (and the interpreter's own) give as type.__module__.
_ISOL8_SILENT_TYPE_MODULES = frozenset((
    "builtins", "types", "collections", "_collections", "ast", "sys", "pickle", "os", "posix", "time", "itertools",
    "functools", "operator", "re", "_sre", "_random", "_json", "_struct", "datetime", "decimal",
    "_abc", "math", "array", "zlib", "_hashlib", "_blake2", "_sha512", "_sha256", "_sha1", "_md5",
    "_sha3", "unicodedata", "_csv", "_pickle", "_contextvars", "Token", "_statistics",
))
# Built-in types that may run code when they die, or hold what another module's C code frees.
_ISOL8_LOUD_BUILTINS = frozenset((
    "async_generator", "async_generator_asend", "async_generator_athrow",
    "async_generator_wrapped_value", "anext_awaitable", "coroutine_wrapper", "PyCapsule",
))


def _isol8_startup():
    """What a fresh interpreter holds at start-up (taken before the request): its modules, warning
    filters and standard streams; and an audit hook that notes a program adding its own (which
    would see every audited call the check below makes)."""
    import os, sys
    streams = []
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        buffer = getattr(stream, "buffer", None)
        streams += [stream, buffer, getattr(buffer, "raw", None)]
    hooks = []
    def audit(event, args):
        if event == "sys.addaudithook":
            hooks.append(True)
    sys.addaudithook(audit)
    async def coroutine():
        pass
    probe = coroutine()
    probe.close()
    return {
        "generator": type((lambda: (yield))()),
        "coroutine": type(probe),
        "modules": frozenset(sys.modules),
        "filters": list(sys.modules["_warnings"].filters),
        "streams": (sys.stdin, sys.stdout, sys.stderr),
        "stream_ids": frozenset(id(s) for s in streams if s is not None),
        "hooks": hooks,
        "exit": os._exit,
        "kill": os.kill,
        "pid": os.getpid(),
        "signals": sys.modules["_signal"],
    }


def _isol8_teardown_is_silent(startup):
    """Whether the interpreter's teardown would run no code and flush nothing (see above)."""
    import sys
    if sys.flags.dev_mode or sys.warnoptions or list(sys.modules["_warnings"].filters) != startup["filters"]:
        return False
    now = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    if any(a is not b for a, b in zip(now, startup["streams"] * 2)):
        return False
    for name in sys.modules.keys() - startup["modules"]:
        origin = getattr(getattr(sys.modules[name], "__spec__", None), "origin", None)
        if (origin == "built-in" or (isinstance(origin, str) and origin.endswith(".so"))) and name not in _ISOL8_SILENT_C_MODULES:
            return False
    # Only what a fresh interpreter has loaded, and two built-in modules (importing weakref or
    # types would cost more than the teardown this saves).
    import gc
    from itertools import compress
    if gc.callbacks:
        return False
    iobase, weakref_type = sys.modules["_io"]._IOBase, sys.modules["_weakref"].ReferenceType
    generator_type, coroutine_type = startup["generator"], startup["coroutine"]
    objects = gc.get_objects()
    per_object = set()
    for kind in set(map(type, objects)):
        if kind is type:
            continue
        if issubclass(kind, (weakref_type, iobase)) or kind is generator_type or kind is coroutine_type:
            # Judged one by one below; a subclass defined in Python must not add a __del__.
            if any("__del__" in base.__dict__ for base in kind.__mro__ if base.__flags__ & (1 << 9)):
                return False
            per_object.add(kind)
            continue
        for base in kind.__mro__:
            if "__del__" in base.__dict__:
                return False
            if not base.__flags__ & (1 << 9):  # a C type (not a heap type): only the known ones
                module = base.__module__
                if module not in _ISOL8_SILENT_TYPE_MODULES or (module == "builtins" and base.__name__ in _ISOL8_LOUD_BUILTINS):
                    if (module, base.__name__) != ("_io", "IncrementalNewlineDecoder"):
                        return False
    for obj in compress(objects, map(per_object.__contains__, map(type, objects))):
        if isinstance(obj, weakref_type):
            callback = obj.__callback__
            if callback is not None and not _isol8_tidies_weak_collection(callback):
                return False
        elif isinstance(obj, generator_type):
            if obj.gi_frame is not None:  # a generator still to be closed: its finally blocks would run
                return False
        elif isinstance(obj, coroutine_type):
            if obj.cr_frame is not None:
                return False
        elif id(obj) not in startup["stream_ids"] and not obj.closed:  # a file that would flush and close
            return False
    return True


def _isol8_tidies_weak_collection(callback):
    """A weakref callback that only removes the dead entry of a weak collection (ABC caches, WeakSet, WeakValueDictionary, WeakKeyDictionary)."""
    if type(callback).__name__ == "builtin_function_or_method":
        return getattr(callback, "__name__", "") == "_destroy" and type(getattr(callback, "__self__", None)).__name__ == "ReferenceType"
    return getattr(callback, "__module__", None) in ("_weakrefset", "weakref") and getattr(callback, "__qualname__", "") in (
        "WeakSet.__init__.<locals>._remove",
        "WeakValueDictionary.__init__.<locals>.remove",
        "WeakKeyDictionary.__init__.<locals>.remove",
    )


def _isol8_quick_exit(status, startup, sigint=False):
    """Exits with status as the interpreter would at its end (or by SIGINT, as after an unhandled
    ^C), if its teardown would be silent; else returns."""
    try:
        import os, sys
        # Threads are joined before atexit runs: any thread (or threading's own exit hooks) is the
        # interpreter's to end. Asked again after atexit, whose callbacks may start either.
        def declined():
            return startup["hooks"] or "threading" in sys.modules or sys.modules["_thread"]._count()
        if declined() or sys.gettrace() or sys.getprofile() or sys.flags.inspect or os.environ.get("PYTHONINSPECT"):
            return
        atexit = sys.modules.get("atexit")
        if atexit is not None:
            atexit._run_exitfuncs()
        if declined() or not _isol8_teardown_is_silent(startup):
            return
        for stream in (sys.stdout, sys.stderr):
            if not stream.closed:
                stream.flush()
    except BaseException:
        return  # the interpreter's own end (a failed flush: it flushes again and reports it, exit status 120)
    if sigint:
        signals = startup["signals"]
        signals.signal(signals.SIGINT, signals.SIG_DFL)
        startup["kill"](startup["pid"], signals.SIGINT)
    startup["exit"](status)
`;
