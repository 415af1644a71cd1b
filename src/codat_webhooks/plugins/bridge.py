"""Keep legacy rule handlers running on new-service events, following Codat's migration table.

Opt-in: wrap the plugins that implement legacy hooks and register the bridge instead of them::

    receiver = Receiver(signing_secrets=secret, plugins=[MigrationBridge(LegacyHandlers())])

The wrapped handlers then see exactly the legacy stream: real legacy alerts are forwarded to
them unchanged, and each new-service event with a legacy counterpart becomes the legacy alert(s)
Codat's migration guide maps it to (``connection.connected`` ->
``DataConnectionStatusChanged``, ``read.completed`` -> ``Data sync completed`` per data type,
...), delivered to their per-rule hook and then ``on_alert``. Register event handlers with the
receiver directly, not through the bridge (the bridge refuses them, so nothing is silently lost).

Fields that exist on both sides are filled in; the rest are ``None``. What the new service no
longer sends, so translated alerts never carry it:

========================================  ===================================================
every rule                                ``client_id``, ``client_name``, ``message``,
                                          ``rule_id``; ``alert_id`` is the event ``id``, shared
                                          by every alert one event becomes
DataConnectionStatusChanged               ``data.old_status``
Data sync completed / Dataset data        ``data.dataset_id``
changed / Data Sync Status Changed To
Error
New company synchronised                  ``data.company_name``, ``data.source_type``
Push Operation Status Changed() / Timed   none (``push_operation_key`` and ``_guid`` are
Out                                       the write ``id``; ``None`` when that ID is not a
                                          GUID, which the legacy fields require)
Sync Completed / Sync Failed (Expenses)   ``data.sync_type``, ``data.failure_stage``,
                                          ``data.sync_date_range_start_utc`` / ``_finish_utc``
Rate Limit Reset                          ``data.reset_reason``
========================================  ===================================================

Events with no legacy counterpart (``company.*``, ``connection.failed``, bank feeds, reports)
reach no legacy hook. ``Account Categories Updated`` needs no bridge: Codat still sends it
legacy-shaped. ``Sync Started`` has no replacement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..delivery import Delivery
from ..errors import ConfigurationError
from ..event_types import EventType
from ..hooks import alert_specs
from ..hooks.dispatch import Dispatcher
from ..hooks.manager import make_plugin_manager
from ..hooks.markers import hookimpl
from ..models.events import (
    ClientRateLimitEvent,
    ConnectionEvent,
    Event,
    ExpensesSyncEvent,
    ReadCompletedEvent,
    WriteEvent,
)
from ..models.legacy import ALERT_CLASSES, Alert
from ..models.values import DatasetErrorStatus
from ..rules import RuleType

__all__ = ["MigrationBridge", "translate"]

Translation = tuple[RuleType, dict[str, Any], Any]
"""(rule, its ``Data``, the ``DataConnectionId``) for one legacy alert."""


# --- The migration table, event by event ----------------------------------------------------


def _connection(event: ConnectionEvent) -> Iterator[Translation]:
    connection = event.payload.connection
    connection_id = connection.id if connection else None
    data = {
        "dataConnectionId": connection_id,
        "platformKey": connection.integration_key if connection else None,
        "newStatus": connection.status if connection else None,
    }
    yield RuleType.DATA_CONNECTION_STATUS_CHANGED, data, connection_id
    if event.kind is EventType.CONNECTION_DELETED:
        yield RuleType.SYNC_CONNECTION_DELETED, {}, connection_id


_ERROR_STATUSES = frozenset(status.lower() for status in DatasetErrorStatus.DOCUMENTED)


def _is_error_status(status: str | None) -> bool:
    """Whether a data type's read status is one Codat lists as "Data Sync Status Changed To
    Error" (``PrerequisiteNotMet`` among them, so a suffix test would not do)."""
    return status is not None and status.lower() in _ERROR_STATUSES


