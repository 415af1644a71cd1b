"""Hook specifications, the plugin-manager factory and the dispatcher that calls hooks.

Plugins import the public names from :mod:`codat_webhooks.hookspecs`; this package is the
machinery behind it.
"""

from __future__ import annotations

from types import ModuleType

from . import alert_specs, event_specs
from .dispatch import nonblocking
from .markers import hookimpl, hookspec

__all__ = ["SPEC_MODULES", "hookimpl", "hookspec", "nonblocking"]

SPEC_MODULES: tuple[ModuleType, ...] = (alert_specs, event_specs)
"""The modules that declare hooks; the plugin manager, the docs and the tests read this."""
