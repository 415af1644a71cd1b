"""Fixtures for the command-line tests; the helpers live in ``cli_helpers``."""

from __future__ import annotations

from cli_helpers import cli, server

__all__ = ["cli", "server"]