def _legacy_guid(value: str | None) -> uuid.UUID | None:
    """The new service's string IDs where a legacy field needs a GUID (``None`` if not one)."""
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _read_completed(event: ReadCompletedEvent) -> Iterator[Translation]:
    for summary in event.payload.data_types or ():
        dataset = {"dataType": summary.data_type}
        yield RuleType.DATA_SYNC_COMPLETED, dataset, summary.connection_id
        if summary.records_modified:
            yield RuleType.DATASET_DATA_CHANGED, dataset, summary.connection_id
        if _is_error_status(summary.status):
            errored = dataset | {"datasetStatus": summary.status}
            yield RuleType.DATA_SYNC_STATUS_CHANGED_TO_ERROR, errored, summary.connection_id


def _read_completed_initial(event: ReadCompletedEvent) -> Iterator[Translation]:
    summaries = event.payload.data_types or ()
    connection_id = next((s.connection_id for s in summaries if s.connection_id), None)
    yield RuleType.NEW_COMPANY_SYNCHRONISED, {}, connection_id


def _write(event: WriteEvent) -> Iterator[Translation]:
    payload = event.payload
    key = _legacy_guid(payload.id)
    data = {"dataType": event.data_type, "status": payload.status, "pushOperationKey": key}
    yield RuleType.PUSH_OPERATION_STATUS_CHANGED, data, payload.connection_id
    if (payload.status or "").lower() == "timedout":
        timed_out = {
            "dataType": event.data_type,
            "pushOperationKey": key,
            "pushOperationGuid": key,
        }
        yield RuleType.PUSH_OPERATION_TIMED_OUT, timed_out, payload.connection_id


def _rate_limit(event: ClientRateLimitEvent) -> Iterator[Translation]:
    payload = event.payload
    data: dict[str, Any] = {"DailyQuota": payload.daily_quota, "ExpiresUtc": payload.expiry_date}
    if event.kind is EventType.CLIENT_RATE_LIMIT_REACHED:
        yield RuleType.RATE_LIMIT_REACHED, data, None
    else:
        yield RuleType.RATE_LIMIT_RESET, data | {"QuotaRemaining": payload.quota_remaining}, None


def _expenses_sync(event: ExpensesSyncEvent) -> Iterator[Translation]:
    rule = (
        RuleType.EXPENSES_SYNC_COMPLETED
        if event.kind is EventType.EXPENSES_SYNC_SUCCESSFUL
        else RuleType.EXPENSES_SYNC_FAILED
    )
    yield rule, {"syncId": event.payload.sync_id}, None


_TRANSLATORS: dict[EventType, Callable[[Any], Iterator[Translation]]] = {
    EventType.CONNECTION_CREATED: _connection,
    EventType.CONNECTION_CONNECTED: _connection,
    EventType.CONNECTION_DISCONNECTED: _connection,
    EventType.CONNECTION_RECONNECTED: _connection,
    EventType.CONNECTION_DELETED: _connection,
    EventType.READ_COMPLETED: _read_completed,
    EventType.READ_COMPLETED_INITIAL: _read_completed_initial,
    EventType.WRITE_SUCCESSFUL: _write,
    EventType.WRITE_UNSUCCESSFUL: _write,
    EventType.CLIENT_RATE_LIMIT_REACHED: _rate_limit,
    EventType.CLIENT_RATE_LIMIT_RESET: _rate_limit,
    EventType.EXPENSES_SYNC_SUCCESSFUL: _expenses_sync,
    EventType.EXPENSES_SYNC_UNSUCCESSFUL: _expenses_sync,
}
"""Codat's migration table (FACTS §4); a test per row proves each translation."""


