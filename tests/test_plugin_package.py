"""The documented plugin package, installed with pip and discovered through its entry point.

``pip install --target`` keeps the test environment untouched: the package lands in a temporary
directory that only the subprocesses below put on their path, exactly as if it were installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "examples" / "plugin_package"

pytestmark = pytest.mark.slow

# Runs in a fresh interpreter: a Receiver that loads entry points, one authenticated delivery.
DELIVER = """
from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body

receiver = Receiver(authorization="Bearer t", store=MemoryStore(), load_entrypoints=True)
reply = receiver.handle("POST", {"Authorization": "Bearer t"}, sample_body("Sync Failed"))
print(reply.outcome, reply.key)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built without isolation (no network): the build backend must be in the test environment.
    assert importlib.util.find_spec("hatchling"), "hatchling is missing: install the dev extra"
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
    )
    return target


def run_python(code: str, *, path: Path | None, audit: Path | None, cwd: Path | None = None) -> str:
    """Run ``code`` with the plugin on ``path``; ``audit=None`` leaves the plugin unconfigured."""
    env = {**os.environ}
    env.pop("CODAT_WEBHOOKS_AUDIT_FILE", None)
    if audit is not None:
        env["CODAT_WEBHOOKS_AUDIT_FILE"] = str(audit)
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd or (audit.parent if audit is not None else None),
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def test_pip_installed_plugin_is_discovered_and_its_hooks_run(
    installed: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    outcome, key = run_python(DELIVER, path=installed, audit=audit).split()
    assert outcome == "processed"
    (line,) = [json.loads(text) for text in audit.read_text().splitlines()]
    assert line["outcome"] == "processed"
    assert line["key"] == key
    assert line["rule_type"] == "Sync Failed"
    assert line["verified_by"] == "authorization"


def test_installed_but_unconfigured_it_writes_nothing(installed: Path, tmp_path: Path) -> None:
    # Every Receiver loads installed plugins, so an unrelated script runs this one too.
    outcome, _ = run_python(DELIVER, path=installed, audit=None, cwd=tmp_path).split()
    assert outcome == "processed"
    assert list(tmp_path.iterdir()) == []


def test_without_the_package_no_hook_of_it_runs(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    outcome, _ = run_python(DELIVER, path=None, audit=audit).split()
    assert outcome == "processed"
    assert not audit.exists()


def test_entry_point_metadata(installed: Path, tmp_path: Path) -> None:
    code = (
        "from importlib.metadata import entry_points\n"
        "print([(ep.name, ep.value) for ep in entry_points(group='codat_webhooks')])"
    )
    printed = run_python(code, path=installed, audit=tmp_path / "unused.jsonl")
    assert "('audit', 'codat_webhooks_audit')" in printed


def test_the_plugin_packages_own_tests_pass(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(PACKAGE / "tests")],
        env=env,
        cwd=PACKAGE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_cli_lists_the_plugin_and_its_hooks(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "codat-webhooks"), "plugins"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "audit" in result.stdout
    assert "on_alert, on_duplicate, on_rejected" in result.stdout
    assert "1 installed plugin(s)" in result.stdout
    assert "Every Receiver loads them all" in result.stdout
