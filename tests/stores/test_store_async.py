"""Each store under asyncio, as uvicorn serves it: many copies of many keys handled at once.

``handle_async`` runs a blocking store's calls in worker threads and awaits hooks on the event
loop, so copies of one key interleave at every await. Each key's hook must run exactly once,
with its own payload, and every copy must be answered processed or duplicate in the end.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from codat_webhooks import Receiver, RuleType, hookimpl
from codat_webhooks.stores import State, Store
from codat_webhooks.testing import sample_body

KEYS, COPIES = 40, 4


class LogRuns:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    @hookimpl
    async def on_alert(self, alert: Any, delivery: Any) -> None:
        await asyncio.sleep(0.001)  # the other copies run meanwhile
        self.runs.append((delivery.key, str(alert.alert_id)))


def test_concurrent_async_copies_run_each_key_once_with_its_own_payload(
    backend: str, make_store: Callable[..., Store]
) -> None:
    store = make_store(backend)
    log = LogRuns()
    receiver = Receiver(insecure=True, store=store, plugins=[log], load_entrypoints=False)
    bodies = [sample_body(RuleType.DATA_SYNC_COMPLETED) for _ in range(KEYS)]
    keys = [json.loads(body)["AlertId"] for body in bodies]
    copies = [body for body in bodies for _ in range(COPIES)]
    random.shuffle(copies)

    busy = Counter[str]()

    async def deliver(body: bytes) -> str:
        for _ in range(500):  # a copy in progress elsewhere is tried again, as Codat would
            outcome = str((await receiver.handle_async("POST", {}, body)).outcome)
            if outcome != "in_progress":
                return outcome
            busy[outcome] += 1
            await asyncio.sleep(0.005)
        return "never settled"

    async def everything() -> list[str]:
        return await asyncio.gather(*(deliver(body) for body in copies))

    outcomes = Counter(asyncio.run(everything()))
    assert busy["in_progress"] > 0, "no two copies of a key were ever handled at once"
    assert outcomes == Counter(processed=KEYS, duplicate=KEYS * (COPIES - 1)), outcomes
    assert [run for run in log.runs if run[0] != run[1]] == [], "a hook got another's payload"
    assert Counter(key for key, _ in log.runs) == Counter(keys), "a key ran twice or never"
    for key in keys:
        record = store.get(key)
        assert record is not None
        assert record.state is State.DONE
    receiver.close()
