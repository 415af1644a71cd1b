"""The application the console's tests serve with ``codat-webhooks serve --console --app``.

Its receiver keeps deliveries in the SQLite file ``$CONSOLE_TEST_DB`` and has one plugin that
handles every alert and event, failing while the file ``$CONSOLE_TEST_FAIL`` exists: how a test
breaks the handler, then "deploys the fix" and replays from the console.
"""

from __future__ import annotations

import os
from pathlib import Path

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores import SQLiteStore
from tests.console.helpers import AUTHORIZATION


class Handler:
    @hookimpl
    def on_alert(self, alert: object, delivery: object) -> None:
        if Path(os.environ["CONSOLE_TEST_FAIL"]).exists():
            raise RuntimeError("handler bug (marker file present)")

    @hookimpl
    def on_event(self, event: object, delivery: object) -> None:
        self.on_alert(event, delivery)


receiver = Receiver(
    authorization=AUTHORIZATION,
    store=SQLiteStore(os.environ["CONSOLE_TEST_DB"]),
    plugins=[Handler()],
    load_entrypoints=False,
)
