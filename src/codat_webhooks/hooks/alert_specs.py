"""Hook specifications for legacy alerts and for every delivery: what plugins can implement.

Implement any subset with ``@codat_webhooks.hookimpl`` on a class or module and pass it in
``Receiver(plugins=[...])`` or publish it under the ``codat_webhooks`` entry-point group.
An implementation may accept any subset of a hook's arguments, in any order, and may be
``async def``. Return values are ignored; raising makes the delivery fail and be retried.

Common arguments:

``alert``
    The parsed :class:`codat_webhooks.Alert` subclass for the rule (``alert.data`` typed).
``delivery``
    The :class:`codat_webhooks.Delivery`: idempotency ``key``, case-insensitive ``headers``, raw
    ``body``, ``received_at``, ``verified_by`` (credential name, never its value), ``attempt``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from ..delivery import Delivery, Reply
    from ..models.events import Event
    from ..models.legacy import (
        AccountCategoriesUpdatedAlert,
        Alert,
        DataConnectionStatusChangedAlert,
        DatasetDataChangedAlert,
        DataSyncCompletedAlert,
        DataSyncStatusChangedToErrorAlert,
        ExpensesSyncCompletedAlert,
        ExpensesSyncFailedAlert,
        ExpensesSyncStartedAlert,
        NewCompanySynchronisedAlert,
        PushOperationStatusChangedAlert,
        PushOperationTimedOutAlert,
        RateLimitReachedAlert,
        RateLimitResetAlert,
        SyncConnectionDeletedAlert,
    )
    from ..observe import HookTiming
    from ..outcomes import Outcome


# --- Legacy rule hooks: one per rule type, called once per new alert of that type ------------
# Called after the delivery is authenticated, parsed and claimed, before ``on_alert``.


@hookspec
def on_data_connection_status_changed(
    alert: DataConnectionStatusChangedAlert, delivery: Delivery
) -> None:
    """A data connection changed status (``DataConnectionStatusChanged``).

    ``alert.data``: ``data_connection_id``, ``platform_key``, ``old_status``, ``new_status``
    (PendingAuth, Linked, Unlinked, Deauthorized).
    """


@hookspec
def on_new_company_synchronised(alert: NewCompanySynchronisedAlert, delivery: Delivery) -> None:
    """A newly connected company finished its initial sync (``New company synchronised``).

    ``alert.data``: ``company_name`` and ``source_type``, both often missing.
    """


@hookspec
def on_data_sync_completed(alert: DataSyncCompletedAlert, delivery: Delivery) -> None:
    """One data type finished syncing in full (``Data sync completed``).

    ``alert.data``: ``data_type``, ``dataset_id``. One alert per data type.
    """


@hookspec
def on_dataset_data_changed(alert: DatasetDataChangedAlert, delivery: Delivery) -> None:
    """A sync created or changed records (``Dataset data changed``).

    ``alert.data``: ``data_type``, ``dataset_id``.
    """


@hookspec
def on_data_sync_status_changed_to_error(
    alert: DataSyncStatusChangedToErrorAlert, delivery: Delivery
) -> None:
    """A dataset's sync failed (``Data Sync Status Changed To Error``).

    ``alert.data``: ``data_type``, ``dataset_status`` (e.g. ProcessingError), ``dataset_id``.
    """


@hookspec
def on_push_operation_status_changed(
    alert: PushOperationStatusChangedAlert, delivery: Delivery
) -> None:
    """A push (write) operation changed status (``Push Operation Status Changed()``).

    ``alert.data``: ``data_type``, ``status`` (Pending, Failed, Success, TimedOut),
    ``push_operation_key``.
    """


@hookspec
def on_push_operation_timed_out(alert: PushOperationTimedOutAlert, delivery: Delivery) -> None:
    """A push operation timed out (``Push Operation Timed Out``).

    ``alert.data``: ``data_type``, ``push_operation_key``, ``push_operation_guid``.
    """


@hookspec
def on_account_categories_updated(alert: AccountCategoriesUpdatedAlert, delivery: Delivery) -> None:
    """Suggested or confirmed account categories changed (``Account Categories Updated``).

    ``alert.data``: ``modified_date`` (aware datetime).
    """


@hookspec
def on_sync_connection_deleted(alert: SyncConnectionDeletedAlert, delivery: Delivery) -> None:
    """A Sync for Commerce connection was deleted (``Sync Connection Deleted``; no data)."""


@hookspec
def on_expenses_sync_started(alert: ExpensesSyncStartedAlert, delivery: Delivery) -> None:
    """A Sync for Expenses sync started (``Sync Started``).

    ``alert.data``: ``sync_id``, ``sync_type``, ``sync_date_range_start_utc``,
    ``sync_date_range_finish_utc``.
    """


@hookspec
def on_expenses_sync_completed(alert: ExpensesSyncCompletedAlert, delivery: Delivery) -> None:
    """A Sync for Expenses sync completed (``Sync Completed``).

    ``alert.data``: ``sync_id``, ``sync_type`` and the optional date range.
    """


@hookspec
def on_expenses_sync_failed(alert: ExpensesSyncFailedAlert, delivery: Delivery) -> None:
    """A Sync for Expenses sync failed (``Sync Failed``).

    ``alert.data``: ``sync_id``, ``sync_type``, ``failure_stage`` and the optional date range.
    """


@hookspec
def on_rate_limit_reached(alert: RateLimitReachedAlert, delivery: Delivery) -> None:
    """The client used up its daily API quota (``Rate Limit Reached``; no company).

    ``alert.data``: ``daily_quota`` (int), ``expires_utc`` (aware datetime).
    """


@hookspec
def on_rate_limit_reset(alert: RateLimitResetAlert, delivery: Delivery) -> None:
    """The client's quota was reset (``Rate Limit Reset``; no company).

    ``alert.data``: ``quota_remaining``, ``reset_reason``, ``daily_quota``, ``expires_utc``.
    """


# --- Every alert -----------------------------------------------------------------------------


@hookspec
def on_alert(alert: Alert, delivery: Delivery) -> None:
    """Every new alert, known or unknown, after its per-rule (or unknown) hook.

    The place for cross-cutting work: auditing, forwarding to a queue, metrics.
    """


@hookspec
def on_unknown_alert(alert: Alert, delivery: Delivery) -> None:
    """An authenticated alert whose rule type is not recognised; ``alert.data`` is a dict.

    The delivery still succeeds (200 ``processed``), so a new Codat rule never causes retries.
    """


# --- Outcomes other than processing ----------------------------------------------------------


@hookspec
def on_duplicate(delivery: Delivery) -> None:
    """A delivery whose key was already processed; no other hook runs for it.

    Errors raised here are logged and ignored: the alert was handled already.
    """


@hookspec
def on_rejected(delivery: Delivery, error: Exception) -> None:
    """A delivery answered 400, 401, 413 or 422 (including ``conflict``).

    ``error`` is the :class:`codat_webhooks.CodatWebhookError` with the detailed reason that
    the sender never sees. ``delivery.verified_by`` is ``None`` when authentication failed;
    ``delivery.key`` may be ``None`` when none could be derived. Errors here are logged and
    ignored.
    """


@hookspec
def on_handler_error(
    alert: Alert | Event, delivery: Delivery, error: Exception, payload: Alert | Event
) -> None:
    """A hook raised ``error`` while processing a delivery.

    ``payload`` is what the failing hook received: the alert, or the event for an event hook.
    ``alert`` holds the same object under its original name, kept so existing plugins work
    (it is an event too when an event hook failed); take whichever reads better. The claim is
    released and Codat is told to retry (503). Errors here are logged and ignored.
    """


@hookspec
def on_stale(payload: Alert | Event, delivery: Delivery) -> None:
    """A stale delivery, with ``Receiver(stale="skip")``: its rule hooks did not run.

    ``delivery.newer`` names the newer event of the same scope that was received first (its
    key and ``generatedDate``); ``payload`` is the alert or event. The key is recorded as done
    with outcome ``stale`` and Codat is answered 200. The place to note that an update was
    superseded; there is nothing to apply. Errors here are logged and ignored.
    """


# --- Every answer: observation only ----------------------------------------------------------


@hookspec
def on_outcome(
    outcome: Outcome,
    status: int | None,
    key: str | None,
    kind: str | None,
    company_id: str | None,
    attempt: int,
    duration: float,
    hooks: tuple[HookTiming, ...],
    error: BaseException | None,
    delivery: Delivery | None,
    reply: Reply | None,
    worker: bool,
) -> None:
    """Every answer the receiver gives, and every run of a queued key on a worker.

    Called once the outcome is decided, for every status (rejections and 503s included), so
    metrics, logs and traces are plugins. It only observes: its errors are logged and never
    change the reply, and every implementation runs even if another raised. A receiver whose
    plugins do not implement it pays nothing; one that does pays for a few ``perf_counter``
    calls, and for timing each hook only if an implementation asks for ``hooks``. Keep it
    quick: it runs before the reply is sent (mark a sync one
    :func:`~codat_webhooks.hooks.nonblocking` so async receivers call it inline).

    ``outcome``: an :class:`~codat_webhooks.outcomes.Outcome` (a ``str``: it compares equal to
    its value): the reply's outcome (``processed``, ``duplicate``, ``unauthorized``, ...);
    for a worker's run (``worker=True``): ``processed``, ``retry`` (a hook raised, the key is
    queued again), ``failed`` (attempts spent), ``duplicate`` (nothing to run),
    ``in_progress`` (another worker holds it) or ``unavailable``. ``status``: the HTTP status,
    ``None`` for a worker's run. ``key``: the idempotency key, when one could be derived.
    ``kind`` and ``company_id``: the rule or event type and the company, only for deliveries
    that passed authentication (a prober cannot choose them). ``attempt``: how many times the
    hooks have started for the key (0 when none ran). ``duration``: seconds from the start of
    the receiver's work to the outcome (body reading and writing excluded). ``hooks``: one
    :class:`~codat_webhooks.observe.HookTiming` per hook that ran, in order (the last one
    carries the error when a hook raised); a hook that no plugin implements runs nothing and has
    none. ``error``: what went wrong, if anything: the
    rejection's :class:`~codat_webhooks.CodatWebhookError`, the hook's exception, the
    :class:`~codat_webhooks.StoreError`. ``delivery``: as the hooks saw it; ``None`` for a
    wrong method, a busy key and an unreachable store, and on workers when no hook ran (its
    headers are those received: never log them whole). ``reply``: the
    :class:`~codat_webhooks.Reply` (``None`` on workers).
    """
