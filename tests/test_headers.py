"""``Headers.get``: any spelling of a name finds the first value; an absent name the default."""

from __future__ import annotations

import pytest

from codat_webhooks.headers import Headers

PAIRS = [("Webhook-ID", "msg_1"), ("authorization", "Bearer a"), ("WEBHOOK-id", "msg_2")]


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Id", "WEBHOOK-ID"])
def test_any_spelling_finds_the_first_value(name: str) -> None:
    assert Headers(PAIRS).get(name) == "msg_1"


@pytest.mark.parametrize("name", ["authorization", "Authorization"])
def test_a_name_sent_in_lower_case_is_found_in_any_spelling(name: str) -> None:
    assert Headers(PAIRS).get(name) == "Bearer a"


@pytest.mark.parametrize("name", ["webhook-signature", "Webhook-Signature"])
def test_an_absent_name_gives_the_default(name: str) -> None:
    headers = Headers(PAIRS)
    assert headers.get(name) is None
    assert headers.get(name, "none") == "none"


def test_an_empty_value_is_a_value_not_the_default() -> None:
    assert Headers([("Webhook-Id", "")]).get("webhook-id", "none") == ""
