"""The legacy rule types: the one table where Codat's rule-type strings and hook names live.

Codat has spelled its rule types many ways over the years (``synchronised``/``synchronized``,
``To Error``/``to Error``, a trailing ``()``, and PascalCase names while legacy bodies travelled
over the new service in 2024). Everything else in the library asks this module, so a new spelling
is a one-line change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text_enum import TextEnum

__all__ = ["RULES", "Rule", "RuleType", "normalise_rule_type"]


class RuleType(TextEnum):
    """The 14 legacy rule types, valued by the canonical string Codat's documentation prints."""

    DATA_CONNECTION_STATUS_CHANGED = "DataConnectionStatusChanged"
    NEW_COMPANY_SYNCHRONISED = "New company synchronised"
    DATA_SYNC_COMPLETED = "Data sync completed"
    DATASET_DATA_CHANGED = "Dataset data changed"
    DATA_SYNC_STATUS_CHANGED_TO_ERROR = "Data Sync Status Changed To Error"
    PUSH_OPERATION_STATUS_CHANGED = "Push Operation Status Changed()"
    PUSH_OPERATION_TIMED_OUT = "Push Operation Timed Out"
    ACCOUNT_CATEGORIES_UPDATED = "Account Categories Updated"
    SYNC_CONNECTION_DELETED = "Sync Connection Deleted"
    EXPENSES_SYNC_STARTED = "Sync Started"
    EXPENSES_SYNC_COMPLETED = "Sync Completed"
    EXPENSES_SYNC_FAILED = "Sync Failed"
    RATE_LIMIT_REACHED = "Rate Limit Reached"
    RATE_LIMIT_RESET = "Rate Limit Reset"

    @property
    def hook(self) -> str:
        """The name of the hookspec called for this rule (``on_`` + the member name)."""
        return _HOOKS[self]

    @property
    def rule(self) -> Rule:
        """This rule type's row of :data:`RULES`."""
        return _ROWS[self]

    @classmethod
    def parse(cls, text: object) -> RuleType | None:
        """Recognise any spelling Codat has used; ``None`` means an unknown rule (not an error)."""
        if not isinstance(text, str):
            return None
        known = _BY_SPELLING.get(text)  # every spelling is also stored verbatim: no regex
        return known if known is not None else _BY_SPELLING.get(normalise_rule_type(text))


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the rule table.

    ``spellings`` are the other strings Codat is known to have sent, beyond the canonical value;
    ``summary`` is the one-line trigger shown in docs and the CLI.
    """

    type: RuleType
    summary: str
    spellings: tuple[str, ...] = ()

    @property
    def hook(self) -> str:
        return self.type.hook


RULES: tuple[Rule, ...] = (
    Rule(
        RuleType.DATA_CONNECTION_STATUS_CHANGED,
        "A data connection's status changed.",
    ),
    Rule(
        RuleType.NEW_COMPANY_SYNCHRONISED,
        "The initial sync of a newly connected company finished.",
        ("New company synchronized", "NewCompanySynchronized"),
    ),
    Rule(
        RuleType.DATA_SYNC_COMPLETED,
        "A data type's sync completed in full.",
        ("DataSyncCompleted",),
    ),
    Rule(
        RuleType.DATASET_DATA_CHANGED,
        "A sync created or changed records in a dataset.",
        ("DatasetDataChanged",),
    ),
    Rule(
        RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR,
        "A dataset's sync failed.",
        ("Data Sync Status Changed to Error", "DataSyncStatusChangedToError"),
    ),
    Rule(
        RuleType.PUSH_OPERATION_STATUS_CHANGED,
        "A push operation's status changed.",
        ("Push Operation Status Changed", "PushOperationStatusChanged"),
    ),
    Rule(
        RuleType.PUSH_OPERATION_TIMED_OUT,
        "A push operation timed out.",
        ("PushOperationTimedOut",),
    ),
    Rule(
        RuleType.ACCOUNT_CATEGORIES_UPDATED,
        "Suggested or confirmed account categories changed.",
        ("AccountCategoriesUpdated",),
    ),
    Rule(
        RuleType.SYNC_CONNECTION_DELETED,
        "A Sync for Commerce connection was deleted.",
        ("SyncConnectionDeleted",),
    ),
    Rule(
        RuleType.EXPENSES_SYNC_STARTED,
        "A Sync for Expenses sync started (still in Codat's spec, gone from its docs).",
        ("SyncStarted",),
    ),
    Rule(
        RuleType.EXPENSES_SYNC_COMPLETED,
        "A Sync for Expenses sync completed.",
        ("SyncCompleted",),
    ),
    Rule(
        RuleType.EXPENSES_SYNC_FAILED,
        "A Sync for Expenses sync failed.",
        ("SyncFailed",),
    ),
    Rule(
        RuleType.RATE_LIMIT_REACHED,
        "The client's daily API quota was used up.",
        ("ClientRateLimitReached",),
    ),
    Rule(
        RuleType.RATE_LIMIT_RESET,
        "The client's daily API quota was reset.",
        ("ClientRateLimitReset",),
    ),
)

_SEPARATORS = re.compile(r"[\s_\-()]+")


def normalise_rule_type(text: str) -> str:
    """Fold case, spacing, punctuation and British/American spelling into one comparable key."""
    folded = _SEPARATORS.sub("", text).lower()
    return folded.replace("synchronized", "synchronised")


_ROWS: dict[RuleType, Rule] = {rule.type: rule for rule in RULES}
_HOOKS: dict[RuleType, str] = {member: "on_" + member.name.lower() for member in RuleType}
_BY_SPELLING: dict[str, RuleType] = {
    form: rule.type
    for rule in RULES
    for spelling in (rule.type.value, *rule.spellings)
    for form in (spelling, normalise_rule_type(spelling))
}
