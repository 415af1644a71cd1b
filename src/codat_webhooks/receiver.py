"""The sans-I/O receiver: ``(method, headers, body)`` in, :class:`Reply` out.

Pipeline: check method and size -> verify credentials over the raw bytes -> decode and parse
-> claim the idempotency key -> call hooks -> complete (or release) -> reply. Lower layers raise
typed errors; this module alone turns them into HTTP statuses (see :meth:`Receiver._error_reply`
and the status table in the docs). Adapters add only the reading and writing of bytes.

The pipeline is one generator (:meth:`Receiver._process`) that *yields* the I/O it needs (store
calls, hook calls) as small effect values and receives their results back. Two drivers run it:
:meth:`Receiver.handle` performs the effects inline, :meth:`Receiver.handle_async` awaits them
without blocking the event loop. So the status policy exists once, not once per calling style.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeAlias

import pluggy

from .delivery import Delivery, Outcome, Reply
from .errors import (
    CodatWebhookError,
    ConfigurationError,
    ConflictError,
    PayloadError,
    PayloadTooLargeError,
    StoreError,
)
from .headers import HeaderInput, Headers, redact
from .hooks.dispatch import Dispatcher
from .hooks.manager import make_plugin_manager
from .leases import LeaseKeeper
from .models._parse import load_object
from .routing import Route, describe, key_from_body, route
from .stores.base import CODAT_RETRY_WINDOW, Claim, ClaimStatus, Entry, Store
from .verify import Authenticator, Credentials, SecretCredentials, message_id

__all__ = ["ALLOWED_METHODS", "DEFAULT_DB_PATH", "Receiver"]

logger = logging.getLogger("codat_webhooks")

ALLOWED_METHODS = ("POST", "PUT")  # PUT: a Svix transformation can change the method
DEFAULT_DB_PATH = "codat-webhooks.sqlite3"


@dataclass(slots=True)
class _Admitted:
    """A delivery that passed every check that needs no store: ready to claim."""

    headers: Headers
    body: bytes
    received_at: datetime
    verified_by: str | None
    method: str
    route: Route
    entry: Entry

    def delivery(self, attempt: int = 0) -> Delivery:
        return Delivery(
            self.entry.key,
            self.headers,
            self.body,
            self.received_at,
            self.verified_by,
            attempt,
            self.method,
        )


class _Rejected(Exception):
    """Internal: carries a rejection out of :meth:`Receiver._admit` with what to do about it."""

    def __init__(
        self, error: CodatWebhookError, delivery: Delivery, park: Entry | None = None
    ) -> None:
        super().__init__(error.reason)
        self.error = error
        self.delivery = delivery
        self.park = park


# Effects are NamedTuples, told apart by ``type(effect) is ...`` and unpacked by position: the
# drivers handle three of them per delivery, so they are kept as cheap as a plain tuple.


class _StoreCall(NamedTuple):
    """Effect: call the store (the async driver runs blocking stores in a thread)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]


class _Hooks(NamedTuple):
    """Effect: call these hooks in order; an exception is thrown back into the pipeline."""

    names: tuple[str, ...]
    kwargs: dict[str, Any]


class _Notify(NamedTuple):
    """Effect: call an informational hook, whose errors are logged and never propagate."""

    name: str
    kwargs: dict[str, Any]


_Pipeline: TypeAlias = Generator[_StoreCall | _Hooks | _Notify, Any, Reply]
"""The receiver's decisions as a generator of effects: written once, run by either driver."""


