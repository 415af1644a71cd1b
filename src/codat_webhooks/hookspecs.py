"""Every hook a plugin can implement, and the markers to implement them with.

The public home of the hook specifications: ``codat_webhooks.hookspecs.on_alert``,
``pluggy.PluginManager.add_hookspecs(codat_webhooks.hookspecs)`` and the documentation all read
them here. They are written in two modules, one per body shape, listed in :data:`SPEC_MODULES`:
:mod:`codat_webhooks.hooks.alert_specs` (legacy rule hooks and the hooks of every delivery:
``on_alert``, ``on_duplicate``, ``on_rejected``, ``on_handler_error``, ...) and
:mod:`codat_webhooks.hooks.event_specs` (new-service event hooks and ``on_event``).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from .hooks import SPEC_MODULES
from .hooks.markers import PROJECT_NAME, hookimpl, hookspec

__all__ = ["PROJECT_NAME", "SPEC_MODULES", "hookimpl", "hookspec", "spec_names"]


def spec_names(module: ModuleType) -> set[str]:
    """The hooks ``module`` declares."""
    marker = f"{PROJECT_NAME}_spec"
    return {name for name in dir(module) if hasattr(getattr(module, name), marker)}


# Each specification also lives here under its own name, so ``add_hookspecs`` of this module,
# ``codat_webhooks.hookspecs.on_alert`` and the API docs all find it.
globals().update({name: getattr(m, name) for m in SPEC_MODULES for name in spec_names(m)})

if TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Tells type checkers about the specifications added above."""
