"""The two values that cross the receiver's boundary: what came in, and what goes back."""

from __future__ import annotations

import functools
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, NamedTuple

from .headers import Headers
from .outcomes import Outcome  # re-exported: older code imports it from here

if TYPE_CHECKING:
    from .ordering import Newer

__all__ = ["Delivery", "Outcome", "Reply"]


class Delivery(NamedTuple):
    """One HTTP delivery as hooks see it (immutable: a hook cannot change what another sees).

    ``key`` is the idempotency key (``webhook-id``, else the body's ``id``, else ``AlertId``,
    else ``sha256:<body digest>``); ``None`` only on rejections that happen before a key can be
    derived. ``verified_by`` names the credential that matched, never its value. ``attempt``
    counts how many times hooks have started for this key, this run included (0 when hooks do
    not run).

    ``stale``, ``newer`` and ``gap`` place it in its ordering scope (:mod:`.ordering`): a
    stale delivery is older than an event of the same scope received before it, which
    ``newer`` names (key and ``generatedDate``); ``gap`` marks a legacy
    ``DataConnectionStatusChanged`` whose ``OldStatus`` is not the last ``NewStatus`` seen.
    """

    key: str | None
    headers: Headers
    body: bytes
    received_at: datetime
    verified_by: str | None = None
    attempt: int = 0
    method: str = "POST"
    stale: bool = False
    newer: Newer | None = None
    gap: bool = False


def _json_str(text: str | None) -> str:
    """``text`` as a JSON value, escaped to ASCII as ``json.dumps`` would."""
    return "null" if text is None else encode_basestring_ascii(text)


class Reply(NamedTuple):
    """What to send back: adapters write ``status``, ``headers`` and ``body`` verbatim."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    outcome: str
    key: str | None = None

    @classmethod
    def build(
        cls,
        status: int,
        outcome: Outcome,
        key: str | None,
        detail: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> Reply:
        # Always the same three fields in the same order, which senders and the CLI rely on;
        # only the key differs between two replies with the same outcome and detail.
        body = b"".join((_OPENINGS[outcome], _json_str(key).encode(), _closing(detail)))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers.extend(extra_headers)
        return cls(status, headers, body, outcome, key)


_OPENINGS = {outcome: f'{{"outcome": "{outcome.value}", "key": '.encode() for outcome in Outcome}


@functools.lru_cache(maxsize=64)
def _closing(detail: str) -> bytes:
    """The reply's tail; details are a handful of fixed texts and error reasons, so cached."""
    return f', "detail": {_json_str(detail)}}}'.encode()
