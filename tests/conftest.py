"""Fixtures shared by the whole suite. Service fixtures (Redis, PostgreSQL) live next to the
tests that need them; the public fixtures come from ``codat_webhooks.testing.pytest_plugin``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).parent / "samples"
SEED_FILES = sorted(SAMPLES_DIR.glob("*.json"))

REQUIRE_SERVICES = os.environ.get("CODAT_WEBHOOKS_REQUIRE_SERVICES") == "1"
"""Set by .ci/run: a test whose server binary is missing fails instead of skipping."""


def missing_service(what: str) -> None:
    """Skip locally, fail in CI, when a server binary the test needs is not installed."""
    message = f"{what} is not installed (scripts/test installs it)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=SEED_FILES, ids=[path.stem for path in SEED_FILES])
def seed_body(request: pytest.FixtureRequest) -> bytes:
    """Each of the 13 seed payloads, byte for byte as in Codat's rule-types page."""
    path: Path = request.param
    return path.read_bytes()


@pytest.fixture
def seed_bodies() -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in SEED_FILES}


def load_seed(name: str) -> dict[str, object]:
    return json.loads((SAMPLES_DIR / f"{name}.json").read_bytes())  # type: ignore[no-any-return]


ROOT = Path(__file__).resolve().parent.parent
LEFT_BY_THE_RUNNER = frozenset({".coverage", ".hypothesis"})
"""Written on purpose, and ignored by git: ``coverage run``'s data around pytest, and the
examples Hypothesis keeps so that a failure it found is tried first on the next run."""


def root_entries() -> set[str]:
    return {
        path.name
        for path in ROOT.iterdir()
        if path.name not in LEFT_BY_THE_RUNNER and not path.name.startswith(".coverage.")
    }


AT_START = root_entries()
"""Taken when pytest loads this file, before collection imports any test module."""


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A test, or a module imported at collection, that writes into the current directory (the
    repository root under pytest) leaves a file a developer may commit by mistake, or that a
    later run silently reuses (a SQLite store full of old deliveries). Files belong in
    ``tmp_path``: the run fails if any was left.

    Checked once every test has finished: by the pytest-xdist controller, not by a worker,
    which would see the files a test still running in another worker has open (the stores
    benchmark keeps its databases in a directory of its own there, and removes it)."""
    if hasattr(session.config, "workerinput"):
        return
    stray = sorted(root_entries() - AT_START)
    if stray:
        message = f"the test run left these in {ROOT}: {stray}; write them under tmp_path"
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
