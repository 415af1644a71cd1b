"""The console's operator session and CSRF tokens: HMAC-signed, checked in constant time.

A session cookie holds ``<payload>.<signature>``, the payload a base64url JSON object with a
random session id, whether the operator logged in, and when it expires. The signing key is
derived from the console password (or a ``secret_key``), so every worker process of one
deployment accepts the same cookies, and changing the password logs everyone out. The CSRF
token of a form is an HMAC of the session id: bound to that session, useless in another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import NamedTuple

__all__ = ["Session", "Signer", "same_secret"]


class Session(NamedTuple):
    sid: str
    authenticated: bool
    expires: float


class Signer:
    """Signs and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, key: bytes, *, ttl: float) -> None:
        self._key = key
        self.ttl = ttl

    @classmethod
    def for_password(cls, password: str, *, ttl: float) -> Signer:
        key = hmac.new(password.encode(), b"codat-webhooks console session", "sha256").digest()
        return cls(key, ttl=ttl)

    def _mac(self, purpose: bytes, data: bytes) -> str:
        return hmac.new(self._key, purpose + b"\0" + data, hashlib.sha256).hexdigest()

    def new(self, *, authenticated: bool) -> Session:
        return Session(secrets.token_urlsafe(24), authenticated, time.time() + self.ttl)

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(
            json.dumps([session.sid, session.authenticated, session.expires]).encode()
        ).decode()
        return f"{payload}.{self._mac(b'session', payload.encode())}"

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or ``None`` if it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._mac(b"session", payload.encode())):
            return None
        try:
            sid, authenticated, expires = json.loads(base64.urlsafe_b64decode(payload))
        except (ValueError, TypeError):
            return None
        if not isinstance(sid, str) or float(expires) < time.time():
            return None
        return Session(sid, authenticated is True, float(expires))

    def csrf_token(self, session: Session) -> str:
        return self._mac(b"csrf", session.sid.encode())

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(session))


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, compared in constant time over their digests."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
