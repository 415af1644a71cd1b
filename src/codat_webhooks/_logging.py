"""The library's loggers, whose records every handler can write.

A hook's error text can carry a lone surrogate: JSON's ``"\\ud800"`` escape decodes to one, so
a hook that puts a payload value in its exception message passes it on. A UTF-8 file handler
cannot encode such a character; it prints "--- Logging error ---" and drops the whole record,
and the record dropped is the one a person needs: a hook failed. So every ``codat_webhooks``
logger carries :class:`WritableText`, which makes a warning or error record encodable before
any handler sees it.
"""

from __future__ import annotations

import logging

__all__ = ["WritableText", "library_logger"]


def _writable(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class WritableText(logging.Filter):
    """Rewrites a warning or error record whose message or traceback UTF-8 cannot encode.

    Such a record gets its message formatted and escaped, and its traceback rendered and
    escaped into ``exc_text``, which formatters print instead of formatting ``exc_info``
    again. Every other record passes untouched (so a formatter's own ``formatException``
    still runs), and records below ``WARNING`` are not even looked at: the library's own
    INFO lines carry keys, which the receiver admits only as ASCII, and ``%r`` of the rest.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if not _encodes(message):
            record.msg, record.args = _writable(message), ()
        if record.exc_info and not record.exc_text:
            rendered = logging.Formatter().formatException(record.exc_info)
            if not _encodes(rendered):
                record.exc_text = _writable(rendered)
        return True


_FILTER = WritableText()


def library_logger(name: str) -> logging.Logger:
    """The logger ``name`` (one of ``codat_webhooks``'s), with :class:`WritableText` on it."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
