"""Every string enum prints, formats and hashes as its value, on every supported Python."""

from __future__ import annotations

import pytest

from codat_webhooks import RuleType
from codat_webhooks.event_types import EventType
from codat_webhooks.outcomes import Outcome
from codat_webhooks.stores import ClaimStatus, State
from codat_webhooks.text_enum import TextEnum

MEMBERS = [member for enum in (RuleType, EventType, Outcome, State, ClaimStatus) for member in enum]


@pytest.mark.parametrize("member", MEMBERS, ids=str)
def test_a_member_is_its_value_in_text_and_in_dicts(member: TextEnum) -> None:
    value = member.value
    assert str(member) == value
    assert f"{member}" == value
    assert f"{member:>40}" == f"{value:>40}"
    assert hash(member) == hash(value)
    assert {value: "found"}[member] == "found"
    assert {member: "found"}[value] == "found"
