"""Hook specifications, the plugin-manager factory and the dispatcher that calls hooks."""

from __future__ import annotations

from .dispatch import nonblocking
from .hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec", "nonblocking"]
