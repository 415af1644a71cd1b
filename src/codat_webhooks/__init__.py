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

from typing import TYPE_CHECKING

from ._lazy import lazy_names
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

# Imported on first use: they need pydantic and the models, which `codat-webhooks events` and
# `--help` never use (every name above still imports as `from codat_webhooks import ...`).
__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Alert": "models",
        "Event": "models",
        "Receiver": "receiver",
        "construct_event": "construct",
        "parse_alert": "models",
        "parse_event": "models",
    },
)
