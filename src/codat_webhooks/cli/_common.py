"""What every subcommand shares: settings from flags or the environment, opening the store,
durations, and the one error type that becomes a one-line message and an exit status.

A command line that prints a traceback for a typo teaches users to distrust it, so every
expected failure is a :class:`CommandError` and :func:`codat_webhooks.cli.main` prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import settings
from ..describe import format_time, parse_time
from ..errors import ConfigurationError
from ..stores.base import Record, State, Store
from ..stores.sqlite import DEFAULT_DB_PATH
from ..verify import decode_signing_secret

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "ENV_AUTHORIZATION",
    "ENV_DB",
    "ENV_REDIS_URL",
    "ENV_SIGNING_SECRET",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "HelpFormatter",
    "add_credential_flags",
    "add_store_flags",
    "credentials",
    "cut",
    "emit",
    "format_time",
    "open_store",
    "parse_duration",
    "parse_since",
    "plain",
    "plugin_label",
    "positive_int",
    "select_records",
    "warn",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

ENV_AUTHORIZATION = settings.AUTHORIZATION
ENV_SIGNING_SECRET = settings.SIGNING_SECRET
ENV_DB = settings.DB
ENV_REDIS_URL = settings.REDIS_URL


class CommandError(Exception):
    """An expected failure: printed as ``codat-webhooks: error: <message>``, no traceback."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


# --- credentials -------------------------------------------------------------------------------


def add_credential_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--authorization",
        action="append",
        metavar="VALUE",
        help="the Authorization header value set in the Codat Portal (repeatable; "
        f"default ${ENV_AUTHORIZATION})",
    )
    parser.add_argument(
        "--signing-secret",
        action="append",
        metavar="WHSEC",
        help="the endpoint's whsec_ signing secret (repeatable, for rotation; default "
        f"${ENV_SIGNING_SECRET}, several separated by spaces or commas)",
    )


def credentials(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Authorization values and signing secrets: flags win, else the environment.

    The environment is read by :mod:`codat_webhooks.settings`, the code the app's own settings
    go through: a README placeholder (``whsec_...``) is ignored there with a warning, and a
    malformed value is refused under its variable's name, here as in the app. A flag is what
    the user typed on this command line, so a placeholder or a malformed secret there is an
    error naming the flag.
    """
    authorization: list[str] = list(args.authorization or [])
    secrets: list[str] = list(args.signing_secret or [])
    for flag, values in (("--authorization", authorization), ("--signing-secret", secrets)):
        for value in values:
            if settings.is_placeholder(value):
                raise CommandError(
                    f"{flag} {value!r} is a documentation placeholder: pass the real value",
                    EXIT_USAGE,
                )
    for secret in secrets:
        try:
            decode_signing_secret(secret)
        except ConfigurationError as exc:
            raise CommandError(f"--signing-secret: {exc}", EXIT_USAGE) from None
    if not authorization:
        from_env = settings.setting(os.environ, settings.AUTHORIZATION)
        authorization = [from_env] if from_env is not None else []
    if not secrets:
        try:
            secrets = settings.read_signing_secrets(os.environ)
        except ConfigurationError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
    return authorization, secrets


# --- stores ------------------------------------------------------------------------------------


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"SQLite database (default ${ENV_DB} or ./{DEFAULT_DB_PATH})",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"use Redis instead of SQLite: redis://host:6379/0 (default ${ENV_REDIS_URL})",
    )


def open_store(args: argparse.Namespace, *, create: bool) -> Store:
    """The store the flags or environment name; ``create=False`` refuses a missing SQLite file.

    Inspecting commands must not silently create an empty database in the wrong directory and
    then report "no deliveries": a missing file is almost always a wrong ``--db``.
    """
    redis_url = args.redis_url or settings.setting(os.environ, ENV_REDIS_URL)
    if redis_url and not args.db:
        try:
            from ..stores.redis import RedisStore
        except ImportError as exc:
            raise CommandError(
                f"--redis-url needs the redis extra: pip install 'codat-webhooks[redis]' ({exc})"
            ) from None
        return RedisStore.from_url(redis_url)
    path = Path(args.db or settings.setting(os.environ, ENV_DB) or DEFAULT_DB_PATH)
    if not create and not path.is_file():
        raise CommandError(
            f"no database at {path}: pass --db (or set {ENV_DB}) to the file `serve` writes"
        )
    if create and not path.parent.is_dir():
        raise CommandError(f"cannot create database {path}: directory {path.parent} does not exist")
    from ..stores.sqlite import SQLiteStore

    return SQLiteStore(str(path))


def plugin_label(manager: pluggy.PluginManager, plugin: object) -> str:
    """:func:`codat_webhooks.replaying.plugin_label`, imported when first needed: it brings in
    the receiver and pydantic, which the listing commands never use."""
    from ..replaying import plugin_label as label

    return label(manager, plugin)


def positive_int(text: str) -> int:
    """An argparse type for counts such as ``--repeat`` and ``--limit``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def require_keys_or_state(args: argparse.Namespace, verb: str, states: str) -> None:
    """The usage rule of the commands that act on stored deliveries (``replay``, ``resend``):
    name them, or name their state; checked before anything is loaded or opened."""
    if not args.keys and not args.state:
        raise CommandError(f"name the KEYs to {verb}, or pass --state {states}", EXIT_USAGE)


def select_records(store: Store, keys: Sequence[str], states: Sequence[str]) -> list[Record]:
    """The named keys (all must exist), then every record in ``states``, oldest first."""
    records: dict[str, Record] = {}
    missing = []
    for key in keys:
        record = store.get(key)
        if record is None:
            missing.append(key)
        else:
            records[key] = record
    if missing:
        raise CommandError(f"no delivery with key {', '.join(map(repr, missing))} in {store!r}")
    if states:
        for record in reversed(store.find(states=[State(s) for s in states])):  # oldest first
            records.setdefault(record.key, record)
    return list(records.values())


# --- time --------------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``, combinations like ``1d12h``, or bare seconds."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (use e.g. 90s, 15m, 12h, 30d, 2w or 1d12h)"
        )
    return sum(float(number) * _UNITS[unit or "s"] for number, unit in parts)


