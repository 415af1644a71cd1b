"""Installing from a clone as the quickstart says: build a wheel, install it, use it.

The wheel is built without isolation (no network: the build backend is in the test
environment) and installed with ``pip --target`` into a scratch directory that only the
subprocess below puts first on its path, so it is the installed copy, not the checkout, that
answers. The quickstart names the wheel file, so its name is checked too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import codat_webhooks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

USE = """
import codat_webhooks, json
from codat_webhooks import Receiver, construct_event
from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import sample_body

receiver = Receiver(authorization="Bearer t", store=MemoryStore(), load_entrypoints=False)
body = sample_body("Sync Failed")
reply = receiver.handle("POST", {"Authorization": "Bearer t"}, body)
alert = construct_event(body, {"Authorization": "Bearer t"}, authorization="Bearer t")
print(json.dumps([codat_webhooks.__file__, reply.outcome, alert.rule_type]))
"""


def test_the_wheel_builds_installs_and_receives(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"codat_webhooks-{codat_webhooks.__version__}-py3-none-any.whl"
    quickstart = (ROOT / "docs" / "quickstart.md").read_text()
    assert set(re.findall(r"codat_webhooks-[\w.]+-py3-none-any\.whl", quickstart)) == {wheel.name}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "codat-webhooks = codat_webhooks.cli:main" in archive.read(entry_points).decode()
    for module in ("py.typed", "flask.py", "fastapi.py", "construct.py", "settings.py"):
        assert f"codat_webhooks/{module}" in names
    for page in ("base", "deliveries", "delivery", "login", "error"):  # the console's
        assert f"codat_webhooks/console/templates/{page}.html" in names
    assert "codat_webhooks/console/console.css" in names

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", USE], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    location, outcome, rule_type = json.loads(result.stdout)
    assert Path(location).is_relative_to(site)  # the installed copy, not the checkout
    assert (outcome, rule_type) == ("processed", "Sync Failed")
