"""Verification and parsing in one call, for code that owns its HTTP layer.

A serverless function or a framework view that already has the raw body and the headers needs
neither a store nor hooks: :func:`construct_event` proves the delivery came from Codat and turns it
into the same typed model a hook would receive. What it cannot do is remember: without a store
there is no deduplication, so Codat's retries (up to ~28 hours of them) and manual replays reach
the caller again, and handling them once is the caller's job (key on :func:`delivery_key`).
Nor can it know whether an event is *stale* (older than one already received for the same
scope, see :mod:`codat_webhooks.ordering`): that needs the high-water marks a store keeps.
Compare ``generatedDate`` in your own storage, or use a :class:`~codat_webhooks.Receiver`.
"""

from __future__ import annotations

from .headers import HeaderInput, Headers
from .models import Alert, Event, load_object
from .routing import key_from_body, route
from .verify import Authenticator, Credentials, SecretCredentials, message_id

__all__ = ["construct_event", "delivery_key"]


def construct_event(
    body: bytes,
    headers: HeaderInput,
    *,
    authorization: Credentials = None,
    signing_secrets: SecretCredentials = None,
    tolerance: float = 300,
) -> Alert | Event:
    """Verify a delivery over its raw bytes and return its typed alert or event.

    The credentials and their policy are the :class:`~codat_webhooks.Receiver`'s: with both
    kinds configured, a request that carries a signature must have a valid one, and one that
    carries none must have a matching ``Authorization`` value.

    :param body: the request body exactly as received; a re-serialised JSON body no longer
        matches its signature.
    :param headers: a mapping or ``(name, value)`` pairs; names are case-insensitive.
    :raises ConfigurationError: neither ``authorization`` nor ``signing_secrets`` was given
        (there is no ``insecure`` here: parse without verifying with
        :func:`~codat_webhooks.parse_alert` or :func:`~codat_webhooks.parse_event`).
    :raises VerificationError: the delivery is not proven to come from Codat (answer 401).
    :raises PayloadError: the body is not an alert or event (answer 400 or 422, see
        ``error.status_hint``).

    With no store there is no ordering either: nothing here says whether the event is stale
    (older than one already received for its scope); :func:`~codat_webhooks.ordering.mark_of`
    gives its scope and ``generatedDate`` to compare in your own storage.
    """
    if not isinstance(body, bytes | bytearray):  # a decoded str may already differ from the bytes
        raise TypeError(f"body must be the raw bytes received, not {type(body).__name__}")
    authenticator = Authenticator(authorization, signing_secrets, tolerance=tolerance)
    authenticator.verify(Headers(headers), body)
    payload = route(load_object(body)).payload
    assert isinstance(payload, Alert | Event)
    return payload


def delivery_key(body: bytes, headers: HeaderInput) -> str | None:
    """The idempotency key the receiver would use: ``webhook-id``, else the body's own ID.

    For deduplicating :func:`construct_event`'s results in the caller's own storage.
    """
    key = message_id(Headers(headers))
    if key is not None:
        return key
    return key_from_body(load_object(body))
