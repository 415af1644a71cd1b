"""The core imports no web framework, and optional drivers load only with their store."""

from __future__ import annotations

import json
import subprocess
import sys

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
