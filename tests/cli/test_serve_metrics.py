"""``serve --metrics`` through the real executable: /metrics beside the webhook, and health."""

from __future__ import annotations

import httpx
import pytest
from cli_helpers import AUTHORIZATION, Cli, start_server

from codat_webhooks.testing import sample_body

pytestmark = pytest.mark.slow


def test_serve_metrics_counts_real_deliveries(cli: Cli) -> None:
    server = start_server(cli, "--authorization", AUTHORIZATION, "--metrics")
    try:
        base = server.url.rsplit("/webhooks/codat", 1)[0]
        body = sample_body("Dataset data changed")
        auth = {"Authorization": AUTHORIZATION}
        assert httpx.post(server.url, content=body, headers=auth).status_code == 200
        assert httpx.post(server.url, content=body, headers=auth).status_code == 200
        assert (
            httpx.post(server.url, content=body, headers={"Authorization": "x"}).status_code == 401
        )
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
        text = httpx.get(base + "/metrics").text
    finally:
        server.stop()
    assert (
        'codat_webhooks_deliveries_total{outcome="processed",status="200",'
        'type="Dataset data changed"} 1.0'
    ) in text
    assert (
        'codat_webhooks_deliveries_total{outcome="unauthorized",status="401",type=""} 1.0' in text
    )
    assert 'codat_webhooks_records{state="done"} 1.0' in text


def test_serve_without_metrics_has_no_metrics_path(cli: Cli) -> None:
    server = start_server(cli, "--authorization", AUTHORIZATION)
    try:
        base = server.url.rsplit("/webhooks/codat", 1)[0]
        assert httpx.get(base + "/metrics").status_code == 404
    finally:
        server.stop()
