"""``--help`` reads well in an 80-column terminal, and a misspelt type gets a suggestion
(issue 26, item 10)."""

from __future__ import annotations

import argparse
import re
import textwrap

import pytest
from cli_helpers import Cli

from codat_webhooks.cli import build_parser, main

WIDTH = 80


def commands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def help_text(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))  # argparse sizes its output from it
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_describes_itself(name: str) -> None:
    description = commands()[name].description or ""
    assert len(description.split()) >= 12, f"{name} --help has no real description"


@pytest.mark.parametrize("name", ["", *sorted(commands())])
def test_no_help_line_is_wider_than_the_terminal(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([name] if name else [], monkeypatch, capsys)
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert wide == []


def test_the_command_list_gives_each_command_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([], monkeypatch, capsys)
    listing = text.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in listing] == list(commands())
    assert all(re.match(r"    [a-z]+ +\S", line) for line in listing), listing


def test_the_overview_is_filled_without_breaking_a_phrase(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([], monkeypatch, capsys)
    overview = text.split("\n\n", 1)[1].split("\npositional arguments:", 1)[0]
    for paragraph in overview.strip().split("\n\n"):
        words = " ".join(paragraph.split())
        assert paragraph == textwrap.fill(words, WIDTH - 2, break_on_hyphens=False)
    assert "list plugins and verify a captured" in " ".join(overview.split())


def test_verify_says_its_arguments_are_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(["verify"], monkeypatch, capsys)
    arguments = text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    assert re.search(r"HEADERS +file of the request's headers", arguments)
    assert re.search(r"BODY +file of the request's raw body", arguments)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["trigger", "Sync Faild"], "'Sync Failed'"),
        (["samples", "sync faild"], "'Sync Failed'"),
        (["trigger", "DataConectionStatusChanged"], "'DataConnectionStatusChanged'"),
        (["samples", "conection.created"], "'connection.created'"),
        (["samples", "invoices.write.sucessful"], "'invoices.write.successful'"),
    ],
)
def test_a_misspelt_type_gets_a_suggestion(cli: Cli, args: list[str], suggestion: str) -> None:
    done = cli(*args)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"unknown type {args[1]!r} (did you mean {suggestion}?)" in line


def test_nothing_close_gets_no_suggestion(cli: Cli) -> None:
    done = cli("samples", "banana")
    assert done.returncode == 2
    assert "did you mean" not in done.stderr
