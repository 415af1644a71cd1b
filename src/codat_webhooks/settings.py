"""A receiver from named settings: the environment, or a Flask ``app.config``.

The names are the command line's environment variables, so one set of settings configures the
app, ``codat-webhooks serve`` and the other commands alike:

``CODAT_WEBHOOKS_AUTHORIZATION``
    The ``Authorization`` header value set in the Codat Portal.
``CODAT_WEBHOOKS_SIGNING_SECRET``
    The endpoint's ``whsec_`` signing secret; several separated by commas or spaces (rotation).
``CODAT_WEBHOOKS_DB``
    The SQLite store's file (default ``codat-webhooks.sqlite3``), unless a Redis URL is set.
``CODAT_WEBHOOKS_REDIS_URL``
    A ``redis://`` URL: use a :class:`~codat_webhooks.stores.RedisStore` instead.

A value still holding a documentation placeholder (``whsec_...``, ``Bearer ...``) counts as
unset, with a warning naming it: a line pasted from a README must not take the app down, nor
pass for a real credential. If that leaves no credential at all, :class:`Receiver` refuses to
start, as always.

The command line reads its environment through :func:`read_credentials` and :func:`setting`
too, so a value the app ignores the commands ignore, and a value the app refuses the commands
refuse, under the same name: an error about a setting names the setting, never a flag the user
did not pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._logging import library_logger
from .errors import ConfigurationError
from .observe import log_fields
from .stores.sqlite import DEFAULT_DB_PATH
from .verify import decode_signing_secret

if TYPE_CHECKING:
    from .receiver import Receiver
    from .stores.base import Store

__all__ = [
    "AUTHORIZATION",
    "DB",
    "REDIS_URL",
    "SIGNING_SECRET",
    "is_placeholder",
    "read_credentials",
    "read_signing_secrets",
    "receiver_from_settings",
    "setting",
    "store_from_settings",
]

logger = library_logger("codat_webhooks")

AUTHORIZATION = "CODAT_WEBHOOKS_AUTHORIZATION"
SIGNING_SECRET = "CODAT_WEBHOOKS_SIGNING_SECRET"  # noqa: S105 - a setting's name, not a secret
DB = "CODAT_WEBHOOKS_DB"
REDIS_URL = "CODAT_WEBHOOKS_REDIS_URL"

_PLACEHOLDER = re.compile(r"\.\.\.|…|^<.*>$")
"""Ellipses and ``<angle brackets>``: what documentation writes where a real value goes."""


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is documentation's stand-in for a credential rather than one."""
    return bool(_PLACEHOLDER.search(value.strip()))


def setting(settings: Mapping[str, Any], name: str) -> str | None:
    """The value of ``name``, stripped; ``None`` when unset, blank or a placeholder (warned)."""
    value = settings.get(name)
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if is_placeholder(text):
        logger.warning(
            "%s is a placeholder (%r): ignored, as if it were unset", name, text, extra=log_fields()
        )
        return None
    return text


def read_signing_secrets(settings: Mapping[str, Any]) -> list[str]:
    """The ``whsec_`` secrets of ``CODAT_WEBHOOKS_SIGNING_SECRET`` (several: a rotation).

    Secrets never contain spaces or commas, so those separate them. One that is not
    ``whsec_`` + base64 is refused here, naming the setting: the receiver would refuse it too,
    but could only say "a signing secret", and the user has to know which setting to fix.
    """
    text = setting(settings, SIGNING_SECRET)
    secrets = [secret for secret in re.split(r"[\s,]+", text) if secret] if text else []
    for secret in secrets:
        try:
            decode_signing_secret(secret)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{SIGNING_SECRET}: {exc}") from None
    return secrets


def read_credentials(settings: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The ``Authorization`` value and the signing secrets ``settings`` hold."""
    return setting(settings, AUTHORIZATION), read_signing_secrets(settings)


def store_from_settings(settings: Mapping[str, Any], *, default_db: str = DEFAULT_DB_PATH) -> Store:
    """Redis when ``CODAT_WEBHOOKS_REDIS_URL`` is set, else SQLite at ``CODAT_WEBHOOKS_DB``."""
    redis_url = setting(settings, REDIS_URL)
    if redis_url is not None:
        from .stores.redis import RedisStore

        return RedisStore.from_url(redis_url)
    from .stores.sqlite import SQLiteStore

    return SQLiteStore(setting(settings, DB) or default_db)


def receiver_from_settings(
    settings: Mapping[str, Any], *, default_db: str = DEFAULT_DB_PATH, **receiver_args: Any
) -> Receiver:
    """A :class:`Receiver` configured by ``settings``; other arguments go to it unchanged.

    ``os.environ`` and Flask's ``app.config`` both fit. ``default_db`` is the SQLite file when
    ``CODAT_WEBHOOKS_DB`` is unset (two apps in one directory should not share one by accident).
    """
    from .receiver import Receiver  # pydantic and the pipeline: not for the command line's use

    authorization, secrets = read_credentials(settings)
    receiver_args.setdefault("authorization", authorization)
    receiver_args.setdefault("signing_secrets", secrets or None)
    given = ("authorization", "signing_secrets", "authenticator", "insecure")
    if not any(receiver_args.get(name) for name in given):
        raise ConfigurationError(
            f"no credentials: set {AUTHORIZATION} (the Authorization header value set in the "
            f"Codat Portal) and/or {SIGNING_SECRET} (the endpoint's whsec_ secret)"
        )
    if "store" in receiver_args:
        return Receiver(**receiver_args)
    store = store_from_settings(settings, default_db=default_db)
    try:
        return Receiver(store=store, **receiver_args)
    except Exception:
        store.close()
        raise
