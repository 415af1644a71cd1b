"""Built-in plugins, registered through the same hooks third-party plugins use.

Which of them every receiver registers is listed, by dotted path, in
:data:`codat_webhooks.hooks.manager.BUILTIN_PLUGINS`.
"""

from __future__ import annotations

from .bridge import MigrationBridge
from .log import LogPlugin

__all__ = ["LogPlugin", "MigrationBridge"]
