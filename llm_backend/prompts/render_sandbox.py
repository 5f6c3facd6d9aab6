"""Rendering user templates under hard limits: a locked Jinja sandbox inside a worker process that can be killed.

Templates are typed into a live preview by anyone who can open the page, so rendering must not be able to hang a
server thread, fill its memory or abort it. Jinja's sandbox stops attribute escapes but not work: a double loop over
``[1]*100000`` spun a thread forever, ``(text ~ ' ')*1000000`` made the tokenizer abort the process, and
``text|center(1000000000)`` built a 1 GB string. The guards, in the order they act:

1. The environment refuses every attribute access and every call, intercepts ``*``, ``**`` and ``+`` (a result
   longer than ``template_max_repeat`` is refused before it is built), wraps every ``{% for %}`` so all loops of one
   render together run at most ``template_max_loop`` iterations, replaces width-taking filters (``center``,
   ``indent``, ``wordwrap``, ``truncate``) with capped ones and drops ``format``. Filters are context-bound so Jinja
   never evaluates them while compiling (its constant folding would otherwise run ``'x'|center(10**9)`` in the
   server process).
2. Output is collected chunk by chunk and refused once it passes ``template_max_chars``, before anything tokenizes
   it.
3. Rendering runs in a separate Python process (``python -m llm_backend.prompts.render_sandbox``) with an
   address-space limit; the server waits ``template_timeout_s`` for the answer and then kills the worker. Killing a
   process is the only way to stop a C-level operation (a huge string join) — a thread cannot be interrupted.

The protocol is JSON lines over the worker's stdin/stdout (values are plain strings, lists and dicts, never
pickles). A small pool of workers (one per concurrently rendering thread, at most ``_MAX_WORKERS``) is started on
first use and reused: a round trip costs about 0.1 ms, the first start about 0.3 s.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
from typing import Any, Iterable, Mapping

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2 import exceptions as jexc
from jinja2.sandbox import SandboxedEnvironment

from llm_backend.core.limits import limits
from llm_backend.core.errors import TemplateError

_LOOP_FILTER = "_zss_loop_guard"


class RenderLimitError(Exception):
    """A render passed one of the limits (raised inside the worker, reported as a TemplateError)."""


class _Budget:
    """Per-render counters (the worker renders one template at a time)."""

    loops = 0
    max_loop = 10_000
    max_repeat = 100_000
    max_chars = 100_000


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


class LockedSandbox(SandboxedEnvironment):
    """No attribute of any value is reachable, nothing is callable, and size-building operators are bounded.

    Dict keys still work (``ex.text`` on a dict falls back to ``ex['text']``).
    """

    intercepted_binops = frozenset(["*", "**", "+"])

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            seq, n = (left, right) if _size(left) is not None else (right, left)
            if _size(seq) is not None and isinstance(n, int) and _size(seq) * max(n, 0) > _Budget.max_repeat:
                raise RenderLimitError(f"a value repeated with * would be {_size(seq) * n:,} long; the limit is "
                                       f"{_Budget.max_repeat:,}")
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                if abs(left) > 1e300 or abs(right) > 1e300:
                    raise RenderLimitError("a number in the template is too large")
        elif operator == "**":
            if not (isinstance(left, (int, float)) and isinstance(right, (int, float))) or abs(right) > 64 or abs(left) > 1e15:
                raise RenderLimitError("** is limited to small numbers (exponent at most 64)")
        elif operator == "+":
            a, b = _size(left), _size(right)
            if a is not None and b is not None and a + b > _Budget.max_repeat:
                raise RenderLimitError(f"a value joined with + would be {a + b:,} long; the limit is "
                                       f"{_Budget.max_repeat:,}")
        return super().call_binop(context, operator, left, right)


def _loop_guard(_ctx: Any, iterable: Any) -> Iterable[Any]:
    for item in iterable:
        _Budget.loops += 1
        if _Budget.loops > _Budget.max_loop:
            raise RenderLimitError(f"the template's loops ran more than {_Budget.max_loop:,} times in one prompt")
        yield item


def _call_filter(func: Any, ctx: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a Jinja filter the way Jinja would, passing the context, eval context or environment it asks for."""
    kind = getattr(func, "jinja_pass_arg", None)
    name = getattr(kind, "name", None)
    if name == "context":
        return func(ctx, *args, **kwargs)
    if name == "eval_context":
        return func(ctx.eval_ctx, *args, **kwargs)
    if name == "environment":
        return func(ctx.environment, *args, **kwargs)
    return func(*args, **kwargs)


