"""The documentation is tested like code.

* The site builds with ``mkdocs build --strict`` (broken links and anchors fail).
* Every hookspec and every rule and event type appears in the generated reference pages.
  (Their committed copies are checked by ``tests/test_docs_generated.py``, and the code blocks
  inside generated regions are output, never run.)
* Every fenced ``python`` and ``bash`` block in ``docs/*.md`` runs, page by page, in a fresh
  directory and one interpreter per page (so a page's blocks build on each other); a block
  marked ``file: NAME`` is written to ``NAME`` there instead, so later blocks can import it.
* Blocks that belong to a running app are marked with an HTML comment on the line before and
  run for real: ``file: NAME`` and ``app: KIND`` are written to disk (``app.py``), ``setup: env``
  is sourced, every ``serves: KIND`` command is started on a free port, and the ``sends:`` command
  (the quickstart's trigger) must get ``200 processed`` and make the handler print.
* ``bench: ARGS`` blocks (benchmark commands) run from the repository root with ``ARGS`` appended,
  small sizes that prove the command works without making the suite slow.
* ``doc-test: skip REASON`` leaves a block out; it must say why, and stay rare.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from docs import _hooks

from codat_webhooks.event_types import EVENTS
from codat_webhooks.hookspecs import SPEC_MODULES
from codat_webhooks.outcomes import Outcome
from codat_webhooks.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent

FENCE = re.compile(
    r"^[ \t]*(?:<!-- (?P<directive>[a-z-]+): ?(?P<argument>[^>]*?) -->\n[ \t]*)?"
    r"```(?P<language>[a-z]*)[^\n]*\n(?P<code>.*?)^[ \t]*```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
DIRECTIVES = ("doc-test", "file", "app", "setup", "serves", "sends", "bench")
RUNNABLE = ("python", "bash")
MAX_SKIPPED = 3
"""Blocks that cannot run here (installing from PyPI, ...). Keep this small and honest."""


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    directive: str | None
    argument: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def outside_generated(text: str) -> str:
    """``text`` with the committed generated regions blanked (line numbers kept): their code
    blocks are output, e.g. hook signatures, checked by ``tests/test_docs_generated.py``."""
    return _hooks.REGION.sub(lambda match: "\n" * match.group(0).count("\n"), text)


def blocks(page: Path) -> list[Block]:
    text = outside_generated(page.read_text(encoding="utf-8"))
    found = []
    for match in FENCE.finditer(text):
        found.append(
            Block(
                page=page.relative_to(DOCS).as_posix(),
                line=text.count("\n", 0, match.start("code")),
                language=match["language"],
                code=textwrap.dedent(match["code"]),
                directive=match["directive"],
                argument=match["argument"] or "",
            )
        )
    return found


PAGES = sorted(DOCS.rglob("*.md"))
ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def runnable(page: Path) -> list[Block]:
    """Blocks that run, and ``file:`` blocks, which are written to disk where they appear."""
    return [
        block
        for block in blocks(page)
        if block.language in RUNNABLE and block.directive in (None, "file")
    ]


def docs_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CODAT_") and key not in ("REDIS_URL", "DATABASE_URL")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- the site builds, and the reference is complete -----------------------------------------


BUILT_SITE = "DOCS_SITE_BUILT"
"""Set by ``scripts/test`` to the site its ``mkdocs build --strict`` wrote from this tree just
before pytest started, so the docs tests read that site instead of building it again."""


def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with ``--strict`` from this tree: ``scripts/test``'s, or a new one."""
    given = os.environ.get(BUILT_SITE)
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=docs_env(NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_site(tmp_path_factory)


def page_html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def hookspec_names() -> list[str]:
    marker = "codat_webhooks_spec"
    return [
        name
        for module in SPEC_MODULES
        for name, value in vars(module).items()
        if callable(value) and hasattr(value, marker)
    ]


def test_every_hookspec_is_documented(site: Path) -> None:
    names = hookspec_names()
    assert len(names) >= 19  # 14 rule hooks and 5 general ones at least
    hooks_page = page_html(site, "reference/hooks")
    missing = [name for name in names if f'id="{name}"' not in hooks_page]
    assert not missing, f"hooks missing from docs/reference/hooks.md: {missing}"


def test_every_rule_type_is_documented(site: Path) -> None:
    rules_page = html.unescape(page_html(site, "reference/rules"))
    for rule in RULES:
        assert f'id="{rule.hook}"' in rules_page, rule.type
        for spelling in (rule.type.value, *rule.spellings):
            assert f"<code>{spelling}</code>" in rules_page, spelling


def test_every_event_type_is_documented(site: Path) -> None:
    rules_page = html.unescape(page_html(site, "reference/rules"))
    for spec in EVENTS:
        assert f'id="{spec.hook}"' in rules_page, spec.type
        assert f"<code>{spec.type.value}</code>" in rules_page, spec.type


def test_every_outcome_is_in_the_status_table() -> None:
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    outcomes = [outcome.value for outcome in Outcome]
    missing = [outcome for outcome in outcomes if f"| `{outcome}` |" not in concepts]
    assert not missing


def test_changelog_page_is_the_changelog(site: Path) -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[?([^\]\n]+)", changelog, re.MULTILINE)
    rendered = html.unescape(page_html(site, "changelog"))
    assert headings
    for heading in headings:
        assert heading in rendered


def test_api_reference_renders_the_receiver(site: Path) -> None:
    api = page_html(site, "reference/api")
    for name in ("codat_webhooks.Receiver", "codat_webhooks.Receiver.handle_async"):
        assert f'id="{name}"' in api, name


def test_api_reference_documents_the_queues(site: Path) -> None:
    api = page_html(site, "reference/api")
    for name in (
        "codat_webhooks.queues.LocalQueue",
        "codat_webhooks.queues.celery.CeleryQueue",
        "codat_webhooks.queues.RetryPolicy",
        "codat_webhooks.Receiver.process_queued",
    ):
        assert f'id="{name}"' in api, name
    source = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    assert "from codat_webhooks.queues import LocalQueue, RetryPolicy" in source
    assert "from codat_webhooks.queues.celery import CeleryQueue" in source
    assert "CeleryQueue(celery_app, stale_after=300)" in source
    assert "codat-webhooks show KEY" in source, "where to see when the sweep picks a key up"


# --- every code sample runs -----------------------------------------------------------------

RUNNER = """
import json, subprocess, sys

for block in json.load(sys.stdin):
    print(f"--- {block['where']}", flush=True)
    if block["file"]:
        with open(block["file"], "w", encoding="utf-8") as module:
            module.write(block["code"])
    elif block["language"] == "python":
        namespace = globals().setdefault("_docs_namespace", {"__name__": "__docs__"})
        exec(compile(block["code"], block["where"], "exec"), namespace)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]], check=True, timeout=60)
"""


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if runnable(page)],
    ids=lambda page: page.relative_to(DOCS).as_posix(),
)
def test_code_samples_run(page: Path, tmp_path: Path) -> None:
    payload = [
        {
            "where": block.where,
            "language": block.language,
            "code": block.code,
            "file": block.argument if block.directive == "file" else None,
        }
        for block in runnable(page)
    ]
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(payload),
        cwd=tmp_path,
        env=docs_env(),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_skipped_samples_are_rare_and_explained() -> None:
    skipped = [block for block in ALL_BLOCKS if block.directive == "doc-test"]
    assert len(skipped) <= MAX_SKIPPED, [block.where for block in skipped]
    for block in skipped:
        assert block.argument.startswith("skip "), block.where
        assert len(block.argument) > len("skip ") + 10, f"{block.where}: say why it cannot run"


