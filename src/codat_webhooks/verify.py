"""Proving a delivery came from Codat, over the raw bytes, before anything is decoded.

Two mechanisms, configurable together:

* the legacy static ``Authorization`` header set in the Codat Portal, compared in constant time;
* Svix / Standard Webhooks signatures: HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``, keyed by
  a ``whsec_`` secret, in ``webhook-*`` (or ``svix-*``) headers, with a two-sided timestamp window.

Policy when both are configured: a request that carries a signature header must have a valid
signature (a forged signature cannot be rescued by a leaked Authorization value); a request with
no signature header must carry a matching Authorization value.

When a request carries both header sets, the ``webhook-*`` set (the names Codat documents) is the
one checked, as a whole: the ``svix-*`` values are then ignored, never mixed in one by one. (The
Svix library reads each header from ``svix-*`` first; a sender that signs two sets differently is
broken either way, and one fixed rule makes the idempotency key predictable.) Header values are
trimmed of surrounding whitespace (RFC 9110 optional whitespace) before use, so a proxy that pads
``webhook-id`` does not turn a genuine delivery into a 401 or a second key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from .errors import ConfigurationError, VerificationError
from .headers import Headers

__all__ = [
    "SIGNATURE_HEADER_SETS",
    "Authenticator",
    "AuthorizationCheck",
    "Credentials",
    "SignatureCheck",
    "check_tolerance",
    "decode_signing_secret",
    "message_id",
    "named_credentials",
]

Credentials: TypeAlias = "str | Sequence[str] | Mapping[str, str] | None"
SecretCredentials: TypeAlias = (
    "str | bytes | Sequence[str | bytes] | Mapping[str, str | bytes] | None"
)

SIGNATURE_HEADER_SETS: tuple[tuple[str, str, str], ...] = (
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
    ("svix-id", "svix-timestamp", "svix-signature"),
)
"""(id, timestamp, signature) header names, Standard Webhooks first, then Svix's own."""

_SIGNATURE_NAMES = frozenset(names[2] for names in SIGNATURE_HEADER_SETS)
_ID_OR_SIGNATURE_NAMES = _SIGNATURE_NAMES | {names[0] for names in SIGNATURE_HEADER_SETS}

_NEITHER = (
    "missing both proofs: no signature headers (webhook-id, webhook-timestamp, "
    "webhook-signature: new-service events are signed) and no Authorization header (legacy alerts)"
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of every secret, not a secret


def named_credentials(value: Any, prefix: str) -> dict[str, Any]:
    """Give every credential a name, so logs and ``verified_by`` never need the value itself.

    A single value is called ``prefix``; a list gives ``prefix-1``, ``prefix-2``, ...; a dict
    keeps the caller's names.
    """
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        named = {prefix: value}
    elif isinstance(value, Mapping):
        named = {str(name): secret for name, secret in value.items()}
    elif isinstance(value, Sequence):
        named = {f"{prefix}-{index}": secret for index, secret in enumerate(value, 1)}
    else:
        raise ConfigurationError(f"{prefix} must be a string, a list or a dict")
    for name, secret in named.items():
        if not isinstance(secret, str | bytes) or not secret:
            raise ConfigurationError(f"credential {name!r} must be a non-empty string")
    return named


def decode_signing_secret(secret: str | bytes) -> bytes:
    """The HMAC key for a secret: ``whsec_``/base64 strings are decoded, ``bytes`` used raw.

    Un-prefixed strings are base64 too, as in the official Svix libraries, so a secret copied
    without its prefix still works; so is base64 without its ``=`` padding, which dashboards and
    copy-paste drop. Anything that is not base64 is still refused: a typo must fail at start-up,
    not as a 401 on every delivery.
    """
    if isinstance(secret, bytes):
        return secret
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    if len(encoded) % 4 == 1:  # no base64 text has this length, padded or not
        raise ConfigurationError(
            "a signing secret must be 'whsec_' + base64 (pass bytes for a raw key)"
        )
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "a signing secret must be 'whsec_' + base64 (pass bytes for a raw key)"
        ) from None
    if not key:
        raise ConfigurationError("a signing secret must not be empty")
    return key


def check_tolerance(tolerance: object) -> float:
    """The signature-timestamp window in seconds, refusing values that would disable it.

    ``nan`` compares false with everything, so it would let any timestamp through; ``inf`` and
    negative windows are either the same hole or reject everything. Both are configuration
    mistakes, reported when the receiver is built.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ConfigurationError(f"tolerance must be a number of seconds, not {tolerance!r}")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigurationError(f"tolerance must be a finite number >= 0 seconds, not {tolerance}")
    return float(tolerance)


def message_id(headers: Headers) -> str | None:
    """The delivery's ``webhook-id`` (or ``svix-id``), from the set a signature check reads.

    The idempotency key must come from the same header set as the signature, trimmed the same
    way, or a padded or doubled header would give one delivery two keys.
    """
    if headers.has_none_of(_ID_OR_SIGNATURE_NAMES):  # a legacy delivery: the body has the key
        return None
    for id_name, _, signature_name in SIGNATURE_HEADER_SETS:
        if signature_name in headers:
            value = (headers.get(id_name) or "").strip()
            if value:
                return value
            break  # that set has no id (a 401 when signatures are checked): any id will do
    for id_name, _, _ in SIGNATURE_HEADER_SETS:
        value = (headers.get(id_name) or "").strip()
        if value:
            return value
    return None


def _header_bytes(value: str) -> bytes:
    return value.strip().encode("utf-8", "surrogatepass")


class AuthorizationCheck:
    """Compares the ``Authorization`` header with every configured value in constant time."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = [(name, _header_bytes(value)) for name, value in values.items()]

    def __call__(self, headers: Headers) -> str:
        received = headers.get("authorization")
        if received is None:
            raise VerificationError("missing Authorization header")
        candidate = _header_bytes(received)
        matched = None
        for name, expected in self._values:  # no early exit: timing must not reveal which
            if hmac.compare_digest(candidate, expected) and matched is None:
                matched = name
        if matched is None:
            raise VerificationError("Authorization header matches no configured value")
        return matched


