"""The README's terminal sessions print what the commands print today.

"Try it in two terminals" is read from README.md, never copied here: terminal 1's command is
started, terminal 2's commands run one after the other, and each output is compared with the
block's, line by line. What differs on every run is masked on both sides: keys and company IDs
(UUIDs), clock times, timestamps, durations, and the spacing that aligns columns around them.
Two things are adapted, mechanically: port 8765 becomes a free loopback port, and
``scripts/serve`` becomes the ``codat-webhooks serve`` it runs (the script works from the
repository root; the test works in a scratch directory, where the SQLite file lands). Terminal 1
is stopped as a user stops it, with Ctrl+C (SIGINT); the ``^C`` line is the terminal's echo.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .adapters.servers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SESSION = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PORT = "8765"
VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<timestamp>"),
    (re.compile(r"^\d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)? ms\b"), "<ms>"),
]


@dataclass(frozen=True)
class Typed:
    command: str
    output: list[str]


def sessions() -> list[list[Typed]]:
    """The console blocks of "Try it in two terminals": terminal 1, then terminal 2."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Try it in two terminals") :]
    section = section[: section.index("\n## ", 1)]
    found = []
    for block in SESSION.findall(section):
        typed: list[Typed] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                typed.append(Typed(line[2:], []))
            else:
                typed[-1].output.append(line)
        found.append(typed)
    return found


def masked(lines: list[str], port: int) -> list[str]:
    result = []
    for line in lines:
        line = line.replace(f":{port}/", f":{PORT}/")
        for pattern, mask in VOLATILE:
            line = pattern.sub(mask, line)
        result.append(" ".join(line.split()))
    return result


def shell_env() -> dict[str, str]:
    """A user's shell with this test run's virtualenv activated, and nothing of ours exported."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CODAT_") and key != "NO_MKDOCS_2_WARNING"  # the README sets it
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def as_run_here(command: str, port: int) -> str:
    command = command.replace("scripts/serve", "codat-webhooks serve")
    if "serve" in command or "--url" in command:
        assert PORT in command, f"the README's commands use port {PORT}: {command}"
    return command.replace(PORT, str(port))


def stop(server: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    """The shell and what it started, by their process group; SIGKILL if they linger."""
    if server.poll() is None:
        os.killpg(server.pid, how)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_two_terminals_print_what_the_readme_shows(tmp_path: Path) -> None:
    first, second = sessions()
    (serve,) = first
    shown = [line for line in serve.output if line != "^C"]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", as_run_here(serve.command, port)],
            cwd=tmp_path, env=shell_env(), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "press Ctrl+C" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        for typed in second:
            ran = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", as_run_here(typed.command, port)],
                cwd=tmp_path, env=shell_env(), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stdout + ran.stderr
            printed = (ran.stdout + ran.stderr).splitlines()
            assert masked(printed, port) == masked(typed.output, port), (
                f"README.md shows for `{typed.command}`:\n"
                + "\n".join(typed.output)
                + "\nbut it prints:\n"
                + "\n".join(printed)
            )
        deadline = time.monotonic() + 30
        while len(log.read_text().splitlines()) < len(shown) - 1:  # all but "stopped"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        stop(server, signal.SIGINT)
    printed = log.read_text().splitlines()
    assert masked(printed, port) == masked(shown, port), (
        f"README.md shows for `{serve.command}`:\n"
        + "\n".join(serve.output)
        + "\nbut it prints:\n"
        + "\n".join(printed)
    )


def preview(command: str, tmp_path: Path) -> str:
    """Run a ``mkdocs serve`` command on a free port until it starts building; what it printed.

    The theme, which prints the notice, is loaded with the configuration, before the build: no
    need to wait for the site."""
    port = free_port()
    log = tmp_path / f"mkdocs-{port}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", f"{command} --dev-addr 127.0.0.1:{port}"],
            cwd=ROOT, env=shell_env(), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Building documentation" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        stop(server)
    return log.read_text()


def test_the_docs_preview_prints_no_banner(tmp_path: Path) -> None:
    """Every ``mkdocs serve`` command of the README, as written (``.venv/bin`` being this test
    run's virtualenv)."""
    commands = re.findall(r"`([^`]*mkdocs serve[^`]*)`", README.read_text(encoding="utf-8"))
    assert commands
    for command in commands:
        printed = preview(command.replace(".venv/bin/", f"{BIN}/"), tmp_path)
        assert "end of life" not in printed, f"`{command}` prints:\n{printed}"
