"""Fixtures for the adapter tests: a receiver whose hooks record what ran, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from codat_webhooks import Receiver, hookimpl
from codat_webhooks.stores import MemoryStore

AUTH = "Bearer adapter-tests"
SECRET = "whsec_" + "YWRhcHRlci10ZXN0cy1zaWduaW5nLXNlY3JldA=="
LIMIT = 4096


class Recorder:
    """Records every hook call; ``on_alert`` is sync, the per-rule hook is ``async def``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def on_alert(self, alert: Any, delivery: Any) -> None:
        self.calls.append(("sync on_alert", delivery.key))

    @hookimpl
    async def on_data_connection_status_changed(self, alert: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(("async status changed", alert.data.new_status))

    @hookimpl
    def on_rejected(self, delivery: Any, error: Exception) -> None:
        self.calls.append(("rejected", getattr(error, "outcome", None)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def receiver(recorder: Recorder, store: MemoryStore) -> Iterator[Receiver]:
    rec = Receiver(
        authorization=AUTH,
        signing_secrets=SECRET,
        store=store,
        plugins=[recorder],
        load_entrypoints=False,
        max_body_bytes=LIMIT,
    )
    yield rec
    rec.close()