def translate(event: Event) -> list[Alert]:
    """The legacy alerts Codat's migration table maps ``event`` to (``[]`` when none)."""
    kind = event.kind
    translator = _TRANSLATORS.get(kind) if kind is not None else None
    if translator is None:
        return []
    alerts = []
    for rule, data, connection_id in translator(event):
        body = {
            "RuleType": rule.value,
            "AlertId": event.id,
            "CompanyId": event.company_id,
            "DataConnectionId": connection_id,
            "Data": data,
        }
        alerts.append(ALERT_CLASSES[rule].model_validate(body))
    return alerts


# --- The plugin -----------------------------------------------------------------------------


class MigrationBridge:
    """A plugin that runs legacy rule handlers on new-service events as well as on legacy alerts.

    Register the bridge in place of the legacy handlers it wraps:

    ```python
    receiver = Receiver(signing_secrets=secret, plugins=[MigrationBridge(LegacyHandlers())])
    ```

    Each event with a legacy counterpart (``connection.connected``, ``read.completed``, ...)
    becomes the legacy alert(s) Codat's migration guide maps it to, delivered to the wrapped
    handlers' per-rule hook and then ``on_alert``; real legacy alerts reach them unchanged.
    Fields the new service no longer sends are ``None`` (the migration guide lists them, and
    :func:`translate` shows what one event becomes).

    :param handlers: plugins implementing legacy hooks only.
    :raises ConfigurationError: no handlers, or one implements an event hook (register those
        with the receiver directly, so nothing is silently lost).
    """

    def __init__(self, *handlers: object) -> None:
        if not handlers:
            raise ConfigurationError(
                "MigrationBridge(...) needs the legacy handler plugins to wrap"
            )
        try:
            manager = make_plugin_manager(
                handlers, load_entrypoints=False, builtins=False, spec_modules=(alert_specs,)
            )
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"MigrationBridge wraps legacy handlers only; register event handlers with the "
                f"Receiver directly ({exc})"
            ) from None
        self._dispatcher = Dispatcher(manager)

    def _alert(self, hook: str, alert: Alert, delivery: Delivery) -> None:
        self._dispatcher.call((hook,), {"alert": alert, "delivery": delivery})

    def _event(self, event: Event, delivery: Delivery) -> None:
        for alert in translate(event):
            assert alert.kind is not None  # translations only produce known rules
            self._dispatcher.call(
                (alert.kind.hook, "on_alert"), {"alert": alert, "delivery": delivery}
            )

    @hookimpl
    def on_duplicate(self, delivery: Delivery) -> None:
        self._dispatcher.call(("on_duplicate",), {"delivery": delivery})

    @hookimpl
    def on_rejected(self, delivery: Delivery, error: Exception) -> None:
        self._dispatcher.call(("on_rejected",), {"delivery": delivery, "error": error})

    @hookimpl
    def on_handler_error(self, payload: Any, delivery: Delivery, error: Exception) -> None:
        """Forwarded for legacy alerts only: a failed *event* has no single legacy alert."""
        if isinstance(payload, Alert):
            kwargs = {"alert": payload, "payload": payload, "delivery": delivery, "error": error}
            self._dispatcher.call(("on_handler_error",), kwargs)


def _forward_alert(hook: str) -> Callable[..., None]:
    def forward(self: MigrationBridge, alert: Alert, delivery: Delivery) -> None:
        self._alert(hook, alert, delivery)

    forward.__name__ = forward.__qualname__ = hook
    return hookimpl(forward)


def _forward_event(hook: str) -> Callable[..., None]:
    def forward(self: MigrationBridge, event: Event, delivery: Delivery) -> None:
        self._event(event, delivery)

    forward.__name__ = forward.__qualname__ = hook
    return hookimpl(forward)


for _hook in (*(rule.hook for rule in RuleType), "on_alert", "on_unknown_alert"):
    setattr(MigrationBridge, _hook, _forward_alert(_hook))
for _kind in _TRANSLATORS:
    setattr(MigrationBridge, _kind.hook, _forward_event(_kind.hook))
del _hook, _kind
