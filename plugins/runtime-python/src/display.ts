import { createHash } from "node:crypto";
import { RICH_OUTPUTS_DIR } from "@isol8/kit";

/**
 * Where the image keeps the display helper: Debian's directory of python3 packages, which is on
 * every python3's sys.path and whose `.pth` files run at start-up (site.py), in a cold start and
 * in the warm start's interpreter alike. Nothing a program can change (the root is read-only).
 */
export const PYTHON_DISPLAY_SITE = "/usr/lib/python3/dist-packages";

/** matplotlib's backend, selected through MPLBACKEND in the runtime's env. */
export const PYTHON_MPL_BACKEND = "module://_isol8_matplotlib";

/**
 * `_isol8_display`: puts `display()` in the builtins. It imports nothing at start-up (the
 * modules it needs are loaded on the first display), so a program starts as it would without it.
 * Each output is one file in RICH_OUTPUTS_DIR (see @isol8/kit): the name starts with the
 * monotonic clock (execution order, across processes too), the content is the output's bytes.
 */
export const PYTHON_DISPLAY_MODULE = String.raw`"""isol8's display(): rich outputs of a program, read back by the engine after it ends."""

_DIR = ${JSON.stringify(RICH_OUTPUTS_DIR)}
_MIME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-")
# Tried in this order; text/plain (repr) comes last, always.
_REPRS = (
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("image/svg+xml", "_repr_svg_"),
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
)
_last = 0


def _check_mime(mime):
    if not isinstance(mime, str) or mime.count("/") != 1 or not all(c in _MIME_CHARS for c in mime.replace("/", "")) or mime.startswith("/") or mime.endswith("/"):
        raise ValueError("display(): mime must be a type like 'text/html' or 'image/png', got %r" % (mime,))


def _write(mime, data):
    """Writes one output: a file named by the monotonic clock, renamed into place once whole."""
    global _last
    import os, time
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    try:
        os.mkdir(_DIR, 0o700)
    except FileExistsError:
        pass
    now = max(time.monotonic_ns(), _last + 1)
    _last = now
    path = "%s/%020d-%d-%s" % (_DIR, now, os.getpid(), mime.replace("/", "_"))
    fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.rename(path + ".part", path)


def _warn(text):
    import sys
    sys.stderr.write("display(): %s\n" % text)


def _as_bytes(mime, value):
    """A repr's value as the output's bytes (None: leave the type out)."""
    if isinstance(value, tuple):  # (data, metadata), as IPython allows
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if mime.startswith("image/") and mime != "image/svg+xml" and isinstance(value, str):
        import base64
        return base64.b64decode(value)
    if mime == "application/json" and not isinstance(value, str):
        import json
        return json.dumps(value).encode()
    return str(value).encode("utf-8", "replace")


def _figure_png(figure):
    import io
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _is_figure(obj):
    cls = type(obj)
    return cls.__module__.startswith("matplotlib.") and cls.__name__ in ("Figure", "SubFigure")


def _display_one(obj, mime):
    if mime is not None:
        _check_mime(mime)
        data = _as_bytes(mime, obj)
        _write(mime, b"" if data is None else data)
        return
    if _is_figure(obj):
        _write("image/png", _figure_png(obj))
        return
    bundle = getattr(obj, "_repr_mimebundle_", None) if not isinstance(obj, type) else None
    if callable(bundle):
        try:
            result = bundle()
        except Exception as error:
            _warn("%s._repr_mimebundle_() failed: %r" % (type(obj).__name__, error))
            result = None
        if isinstance(result, tuple):
            result = result[0] if result else None
        if isinstance(result, dict) and result:
            for kind, value in result.items():
                try:
                    _check_mime(kind)
                    data = _as_bytes(kind, value)
                except Exception as error:
                    _warn("%s: %r" % (kind, error))
                    continue
                if data is not None:
                    _write(kind, data)
            return
    for kind, name in _REPRS:
        method = getattr(obj, name, None) if not isinstance(obj, type) else None
        if not callable(method):
            continue
        try:
            data = _as_bytes(kind, method())
        except Exception as error:
            _warn("%s.%s() failed: %r" % (type(obj).__name__, name, error))
            continue
        if data is not None:
            _write(kind, data)
    _write("text/plain", repr(obj))


def display(*objs, mime=None):
    """Shows each object as rich outputs (result.outputs): every _repr_*_ it has (PNG, JPEG, SVG,
    HTML, Markdown, LaTeX, JSON) then text/plain (its repr); a matplotlib figure as PNG. With
    mime, the object is that output's data as it is: str, bytes, or (for a JSON type) a value."""
    for obj in objs:
        _display_one(obj, mime)


def _install():
    import builtins
    if not hasattr(builtins, "display"):
        builtins.display = display


_install()
`;

/**
 * `_isol8_matplotlib`: Agg, whose plt.show() sends each open figure to display() as PNG and
 * closes it; figures still open when the program ends are sent too (atexit, registered after
 * pyplot's own, so it runs first).
 */
export const PYTHON_MPL_BACKEND_MODULE = String.raw`"""isol8's matplotlib backend: Agg; plt.show() and the program's end display open figures as PNG."""
import atexit

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

import _isol8_display

FigureCanvas = FigureCanvasAgg
FigureManager = FigureManagerBase


def show(*args, **kwargs):
    for manager in sorted(Gcf.get_all_fig_managers(), key=lambda manager: manager.num):
        _isol8_display.display(manager.canvas.figure)
    Gcf.destroy_all()


atexit.register(show)
`;

/** Files of the build context and the line that puts them in the image. */
export const PYTHON_DISPLAY_FILES = {
  "_isol8_display.py": PYTHON_DISPLAY_MODULE,
  "_isol8_matplotlib.py": PYTHON_MPL_BACKEND_MODULE,
  "_isol8_display.pth": "import _isol8_display\n",
} as const;

// Compiled at build (the root is read-only at run time, so python could never cache them): every
// start imports _isol8_display through its .pth, and compiling it cost ~2 ms of each start.
// unchecked-hash: the source never changes under the .pyc, so python need not stat it.
const COMPILED = Object.keys(PYTHON_DISPLAY_FILES).filter((name) => name.endsWith(".py"));
export const PYTHON_DISPLAY_DOCKERFILE =
  `COPY ${Object.keys(PYTHON_DISPLAY_FILES).join(" ")} ${PYTHON_DISPLAY_SITE}/\n` +
  `RUN python3 -m compileall -q --invalidation-mode unchecked-hash ${COMPILED.map((name) => `${PYTHON_DISPLAY_SITE}/${name}`).join(" ")}\n`;

/** Part of the image's version: a changed helper is a new image. */
export const PYTHON_DISPLAY_HASH = createHash("sha256").update(Object.values(PYTHON_DISPLAY_FILES).join("\0")).digest("hex").slice(0, 12);
