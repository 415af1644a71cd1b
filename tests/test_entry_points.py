"""A third-party plugin installed as a real distribution is found through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "codat-webhooks-test-plugin"
version = "1.2.3"

[project.entry-points.codat_webhooks]
recorder = "codat_webhooks_test_plugin"

[tool.hatch.build.targets.wheel]
packages = ["codat_webhooks_test_plugin"]
"""

PLUGIN_MODULE = """
from pathlib import Path
import os
from codat_webhooks import hookimpl

@hookimpl
def on_rate_limit_reached(alert):
    Path(os.environ["PLUGIN_OUT"]).write_text(f"quota={alert.data.daily_quota}")
"""

RUN_RECEIVER = """
from codat_webhooks import Receiver
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body
receiver = Receiver(insecure=True, store=MemoryStore(), load_entrypoints={load})
print(receiver.handle("POST", {{}}, sample_body("Rate Limit Reached")).outcome)
print(sorted(dist.project_name for _, dist in receiver.plugin_manager.list_plugin_distinfo()))
"""


def test_entry_point_plugin_is_loaded_and_called(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "codat_webhooks_test_plugin").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (source / "codat_webhooks_test_plugin" / "__init__.py").write_text(PLUGIN_MODULE)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    out = tmp_path / "out.txt"
    env = {**os.environ, "PYTHONPATH": str(target), "PLUGIN_OUT": str(out)}

    loaded = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RUN_RECEIVER.format(load=True))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split("\n")[:2] == ["processed", "['codat-webhooks-test-plugin']"]
    assert out.read_text() == "quota=1000"

    out.unlink()
    skipped = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RUN_RECEIVER.format(load=False))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert skipped.stdout.split("\n")[:2] == ["processed", "[]"]
    assert not out.exists()
