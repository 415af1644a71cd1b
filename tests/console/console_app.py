"""The application the console's tests serve with ``codat-webhooks serve --console --app``:
a receiver on the SQLite file ``$CONSOLE_TEST_DB`` whose one plugin fails while the file
``$CONSOLE_TEST_FAIL`` exists."""

from __future__ import annotations

import os

from codat_webhooks import Receiver
from codat_webhooks.stores import SQLiteStore
from tests.console.helpers import AUTHORIZATION, FailsWhileMarked

receiver = Receiver(
    authorization=AUTHORIZATION,
    store=SQLiteStore(os.environ["CONSOLE_TEST_DB"]),
    plugins=[FailsWhileMarked()],
    load_entrypoints=False,
)