class Receiver:
    """Authenticates, validates, deduplicates and dispatches Codat webhook deliveries.

    Thread-safe and reusable: create one per process and share it between requests. See the
    contract in the documentation for every argument; the non-obvious ones:

    ``lease``
        Seconds a claim lives without renewal. Running hooks renew it, so it only bounds how
        long a crashed worker blocks redelivery.
    ``retry_after``
        Seconds sent in ``Retry-After`` when a hook failed or the store was unavailable.
    ``plugin_manager``
        A ready manager (from :func:`codat_webhooks.hooks.manager.make_plugin_manager`) to use
        instead of building one from ``plugins`` and ``load_entrypoints``.
    """

    def __init__(
        self,
        authorization: Credentials = None,
        signing_secrets: SecretCredentials = None,
        tolerance: float = 300,
        store: Store | None = None,
        plugins: Sequence[object] = (),
        load_entrypoints: bool = True,
        max_body_bytes: int = 1_048_576,
        insecure: bool = False,
        *,
        lease: float = 60.0,
        retry_after: int = 30,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        if max_body_bytes <= 0:
            raise ConfigurationError("max_body_bytes must be positive")
        if lease <= 0:
            raise ConfigurationError("lease must be a positive number of seconds")
        self.authenticator = Authenticator(
            authorization, signing_secrets, tolerance=tolerance, insecure=insecure
        )
        if store is None:
            from .stores.sqlite import SQLiteStore

            store = SQLiteStore(DEFAULT_DB_PATH)
        if store.retention < CODAT_RETRY_WINDOW:
            logger.warning(
                "store retention %.0fs is shorter than Codat's 28-hour retry window: "
                "late retries of processed alerts will run the hooks again",
                store.retention,
            )
        self.store = store
        self.plugin_manager = plugin_manager or make_plugin_manager(
            plugins, load_entrypoints=load_entrypoints
        )
        self.dispatcher = Dispatcher(self.plugin_manager)
        self.max_body_bytes = max_body_bytes
        self.lease = float(lease)
        self.retry_after = retry_after
        self._leases = LeaseKeeper(store, self.lease)

    # --- public entry points -----------------------------------------------------------------

    def handle(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """Process one delivery synchronously; async hook implementations are run to completion.

        ``force`` re-runs the hooks of an already processed key (used by ``replay --force``).
        """
        return self._run(self._process(method, headers, body, force))

    async def handle_async(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """As :meth:`handle`, for event loops: sync hooks and blocking stores run in threads."""
        return await self._run_async(self._process(method, headers, body, force))

    def reject_too_large(self, method: str, headers: HeaderInput, size: int | None) -> Reply:
        """The reply for a body an adapter stopped reading because it exceeds ``max_body_bytes``.

        Adapters must not buffer an oversize body just to have :meth:`handle` measure it, so
        they call this instead: ``on_rejected`` runs with a :class:`PayloadTooLargeError` and
        the reply is the same 413 (405 for a wrong method) that :meth:`handle` would give.
        ``size`` is the declared ``Content-Length``, or ``None`` for a cut-off chunked body.
        """
        return self._run(self._too_large(method, headers, size))

    async def reject_too_large_async(
        self, method: str, headers: HeaderInput, size: int | None
    ) -> Reply:
        """As :meth:`reject_too_large`, for event loops."""
        return await self._run_async(self._too_large(method, headers, size))

    def close(self) -> None:
        """Stop the lease renewer and close the store."""
        self._leases.close()
        self.store.close()

    # --- the pipeline, written once for both drivers ----------------------------------------

    def _process(self, method: str, headers: HeaderInput, body: bytes, force: bool) -> _Pipeline:
        """Every decision of a delivery; the I/O it needs is yielded to the driver as effects."""
        try:
            admitted = self._admit(method, headers, body)
        except _Rejected as rejected:
            return (yield from self._reject(rejected))
        if admitted is None:
            return self._method_not_allowed()

        key = admitted.entry.key
        try:
            claim = yield _StoreCall(self._claim, (admitted.entry, force))
        except StoreError as exc:
            return self._unavailable(key, exc)
        if claim.status is not ClaimStatus.CLAIMED:
            reply, note = self._not_claimed(admitted, claim.status, claim.retry_after)
            if note is not None:
                yield note
            return reply

        kwargs = self._hook_kwargs(admitted.route, admitted.delivery(claim.attempts))
        self._leases.track(key, claim.token)
        try:
            yield _Hooks(admitted.route.hooks, kwargs)
        except Exception as exc:
            yield _Notify("on_handler_error", {**kwargs, "error": exc})
            yield _StoreCall(self._release, (key, claim.token, exc))
            return self._failed(key)
        finally:
            self._leases.untrack(key, claim.token)
        yield _StoreCall(self._complete, (key, claim.token))
        return Reply.build(200, Outcome.PROCESSED, key, "processed")

    def _reject(self, rejected: _Rejected) -> _Pipeline:
        """Park what deserves keeping, tell ``on_rejected``, answer with the error's status."""
        if rejected.park is not None:
            try:
                yield _StoreCall(self._park, (rejected.park, rejected.error.reason))
            except StoreError as exc:
                return self._unavailable(rejected.park.key, exc)
        yield _Notify("on_rejected", {"delivery": rejected.delivery, "error": rejected.error})
        return self._error_reply(rejected.error, rejected.delivery.key)

    def _too_large(self, method: str, headers: HeaderInput, size: int | None) -> _Pipeline:
        if method.upper() not in ALLOWED_METHODS:
            return self._method_not_allowed()
        hdrs = headers if isinstance(headers, Headers) else Headers(headers)
        header_key = message_id(hdrs)
        received_at = datetime.now(timezone.utc)
        delivery = Delivery(header_key, hdrs, b"", received_at, method=method.upper())
        measured = "a chunked body" if size is None else f"body of {size} bytes"
        error = PayloadTooLargeError(f"{measured} exceeds max_body_bytes={self.max_body_bytes}")
        return (yield from self._reject(_Rejected(error, delivery)))

    def _run(self, pipeline: _Pipeline) -> Reply:
        """Drive a pipeline synchronously: store calls inline, hooks via :meth:`Dispatcher.call`."""
        result: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = pipeline.send(result) if error is None else pipeline.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            result = error = None
            try:
                if type(effect) is _StoreCall:
                    result = effect[0](*effect[1])
                elif type(effect) is _Hooks:
                    self.dispatcher.call(*effect)
                else:
                    self.dispatcher.notify(*effect)
            except Exception as exc:  # handed back to the pipeline, which decides
                error = exc

    async def _run_async(self, pipeline: _Pipeline) -> Reply:
        """Drive a pipeline on an event loop: blocking stores and sync hooks go to threads."""
        result: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = pipeline.send(result) if error is None else pipeline.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            result = error = None
            try:
                if type(effect) is _StoreCall:
                    result = await self._store_call(*effect)
                elif type(effect) is _Hooks:
                    await self.dispatcher.call_async(*effect)
                else:
                    await self.dispatcher.notify_async(*effect)
            except Exception as exc:
                error = exc

    # --- steps that need no I/O --------------------------------------------------------------

    def _admit(self, method: str, headers: HeaderInput, body: bytes) -> _Admitted | None:
        """Method, size, credentials, JSON and model checks; ``None`` means a wrong method.

        Runs once per request on the hot path, so each value is computed once and the
        :class:`Delivery` for a rejection is only built when there is one.
        """
        method = method.upper()
        if method not in ALLOWED_METHODS:
            return None
        received_at = datetime.now(timezone.utc)
        hdrs = headers if type(headers) is Headers else Headers(headers)
        header_key = message_id(hdrs)
        if len(body) > self.max_body_bytes:
            error = PayloadTooLargeError(
                f"body of {len(body)} bytes exceeds max_body_bytes={self.max_body_bytes}"
            )
            raise _Rejected(error, Delivery(header_key, hdrs, body, received_at, method=method))
        try:
            verified_by = self.authenticator.verify(hdrs, body)
        except CodatWebhookError as exc:
            delivery = Delivery(header_key, hdrs, body, received_at, method=method)
            raise _Rejected(exc, delivery) from None
        fingerprint = hashlib.sha256(body).hexdigest()
        try:
            obj = load_object(body)
        except PayloadError as exc:
            key = header_key or f"sha256:{fingerprint}"
            delivery = Delivery(key, hdrs, body, received_at, verified_by, method=method)
            raise _Rejected(exc, delivery, self._entry(delivery, fingerprint)) from None
        key = header_key or key_from_body(obj) or f"sha256:{fingerprint}"
        try:
            routed = route(obj)
        except PayloadError as exc:
            delivery = Delivery(key, hdrs, body, received_at, verified_by, method=method)
            raise _Rejected(exc, delivery, self._entry(delivery, fingerprint, obj)) from None
        entry = Entry(
            key, fingerprint, body, tuple(redact(hdrs.raw)), routed.kind, routed.company_id
        )
        return _Admitted(hdrs, body, received_at, verified_by, method, routed, entry)

    @staticmethod
    def _entry(delivery: Delivery, fingerprint: str, obj: Mapping[str, Any] | None = None) -> Entry:
        """The record of a rejected, authenticated delivery, to park it.

        The type and company are kept when the decoded body names them, so a parked delivery
        can be found by type and company like any other.
        """
        assert delivery.key is not None
        kind, company_id = describe(obj) if obj is not None else (None, None)
        return Entry(
            key=delivery.key,
            fingerprint=fingerprint,
            body=delivery.body,
            headers=tuple(redact(delivery.headers.raw)),
            kind=kind,
            company_id=company_id,
        )

    @staticmethod
    def _hook_kwargs(routed: Route, delivery: Delivery) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"delivery": delivery, routed.argument: routed.payload}
        kwargs.setdefault("alert", routed.payload)  # on_handler_error names it ``alert``
        return kwargs

    # --- store calls -------------------------------------------------------------------------

    async def _store_call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if not self.store.blocking:
            return function(*args)
        from asgiref.sync import sync_to_async

        return await sync_to_async(function, thread_sensitive=False)(*args)

    def _claim(self, entry: Entry, force: bool) -> Claim:
        return self.store.claim(entry, lease=self.lease, force=force)

    def _park(self, entry: Entry, reason: str) -> None:
        self.store.park(entry, reason=reason)

    def _release(self, key: str, token: int, exc: BaseException) -> None:
        try:
            self.store.release(key, token, error=f"{type(exc).__name__}: {exc}")
        except StoreError as store_exc:
            logger.error("could not release %s (%s); its lease will expire", key, store_exc)

    def _complete(self, key: str, token: int) -> None:
        # The hooks ran: answering 200 is right even if recording that fails, because a retry
        # would run them again. The claim then expires with its lease.
        try:
            if not self.store.complete(key, token):
                logger.warning("%s completed after its lease was taken over", key)
        except StoreError as exc:
            logger.error("processed %s but could not record it: %s", key, exc)

    # --- replies: the status policy ----------------------------------------------------------

    def _not_claimed(
        self, admitted: _Admitted, status: ClaimStatus, retry_after: float
    ) -> tuple[Reply, _Notify | None]:
        """The reply for a claim we did not get, and the informational hook to call, if any."""
        key = admitted.entry.key
        if status is ClaimStatus.DUPLICATE:
            reply = Reply.build(200, Outcome.DUPLICATE, key, "already processed")
            return reply, _Notify("on_duplicate", {"delivery": admitted.delivery()})
        if status is ClaimStatus.IN_PROGRESS:
            seconds = str(max(1, math.ceil(retry_after)))
            reply = Reply.build(
                503,
                Outcome.IN_PROGRESS,
                key,
                "this key is being processed; retry later",
                (("Retry-After", seconds),),
            )
            return reply, None
        error = ConflictError("this key was already received with a different body")
        note = _Notify("on_rejected", {"delivery": admitted.delivery(), "error": error})
        return self._error_reply(error, key), note

    @staticmethod
    def _error_reply(error: CodatWebhookError, key: str | None) -> Reply:
        detail = {
            401: "authentication failed",
            413: "body too large",
        }.get(error.status_hint, error.reason)
        return Reply.build(error.status_hint, error.outcome, key, detail)

    def _unavailable(self, key: str | None, exc: StoreError) -> Reply:
        logger.error("store unavailable for %s: %s", key, exc)
        return Reply.build(
            503,
            Outcome.UNAVAILABLE,
            key,
            "store unavailable; retry later",
            (("Retry-After", str(self.retry_after)),),
        )

    def _failed(self, key: str) -> Reply:
        return Reply.build(
            503,
            Outcome.FAILED,
            key,
            "a handler failed; retry later",
            (("Retry-After", str(self.retry_after)),),
        )

    @staticmethod
    def _method_not_allowed() -> Reply:
        return Reply.build(
            405,
            Outcome.METHOD_NOT_ALLOWED,
            None,
            "use POST or PUT",
            (("Allow", ", ".join(ALLOWED_METHODS)),),
        )
