"""A small case-insensitive, read-only view of request headers.

Adapters hand us headers as a dict, a list of pairs or an ASGI byte list; HTTP says names are
case-insensitive. Normalising once here keeps every later lookup a plain dict hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

__all__ = ["HeaderInput", "Headers", "redact"]

HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
REDACTED = "[redacted]"


class Headers(Mapping[str, str]):
    """Header names are matched in any case; a repeated name keeps its first value.

    ``items()`` yields lower-cased names. :attr:`raw` keeps every pair as received, for
    diagnostics and for storing alongside a delivery.
    """

    __slots__ = ("_first", "raw")

    def __init__(self, headers: HeaderInput | None = None) -> None:
        if type(headers) is dict or isinstance(headers, Mapping):
            raw = tuple(headers.items())
        else:
            raw = tuple(headers or ())
        first: dict[str, str] = {}
        # reversed: the first occurrence of a repeated name wins
        for name, value in reversed(raw):
            if type(name) is not str or type(value) is not str:
                # adapters give text; anything else is converted, once
                raw = tuple([(str(k), str(v)) for k, v in raw])
                first = {k.lower(): v for k, v in reversed(raw)}
                break
            first[name.lower()] = value
        self.raw: tuple[tuple[str, str], ...] = raw
        self._first = first

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        # The names are kept lower-case, and the library asks for them in lower case on every
        # delivery (webhook-id, authorization...): those are found as they are.
        value = self._first.get(name)
        if value is None:
            value = self._first.get(name.lower(), default)
        return value

    def has_none_of(self, lowercase_names: frozenset[str]) -> bool:
        """Whether no header has any of these (lower-case) names: one set operation, for the
        checks every delivery makes, such as "is this a signed delivery at all"."""
        return lowercase_names.isdisjoint(self._first)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"Headers({list(redact(self.raw))!r})"


def redact(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The pairs with credential values replaced, so they can be logged or stored safely."""
    return tuple(
        [(name, REDACTED if name.lower() in _SECRET_HEADERS else value) for name, value in pairs]
    )
