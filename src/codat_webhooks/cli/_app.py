"""``--app MODULE:ATTRIBUTE``: load the application's own receiver, as ``flask --app`` does.

The receiver that matters is the one the application built: its store, its plugins, its
settings. A command that built its own from entry points would replay deliveries through
no handlers at all and mark them done, which loses the work for good. So the commands that
touch deliveries can load the application and find its receiver, wherever it is:

- the attribute is a :class:`~codat_webhooks.Receiver`;
- or a function taking no arguments that returns one (or returns an app, as ``create_app`` does);
- or a WSGI/ASGI application (Flask, FastAPI, Starlette, ...) with the receiver mounted through
  :mod:`codat_webhooks.wsgi` or :mod:`codat_webhooks.asgi`. Frameworks are not imported here:
  the search follows the attributes they use to chain applications (``wsgi_app``, ``app``,
  ``routes``, ``mounts``, ``user_middleware``...), duck-typed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import EXIT_USAGE, CommandError, first_line, open_store
from ._logs import traceback_hint

if TYPE_CHECKING:
    from ..receiver import Receiver
    from ..stores.base import Store

__all__ = ["ENV_APP", "LoadedApp", "add_app_flag", "load_app", "store_for"]

ENV_APP = "CODAT_WEBHOOKS_APP"

_CHILDREN = (
    "wsgi_app",
    "app",
    "webhook",
    "receiver",
    "application",
    "router",
    "routes",
    "mounts",
    "user_middleware",
    "middleware_stack",
    "endpoint",
    "args",
    "kwargs",
    "options",
)
"""Attributes through which frameworks and middlewares reach the application they wrap."""

_MAX_VISITS = 2000


@dataclass(frozen=True, slots=True)
class LoadedApp:
    spec: str
    """``MODULE:ATTRIBUTE`` as given."""
    receiver: Receiver
    target: object
    """What the attribute named (after calling a factory): the receiver itself or an app."""
    path: str | None
    """Where the receiver is mounted in ``target``, when it was found through an adapter."""

    @property
    def is_asgi(self) -> bool:
        call = getattr(type(self.target), "__call__", None)  # noqa: B004 - the method, not callable()
        return inspect.iscoroutinefunction(self.target) or inspect.iscoroutinefunction(call)


def add_app_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTRIBUTE",
        help="use your application's receiver (its store, plugins and settings): a Receiver, a "
        "function returning one, or a WSGI/ASGI app with one mounted, e.g. myapp.web:app "
        f"(default ${ENV_APP})",
    )


def load_app(args: argparse.Namespace, *, serving: bool = False) -> LoadedApp | None:
    """The receiver ``--app`` (or ``CODAT_WEBHOOKS_APP``) names; ``None`` when neither is set.

    Unless ``serving``, the receiver's queue is closed as soon as it is loaded: a
    :class:`~codat_webhooks.queues.LocalQueue` starts worker threads and a sweeper when its
    receiver is built, and those must not run hooks inside ``replay`` or ``events``, whose
    process exits (cutting a running hook off) as soon as the command is done.
    """
    spec = getattr(args, "app", None) or os.environ.get(ENV_APP)
    if not spec:
        return None
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            f"--app {spec!r}: use MODULE:ATTRIBUTE, e.g. myapp.web:app or myapp.hooks:receiver",
            EXIT_USAGE,
        )
    verbose = bool(getattr(args, "verbose", False))
    module = _import(module_name, spec, verbose)
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CommandError(
                f"--app {spec!r}: module {module_name!r} has no attribute {attribute!r}",
                EXIT_USAGE,
            ) from None
    app = _resolve(spec, value, verbose)
    if not serving and app.receiver.queue is not None:
        app.receiver.queue.close()
    return app


def store_for(args: argparse.Namespace, app: LoadedApp | None, *, create: bool) -> Store:
    """The app's store, unless ``--db`` or ``--redis-url`` is given, which then wins."""
    if app is not None and not args.db and not args.redis_url:
        return app.receiver.store
    return open_store(args, create=create)


def _import(module_name: str, spec: str, verbose: bool) -> Any:
    # As `python -m` and `flask --app` do: the current directory's modules are importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise CommandError(
                f"--app {spec!r}: no module named {exc.name!r} (run from the directory that "
                "holds it, or put it on PYTHONPATH)",
                EXIT_USAGE,
            ) from None
        raise _failed(spec, f"importing {module_name!r}", exc, verbose) from None
    except Exception as exc:  # the application's own code raised
        raise _failed(spec, f"importing {module_name!r}", exc, verbose) from None


def _failed(spec: str, doing: str, exc: Exception, verbose: bool) -> CommandError:
    """One line saying what failed and where in the application; the frames only if asked.

    A missing setting in the app is the usual cause, and its message says everything; the
    file and line point at the app's own code for the rarer bug, and ``-v`` has the rest.
    """
    if verbose:
        traceback.print_exception(exc)
    return CommandError(
        f"--app {spec!r}: {doing} failed: {type(exc).__name__}: {first_line(str(exc))}"
        f"{_where(exc)}{traceback_hint(verbose)}"
    )


