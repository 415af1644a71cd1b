"""The receiver's steps for deliveries that arrive out of order (see :mod:`.ordering`).

A claim (or, with a queue, the enqueue) judges a scoped delivery against its scope's mark and
the pipeline builds ``delivery.stale``, ``.newer`` and ``.gap`` from the verdict. A worker
judges once more when it takes a queued key (:func:`ordered`): a newer event of the scope may
have arrived while it waited. With ``Receiver(stale="skip")``, a stale delivery's rule hooks
do not run: :func:`skip` tells ``on_stale`` and records the key done, and the answer is
``200 stale``, so Codat stops sending it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

from . import settle
from ._logging import library_logger
from .delivery import Delivery
from .effects import Ask, Effect, Notify
from .errors import ConfigurationError, StoreError
from .observe import log_fields
from .ordering import STALE_POLICIES, StalePolicy, mark_of, order_of

if TYPE_CHECKING:
    from .routing import Route
    from .stores.base import Claim
    from .stores.history import HistoryEntry

__all__ = ["StalePolicy", "checked_policy", "order_of", "ordered", "skip"]

logger = library_logger("codat_webhooks.receiver")

_T = TypeVar("_T")


def checked_policy(value: str) -> StalePolicy:
    """``value`` if it is a policy of :data:`~.ordering.STALE_POLICIES`; else the error."""
    if value not in STALE_POLICIES:
        raise ConfigurationError(f"stale must be one of {STALE_POLICIES}, not {value!r}")
    return value


def ordered(delivery: Delivery, payload: object) -> Generator[Effect, Any, Delivery]:
    """A queued delivery as its worker runs it: judged again against its scope's mark."""
    mark = mark_of(payload)
    if mark is None or delivery.key is None:
        return delivery
    try:
        verdict = yield Ask("recheck", (delivery.key, mark))
    except StoreError as exc:  # the take just worked: run it as it was accepted
        logger.warning("could not check the order of %s: %s", delivery.key, exc)
        return delivery
    stale, newer, gap = order_of(verdict)
    return delivery._replace(stale=stale, newer=newer, gap=gap)


def skip(
    claim: Claim, routed: Route, delivery: Delivery, final: _T, attempt: HistoryEntry
) -> Generator[Effect, Any, _T]:
    """A stale delivery under ``stale="skip"``: ``on_stale`` instead of its rule hooks, then
    the claimed key is done (with ``attempt`` on its history) and the answer is ``final``."""
    assert delivery.key is not None
    yield Notify("on_stale", {"payload": routed.payload, "delivery": delivery})
    yield from settle.complete(delivery.key, claim.token, attempt)
    newer = delivery.newer
    if newer is not None:
        logger.debug(
            "%s skipped: %s (generated %s) is newer",
            delivery.key,
            newer.key,
            newer.generated_date.isoformat(),
            extra=log_fields(delivery.key, outcome="stale"),
        )
    return final
