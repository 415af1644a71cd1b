"""Builds the pluggy plugin manager a receiver dispatches through; nothing global."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import pluggy

from ..errors import ConfigurationError
from . import event_specs, hookspecs
from .hookspecs import PROJECT_NAME

__all__ = ["ENTRY_POINT_GROUP", "SPEC_MODULES", "make_plugin_manager"]

ENTRY_POINT_GROUP = PROJECT_NAME
SPEC_MODULES: list[ModuleType] = [hookspecs, event_specs]
"""Every module of hookspecs; the manager, the docs and the consistency tests read this list."""


def make_plugin_manager(
    plugins: Iterable[object] = (), *, load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A manager with every spec, built-ins, entry-point plugins (unless disabled) and ``plugins``.

    Raises :class:`ConfigurationError` when a plugin implements a hook that does not exist (a
    typo would otherwise be silently never called) or uses a hook wrapper, which the
    dispatcher does not support because hooks may be async.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    for module in SPEC_MODULES:
        manager.add_hookspecs(module)
    from ..plugins import BUILTIN_PLUGINS

    for name, builtin in BUILTIN_PLUGINS:
        manager.register(builtin, name=name)
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
