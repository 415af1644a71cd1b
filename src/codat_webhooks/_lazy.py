"""Names a package imports from its submodules on first use (PEP 562).

The package's top-level names include the receiver and the models, which import pydantic: a
good part of a second that ``codat-webhooks --help`` or ``events`` never needs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``names`` maps a name to its submodule."""
    namespace = sys.modules[package].__dict__

    def get(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups find it without this function
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *names})

    return get, listing
