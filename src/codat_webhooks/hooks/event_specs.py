"""Hook specifications for new-service events (``{id, eventType, generatedDate, payload}``).

One hook per event type of :data:`codat_webhooks.event_types.EVENTS`, named mechanically from it,
then ``on_event`` for every event. Implement them with ``@codat_webhooks.hookimpl`` exactly like
the legacy hooks: any subset of the arguments, sync or ``async def``.

Common arguments:

``event``
    The parsed :class:`codat_webhooks.Event` subclass for the event type (``event.payload``
    typed; every field optional). ``event.kind`` is the recognised
    :class:`codat_webhooks.event_types.EventType`, ``event.event_type`` the string as received.
``delivery``
    The :class:`codat_webhooks.Delivery`; for signed deliveries ``delivery.key`` is the
    ``webhook-id`` header, constant across Codat's retries.

If an event hook raises, ``on_handler_error`` receives the event as ``payload`` (and, under the
older name, as ``alert``) and the delivery is retried later. Transitional PascalCase event types
(``DataConnectionStatusChanged``, ``AccountCategoriesUpdated``, ...) are legacy alerts: they reach
the legacy per-rule hooks and ``on_alert``, never these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from ..delivery import Delivery
    from ..models.events import (
        ClientRateLimitEvent,
        CompanyEvent,
        CompanyProductEvent,
        ConnectionEvent,
        Event,
        ExpensesSyncEvent,
        ReadCompletedEvent,
        ReportEvent,
        SourceAccountEvent,
        WriteEvent,
    )

__all__: list[str] = []

# --- Companies -------------------------------------------------------------------------------


@hookspec
def on_company_created(event: CompanyEvent, delivery: Delivery) -> None:
    """A company was created (``company.created``); ``event.payload`` is the company itself."""


@hookspec
def on_company_deleted(event: CompanyEvent, delivery: Delivery) -> None:
    """A company was deleted (``company.deleted``); ``event.payload`` is the company itself."""


@hookspec
def on_company_product_added(event: CompanyProductEvent, delivery: Delivery) -> None:
    """A product was enabled for a company (``company.product.added``; OAS only)."""


@hookspec
def on_company_product_removed(event: CompanyProductEvent, delivery: Delivery) -> None:
    """A product was disabled for a company (``company.product.removed``; OAS only)."""


# --- Connections: event.payload.connection is the full connection object ---------------------


@hookspec
def on_connection_created(event: ConnectionEvent, delivery: Delivery) -> None:
    """A connection was created, status ``PendingAuth`` (``connection.created``)."""


@hookspec
def on_connection_connected(event: ConnectionEvent, delivery: Delivery) -> None:
    """The SMB linked a connection, ``PendingAuth`` -> ``Linked`` (``connection.connected``)."""


@hookspec
def on_connection_disconnected(event: ConnectionEvent, delivery: Delivery) -> None:
    """A connection became ``Unlinked`` or ``Deauthorized`` (``connection.disconnected``)."""


@hookspec
def on_connection_reconnected(event: ConnectionEvent, delivery: Delivery) -> None:
    """A disconnected connection is ``Linked`` again (``connection.reconnected``)."""


@hookspec
def on_connection_failed(event: ConnectionEvent, delivery: Delivery) -> None:
    """Linking a connection failed (``connection.failed``); see ``dataConnectionErrors``."""


@hookspec
def on_connection_deleted(event: ConnectionEvent, delivery: Delivery) -> None:
    """A connection was deleted (``connection.deleted``)."""


# --- Reads and writes ------------------------------------------------------------------------


@hookspec
def on_read_completed(event: ReadCompletedEvent, delivery: Delivery) -> None:
    """A read completed (``read.completed``).

    ``event.payload.data_types``: one entry per data type read, each with ``connection_id``,
    ``data_type``, ``records_modified`` and ``status`` (``Complete`` or an error status).
    Handle every entry.
    """


@hookspec
def on_read_completed_initial(event: ReadCompletedEvent, delivery: Delivery) -> None:
    """The first read after a connection was authorized completed (``read.completed.initial``).

    Same payload as ``on_read_completed``; it fires again after each re-authorization.
    """


@hookspec
def on_write_successful(event: WriteEvent, delivery: Delivery) -> None:
    """A write succeeded (``{dataType}.write.successful``).

    ``event.data_type`` is the data type from the event type (``invoices``);
    ``event.payload``: ``id`` (the write), ``type``, ``status``, ``record.id``, ...
    """


@hookspec
def on_write_unsuccessful(event: WriteEvent, delivery: Delivery) -> None:
    """A write failed or timed out (``{dataType}.write.unsuccessful``; ``event.data_type``)."""


# --- Client-wide -----------------------------------------------------------------------------


@hookspec
def on_client_rate_limit_reached(event: ClientRateLimitEvent, delivery: Delivery) -> None:
    """The daily API quota was used up (``client.rateLimit.reached``; no company).

    ``event.payload``: ``daily_quota``, ``quota_remaining``, ``expiry_date``.
    """


@hookspec
def on_client_rate_limit_reset(event: ClientRateLimitEvent, delivery: Delivery) -> None:
    """The daily API quota was reset (``client.rateLimit.reset``; no company)."""


# --- Solution-specific -----------------------------------------------------------------------


@hookspec
def on_bank_feeds_source_account_connected(event: SourceAccountEvent, delivery: Delivery) -> None:
    """A bank-feed source account connected (``bankFeeds.sourceAccount.connected``).

    ``event.payload``: ``company_id``, ``connection_id``, ``source_account``.
    """


@hookspec
def on_bank_feeds_source_account_disconnected(
    event: SourceAccountEvent, delivery: Delivery
) -> None:
    """A bank-feed source account disconnected (``bankFeeds.sourceAccount.disconnected``)."""


@hookspec
def on_expenses_sync_successful(event: ExpensesSyncEvent, delivery: Delivery) -> None:
    """An expenses sync completed cleanly (``expenses.sync.successful``; ``sync_id``)."""


@hookspec
def on_expenses_sync_unsuccessful(event: ExpensesSyncEvent, delivery: Delivery) -> None:
    """An expenses sync had errors or warnings (``expenses.sync.unsuccessful``)."""


@hookspec
def on_report_generate_successful(event: ReportEvent, delivery: Delivery) -> None:
    """A Lending or Spend Insights report was generated.

    ``report.{reportType}.generate.successful`` or ``reports.{reportType}...``;
    ``event.report_type`` says which report (``categorizedBankStatement``, ``spendAnalysis``).
    """


@hookspec
def on_report_generate_unsuccessful(event: ReportEvent, delivery: Delivery) -> None:
    """Generating a Lending or Spend Insights report failed (``event.report_type``)."""


# --- Every event -----------------------------------------------------------------------------


@hookspec
def on_event(event: Event, delivery: Delivery) -> None:
    """Every new event, known or unknown, after its per-event (or unknown) hook.

    The place for cross-cutting work on the new service: auditing, forwarding to a queue.
    """


@hookspec
def on_unknown_event(event: Event, delivery: Delivery) -> None:
    """An authenticated event whose type is not recognised; ``event.payload`` is a dict.

    The delivery still succeeds (200 ``processed``), so a new Codat event type never causes
    retries.
    """
