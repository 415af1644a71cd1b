"""Each extra installs what its documented example needs: a clean virtualenv holding the built
wheel and the extra runs the example, read from the docs page that documents it.

The suite's own environment has every extra and the dev tools, so a dependency an extra forgets
(kombu's Redis transport needs ``packaging``; the tracing example needs the OpenTelemetry SDK)
never shows there. Here the extras get virtualenvs without system site-packages: ``pip
--python`` of the suite installs ``wheel[extras]`` into them (from the index, through pip's
cache), side by side while the first example runs. Nothing else is installed, not even pip.

Two virtualenvs, not six (installs are most of this file's time): ``celery`` alone, because
what it brings (redis-py, ``packaging``) is what other examples could lean on unnoticed; the
other extras share one, and a test proves that none of them brings a package another one
needs, so each example there still passes only on what its own extra brings.
``--no-compile`` halves the install time: the examples import a small part of what is installed.

What is adapted, mechanically: ports become free loopback ports of servers we start; the
Celery example's web process is the receiver it builds, called in a process of that virtualenv
(the web framework is not part of the extra); the console is served on port 0.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path

import httpx
import pytest

from codat_webhooks.stores import RedisStore
from tests.stores.store_servers import (
    PG_BIN,
    REDIS_SERVER,
    missing_service,
    running_postgres,
    start_redis,
    stop,
)

from .test_docs import DOCS, Block, blocks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = sorted(set(metadata("codat-webhooks").get_all("Provides-Extra") or ()) - {"dev"})
AUTHORIZATION = "Bearer s3cret"


def example(page: str, contains: str, language: str = "python") -> Block:
    """The one ``language`` block of ``docs/page`` containing ``contains``."""
    found = [b for b in blocks(DOCS / page) if b.language == language and contains in b.code]
    assert len(found) == 1, f"docs/{page}: {len(found)} {language} blocks contain {contains!r}"
    return found[0]


def file_block(page: str, name: str) -> Block:
    """The block of ``docs/page`` marked ``file: name``: a module later blocks import."""
    (found,) = [b for b in blocks(DOCS / page) if (b.directive, b.argument) == ("file", name)]
    return found


# --- the virtualenvs, installed side by side --------------------------------------------------

ALONE = ["celery"]
SHARED = [extra for extra in EXTRAS if extra not in ALONE]
GROUPS = {**{extra: [extra] for extra in ALONE}, "shared": SHARED}


def group_of(extra: str) -> str:
    return next(name for name, extras in GROUPS.items() if extra in extras)


class Venvs:
    """Starts every group's install at once; ``python(extra)`` waits for its group's only."""

    def __init__(self, wheel: Path, root: Path) -> None:
        self.root = root
        self.installs: dict[str, subprocess.Popen[str]] = {}
        for name, extras in GROUPS.items():
            venv = root / name
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
            self.installs[name] = subprocess.Popen(
                [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
                 "--quiet", "--no-compile", f"{wheel}[{','.join(extras)}]"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

    def python(self, extra: str) -> Path:
        name = group_of(extra)
        install = self.installs[name]
        output, _ = install.communicate(timeout=300)
        assert install.returncode == 0, f"pip install wheel{GROUPS[name]} failed:\n{output}"
        return self.root / name / "bin" / "python"

    def close(self) -> None:
        for install in self.installs.values():
            if install.poll() is None:
                install.kill()
            install.communicate()


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venvs]:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("*.whl")
    made = Venvs(wheel, tmp_path_factory.mktemp("venvs"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port; its URL without a database number."""
    if REDIS_SERVER is None:
        missing_service("redis-server")
    process, url = start_redis()
    yield url.rsplit("/", 1)[0]
    stop(process)


