"""Admission: everything decided about a delivery before any store is asked.

``(method, headers, body)`` in; out comes either an :class:`Admitted` delivery, ready to claim,
or a :class:`Rejection` with the error that becomes its status. No I/O, so it is tested without
a store. The checks run in the order that keeps secrets and storage safe:

1. the method (Codat POSTs; a Portal transformation can turn that into PUT);
2. the size, before anything reads the body;
3. the credentials, over the raw bytes, before anything decodes them;
4. JSON, then the model for the rule type or event type;
5. the idempotency key (``webhook-id``, else the body's ``id``, else ``AlertId``, else the
   body's SHA-256) and what the store will keep.

An authenticated body that fails 4 or 5 is rejected *with* a dead letter to park: Codat
authenticated it, so it is kept for a person to look at. An unauthenticated body is never kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from .delivery import Delivery
from .errors import CodatWebhookError, MethodNotAllowedError, PayloadError, PayloadTooLargeError
from .headers import HeaderInput, Headers, redact
from .models._parse import load_object
from .ordering import IN_ORDER, Order, mark_of
from .routing import Route, describe, key_from_body, route
from .stores.base import Entry, key_problem
from .verify import Authenticator, message_id

__all__ = ["ALLOWED_METHODS", "Admission", "Admitted", "Rejection", "TooLarge"]

ALLOWED_METHODS = ("POST", "PUT")  # PUT: a Svix transformation can change the method


class TooLarge(NamedTuple):
    """What an adapter reads instead of a body that passes ``max_body_bytes``.

    Hand ``size`` (the declared ``Content-Length``, or ``None`` for a chunked body cut off at
    the limit) to :meth:`Receiver.reject_too_large` for the reply.
    """

    size: int | None


@dataclass(slots=True)
class Admitted:
    """A delivery that passed every check that needs no store: ready to claim."""

    headers: Headers
    body: bytes
    received_at: datetime
    verified_by: str | None
    method: str
    route: Route
    entry: Entry

    def delivery(self, attempt: int = 0, order: Order = IN_ORDER) -> Delivery:
        """What hooks see, with how many times hooks have started for this key."""
        return Delivery(
            self.entry.key,
            self.headers,
            self.body,
            self.received_at,
            self.verified_by,
            attempt,
            self.method,
            *order,
        )


class Rejection(NamedTuple):
    """A delivery refused before its hooks: the error, whom to tell, and what to keep."""

    error: CodatWebhookError
    delivery: Delivery | None
    """What ``on_rejected`` receives; ``None`` when nothing was read (a wrong method)."""
    park: Entry | None = None
    """The record to keep as a dead letter: authenticated bodies we could not process."""


WRONG_METHOD = Rejection(MethodNotAllowedError("use POST or PUT"), None)


class Admission:
    """The checks of the module docstring, configured once per receiver."""

    def __init__(
        self,
        authenticator: Authenticator,
        max_body_bytes: int,
        received_at: Callable[[], datetime],
    ) -> None:
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes
        self.received_at = received_at

    def admit(self, method: str, headers: HeaderInput, body: bytes) -> Admitted | Rejection:
        method = method.upper()
        if method not in ALLOWED_METHODS:
            return WRONG_METHOD
        hdrs = headers if type(headers) is Headers else Headers(headers)
        if len(body) > self.max_body_bytes:
            return self.too_large(method, hdrs, len(body), body)
        received_at = self.received_at()
        header_key = message_id(hdrs)
        try:
            verified_by = self.authenticator.verify(hdrs, body)
        except CodatWebhookError as exc:
            return Rejection(exc, Delivery(header_key, hdrs, body, received_at, method=method))
        fingerprint = hashlib.sha256(body).hexdigest()
        key = header_key
        obj: Mapping[str, Any] | None = None
        try:
            obj = load_object(body)
            key = key or key_from_body(obj) or f"sha256:{fingerprint}"
            routed = route(obj)
            entry = Entry(
                key,
                fingerprint,
                body,
                redact(hdrs.raw),
                routed.kind,
                routed.company_id,
                mark=mark_of(routed.payload, obj),
            )
            if not entry.plain():  # rare: non-ASCII, NUL or a long key; refused, not cleaned
                if (problem := key_problem(key)) is not None:
                    raise PayloadError(f"the delivery's ID is {problem}")
                if entry.storable() != entry:
                    raise PayloadError("the type or company ID is not storable text")
        except PayloadError as error:
            if key is None or key_problem(key) is not None:
                key = f"sha256:{fingerprint}"  # the body's own ID cannot be a store key
            delivery = Delivery(key, hdrs, body, received_at, verified_by, method=method)
            return Rejection(error, delivery, dead_letter(delivery, fingerprint, obj))
        return Admitted(hdrs, body, received_at, verified_by, method, routed, entry)

    def too_large(
        self, method: str, headers: HeaderInput, size: int | None, body: bytes = b""
    ) -> Rejection:
        """A body over ``max_body_bytes``, measured by us or (``size``) by the adapter, which
        stopped reading (so ``on_rejected`` sees what was read: nothing, or all of it)."""
        method = method.upper()
        if method not in ALLOWED_METHODS:
            return WRONG_METHOD
        hdrs = headers if type(headers) is Headers else Headers(headers)
        delivery = Delivery(message_id(hdrs), hdrs, body, self.received_at(), method=method)
        measured = "a chunked body" if size is None else f"body of {size} bytes"
        error = PayloadTooLargeError(f"{measured} exceeds max_body_bytes={self.max_body_bytes}")
        return Rejection(error, delivery)


def dead_letter(delivery: Delivery, fingerprint: str, obj: Mapping[str, Any] | None) -> Entry:
    """The record of a rejected, authenticated delivery, to park it.

    The type and company are kept when the decoded body names them, so a parked delivery can
    be found by type and company like any other.
    """
    assert delivery.key is not None
    kind, company_id = describe(obj) if obj is not None else (None, None)
    return Entry(
        key=delivery.key,
        fingerprint=fingerprint,
        body=delivery.body,
        headers=redact(delivery.headers.raw),
        kind=kind,
        company_id=company_id,
    )
