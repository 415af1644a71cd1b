"""Builds the pluggy plugin manager a receiver dispatches through; nothing global.

Built-in plugins are named by dotted path and imported when a manager is built, so this module
never imports :mod:`codat_webhooks.plugins` (whose plugins import the hook markers from here).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType

import pluggy

from ..errors import ConfigurationError
from . import SPEC_MODULES
from .markers import PROJECT_NAME

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "load_builtin", "make_plugin_manager"]

ENTRY_POINT_GROUP = PROJECT_NAME

BUILTIN_PLUGINS: dict[str, str] = {"codat_webhooks.log": "codat_webhooks.plugins.log:LogPlugin"}
"""Plugin name -> ``module:factory`` of the plugins every receiver registers."""


def load_builtin(path: str) -> object:
    """The plugin made by the ``module:factory`` at ``path``."""
    module_name, _, factory = path.partition(":")
    return getattr(importlib.import_module(module_name), factory)()


def make_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    load_entrypoints: bool = True,
    builtins: bool = True,
    spec_modules: Sequence[ModuleType] = SPEC_MODULES,
) -> pluggy.PluginManager:
    """A manager with the specs, built-ins, entry-point plugins (unless disabled) and ``plugins``.

    Raises :class:`ConfigurationError` when a plugin implements a hook that is not in
    ``spec_modules`` (a typo would otherwise be silently never called) or uses a hook wrapper,
    which the dispatcher does not support because hooks may be async.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    for module in spec_modules:
        manager.add_hookspecs(module)
    if builtins:
        for name, path in BUILTIN_PLUGINS.items():
            manager.register(load_builtin(path), name=name)
    if load_entrypoints:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        manager.register(plugin)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigurationError(f"plugin implements an unknown hook: {exc}") from None
    for caller in manager.hook.__dict__.values():
        if isinstance(caller, pluggy.HookCaller):
            for impl in caller.get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    raise ConfigurationError(
                        f"{impl.plugin_name}.{caller.name}: hook wrappers are not supported"
                    )
    return manager
