"""Helpers to run the real ``codat-webhooks`` executable: a server on a free port, commands.

A throwaway plugin distribution is put on ``PYTHONPATH`` so ``serve``, ``replay`` and
``plugins`` discover it through the ``codat_webhooks`` entry-point group exactly as they would
an installed one. It logs every hook call to a file and fails while a marker file exists, which
is how the tests break a handler and "deploy the fix".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EXECUTABLE = (
    shutil.which("codat-webhooks", path=str(Path(sys.executable).parent)) or "codat-webhooks"
)
AUTHORIZATION = "Bearer cli-test-s3cret"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

PLUGIN_SOURCE = """
import json, os
from pathlib import Path
from codat_webhooks import hookimpl

def _log(hook, delivery):
    with open(os.environ["CLI_TEST_LOG"], "a") as log:
        log.write(json.dumps({"hook": hook, "key": delivery.key}) + "\\n")
    if Path(os.environ["CLI_TEST_FAIL"]).exists():
        raise RuntimeError("handler bug (marker file present)")

@hookimpl
def on_alert(alert, delivery):
    _log("on_alert", delivery)

@hookimpl
def on_event(event, delivery):
    _log("on_event", delivery)
"""


@dataclass
class Cli:
    """Runs ``codat-webhooks`` in ``cwd`` with a fixed environment."""

    cwd: Path
    env: dict[str, str]
    log: Path
    fail_marker: Path

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EXECUTABLE, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def hook_log(self) -> list[dict[str, str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def events(self, *args: str) -> list[dict[str, object]]:
        done = self("events", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    site = tmp_path / "site"
    dist = site / "codat_cli_test_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "codat_cli_test_plugin.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: codat-cli-test-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[codat_webhooks]\nhook-log = codat_cli_test_plugin\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CODAT_WEBHOOKS_") or key == "CODAT_WEBHOOKS_REQUIRE_SERVICES"
    }
    env |= {
        "PYTHONPATH": str(site),
        "CLI_TEST_LOG": str(tmp_path / "hooks.jsonl"),
        "CLI_TEST_FAIL": str(tmp_path / "fail"),
        "PYTHONUNBUFFERED": "1",
    }
    return Cli(work, env, tmp_path / "hooks.jsonl", tmp_path / "fail")


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    banner: str

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, out, err


def start_server(cli: Cli, *args: str) -> Server:
    process = subprocess.Popen(
        [EXECUTABLE, "serve", "--port", "0", *args],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = process.stdout.readline() if process.stdout else ""
    if "listening on" not in banner:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"serve did not start: {banner}{out}{err}")
    url = banner.split("listening on ", 1)[1].split()[0]
    return Server(process, url, banner)


@pytest.fixture
def server(cli: Cli) -> Iterator[Server]:
    """``serve`` with both kinds of credentials, the SQLite store in ``cli.cwd`` and the plugin."""
    running = start_server(cli, "--authorization", AUTHORIZATION, "--signing-secret", SECRET)
    yield running
    running.stop()