def _capped(name: str, position: int, keyword: str, default: Any) -> Any:
    """A filter whose width-like argument is checked against the output limit before the filter runs."""
    base = SandboxedEnvironment().filters[name]

    @pass_context
    def filt(ctx: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        width = args[position] if len(args) > position else kwargs.get(keyword, default)
        n = len(width) if isinstance(width, str) else width
        if isinstance(n, (int, float)) and abs(n) > _Budget.max_chars:
            raise RenderLimitError(f"{name}({n:,}) is above the prompt length limit of {_Budget.max_chars:,} characters")
        return _call_filter(base, ctx, (value, *args), kwargs)

    return filt


def _context_bound(func: Any) -> Any:
    """The same filter, marked context-bound: Jinja never constant-folds those while compiling (it would otherwise
    run ``'x'|replace('x', 'xx…')`` chains in whichever process compiles the template)."""

    @pass_context
    def filt(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        return _call_filter(func, ctx, args, kwargs)

    return filt


def make_environment() -> LockedSandbox:
    env = LockedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, optimized=False)
    env.globals.clear()  # no range/cycler/namespace/lipsum/dict objects: a template sees only the row and reserved names
    for name in ("format", "pprint", "xmlattr", "attr", "map", "select", "reject", "selectattr", "rejectattr"):
        env.filters.pop(name, None)  # format builds unbounded strings; the others reach attributes or call things
    env.filters = {k: _context_bound(v) for k, v in env.filters.items()}
    env.filters["center"] = _capped("center", 0, "width", 80)
    env.filters["indent"] = _capped("indent", 0, "width", 4)
    env.filters["wordwrap"] = _capped("wordwrap", 0, "width", 79)
    env.filters["truncate"] = _capped("truncate", 0, "length", 255)
    env.filters[_LOOP_FILTER] = pass_context(_loop_guard)
    return env


ENV = make_environment()


def parse(source: str) -> nodes.Template:
    """Parse (no evaluation) with the source-length limit; syntax errors become TemplateError."""
    lim = limits()
    if len(source) > lim.template_max_source:
        raise TemplateError(f"The template is {len(source):,} characters long; the limit is "
                            f"{lim.template_max_source:,}. Prompts that long do not fit a model's context anyway.")
    try:
        return ENV.parse(source)
    except jexc.TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateError("The template is nested too deeply to read.") from None


def _guard_loops(ast: nodes.Template) -> nodes.Template:
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return ast


# ----------------------------------------------------------------------------------------------- in the worker
_COMPILED: dict[str, Any] = {}


def _render_here(source: str, ctx: Mapping[str, Any]) -> str:
    tpl = _COMPILED.get(source)
    if tpl is None:
        tpl = ENV.from_string(_guard_loops(ENV.parse(source)))
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        _COMPILED[source] = tpl
    _Budget.loops = 0
    out: list[str] = []
    size = 0
    for chunk in tpl.generate(ctx):
        size += len(chunk)
        if size > _Budget.max_chars:
            raise RenderLimitError(f"the prompt grew past {_Budget.max_chars:,} characters")
        out.append(chunk)
    return "".join(out)


def _answer(request: Mapping[str, Any]) -> dict[str, Any]:
    limits_now = request.get("limits") or {}  # the server's current limits travel with each request
    _Budget.max_loop = int(limits_now.get("loop", _Budget.max_loop))
    _Budget.max_repeat = int(limits_now.get("repeat", _Budget.max_repeat))
    _Budget.max_chars = int(limits_now.get("chars", _Budget.max_chars))
    try:
        return {"ok": _render_here(request["source"], request["ctx"])}
    except RenderLimitError as exc:
        return {"limit": str(exc)}
    except MemoryError:
        return {"limit": "rendering needed more memory than templates may use"}
    except jexc.SecurityError as exc:
        return {"security": str(exc)}
    except jexc.UndefinedError as exc:
        return {"undefined": str(exc)}
    except jexc.TemplateError as exc:
        return {"error": str(exc)}
    except RecursionError:
        return {"limit": "the template recursed too deeply"}
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def serve(stdin: Any = None, stdout: Any = None) -> None:
    """The worker loop: one JSON request per line in, one JSON answer per line out, until stdin closes."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    lim = limits()
    _Budget.max_loop, _Budget.max_repeat, _Budget.max_chars = (lim.template_max_loop, lim.template_max_repeat,
                                                                lim.template_max_chars)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (lim.template_worker_memory, lim.template_worker_memory))
    except (ImportError, ValueError, OSError):
        pass  # not on this OS: the parent's timeout still stops the worker
    for line in stdin:
        try:
            request = json.loads(line)
        except ValueError:
            answer = {"error": "bad request"}
        else:
            answer = _answer(request)
        try:
            text = json.dumps(answer, ensure_ascii=True)
        except MemoryError:
            text = json.dumps({"limit": "rendering needed more memory than templates may use"})
        stdout.write(text + "\n")
        stdout.flush()


# ----------------------------------------------------------------------------------------------- in the server
_MAX_WORKERS = 4


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "llm_backend.prompts.render_sandbox"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         env=env, cwd=root, close_fds=True)
        except OSError as exc:
            raise TemplateError(f"The template renderer could not start ({exc.strerror or exc}).") from None
        self.buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def request(self, payload: bytes, timeout: float) -> dict[str, Any] | None:
        """The answer, or None when the worker took longer than ``timeout`` or died (it is then killed)."""
        import time

        try:
            self.proc.stdin.write(payload)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:  # the worker died (memory limit, killed)
                self.kill()
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


class _Pool:
    def __init__(self) -> None:
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.started = 0

    def take(self) -> _Worker:
        with self.ready:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        return worker
                    worker.kill()
                    self.started -= 1
                if self.started < _MAX_WORKERS:
                    self.started += 1
                    break
                self.ready.wait()
        try:
            return _Worker()
        except BaseException:
            with self.ready:
                self.started -= 1
                self.ready.notify()
            raise

    def give(self, worker: _Worker) -> None:
        with self.ready:
            if worker.alive():
                self.idle.append(worker)
            else:
                self.started -= 1
            self.ready.notify()

    def close(self) -> None:
        with self.lock:
            for worker in self.idle:
                worker.kill()
            self.idle.clear()


_POOL = _Pool()
atexit.register(_POOL.close)


def render_limited(source: str, ctx: Mapping[str, Any]) -> str:
    """Render ``source`` with ``ctx`` in a worker under every limit; any failure is a :class:`TemplateError`."""
    lim = limits()
    parse(source)  # syntax and length errors are reported without a round trip
    try:
        payload = (json.dumps({"source": source, "ctx": ctx, "limits": {
            "loop": lim.template_max_loop, "repeat": lim.template_max_repeat, "chars": lim.template_max_chars}},
            ensure_ascii=True) + "\n").encode("ascii")
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"The template's values cannot be passed to the renderer: {exc}") from None
    worker = _POOL.take()
    try:
        answer = worker.request(payload, lim.template_timeout_s)
    finally:
        _POOL.give(worker)
    if answer is None:
        raise TemplateError(f"The template took longer than {lim.template_timeout_s:g} s to render (or used too much "
                            "memory) and was stopped. Simplify its loops; a prompt template should only place the "
                            "row's values into text.")
    if "ok" in answer:
        return str(answer["ok"])
    if "limit" in answer:
        raise TemplateError(f"The template was stopped: {answer['limit']}. Templates may build prompts of at most "
                            f"{lim.template_max_chars:,} characters, with at most {lim.template_max_loop:,} loop "
                            "steps.")
    if "security" in answer:
        raise TemplateError(f"The template tried something not allowed: {answer['security']}")
    if "undefined" in answer:
        msg = answer["undefined"]
        if "unsafe" in msg or "attribute" in msg:
            raise TemplateError(f"Attribute access is not allowed in templates ({msg}). Use plain placeholders "
                                "such as {{ text }} or {{ row['column'] }}.")
        raise TemplateError(f"Unknown placeholder: {msg}.")
    raise TemplateError(f"The template could not be rendered: {answer.get('error', 'unknown error')}")


if __name__ == "__main__":
    serve()