def _where(exc: BaseException) -> str:
    """`` (at app.py:12)``: the deepest frame outside this package and the import machinery."""
    package = Path(__file__).resolve().parent.parent
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if frame.filename.startswith("<") or path.parent.name == "importlib":
            continue
        if path.resolve().is_relative_to(package):
            continue
        try:
            shown = str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            shown = frame.filename
        return f" (at {shown}:{frame.lineno})"
    return ""


def _resolve(spec: str, value: object, verbose: bool) -> LoadedApp:
    found = _find(value)
    if not found and _is_factory(value):
        try:
            value = value()  # type: ignore[operator]
        except Exception as exc:
            raise _failed(spec, "calling it", exc, verbose) from None
        found = _find(value)
    receivers = list(dict.fromkeys(id(receiver) for receiver, _ in found))
    if not receivers:
        raise CommandError(
            f"--app {spec!r}: found no codat_webhooks Receiver in {type(value).__name__} "
            f"{_short(value)}: point --app at the Receiver, at a function returning one, or at "
            "an app that mounts it with codat_webhooks.wsgi / codat_webhooks.asgi",
            EXIT_USAGE,
        )
    if len(receivers) > 1:
        paths = ", ".join(sorted({path or "?" for _, path in found}))
        raise CommandError(
            f"--app {spec!r}: {len(receivers)} receivers are mounted ({paths}): point --app "
            "at the one to use",
            EXIT_USAGE,
        )
    receiver, path = found[0]
    return LoadedApp(spec, receiver, value, path)


def _is_factory(value: object) -> bool:
    if not (inspect.isfunction(value) or inspect.ismethod(value)):
        return False
    try:
        inspect.signature(value).bind()
    except TypeError:
        return False
    return True


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _find(root: object) -> list[tuple[Receiver, str | None]]:
    """Every receiver reachable from ``root``, with the path it is mounted at when known."""
    from .. import asgi, wsgi
    from ..receiver import Receiver

    found: list[tuple[Receiver, str | None]] = []
    seen: set[int] = set()
    queue: list[tuple[object, str]] = [(root, "")]
    while queue and len(seen) < _MAX_VISITS:
        node, prefix = queue.pop(0)
        if id(node) in seen or node is None or isinstance(node, str | bytes | int | float):
            continue
        seen.add(id(node))
        if isinstance(node, Receiver):
            found.append((node, prefix or None))
            continue
        if isinstance(node, wsgi.WebhookMiddleware | asgi.WebhookMiddleware):
            found.append((node.webhook.receiver, prefix + node.path))
            queue.append((node.app, prefix))
            continue
        if isinstance(node, wsgi.WebhookApp | asgi.WebhookApp):
            found.append((node.receiver, prefix or None))
            continue
        declared = _declared_middleware(node)
        if declared is not None:
            found.append((declared[0], prefix + declared[1]))
            continue
        queue.extend(_children(node, prefix))
    return found


def _declared_middleware(node: object) -> tuple[Receiver, str] | None:
    """``app.add_middleware(WebhookMiddleware, receiver=..., path=...)`` before it is built.

    Starlette keeps such a declaration as ``cls``, ``args`` and ``kwargs`` until the first
    request builds the middleware stack.
    """
    from ..asgi import WebhookMiddleware
    from ..receiver import Receiver

    cls = getattr(node, "cls", None)
    if not (inspect.isclass(cls) and issubclass(cls, WebhookMiddleware)):
        return None
    args = tuple(getattr(node, "args", ()) or ())
    kwargs = dict(getattr(node, "kwargs", None) or getattr(node, "options", None) or {})
    receiver = kwargs.get("receiver", args[0] if args else None)
    path = kwargs.get("path", args[1] if len(args) > 1 else "/webhooks/codat")
    if not isinstance(receiver, Receiver) or not isinstance(path, str):
        return None
    return receiver, path


def _children(node: object, prefix: str) -> Iterator[tuple[object, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            # werkzeug's DispatcherMiddleware mounts apps under path prefixes
            sub = prefix + key if isinstance(key, str) and key.startswith("/") else prefix
            yield value, sub
        return
    if isinstance(node, list | tuple):
        for item in node:
            yield item, prefix
        return
    if inspect.ismodule(node) or inspect.isroutine(node) or inspect.isclass(node):
        return
    path = getattr(node, "path", None)
    # a Starlette Route or Mount: what it holds is served under its path
    sub = prefix + path if isinstance(path, str) and path.startswith("/") else prefix
    for name in _CHILDREN:
        try:
            child = getattr(node, name, None)
        except Exception:  # noqa: S112 - a property that fails is simply not a way in
            continue
        if child is not None and child is not node:
            yield child, sub
