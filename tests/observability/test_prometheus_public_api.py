"""The Prometheus plugin uses prometheus-client's public API only.

The plugin once wrote the library's private ``_upper_bounds``, ``_buckets`` and ``_sum`` to
batch histogram updates: a minor release that renamed them would have broken our metrics
without an error. These tests read the plugin's source: it may reach a private attribute
(``x._name``) of ``self`` only, never of another object, by any spelling (``getattr`` with a
literal name included), and imports no private name or module of prometheus-client.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import codat_webhooks.plugins.prometheus as plugin

SOURCES = sorted(Path(plugin.__file__).parent.glob("*.py"))

_BY_NAME = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_accesses(source: str) -> list[str]:
    """Each private name the source reaches outside ``self``, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _BY_NAME
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "prometheus_client"
        ):
            module = node.module or ""
            names = [alias.name for alias in node.names]
            if any(map(_private, module.split("."))) or any(map(_private, names)):
                found.append(f"{node.lineno}: from {module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("prometheus_client") and any(
                    map(_private, alias.name.split("."))
                ):
                    found.append(f"{node.lineno}: import {alias.name}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_the_plugin_package_is_what_is_scanned() -> None:
    assert {path.name for path in SOURCES} >= {"__init__.py", "_metrics.py", "_histogram.py"}


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_no_private_attribute_of_another_object(path: Path) -> None:
    assert private_accesses(path.read_text()) == []


def test_the_scan_finds_each_way_of_reaching_a_private_name() -> None:
    """What the plugin used to do, and the other spellings of it, are each found."""
    before = """
def _observe_batch(series, values):
    bounds = getattr(series, "_upper_bounds", None)
    series._sum.inc(sum(values))
    for bucket in series._buckets:
        bucket.inc(1)
    self.duration._metrics.clear()
    setattr(series, "_sum", None)
from prometheus_client.metrics import _use_created
from prometheus_client._private import anything
import prometheus_client._private
"""
    assert private_accesses(before) == [
        "3: getattr(series, '_upper_bounds', None)",
        "4: series._sum",
        "5: series._buckets",
        "7: self.duration._metrics",
        "8: setattr(series, '_sum', None)",
        "9: from prometheus_client.metrics import _use_created",
        "10: from prometheus_client._private import anything",
        "11: import prometheus_client._private",
    ]
    assert private_accesses("self._series[key] = self.__class__") == []