def clean_env(python: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell with that virtualenv first on PATH, nothing of ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CODAT_", "COV_", "COVERAGE_", "PYTEST_"))
        and key not in ("PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL", "DATABASE_URL")
    }
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run_python(python: Path, code: str, cwd: Path, **env: str) -> str:
    result = subprocess.run(
        [python, "-c", code], cwd=cwd, env=clean_env(python, **env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


# --- the examples -----------------------------------------------------------------------------

HANDLE = f"""
from codat_webhooks.testing import sample_body

reply = receiver.handle("POST", {{"Authorization": {AUTHORIZATION!r}}}, sample_body("Sync Failed"))
print(type(receiver.store).__name__, reply.status, reply.outcome, reply.key)
receiver.close()
"""
"""Appended to a store example: one delivery through the receiver it built."""


def store_example(python: Path, tmp_path: Path, **env: str) -> list[str]:
    code = example("deployment.md", "def store_from_environment").code
    return run_python(python, code + HANDLE, tmp_path, **env).split()


def check_redis(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_server")
    found = store_example(python, tmp_path, REDIS_URL=f"{url}/2")
    assert found[:3] == ["RedisStore", "200", "processed"], found


def check_postgres(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if PG_BIN is None:
        missing_service("PostgreSQL (initdb, postgres)")
    with running_postgres() as server:
        found = store_example(python, tmp_path, DATABASE_URL=server.dsn())
    assert found[:3] == ["PostgresStore", "200", "processed"], found


def check_prometheus(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run_python(python, example("operations.md", "PrometheusMetrics(registry)").code, tmp_path)


def check_otel(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    code = example("operations.md", "OpenTelemetryTracing(provider)").code
    printed = run_python(python, code, tmp_path)
    assert "codat_webhooks.delivery" in printed, printed


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + 60
        while (found := re.search(pattern, self.text())) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.log.name}: no {pattern!r}:\n{self.text()[-3000:]}")
            time.sleep(0.1)
        return found

    def stop(self) -> None:
        """The shell and what it started, by their process group; SIGKILL if they linger."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(command: str, python: Path, cwd: Path, name: str, **env: str) -> Started:
    log = cwd / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=clean_env(python, **env),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Started(process, log)


def check_console(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The page's ``myapp.py``, then its console commands as typed, on a port of the OS's."""
    (tmp_path / "myapp.py").write_text(file_block("operations.md", "myapp.py").code)
    typed = example("operations.md", "serve --console", language="console").code
    commands = [line[2:] for line in typed.splitlines() if line.startswith("$ ")]
    served = start("\n".join(commands) + " --port 0", python, tmp_path, "serve")
    try:
        url = served.wait_for(r"deliveries console on (http://\S+/console/)")[1]
        login = httpx.get(url + "login")
    finally:
        served.stop()
    assert login.status_code == 200, login.text
    assert 'type="password"' in login.text


def check_celery(python: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The page's ``myapp_tasks.py`` and its worker and beat commands against a real Redis; the
    web process's part is one delivery through the module's receiver, answered 202 queued."""
    url = request.getfixturevalue("redis_server")
    module = file_block("deployment.md", "myapp_tasks.py").code
    (tmp_path / "myapp_tasks.py").write_text(module.replace("redis://localhost:6379", url))
    typed = example("deployment.md", "myapp_tasks:celery_app worker", language="text").code
    lines = [line.split("  #")[0].strip() for line in typed.splitlines()]
    exports = "\n".join(line for line in lines if line.startswith("export "))
    assert AUTHORIZATION in exports
    worker, beat = (
        start(f"{exports}\nexec {line}", python, tmp_path, shlex.split(line)[3])
        for line in lines
        if line.startswith("celery ")
    )
    try:
        beat.wait_for(r"maxinterval -> ")  # the banner's last line: the broker's transport loaded
        answer = run_python(python, "from myapp_tasks import receiver\n" + HANDLE, tmp_path,
                            CODAT_WEBHOOKS_AUTHORIZATION=AUTHORIZATION)  # fmt: skip
        kind, status, outcome, key = answer.split()
        assert (kind, status, outcome) == ("RedisStore", "202", "queued"), answer
        with RedisStore(f"{url}/0") as store:
            deadline = time.monotonic() + 60
            while (record := store.get(key)) is None or record.state != "done":
                assert worker.process.poll() is None, worker.text()[-3000:]
                assert time.monotonic() < deadline, f"{record}\n{worker.text()[-3000:]}"
                time.sleep(0.1)
        assert beat.process.poll() is None, beat.text()[-3000:]
    finally:
        worker.stop()
        beat.stop()


Check = Callable[[Path, Path, pytest.FixtureRequest], None]
CHECKS: dict[str, Check] = {
    "celery": check_celery,
    "console": check_console,
    "otel": check_otel,
    "postgres": check_postgres,
    "prometheus": check_prometheus,
    "redis": check_redis,
}


def test_every_extra_has_a_documented_example() -> None:
    assert sorted(CHECKS) == EXTRAS


BROUGHT = r"""
import json, re, sys
from importlib.metadata import PackageNotFoundError, distribution


def closure(name, extras=()):
    seen, todo = set(), [(name, frozenset(extras))]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if (key, extras) in seen:
            continue
        try:
            requires = distribution(name).requires or ()
        except PackageNotFoundError:  # a requirement for another Python or platform
            continue
        seen.add((key, extras))
        for requirement in requires:
            spec, _, marker = requirement.partition(";")
            wanted = set(re.findall(r"extra\s*==\s*['\"]([^'\"]+)", marker))
            if wanted and not wanted & extras:
                continue
            found = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", spec)
            named = {e.strip() for e in (found[2] or "").split(",") if e.strip()}
            todo.append((found[1], frozenset(named)))
    return {key for key, _ in seen}


core = closure("codat-webhooks")
print(json.dumps({x: sorted(closure("codat-webhooks", {x}) - core) for x in sys.argv[1:]}))
"""
"""Prints, for each extra named, the installed distributions it brings beyond the core's."""


def test_the_shared_extras_bring_nothing_another_one_needs(venvs: Venvs, tmp_path: Path) -> None:
    python = venvs.python(SHARED[0])
    result = subprocess.run(
        [python, "-c", BROUGHT, *SHARED], capture_output=True, text=True, check=True
    )
    brought: dict[str, list[str]] = json.loads(result.stdout)
    for extra in SHARED:
        assert brought[extra], f"[{extra}] brings nothing: {brought}"
        others = {name for other in SHARED if other != extra for name in brought[other]}
        assert not others & set(brought[extra]), (extra, brought)


@pytest.mark.parametrize("extra", EXTRAS)
def test_extra_runs_its_documented_example(
    extra: str, venvs: Venvs, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    python = venvs.python(extra)
    CHECKS[extra](python, tmp_path, request)