_SHA256_BLOCK = 64


class _KeyedSha256:
    """HMAC-SHA256 under one key (RFC 2104), with the two keyed hash states computed once.

    Each delivery then costs two hash-state copies and the message itself. ``hmac.HMAC.copy``
    does the same work through several Python-level calls per message, which made verifying
    a third slower than it needs to be (``benchmarks/verify.py``); ``tests/test_signatures.py``
    checks this against :func:`hmac.new` for short, block-sized and long keys.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, head: bytes, body: bytes) -> bytes:
        """The HMAC of ``head + body``, without copying the body to join them."""
        inner = self._inner.copy()
        inner.update(head)
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class SignatureCheck:
    """Verifies Svix / Standard Webhooks signatures against one or more secrets."""

    def __init__(
        self,
        secrets: Mapping[str, str | bytes],
        *,
        tolerance: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        tolerance = check_tolerance(tolerance)
        self._keys = [
            (name, _KeyedSha256(decode_signing_secret(secret))) for name, secret in secrets.items()
        ]
        self._tolerance = tolerance
        self._clock = clock

    @staticmethod
    def applies(headers: Headers) -> bool:
        """Whether the request carries a signature header at all."""
        return not headers.has_none_of(_SIGNATURE_NAMES)

    def __call__(self, headers: Headers, body: bytes) -> str:
        msg_id, timestamp, signature_header = self._read(headers)
        # Several space-separated "v1,<base64>" while the sender rotates its secret; parts of
        # other versions never equal a "v1," one. surrogatepass: a str header can hold lone
        # surrogates (never from a real socket); they must fail to match, not raise. Valid
        # text encodes exactly as Svix's libraries do.
        signatures = signature_header.encode("utf-8", "surrogatepass").split()
        head = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass")
        matched = None
        for name, key in self._keys:  # no early exit: timing must not reveal which matched
            expected = b"v1," + binascii.b2a_base64(key.digest(head, body), newline=False)
            for candidate in signatures:
                if hmac.compare_digest(expected, candidate) and matched is None:
                    matched = name
        if matched is None:
            if not any(part.startswith(b"v1,") for part in signatures):
                raise VerificationError("signature header has no 'v1,' signature")
            raise VerificationError("no signature matches a configured signing secret")
        return matched

    def _read(self, headers: Headers) -> tuple[str, str, str]:
        """The signed message ID, timestamp and signature header, each checked."""
        for names in SIGNATURE_HEADER_SETS:
            signature = headers.get(names[2])
            if signature is not None:
                id_name, timestamp_name, _ = names
                break
        else:
            raise VerificationError("missing webhook-signature header")
        msg_id = (headers.get(id_name) or "").strip()
        if not msg_id:
            raise VerificationError(f"missing {id_name} header")
        timestamp = (headers.get(timestamp_name) or "").strip()
        if not timestamp:
            raise VerificationError(f"missing {timestamp_name} header")
        # isascii(): str.isdigit() is also true for "²" and other digits int() cannot parse.
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise VerificationError("malformed signature timestamp")
        skew = int(timestamp) - self._clock()
        if skew < -self._tolerance:
            raise VerificationError(f"signature timestamp is stale by {-skew:.0f}s")
        if skew > self._tolerance:
            raise VerificationError(f"signature timestamp is {skew:.0f}s in the future")
        return msg_id, timestamp, signature.strip()


class Authenticator:
    """Applies the combined policy of the module docstring; returns the matching credential name.

    Returns ``None`` only when running ``insecure`` with no credentials configured.
    """

    def __init__(
        self,
        authorization: Credentials = None,
        signing_secrets: SecretCredentials = None,
        *,
        tolerance: float = 300,
        insecure: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        tolerance = check_tolerance(tolerance)
        values = named_credentials(authorization, "authorization")
        secrets = named_credentials(signing_secrets, "signing-secret")
        if not values and not secrets and not insecure:
            raise ConfigurationError(
                "no credentials: pass authorization= (the Authorization header value set in the "
                "Codat Portal) and/or signing_secrets= (the endpoint's whsec_ secret), or "
                "insecure=True to accept unauthenticated deliveries (local testing only)"
            )
        if any(not isinstance(value, str) for value in values.values()):
            raise ConfigurationError("authorization values must be strings")
        self._authorization = AuthorizationCheck(values) if values else None
        self._signatures = (
            SignatureCheck(secrets, tolerance=tolerance, clock=clock) if secrets else None
        )

    @property
    def secured(self) -> bool:
        return self._authorization is not None or self._signatures is not None

    def verify(self, headers: Headers, body: bytes) -> str | None:
        """Raise :class:`VerificationError` unless the request proves its origin."""
        if self._signatures is not None and SignatureCheck.applies(headers):
            return self._signatures(headers, body)
        if self._authorization is not None:
            try:
                return self._authorization(headers)
            except VerificationError:
                if self._signatures is not None and headers.get("authorization") is None:
                    # Either proof would do: saying only "missing Authorization" sends whoever
                    # debugs a new-service event (always signed) looking for the wrong header.
                    raise VerificationError(_NEITHER) from None
                raise
        if self._signatures is not None:
            raise VerificationError("missing webhook-signature header")
        return None