def test_only_known_directives_and_languages() -> None:
    for block in ALL_BLOCKS:
        assert block.directive in (None, *DIRECTIVES), block.where
        assert block.language, f"{block.where}: give every code block a language"


# --- the quickstart, and every server command, run for real -----------------------------------

QUICKSTART = DOCS / "quickstart.md"
DEFAULT_PORT = "8000"


def marked(directive: str, argument: str | None = None) -> list[Block]:
    return [
        block
        for block in ALL_BLOCKS
        if block.directive == directive and (argument is None or block.argument == argument)
    ]


def quickstart(directive: str, argument: str | None = None) -> Block:
    (block,) = [block for block in marked(directive, argument) if block.page == "quickstart.md"]
    return block


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def on_port(command: str, port: int) -> str:
    assert re.search(rf"\b{DEFAULT_PORT}\b", command), f"the command must name port {DEFAULT_PORT}"
    return re.sub(rf"\b{DEFAULT_PORT}\b", str(port), command)


def wait_for_port(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"server did not listen on {port}:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # the shell and the server it started
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_quickstart_has_every_step() -> None:
    assert QUICKSTART.exists()
    quickstart("file", "handlers.py")
    quickstart("setup", "env")
    quickstart("sends", "delivery")
    assert {block.argument for block in marked("serves")} >= {"flask", "fastapi"}
    for block in marked("serves"):
        quickstart("app", block.argument)


SERVES = marked("serves")


@pytest.mark.slow
@pytest.mark.parametrize("serve", SERVES, ids=[f"{b.argument}-{b.where}" for b in SERVES])
def test_server_command_receives_a_signed_delivery(serve: Block, tmp_path: Path) -> None:
    """Follow the quickstart: write its files, start the server as shown, trigger as shown."""
    (tmp_path / "handlers.py").write_text(quickstart("file", "handlers.py").code)
    (tmp_path / "app.py").write_text(quickstart("app", serve.argument).code)
    setup = quickstart("setup", "env").code
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", setup + on_port(serve.code, port)],
            cwd=tmp_path,
            env=docs_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, server, log)
        sent = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", setup + on_port(quickstart("sends").code, port)],
            cwd=tmp_path,
            env=docs_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop(server)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert re.search(r"\b200 processed\b", sent.stdout), sent.stdout
    key = re.search(r"200 processed\s+(\S+)", sent.stdout)
    assert key is not None
    printed = log.read_text()
    assert "PendingAuth -> Linked" in printed, printed
    assert f"handled {key.group(1)}" in printed, printed


BENCHES = marked("bench")


@pytest.mark.slow
@pytest.mark.parametrize("bench", BENCHES, ids=[block.where for block in BENCHES])
def test_benchmark_command_runs(bench: Block) -> None:
    command = bench.code.strip()
    assert "\n" not in command, bench.where
    assert command.startswith("python -m benchmarks."), bench.where
    env = docs_env()
    # Not under coverage's tracer (scripts/test measures subprocesses): it made these runs
    # three to seven times as long, to measure code the other tests already run.
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"{command} {bench.argument}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baseline" in result.stdout or "vs memory" in result.stdout, result.stdout
