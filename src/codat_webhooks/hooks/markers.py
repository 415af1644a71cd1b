"""The pluggy markers of the project, in a module that imports nothing else of it.

Spec modules, built-in plugins and third-party plugins all import these, so they must sit
below every one of them.
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "codat_webhooks"
"""The pluggy project name, which is also the entry-point group plugins publish under."""
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
