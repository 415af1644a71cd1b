"""The values Codat documents for its enum-like fields, as constants to compare against.

The models keep these fields as plain ``str``: Codat adds values without notice (a new
connection status, a new routing scheme), and a receiver that rejected an unknown value would
park a genuine event. Compare with these constants instead of with string literals::

    from codat_webhooks.models.values import ConnectionStatus

    if event.payload.connection.status == ConnectionStatus.LINKED:
        ...

Each class's ``DOCUMENTED`` tuple lists every value Codat's schema names, in its order, so code
can tell a documented value from a new one. Sources: ``codatio/oas`` ``json/Codat-Platform.json``,
``Codat-Bank-Feeds-v2.json``, ``Codat-Sync-Expenses.json`` (schema names in each docstring).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AccountType",
    "ConnectionStatus",
    "DataConnectionErrorStatus",
    "DatasetErrorStatus",
    "ExpensesTransactionStatus",
    "RoutingType",
    "SourceAccountStatus",
    "SourceType",
    "WriteStatus",
    "WriteType",
]


class ConnectionStatus:
    """``connection.status`` (schema ``dataConnectionStatus``)."""

    PENDING_AUTH: Final = "PendingAuth"
    LINKED: Final = "Linked"
    UNLINKED: Final = "Unlinked"
    DEAUTHORIZED: Final = "Deauthorized"
    DOCUMENTED: Final = (PENDING_AUTH, LINKED, UNLINKED, DEAUTHORIZED)


class SourceType:
    """``connection.sourceType`` (schema ``sourceType``)."""

    ACCOUNTING: Final = "Accounting"
    BANKING: Final = "Banking"
    BANK_FEED: Final = "BankFeed"
    COMMERCE: Final = "Commerce"
    EXPENSE: Final = "Expense"
    OTHER: Final = "Other"
    UNKNOWN: Final = "Unknown"
    DOCUMENTED: Final = (ACCOUNTING, BANKING, BANK_FEED, COMMERCE, EXPENSE, OTHER, UNKNOWN)


class DataConnectionErrorStatus:
    """``dataConnectionErrors[].status`` (schema ``dataConnectionError``).

    ``None`` (JSON ``null``) is documented too: it means the error is not transient.
    """

    ACTIVE: Final = "Active"
    RESOLVED: Final = "Resolved"
    DOCUMENTED: Final = (ACTIVE, RESOLVED)


class DatasetErrorStatus:
    """``read.completed`` ``dataTypes[].status`` values that meant "Data Sync Status Changed To
    Error" (the deprecation note of ``DataSyncStatusChangedToError`` in codat-docs
    ``static/oas/Webhooks.json``)."""

    FETCH_ERROR: Final = "FetchError"
    MAP_ERROR: Final = "MapError"
    INTERNAL_ERROR: Final = "InternalError"
    PROCESSING_ERROR: Final = "ProcessingError"
    VALIDATION_ERROR: Final = "ValidationError"
    AUTH_ERROR: Final = "AuthError"
    RATE_LIMIT_ERROR: Final = "RateLimitError"
    PERMISSIONS_ERROR: Final = "PermissionsError"
    PREREQUISITE_NOT_MET: Final = "PrerequisiteNotMet"
    DOCUMENTED: Final = (
        FETCH_ERROR,
        MAP_ERROR,
        INTERNAL_ERROR,
        PROCESSING_ERROR,
        VALIDATION_ERROR,
        AUTH_ERROR,
        RATE_LIMIT_ERROR,
        PERMISSIONS_ERROR,
        PREREQUISITE_NOT_MET,
    )


class WriteType:
    """``{dataType}.write.*`` ``payload.type`` (schema ``writeType``)."""

    CREATE: Final = "Create"
    UPDATE: Final = "Update"
    DELETE: Final = "Delete"
    UPLOAD_ATTACHMENT: Final = "UploadAttachment"
    DOCUMENTED: Final = (CREATE, UPDATE, DELETE, UPLOAD_ATTACHMENT)


class WriteStatus:
    """``{dataType}.write.*`` ``payload.status`` (schema ``writeStatus``)."""

    PENDING: Final = "Pending"
    FAILED: Final = "Failed"
    SUCCESS: Final = "Success"
    TIMED_OUT: Final = "TimedOut"
    DOCUMENTED: Final = (PENDING, FAILED, SUCCESS, TIMED_OUT)


class SourceAccountStatus:
    """``sourceAccount.status`` (schema ``SourceAccountv2``)."""

    PENDING: Final = "pending"
    CONNECTED: Final = "connected"
    CONNECTING: Final = "connecting"
    DISCONNECTED: Final = "disconnected"
    UNKNOWN: Final = "unknown"
    DOCUMENTED: Final = (PENDING, CONNECTED, CONNECTING, DISCONNECTED, UNKNOWN)


class AccountType:
    """``sourceAccount.accountType`` (schema ``SourceAccountv2``; V1 bodies send other words)."""

    CHECKING: Final = "checking"
    SAVINGS: Final = "savings"
    LOAN: Final = "loan"
    CREDIT_CARD: Final = "creditCard"
    PREPAID_CARD: Final = "prepaidCard"
    DOCUMENTED: Final = (CHECKING, SAVINGS, LOAN, CREDIT_CARD, PREPAID_CARD)


class RoutingType:
    """``sourceAccount.routingInfo.type`` (schema ``routingInfo``; Codat's default ``bankcode``)."""

    RTN: Final = "rtn"
    ABA: Final = "aba"
    SWIFT: Final = "swift"
    BSB: Final = "bsb"
    IBAN: Final = "iban"
    NZ2: Final = "nz2"
    TRNO: Final = "trno"
    SORTCODE: Final = "sortcode"
    BLZ: Final = "blz"
    IFSC: Final = "ifsc"
    BANKCODE: Final = "bankcode"
    APCA: Final = "apca"
    CLABE: Final = "clabe"
    DOCUMENTED: Final = (
        RTN, ABA, SWIFT, BSB, IBAN, NZ2, TRNO, SORTCODE, BLZ, IFSC, BANKCODE, APCA, CLABE
    )  # fmt: skip


class ExpensesTransactionStatus:
    """``expenses.sync.*`` ``transactions[].status`` (schema ``ExpensesSyncWebhook``
    ``transaction``)."""

    UNKNOWN: Final = "Unknown"
    PUSH_ERROR: Final = "PushError"
    COMPLETED: Final = "Completed"
    FAILED: Final = "Failed"
    PENDING: Final = "Pending"
    DOCUMENTED: Final = (UNKNOWN, PUSH_ERROR, COMPLETED, FAILED, PENDING)
