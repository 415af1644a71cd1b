"""pytest fixtures for code that receives Codat webhooks; loaded automatically once installed.

Every fixture is prefixed ``codat_`` so it never shadows a project's own fixtures::

    def test_linked(codat_receiver, codat_recorder, codat_signed_delivery):
        delivery = codat_signed_delivery("DataConnectionStatusChanged")
        assert delivery.post(codat_receiver).outcome == "processed"
        assert codat_recorder.names()[:1] == ["on_data_connection_status_changed"]

``codat_receiver`` uses a :class:`MemoryStore` and the receiver's clock is one :class:`FakeClock`
(``codat_clock``: leases, signature ages and the store all read it), and it loads no entry
points, so installed plugins never leak into tests; add your own with ``codat_make_receiver``.
Nothing from codat_webhooks is imported until a fixture is used, so merely having the package
installed costs other projects' test runs nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..delivery import Reply
    from ..receiver import Receiver
    from ..stores.memory import MemoryStore
    from .recorder import Recorder
    from .retries import FakeClock

__all__ = [
    "CodatCredentials",
    "SignedDelivery",
    "codat_clock",
    "codat_credentials",
    "codat_make_receiver",
    "codat_receiver",
    "codat_recorder",
    "codat_sample",
    "codat_signed_delivery",
    "codat_store",
]


@dataclass(frozen=True, slots=True)
class CodatCredentials:
    """The credentials ``codat_receiver`` accepts (test values, never real ones)."""

    authorization: str = "Bearer codat-webhooks-test"
    signing_secret: str = "whsec_" + base64.b64encode(b"codat-webhooks-test-signing-key").decode()


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """A request as Codat would send it; :meth:`post` hands it to a receiver."""

    headers: dict[str, str]
    body: bytes
    key: str
    method: str = "POST"

    def post(self, receiver: Receiver) -> Reply:
        return receiver.handle(self.method, self.headers, self.body)


@pytest.fixture
def codat_credentials() -> CodatCredentials:
    return CodatCredentials()


@pytest.fixture
def codat_clock() -> FakeClock:
    """The store's clock: ``codat_clock.advance(3600)`` instead of sleeping."""
    from .retries import FakeClock

    return FakeClock()


@pytest.fixture
def codat_store(codat_clock: FakeClock) -> MemoryStore:
    from ..stores.memory import MemoryStore

    return MemoryStore(clock=codat_clock)


@pytest.fixture
def codat_recorder() -> Recorder:
    """Records every hook call made by ``codat_receiver``."""
    from .recorder import Recorder

    return Recorder()


@pytest.fixture
def codat_make_receiver(
    codat_credentials: CodatCredentials,
    codat_store: MemoryStore,
    codat_recorder: Recorder,
    codat_clock: FakeClock,
) -> Iterator[Callable[..., Receiver]]:
    """A factory for receivers on the test store with the recorder and your ``plugins``.

    Keyword arguments override the defaults (``authorization``, ``signing_secrets``, ``store``,
    ``plugins``, ...). Every receiver made is closed after the test.
    """
    from ..receiver import Receiver

    made: list[Receiver] = []

    def make(plugins: Sequence[object] = (), **overrides: Any) -> Receiver:
        options: dict[str, Any] = {
            "authorization": codat_credentials.authorization,
            "signing_secrets": codat_credentials.signing_secret,
            "store": codat_store,
            "load_entrypoints": False,
            "clock": codat_clock,
        }
        options.update(overrides)
        options["plugins"] = [codat_recorder, *plugins]
        receiver = Receiver(**options)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def codat_receiver(codat_make_receiver: Callable[..., Receiver]) -> Receiver:
    """A receiver accepting ``codat_credentials``, with ``codat_recorder`` and no entry points."""
    return codat_make_receiver()


@pytest.fixture
def codat_sample() -> Callable[..., bytes]:
    """``codat_sample(type, company_id=..., overrides={...}) -> bytes``, for any rule or event.

    A legacy rule type (any spelling) gives an alert, anything else a new-service event.
    """
    return _sample_body


def _sample_body(kind: str, **options: Any) -> bytes:
    from ..rules import RuleType
    from . import samples

    if RuleType.parse(kind) is not None:
        return samples.sample_body(kind, **options)
    return samples.event_body(kind, **options)


@pytest.fixture
def codat_signed_delivery(
    codat_credentials: CodatCredentials, codat_clock: FakeClock
) -> Callable[..., SignedDelivery]:
    """Build deliveries signed with ``codat_credentials`` (or anything you pass).

    ``codat_signed_delivery(type_or_body, *, key=None, timestamp=None, secret=None,
    authorization=None, prefix="webhook", **sample_options)``: a type name builds a fresh
    sample; bytes are sent as they are. ``secret=False`` sends no signature (legacy style);
    ``authorization=True`` adds the test ``Authorization`` header. The signature is dated by
    ``codat_clock`` unless ``timestamp`` is given, as Codat would date it at that moment.
    """
    from .signing import sign

    def build(
        body: bytes | str,
        *,
        key: str | None = None,
        timestamp: float | None = None,
        secret: str | bool | None = None,
        authorization: str | bool | None = None,
        prefix: str = "webhook",
        **sample_options: Any,
    ) -> SignedDelivery:
        raw = _sample_body(body, **sample_options) if isinstance(body, str) else body
        key = key or _body_key(raw)
        headers = {"Content-Type": "application/json"}
        if secret is not False:
            chosen = codat_credentials.signing_secret if secret in (None, True) else str(secret)
            when = codat_clock.now if timestamp is None else timestamp
            headers |= sign(raw, chosen, msg_id=key, timestamp=when, prefix=prefix)
        if authorization:
            headers["Authorization"] = (
                codat_credentials.authorization if authorization is True else str(authorization)
            )
        return SignedDelivery(headers, raw, key)

    return build


def _body_key(body: bytes) -> str:
    import json
    import uuid

    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, Mapping):
        for name in ("id", "AlertId"):
            if isinstance(obj.get(name), str) and obj[name]:
                return str(obj[name])
    return f"msg_{uuid.uuid4().hex}"
