"""The library's log records, as a command prints them: one line each, tracebacks with ``-v``.

Until an application configures logging, Python prints a warning or an error through
:data:`logging.lastResort`, traceback included: a hook that fails during ``replay`` would print
a page of frames after the summary, although the summary already said what failed. A command
promises one line per problem, so while it runs that last resort is replaced by a handler
that keeps the promise; ``--verbose`` brings the traceback back for whoever wants the frames.
An application that configures logging itself is never overridden: Python only falls back to
the last resort when no handler at all was found for a record.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["one_line_logs", "traceback_hint"]

_HINT = "-v shows the traceback"


def traceback_hint(verbose: bool) -> str:
    """What to add to a one-line error whose traceback was left out."""
    return "" if verbose else f" ({_HINT})"


class _OneLine(logging.Handler):
    def __init__(self, prog: str, verbose: bool) -> None:
        super().__init__(logging.WARNING)  # the last resort's level
        self.prog = prog
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            error = record.exc_info[1] if record.exc_info else None
            if error is not None and self.verbose:
                text += "\n" + "".join(traceback.format_exception(error)).rstrip()
            elif error is not None:
                reason = str(error).strip().splitlines()
                detail = f"{type(error).__name__}: {reason[0]}" if reason else type(error).__name__
                text += f": {detail}{traceback_hint(False)}"
            # sys.stderr looked up now: a test (or a pipe) may have replaced it since the start
            sys.stderr.write(f"{self.prog}: {record.levelname.lower()}: {text}\n")
            sys.stderr.flush()
        except Exception:  # a log line must never become the command's failure
            self.handleError(record)


@contextmanager
def one_line_logs(prog: str, *, verbose: bool) -> Iterator[None]:
    """Replace :data:`logging.lastResort` for the duration of one command."""
    previous = logging.lastResort
    logging.lastResort = _OneLine(prog, verbose)
    try:
        yield
    finally:
        logging.lastResort = previous
