"""Each example's README, followed literally: its shell blocks run as written, real servers.

The commands are read from the README itself, never copied here, so a README that drifts from
what works fails this test. A user's session is modelled as the README describes it: the "Run it"
block in one terminal (its exports stay set there for "Production"), the delivery blocks in a
second terminal (nothing exported). Two things differ, both mechanical: port 8000 becomes a free
loopback port (tests run side by side), and the working directory is a scratch copy of the
repository root (links to ``examples/``, ``tests/`` and this test run's virtualenv as ``.venv``),
so the SQLite files the commands create land there. The install block is not run (it needs the
network and minutes): it is checked to be the documented clone install, which is how the
``.venv`` running this test was made; ``tests/test_install.py`` installs a built wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .adapters.servers import free_port
from .conftest import missing_service

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "python -m venv .venv && .venv/bin/pip install -e '.[dev]'"
BLOCK = re.compile(r"^## (?P<heading>.+?)$|^```sh\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
OUTCOME = re.compile(r'"outcome":\s*"(\w+)"')
EXAMPLES = ["flask_app", "fastapi_app"]


def shell_blocks(readme: Path) -> dict[str, list[str]]:
    """The ``sh`` blocks under each ``##`` heading, in order."""
    blocks: dict[str, list[str]] = {}
    heading = ""
    for match in BLOCK.finditer(readme.read_text()):
        if match["heading"]:
            heading = match["heading"]
        else:
            blocks.setdefault(heading, []).append(match["code"])
    return blocks


def second_terminal() -> dict[str, str]:
    """A shell with nothing of ours exported (the README's exports were typed elsewhere)."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("CODAT_WEBHOOKS_", "EXAMPLE_"))
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    if shutil.which("curl") is None:
        missing_service("curl")
    for name in ("examples", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


@contextmanager
def serving(script: str, port: int, cwd: Path) -> Iterator[Path]:
    """Run a README block whose last command is a server, until the block ends; yields its log."""
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-ec", script],
            cwd=cwd,
            env=second_terminal(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: bash, the server and its workers
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the README's server exited: {log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"never answered: {log.read_text()}"
                time.sleep(0.1)
        yield log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_block(script: str, cwd: Path) -> str:
    result = subprocess.run(
        ["bash", "-ec", script], cwd=cwd, env=second_terminal(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def outcomes(output: str) -> list[str]:
    return OUTCOME.findall(output)


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_commands_work_as_written(example: str, workdir: Path) -> None:
    blocks = shell_blocks(ROOT / "examples" / example / "README.md")
    assert blocks.keys() >= {"Install (once, from the repository root)", "Production"}
    [install] = blocks["Install (once, from the repository root)"]
    assert install.strip() == INSTALL
    [run] = blocks["Run it (from the repository root)"]
    send, fresh, trigger = blocks["Send it a test delivery"]
    [production] = blocks["Production"]

    port = free_port()

    def here(block: str) -> str:
        return block.replace("8000", str(port))

    alerts = f"http://127.0.0.1:{port}/alerts"
    with serving(here(run), port, workdir) as log:
        assert outcomes(run_block(here(send), workdir)) == ["processed"]
        assert outcomes(run_block(here(send), workdir)) == ["duplicate"]
        assert len(httpx.get(alerts).json()) == 1
        assert outcomes(run_block(here(fresh), workdir)) == ["processed"]
        run_block(here(trigger), workdir)
        rows = httpx.get(alerts).json()
        assert [row["rule_type"] for row in rows][1:] == [
            "Sync Completed",
            "DataConnectionStatusChanged",
        ]
        # The pasted placeholder secret was ignored with a warning, not fatal.
        assert "CODAT_WEBHOOKS_SIGNING_SECRET is a placeholder" in log.read_text()
    # Each example keeps its own files, so following the other README next starts afresh.
    assert (workdir / f"{example.replace('_app', '')}-example-webhooks.sqlite3").exists()

    exports = "\n".join(line for line in run.splitlines() if line.startswith("export "))
    with serving(here(exports + "\n" + production), port, workdir):
        assert outcomes(run_block(here(fresh), workdir)) == ["processed"]
        assert outcomes(run_block(here(send), workdir)) == ["duplicate"]  # same store as before
        assert len(httpx.get(alerts).json()) == 4


def test_the_readmes_name_only_files_that_exist() -> None:
    for example in EXAMPLES:
        text = (ROOT / "examples" / example / "README.md").read_text()
        for path in re.findall(r"@(tests/samples/[\w.]+)|`(docs/[\w./]+)`", text):
            name = next(p for p in path if p)
            assert (ROOT / name).exists(), (example, name)
        assert "MEASURED" not in text
        assert "issue report" not in text
        sample_keys = {
            json.loads(p.read_bytes()).get("AlertId")
            for p in (ROOT / "tests" / "samples").glob("*.json")
            if p.name not in ("sync_completed.json", "sync_failed.json")
        }
        assert len(sample_keys) == 1  # what the README says about the shared AlertId
    # The figures the FastAPI README quotes are the ones the performance page measured.
    fastapi = (ROOT / "examples" / "fastapi_app" / "README.md").read_text()
    assert "3,700 requests\nper second" in fastapi or "3,700 requests per second" in fastapi
    assert "against 364" in fastapi
    assert "3,700 vs 364 req/s" in (ROOT / "docs" / "performance.md").read_text()
