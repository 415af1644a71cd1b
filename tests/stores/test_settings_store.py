"""``CODAT_WEBHOOKS_REDIS_URL`` in settings (environment or Flask config) means a Redis store."""

from __future__ import annotations

import json

import pytest

from codat_webhooks.settings import receiver_from_settings
from codat_webhooks.stores import RedisStore
from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.redis

AUTH = "Bearer settings"


def test_a_redis_url_setting_records_deliveries_in_that_redis(redis_url: str) -> None:
    settings = {
        "CODAT_WEBHOOKS_AUTHORIZATION": AUTH,
        "CODAT_WEBHOOKS_REDIS_URL": redis_url,
        "CODAT_WEBHOOKS_DB": "/nonexistent/ignored-when-redis-is-set.sqlite3",
    }
    receiver = receiver_from_settings(settings, load_entrypoints=False)
    try:
        assert isinstance(receiver.store, RedisStore)
        body = sample_body("Sync Failed")
        assert receiver.handle("POST", {"Authorization": AUTH}, body).outcome == "processed"
        key = json.loads(body)["AlertId"]
        with RedisStore(redis_url) as independent:  # its own connection to that server
            assert independent.get(key) is not None
    finally:
        receiver.close()
