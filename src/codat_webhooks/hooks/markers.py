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
"""Marks a method or function as a hook implementation: ``@hookimpl`` above ``def on_alert``.

Pluggy's ``HookimplMarker("codat_webhooks")``. Options go in the call:
``@hookimpl(trylast=True)`` runs after the other implementations of the hook (``tryfirst``:
before); ``@hookimpl(specname="on_alert")`` lets a differently named function implement it.
An implementation whose name (or ``specname``) is no hook makes the receiver refuse to start.
"""