def parse_since(text: str) -> float:
    """A Unix time from a duration ago (``2h``) or an ISO 8601 date/time (UTC if naive)."""
    try:
        return datetime.now(timezone.utc).timestamp() - parse_duration(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --since {text!r} (use a duration like 2h or a date like 2026-05-01T10:00)"
        ) from None


def warn(message: str) -> None:
    """A warning on stderr, in the shape of the error line: stdout stays the command's output."""
    print(f"codat-webhooks: warning: {message}", file=sys.stderr, flush=True)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def plural(count: int, word: str, words: Sequence[str] = ()) -> str:
    return f"{count} {word if count == 1 else (words[0] if words else word + 's')}"


def cut(text: str, width: int) -> str:
    """``text`` fitted into ``width`` characters, with an ellipsis when something was cut."""
    text = " ".join(text.split())  # a multi-line error must not break the table
    return text if len(text) <= width else text[: width - 1] + "…"


def emit(obj: dict[str, Any]) -> None:
    """One JSON object on one line: what ``--json`` prints, for ``jq`` and scripts."""
    print(json.dumps(obj), flush=True)


_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def plain(doc: str | None) -> str:
    """A docstring as ``--help`` text: reStructuredText markup removed, the words kept.

    Module docstrings double as command descriptions; double backticks and Sphinx roles are
    for the API docs and read as noise in a terminal.
    """
    text = _ROLE.sub(lambda match: match[2].rsplit(".", 1)[-1] if match[1] else match[2], doc or "")
    return text.replace("``", "").replace("::\n", ":\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions filled to the terminal's width, paragraph by paragraph.

    The text comes from module docstrings wrapped for the source file (96 columns): printed as
    written, every line wraps again in an 80-column terminal, leaving a stub of a phrase on a
    line of its own. Paragraphs of prose are re-filled; a paragraph with an indented or bulleted
    line (an example command, a list) is kept exactly as written.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in re.split(r"\n[ \t]*\n", text.strip("\n")):
            lines = paragraph.splitlines()
            if any(line.startswith((" ", "\t", "- ", "* ")) for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
                continue
            words = " ".join(line.strip() for line in lines)
            paragraphs.append(
                textwrap.fill(
                    words,
                    width,
                    initial_indent=indent,
                    subsequent_indent=indent,
                    break_on_hyphens=False,  # never "keep-" / "alive"
                )
            )
        return "\n\n".join(paragraphs) + "\n"


def command(
    subparsers: Any, name: str, help: str, doc: str | None, epilog: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` is its module docstring, laid out as written.

    Each command documents itself once, in its module; this keeps the terminal rendering of
    those docstrings (markup removed, line breaks kept) the same for every command.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=plain(doc),
        formatter_class=HelpFormatter,
        epilog=epilog,
    )
    return parser
