"""The base of every string-valued enum here: rule types, event types, outcomes, states.

Their members are written into JSON replies, log lines, store rows and CLI output, and compared
with the strings senders and users type, so a member must behave as its value everywhere:
printed, formatted and hashed (``{"processed": ...}[Outcome.PROCESSED]`` finds the entry).
``enum.StrEnum`` does the printing from Python 3.11 only; we support 3.10.
"""

from __future__ import annotations

import enum

__all__ = ["TextEnum"]


class TextEnum(str, enum.Enum):
    """A ``str`` enum whose members print, format and hash as their values."""

    # Printed and formatted as the text it holds (Enum would print ``Outcome.PROCESSED``).
    __str__ = str.__str__

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    # Equal to its value, so it must hash like it (Enum hashes the member's name instead).
    __hash__ = str.__hash__
