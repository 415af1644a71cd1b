"""Produce the headers Codat's new (Svix) service sends: for tests and ``codat-webhooks trigger``.

The result verifies with the official ``svix`` and ``standardwebhooks`` libraries as well as ours
(the test suite checks both directions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from ..verify import decode_signing_secret

__all__ = ["sign"]


def sign(
    body: bytes,
    secret: str | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | float | None = None,
    prefix: str = "webhook",
) -> dict[str, str]:
    """Signature headers for ``body``: ``{prefix}-id``, ``-timestamp`` and ``-signature``.

    ``prefix="svix"`` gives the ``svix-*`` names. A fresh ``msg_id`` and the current time are
    used unless given, so each call is a new message.
    """
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if timestamp is None else timestamp))
    key = decode_signing_secret(secret)
    signed = f"{msg_id}.{stamp}.".encode("utf-8", "surrogatepass") + body  # as verify.py does
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": stamp,
        f"{prefix}-signature": "v1," + base64.b64encode(digest).decode(),
    }
