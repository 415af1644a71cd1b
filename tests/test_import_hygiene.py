"""The core imports no web framework, and optional drivers load only with their store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FRAMEWORKS = {"flask", "fastapi", "starlette", "django", "uvicorn", "gunicorn"}


def imported_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(result.stdout)}


def test_core_imports_no_framework_server_or_driver() -> None:
    modules = imported_after(
        "import codat_webhooks, codat_webhooks.receiver, codat_webhooks.stores, "
        "codat_webhooks.testing\n"
        "from codat_webhooks.stores import MemoryStore"
    )
    assert not modules & FRAMEWORKS
    assert not modules & {"werkzeug", "redis", "psycopg", "psycopg_pool"}
    assert "asgiref" not in modules  # only the async path imports it, on first use


def test_importing_the_package_does_no_work_at_import_time() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import codat_webhooks, threading; print(threading.active_count())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "1"


def test_the_command_line_imports_pydantic_only_for_commands_that_parse_bodies() -> None:
    # Every `codat-webhooks` run imports the parser of every command: `events`, `show`,
    # `purge`, `samples`, `trigger` and `--help` start without pydantic and the models.
    modules = imported_after(
        "import codat_webhooks, codat_webhooks.cli, codat_webhooks.testing.samples, "
        "codat_webhooks.testing.signing\n"
        "codat_webhooks.cli.build_parser()"
    )
    assert not modules & {"pydantic", "werkzeug"}  # the stores use pydantic_core alone


def test_the_package_names_load_on_first_use() -> None:
    code = (
        "import sys, codat_webhooks, codat_webhooks.testing as t\n"
        "assert 'codat_webhooks.receiver' not in sys.modules\n"
        "from codat_webhooks import Alert, Receiver, construct_event, parse_event\n"
        "assert Receiver.__module__ == 'codat_webhooks.receiver'\n"
        "assert t.FakeClock.__module__ == 'codat_webhooks.testing.retries'\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_dir_lists_the_names_loaded_on_first_use_and_others_are_attribute_errors() -> None:
    import codat_webhooks
    import codat_webhooks.testing

    assert {"Receiver", "parse_alert", "construct_event"} <= set(dir(codat_webhooks))
    assert {"deliver_with_retries", "sample_body"} <= set(dir(codat_webhooks.testing))
    for module in (codat_webhooks, codat_webhooks.testing):
        with pytest.raises(AttributeError, match="nothing_by_this_name"):
            module.nothing_by_this_name  # noqa: B018 - the attribute access is the test
