from __future__ import annotations

import pytest

from codat_webhooks.stores import MemoryStore
from codat_webhooks.testing import Recorder


@pytest.fixture
def recorder(codat_recorder: Recorder) -> Recorder:
    return codat_recorder


@pytest.fixture
def store(codat_store: MemoryStore) -> MemoryStore:
    return codat_store
