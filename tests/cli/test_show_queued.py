"""``show`` says when a sweep will pick up a delivery no worker holds (issue 26, item 6).

The case from the issue: the broker is down, the delivery is recorded ``queued`` and answered
503, and no job anywhere holds its key. Only a sweep finds it, ``stale_after`` seconds later.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import AUTHORIZATION, Cli, start_server

from codat_webhooks.describe import parse_time

pytestmark = pytest.mark.slow

APP = f"""
from codat_webhooks import Receiver
from codat_webhooks.stores import SQLiteStore


class DownBroker:
    '''A queue engine whose broker cannot be reached, as CeleryQueue's when Redis is down.'''

    blocking = False
    stale_after = 300.0

    def bind(self, receiver):
        pass

    def enqueue(self, key):
        raise ConnectionError("broker down")

    def close(self):
        pass


receiver = Receiver(
    authorization={AUTHORIZATION!r},
    store=SQLiteStore("deliveries.sqlite3"),
    queue=DownBroker(),
    load_entrypoints=False,
)
"""


def test_show_says_when_the_sweep_picks_up_a_delivery_answered_503(cli: Cli) -> None:
    (cli.cwd / "brokerdown.py").write_text(APP)
    app = ["--app", "brokerdown:receiver"]
    server = start_server(cli, *app)
    try:
        sent = cli("trigger", "Sync Failed", "--url", server.url, "--authorization", AUTHORIZATION)
    finally:
        server.stop()
    assert " 503 unavailable " in sent.stdout, sent.stdout
    key = sent.stdout.splitlines()[1].split()[3]

    shown = json.loads(cli("show", key, "--json", *app).stdout)
    assert shown["state"] == "queued"
    queue = shown["queue"]
    assert queue["stale_after"] == 300
    assert parse_time(queue["swept_from"]) - parse_time(queue["due"]) == 300

    text = cli("show", key, *app).stdout
    assert f"due:        {queue['due']} (when a worker should take it)" in text
    assert (
        f"sweep:      re-enqueued by the first sweep from {queue['swept_from']}, if no worker "
        "took it (the queue's stale_after is 300s)"
    ) in text

    unknown = cli("show", key, "--db", "deliveries.sqlite3")  # no --app: the queue is unknown
    assert (
        "sweep:      re-enqueued by the first sweep once it is stale_after past due"
        in unknown.stdout
    )
    assert json.loads(cli("show", key, "--json", "--db", "deliveries.sqlite3").stdout)["queue"] == {
        "due": queue["due"],
        "stale_after": None,
        "swept_from": None,
    }


def test_a_done_delivery_has_no_queue_line(cli: Cli) -> None:
    server = start_server(cli, "--authorization", AUTHORIZATION)
    try:
        sent = cli("trigger", "Sync Failed", "--url", server.url, "--authorization", AUTHORIZATION)
    finally:
        server.stop()
    key = sent.stdout.splitlines()[1].split()[3]
    assert "sweep:" not in cli("show", key).stdout
    assert "queue" not in json.loads(cli("show", key, "--json").stdout)
