"""codat-webhooks: receive Codat's webhooks authenticated, typed, exactly once, via plugins.

>>> from codat_webhooks import Receiver, hookimpl
>>> from codat_webhooks.stores import MemoryStore
>>> class Handlers:
...     @hookimpl
...     def on_data_connection_status_changed(self, alert):
...         print(alert.data.new_status)
>>> receiver = Receiver(authorization="Bearer s3cret", store=MemoryStore(),
...                     plugins=[Handlers()], load_entrypoints=False)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .delivery import Delivery, Reply
from .errors import (
    CodatWebhookError,
    ConfigurationError,
    ConflictError,
    MethodNotAllowedError,
    PayloadError,
    PayloadTooLargeError,
    StoreError,
    VerificationError,
)
from .hookspecs import hookimpl
from .rules import RuleType

if TYPE_CHECKING:
    from .construct import construct_event
    from .models import Alert, Event, parse_alert, parse_event
    from .receiver import Receiver

__all__ = [
    "Alert",
    "CodatWebhookError",
    "ConfigurationError",
    "ConflictError",
    "Delivery",
    "Event",
    "MethodNotAllowedError",
    "PayloadError",
    "PayloadTooLargeError",
    "Receiver",
    "Reply",
    "RuleType",
    "StoreError",
    "VerificationError",
    "__version__",
    "construct_event",
    "hookimpl",
    "parse_alert",
    "parse_event",
]

__version__ = "0.1.0"

_LAZY = {
    "Alert": "models",
    "Event": "models",
    "Receiver": "receiver",
    "construct_event": "construct",
    "parse_alert": "models",
    "parse_event": "models",
}
"""Names imported on first use: they need pydantic and the models, which take a good part of a
second to import and which a command such as ``codat-webhooks events`` never uses."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
