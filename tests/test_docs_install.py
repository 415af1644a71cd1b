"""No page tells a user to install codat-webhooks from a package index: it is not on one.

Every install line in the documentation, the README and the examples' READMEs must install
from the clone (``python -m pip install '.[console]'``) or from a built wheel, as README.md
says. A line such as ``pip install 'codat-webhooks[console]'`` fails with "no matching
distribution" for every user who follows it literally.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").glob("*/README.md")]
)
INSTALL = re.compile(r"\b(?:pip3?|pipx|uv pip) install\b|\b(?:uv|poetry) add\b")
END_OF_COMMAND = re.compile(r"`|&&|;|\||#")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
PACKAGE = "codat-webhooks"


def normalized(name: str) -> str:
    """PEP 503: names differing only in case and runs of ``-``, ``_``, ``.`` are the same."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(command: str) -> list[str]:
    """The words of an install command that are not options: requirements, paths, wheels."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote in prose: words are still words
        words = command.split()
    return [word for word in words if not word.startswith("-")]


def from_an_index(requirement: str) -> bool:
    """``codat-webhooks[console]`` is; ``.[console]``, ``./dir`` and ``dist/x.whl`` are not."""
    match = NAME.match(requirement)
    if match is None or requirement[match.end() : match.end() + 1] == "/":
        return False
    return normalized(match.group(0)) == PACKAGE


def index_installs(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every install command naming the package from an index."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in INSTALL.finditer(line):
            rest = line[match.end() :]
            end = END_OF_COMMAND.search(rest)
            command = rest[: end.start()] if end else rest
            if any(from_an_index(word) for word in requirements(command)):
                found.append((number, line.strip()))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_install_lines_install_from_the_clone(page: Path) -> None:
    found = index_installs(page.read_text(encoding="utf-8"))
    where = [f"{page.relative_to(ROOT)}:{number}: {line}" for number, line in found]
    assert not where, (
        "codat-webhooks is not on a package index; install from the clone "
        "(python -m pip install '.[EXTRA]') as README.md says:\n" + "\n".join(where)
    )


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("`pip install 'codat-webhooks[console]'`", True),
        ("python -m pip install codat_webhooks==0.1.0 flask", True),
        ("uv add Codat.Webhooks", True),
        ("pip install --upgrade codat-webhooks", True),
        ("`python -m pip install '.[console]'`", False),
        ("python -m pip install dist/codat_webhooks-0.1.0-py3-none-any.whl flask", False),
        ("pip install ./examples/plugin_package", False),
        ("pip install codat-webhooks-audit", False),
        ("pip install 'redis[hiredis]' && echo codat-webhooks", False),
    ],
)
def test_what_counts_as_an_install_from_an_index(line: str, flagged: bool) -> None:
    assert bool(index_installs(line)) is flagged


def installed_before(text: str, position: int) -> set[str]:
    """The distributions named by the install commands of ``text`` above ``position``."""
    names = set()
    for line in text[:position].splitlines():
        for match in INSTALL.finditer(line):
            rest = line[match.end() :]
            end = END_OF_COMMAND.search(rest)
            for word in requirements(rest[: end.start()] if end else rest):
                if found := NAME.match(word):
                    names.add(normalized(found.group(0)))
    return names


@pytest.mark.parametrize(
    ("command", "distribution"),
    [
        (r"gunicorn -", "gunicorn"),
        (r"gunicorn -.*--worker-class uvicorn_worker\.UvicornWorker", "uvicorn-worker"),
    ],
    ids=["gunicorn", "uvicorn-worker"],
)
def test_the_deployment_page_installs_the_servers_it_runs(command: str, distribution: str) -> None:
    """A reader who set up the quickstart's environment has neither gunicorn nor uvicorn-worker:
    the page installs them before its first command runs one."""
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    first = re.search(rf"^{command}", text, re.MULTILINE)
    assert first, f"docs/deployment.md runs no {command!r}"
    assert distribution in installed_before(text, first.start()), (
        f"docs/deployment.md runs {distribution} before saying to install it"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_a_page_that_builds_a_wheel_installs_build_first(page: Path) -> None:
    """``python -m build`` is not in a fresh virtualenv: "No module named build"."""
    text = page.read_text(encoding="utf-8")
    for use in re.finditer(r"python3? -m build\b", text):
        line = text.count("\n", 0, use.start()) + 1
        assert "build" in installed_before(text, use.start()), (
            f"{page.relative_to(ROOT)}:{line} runs `python -m build` before installing build"
        )
