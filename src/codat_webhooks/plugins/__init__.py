"""Built-in plugins, registered through the same hooks third-party plugins use."""

from __future__ import annotations

from .bridge import MigrationBridge
from .log import LogPlugin

__all__ = ["BUILTIN_PLUGINS", "LogPlugin", "MigrationBridge"]

BUILTIN_PLUGINS: tuple[tuple[str, object], ...] = (("codat_webhooks.log", LogPlugin()),)
