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

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar

import pluggy

from .clock import Clock, system_clock, utc_now
from .delivery import Delivery, Reply
from .errors import (
    CodatWebhookError,
    ConfigurationError,
    ConflictError,
    MethodNotAllowedError,
    PayloadError,
    PayloadTooLargeError,
    StoreError,
)
from .headers import HeaderInput, Headers, redact
from .hooks.dispatch import Dispatcher
from .hooks.manager import make_plugin_manager
from .leases import LeaseKeeper
from .models._parse import load_object
from .observe import Watch, log_fields
from .outage import StoreOutage
from .outcomes import Outcome
from .queues.base import RetryPolicy, Work
from .routing import Route, describe, key_from_body, route
from .stores.base import (
    CODAT_RETRY_WINDOW,
    Claim,
    ClaimStatus,
    Entry,
    Record,
    State,
    Store,
    conflict_key,
    key_problem,
)
from .verify import Authenticator, Credentials, SecretCredentials, message_id

if TYPE_CHECKING:
    from .queues.base import Queue

__all__ = ["ALLOWED_METHODS", "Receiver", "TooLarge", "default_store"]

logger = logging.getLogger("codat_webhooks.receiver")

ALLOWED_METHODS = ("POST", "PUT")  # PUT: a Svix transformation can change the method


def default_store(clock: Clock = system_clock) -> Store:
    """The store of a receiver built without one: ``codat-webhooks.sqlite3`` in the working
    directory, created on the first delivery rather than when the receiver is built."""
    from .stores.sqlite import DEFAULT_DB_PATH, SQLiteStore

    return SQLiteStore(DEFAULT_DB_PATH, clock=clock, connect=False)


class TooLarge(NamedTuple):
    """What an adapter reads instead of a body that passes ``max_body_bytes``.

    Hand ``size`` (the declared ``Content-Length``, or ``None`` for a chunked body cut off at
    the limit) to :meth:`Receiver.reject_too_large` for the reply.
    """

    size: int | None


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


class _Rejection(NamedTuple):
    """A delivery refused before its hooks: the error, whom to tell, and what to keep."""

    error: CodatWebhookError
    delivery: Delivery | None
    """What ``on_rejected`` receives; ``None`` when nothing was read (a wrong method)."""
    park: Entry | None = None
    """The record to keep as a dead letter: authenticated bodies we could not process."""


_WRONG_METHOD = _Rejection(MethodNotAllowedError("use POST or PUT"), None)

# The members that every new or duplicate delivery compares with, read once: before Python
# 3.12, reading a member off its Enum class runs Python code each time.
_CLAIMED, _DUPLICATE = ClaimStatus.CLAIMED, ClaimStatus.DUPLICATE
_PROCESSED, _ALREADY_PROCESSED = Outcome.PROCESSED, Outcome.DUPLICATE
_RECEIVED = {
    State.QUEUED: "already received; queued",
    State.PROCESSING: "already received; being processed",
}


# --- Effects: the I/O a pipeline asks its driver for -----------------------------------------
# Each effect knows how to perform itself in both styles, so the two drivers are the same loop.


class _StoreCall(NamedTuple):
    """Call the store (the async driver runs blocking stores in a thread)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]

    def perform(self, receiver: Receiver, watch: Watch | None) -> Any:
        if watch is not None:
            watch.store_call(self.args)
        return self.function(*self.args)

    async def perform_async(self, receiver: Receiver, watch: Watch | None) -> Any:
        if watch is not None:
            watch.store_call(self.args)
        if not receiver.store.blocking:
            return self.function(*self.args)
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.function, thread_sensitive=False)(*self.args)


class _Hooks(NamedTuple):
    """Call these hooks in order under a claim, whose lease is renewed while they run.

    An exception is thrown back into the pipeline.
    """

    names: tuple[str, ...]
    kwargs: dict[str, Any]
    key: str
    token: int

    def perform(self, receiver: Receiver, watch: Watch | None) -> None:
        timings = None if watch is None else watch.hook_call(self.kwargs)
        receiver._leases.track(self.key, self.token)
        try:
            receiver.dispatcher.call(self.names, self.kwargs, timings)
        finally:
            receiver._leases.untrack(self.key, self.token)

    async def perform_async(self, receiver: Receiver, watch: Watch | None) -> None:
        timings = None if watch is None else watch.hook_call(self.kwargs)
        receiver._leases.track(self.key, self.token)
        try:
            await receiver.dispatcher.call_async(self.names, self.kwargs, timings)
        finally:
            receiver._leases.untrack(self.key, self.token)


class _Notify(NamedTuple):
    """Call an informational hook, whose errors are logged and never propagate."""

    name: str
    kwargs: dict[str, Any]

    def perform(self, receiver: Receiver, watch: Watch | None) -> None:
        if watch is not None:
            watch.hook_call(self.kwargs)
        receiver.dispatcher.notify(self.name, self.kwargs)

    async def perform_async(self, receiver: Receiver, watch: Watch | None) -> None:
        if watch is not None:
            watch.hook_call(self.kwargs)
        await receiver.dispatcher.notify_async(self.name, self.kwargs)


class _Enqueue(NamedTuple):
    """Hand a recorded key to the receiver's queue (in a thread, for a blocking engine)."""

    key: str

    def perform(self, receiver: Receiver, watch: Watch | None) -> None:
        assert receiver.queue is not None
        receiver.queue.enqueue(self.key)

    async def perform_async(self, receiver: Receiver, watch: Watch | None) -> None:
        queue = receiver.queue
        assert queue is not None
        if not queue.blocking:
            return queue.enqueue(self.key)
        from asgiref.sync import sync_to_async

        return await sync_to_async(queue.enqueue, thread_sensitive=False)(self.key)


_Effect: TypeAlias = _StoreCall | _Hooks | _Notify | _Enqueue
_Pipeline: TypeAlias = Generator[_Effect, Any, Reply]
"""The receiver's decisions as a generator of effects: written once, run by either driver."""
_Result = TypeVar("_Result")


class Receiver:
    """Authenticates, validates, deduplicates and dispatches Codat webhook deliveries.

    Thread-safe and reusable: create one per process and share it between requests.

    :param authorization: the ``Authorization`` header value(s) set in the Codat Portal for
        legacy rule webhooks: a string, a list (named ``authorization-1``, ...) or a
        ``{name: value}`` dict; the matching name becomes ``delivery.verified_by``.
    :param signing_secrets: the new service's endpoint secret(s), ``whsec_...``, shaped like
        ``authorization`` (several during a rotation). With both kinds given, a request that
        carries a signature must have a valid one, and one without must carry a matching
        ``Authorization`` value.
    :param tolerance: seconds a signature's timestamp may differ from now, in either
        direction; older or newer signed deliveries are 401.
    :param store: the idempotency store; default ``SQLiteStore("codat-webhooks.sqlite3")`` in
        the working directory (created on first use), which serves every process of one
        machine.
    :param plugins: your hook implementations: objects or modules with ``@hookimpl`` methods.
    :param load_entrypoints: also load every plugin installed in the ``codat_webhooks``
        entry-point group. On by default: installing a plugin package enables it in every
        receiver of the environment (``codat-webhooks plugins`` lists them); ``False`` uses
        ``plugins`` only.
    :param max_body_bytes: larger bodies are refused with 413, unread by the adapters (1 MiB).
    :param insecure: must be ``True`` to run with neither ``authorization`` nor
        ``signing_secrets`` (local testing only); otherwise that is a ``ConfigurationError``.
    :param lease: seconds a claim lives without renewal. Running hooks renew it, so it only
        bounds how long a crashed worker blocks redelivery.
    :param retry_after: seconds sent in ``Retry-After`` when a hook failed or the store was
        unavailable.
    :param completion_retry: seconds to keep trying, in the background, to record a processed
        delivery as done when the store fails just after its hooks ran (the claim is kept
        meanwhile); default Codat's 28-hour retry window.
    :param clock: Unix seconds; read by the receiver, its leases, its signature checks and the
        default store, so tests can move time instead of sleeping.
    :param authenticator: a ready :class:`~codat_webhooks.verify.Authenticator`, instead of
        ``authorization``, ``signing_secrets``, ``tolerance`` and ``insecure``.
    :param plugin_manager: a ready manager (from
        :func:`codat_webhooks.hooks.manager.make_plugin_manager`) to use instead of building one
        from ``plugins`` and ``load_entrypoints``.
    :param dispatcher: a ready dispatcher, which brings its own plugin manager.
    :param queue: queued dispatch (see :mod:`codat_webhooks.queues`): deliveries are recorded
        as ``queued`` and answered 202, and workers run the hooks through
        :meth:`process_queued`.
    :param retries: how a worker retries a key whose hook raised
        (:class:`~codat_webhooks.queues.RetryPolicy`); then the key is ``failed``.
    :raises ConfigurationError: no credentials without ``insecure``, both an ``authenticator``
        and credentials, a non-positive ``max_body_bytes`` or ``lease``, a negative
        ``completion_retry``, or a plugin
        implementing a hook that does not exist.
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
        completion_retry: float = CODAT_RETRY_WINDOW,
        clock: Clock = system_clock,
        authenticator: Authenticator | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        dispatcher: Dispatcher | None = None,
        queue: Queue | None = None,
        retries: RetryPolicy = RetryPolicy(),  # noqa: B008 - an immutable NamedTuple
    ) -> None:
        if max_body_bytes <= 0:
            raise ConfigurationError("max_body_bytes must be positive")
        if lease <= 0:
            raise ConfigurationError("lease must be a positive number of seconds")
        if not completion_retry >= 0:  # NaN included
            raise ConfigurationError("completion_retry must be a number of seconds, 0 or more")
        if authenticator is not None and (authorization or signing_secrets or insecure):
            raise ConfigurationError(
                "pass either an authenticator or the credentials to build one, not both"
            )
        self.clock = clock
        self._received_at: Callable[[], datetime] = (
            functools.partial(datetime.now, timezone.utc)
            if clock is system_clock
            else functools.partial(utc_now, clock)
        )
        self.authenticator = authenticator or Authenticator(
            authorization, signing_secrets, tolerance=tolerance, insecure=insecure, clock=clock
        )
        self.store = store or default_store(clock)
        if self.store.retention < CODAT_RETRY_WINDOW:
            logger.warning(
                "store retention %.0fs is shorter than Codat's 28-hour retry window: "
                "late retries of processed alerts will run the hooks again",
                self.store.retention,
                extra=log_fields(),
            )
        if dispatcher is None:
            dispatcher = Dispatcher(
                plugin_manager or make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
            )
        self.dispatcher = dispatcher
        self.plugin_manager = dispatcher.manager
        self.max_body_bytes = max_body_bytes
        self.lease = float(lease)
        self.retry_after = retry_after
        self._leases = LeaseKeeper(
            self.store, self.lease, clock=clock, completion_retry=float(completion_retry)
        )
        self.outage = StoreOutage(self.store)
        """Whether the store is down: while it is, store calls fail at once (503)."""
        self.retries = retries.validate()
        self.queue = queue
        if queue is not None:
            queue.bind(self)

    @property
    def lease_keeper(self) -> LeaseKeeper:
        """What renews the leases of running hooks; metrics plugins listen to it."""
        return self._leases

    # --- public entry points -----------------------------------------------------------------

    def handle(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """Process one delivery synchronously; async hook implementations are run to completion.

        ``force`` re-runs the hooks of an already processed key (used by ``replay --force``).
        """
        return self._drive(self._process(method, headers, body, force))

    async def handle_async(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """As :meth:`handle`, for event loops: sync hooks and blocking stores run in threads."""
        return await self._drive_async(self._process(method, headers, body, force))

    def reject_too_large(self, method: str, headers: HeaderInput, size: int | None) -> Reply:
        """The reply for a body an adapter stopped reading because it exceeds ``max_body_bytes``.

        Adapters must not buffer an oversize body just to have :meth:`handle` measure it, so
        they call this instead: ``on_rejected`` runs with a :class:`PayloadTooLargeError` and
        the reply is the same 413 (405 for a wrong method) that :meth:`handle` would give.
        ``size`` is the declared ``Content-Length``, or ``None`` for a cut-off chunked body.
        """
        return self._drive(self._reject(self._too_large(method, headers, b"", size)))

    async def reject_too_large_async(
        self, method: str, headers: HeaderInput, size: int | None
    ) -> Reply:
        """As :meth:`reject_too_large`, for event loops."""
        return await self._drive_async(self._reject(self._too_large(method, headers, b"", size)))

    def process_queued(self, key: str) -> Work:
        """The worker entry point of queued dispatch: run the hooks of a ``queued`` key.

        Claims the key (so a job delivered twice runs the hooks once), runs the same hooks as
        inline dispatch on the stored body, and completes it; a hook that raises puts the key
        back as ``queued`` with a backoff and ``Work.retry_in`` says when to run it again,
        until the attempts of ``retries`` are spent: then it is ``failed`` and
        ``on_handler_error`` runs. Async hook implementations are run to completion.
        """
        return self._drive(self._work(key), worker=True)

    async def process_queued_async(self, key: str) -> Work:
        """As :meth:`process_queued`, for workers that run an event loop."""
        return await self._drive_async(self._work(key), worker=True)

    def health(self) -> Reply:
        """The answer to ``GET <path>/health``: 200 when the store answers a ping, else 503.

        For load balancers and Kubernetes probes, so it needs no credentials; its body says
        ``ok`` or ``unavailable`` and nothing else (no store, path or setting is named).
        """
        try:
            self.outage.check()
            self.store.ping()
        except StoreError as exc:
            if self.outage.down is None:
                self.outage.failed(exc)
            return self._unhealthy(exc)
        return _HEALTHY

    async def health_async(self) -> Reply:
        """As :meth:`health`, for event loops: a blocking store is pinged in a thread."""
        if not self.store.blocking:
            return self.health()
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.health, thread_sensitive=False)()

    def _unhealthy(self, exc: StoreError) -> Reply:
        logger.warning(
            "health check: store unavailable: %s",
            exc,
            extra=log_fields(outcome="unavailable", status=503),
        )
        retry = ("Retry-After", str(self.retry_after))
        return Reply(503, [*_HEALTH_HEADERS, retry], b'{"status": "unavailable"}', "unavailable")

    def close(self) -> None:
        """Stop the queue's workers and the lease renewer, and close the store."""
        if self.queue is not None:
            self.queue.close()
        self.outage.close()
        self._leases.close()
        self.store.close()

    # --- the drivers: the same loop, effects performed inline or awaited ---------------------

    def _drive(self, pipeline: Generator[_Effect, Any, _Result], worker: bool = False) -> _Result:
        """Run ``pipeline``, watched for ``on_outcome`` only if a plugin implements it."""
        plan = self.dispatcher.observers()
        if not plan:
            return self._run(pipeline, None)
        watch = Watch(self.dispatcher.timed_observers, worker)
        final = self._run(pipeline, watch)
        self.dispatcher.observe(plan, watch.arguments(final))  # type: ignore[arg-type]
        return final

    async def _drive_async(
        self, pipeline: Generator[_Effect, Any, _Result], worker: bool = False
    ) -> _Result:
        plan = self.dispatcher.observers()
        if not plan:
            return await self._run_async(pipeline, None)
        watch = Watch(self.dispatcher.timed_observers, worker)
        final = await self._run_async(pipeline, watch)
        await self.dispatcher.observe_async(plan, watch.arguments(final))  # type: ignore[arg-type]
        return final

    # An effect's result is sent back into the pipeline and its exception thrown into it, at
    # the ``yield`` that asked for it; the pipeline's ``return`` ends the loop with the reply.
    # With a watch, each effect shows it what it is about to do, and the loop any exception.

    def _run(self, pipeline: Generator[_Effect, Any, _Result], watch: Watch | None) -> _Result:
        try:
            step = next(pipeline)
            while True:
                try:
                    result = step.perform(self, watch)
                except Exception as exc:
                    if watch is not None:
                        watch.error = exc
                    step = pipeline.throw(exc)
                else:
                    step = pipeline.send(result)
        except StopIteration as done:
            final: _Result = done.value
            return final

    async def _run_async(
        self, pipeline: Generator[_Effect, Any, _Result], watch: Watch | None
    ) -> _Result:
        try:
            step = next(pipeline)
            while True:
                try:
                    result = await step.perform_async(self, watch)
                except Exception as exc:
                    if watch is not None:
                        watch.error = exc
                    step = pipeline.throw(exc)
                else:
                    step = pipeline.send(result)
        except StopIteration as done:
            final: _Result = done.value
            return final

    # --- the pipeline, written once for both drivers ----------------------------------------

    def _process(self, method: str, headers: HeaderInput, body: bytes, force: bool) -> _Pipeline:
        """Every decision of a delivery; the I/O it needs is yielded to the driver as effects."""
        admitted = self._admit(method, headers, body)
        if isinstance(admitted, _Rejection):
            return (yield from self._reject(admitted))

        if self.queue is not None and not force:
            return (yield from self._accept(admitted))
        key = admitted.entry.key
        try:
            claim = yield _StoreCall(self._claim, (admitted.entry, force))
        except StoreError as exc:
            return self._unavailable(key, exc)
        if claim.status is not _CLAIMED:
            return (yield from self._not_claimed(admitted, claim))

        routed = admitted.route
        delivery = admitted.delivery(claim.attempts)
        kwargs = {"delivery": delivery, routed.argument: routed.payload}
        try:
            yield _Hooks(routed.hooks, kwargs, key, claim.token)
        except Exception as exc:
            # ``alert`` is the contract's name; ``payload`` says it may be an event as well.
            failure = {"payload": routed.payload, "alert": routed.payload, "error": exc}
            yield _Notify("on_handler_error", {"delivery": delivery, **failure})
            yield _StoreCall(self._release, (key, claim.token, exc))
            return self._failed(key)
        yield _StoreCall(self._complete, (key, claim.token))
        return Reply.build(200, _PROCESSED, key, "processed")

    def _accept(self, admitted: _Admitted) -> _Pipeline:
        """Queued dispatch: record the delivery as ``queued``, hand its key over, answer 202."""
        key = admitted.entry.key
        entry = admitted.entry._replace(verified_by=admitted.verified_by)  # for the worker
        try:
            queued = yield _StoreCall(self._enqueue, (entry,))
        except StoreError as exc:
            return self._unavailable(key, exc)
        if queued.status is _DUPLICATE:  # queued, being processed or done: say which
            detail = yield _StoreCall(self._duplicate_detail, (key,))
            return (yield from self._not_claimed(admitted, queued, detail))
        if queued.status is not ClaimStatus.QUEUED:
            return (yield from self._not_claimed(admitted, queued))
        try:
            yield _Enqueue(key)
        except Exception as exc:
            # Recorded but not handed over: the sweeper re-enqueues it once it is stale, and
            # the sender's retry meanwhile is answered as a duplicate. Nothing is lost.
            return self._unavailable(key, exc, "queue")
        return Reply.build(202, Outcome.QUEUED, key, "queued")

    def _work(self, key: str) -> Generator[_Effect, Any, Work]:
        """A worker's run of a queued key: take it, run its hooks, complete, defer or fail."""
        try:
            claim, record = yield _StoreCall(self._take, (key,))
            if claim.status is ClaimStatus.IN_PROGRESS:
                # Another worker holds it: look again when its lease would run out, in case
                # that worker died (if it finishes, the next look is a no-op).
                return Work(key, Outcome.IN_PROGRESS, claim.retry_after + 0.1)
            if claim.status is not _CLAIMED:
                return Work(key, _ALREADY_PROCESSED)
        except StoreError:  # logged by the built-in log plugin's on_outcome
            return Work(key, Outcome.UNAVAILABLE, float(self.retry_after))
        if record is None or record.token != claim.token:  # purged or taken over meanwhile
            return Work(key, _ALREADY_PROCESSED)
        received_at = datetime.fromtimestamp(record.first_seen, timezone.utc)
        headers = Headers(record.headers)
        delivery = Delivery(
            key, headers, record.body, received_at, record.verified_by, claim.attempts
        )
        try:
            obj = load_object(record.body)
            routed = route(obj)
        except PayloadError as exc:  # it parsed when accepted: the stored body was altered
            yield _StoreCall(self._release, (key, claim.token, exc))
            return Work(key, Outcome.FAILED)
        carried = message_id(headers) or key_from_body(obj) or f"sha256:{record.fingerprint}"
        if record.key != key or carried != key:
            # Hooks must never see another delivery's body under this key; the claim's lease
            # runs out and the key is taken again from a store that answers correctly.
            logger.error(
                "the store returned a record for %r when asked for %r; hooks not run",
                carried,
                key,
                extra=log_fields(key, outcome="unavailable"),
            )
            return Work(key, Outcome.UNAVAILABLE, float(self.retry_after))
        kwargs = {"delivery": delivery, routed.argument: routed.payload}
        try:
            yield _Hooks(routed.hooks, kwargs, key, claim.token)
        except Exception as exc:
            delay = self.retries.delay(claim.attempts)
            if delay is not None:
                yield _StoreCall(self._defer, (key, claim.token, exc, delay))
                return Work(key, Outcome.FAILED, delay)
            failure = {"payload": routed.payload, "alert": routed.payload, "error": exc}
            yield _Notify("on_handler_error", {"delivery": delivery, **failure})
            yield _StoreCall(self._release, (key, claim.token, exc))
            return Work(key, Outcome.FAILED)
        yield _StoreCall(self._complete, (key, claim.token))
        return Work(key, _PROCESSED)

    def _reject(self, rejection: _Rejection) -> _Pipeline:
        """Park what deserves keeping, tell ``on_rejected``, answer with the error's status."""
        error, delivery, park = rejection
        if park is not None:
            try:
                yield _StoreCall(self._park, (park, error.reason))
            except StoreError as exc:
                return self._unavailable(park.key if delivery is None else delivery.key, exc)
        if delivery is None:
            return self._error_reply(error, None)
        yield _Notify("on_rejected", {"delivery": delivery, "error": error})
        return self._error_reply(error, delivery.key)

    def _not_claimed(
        self, admitted: _Admitted, claim: Claim, detail: str = "already processed"
    ) -> _Pipeline:
        """The answer for a key we could not claim, with the hook that hears of it."""
        key = admitted.entry.key
        if claim.status is _DUPLICATE:
            yield _Notify("on_duplicate", {"delivery": admitted.delivery()})
            return Reply.build(200, _ALREADY_PROCESSED, key, detail)
        if claim.status is ClaimStatus.IN_PROGRESS:
            seconds = str(max(1, math.ceil(claim.retry_after)))
            return Reply.build(
                503,
                Outcome.IN_PROGRESS,
                key,
                "this key is being processed; retry later",
                (("Retry-After", seconds),),
            )
        # Authenticated, so kept: parked beside the original, under a key that names both.
        error = ConflictError("this key was already received with a different body")
        parked = admitted.entry._replace(
            key=conflict_key(key, admitted.entry.fingerprint), verified_by=admitted.verified_by
        )
        return (yield from self._reject(_Rejection(error, admitted.delivery(), parked)))

    # --- admission: every check that needs no store ------------------------------------------

    def _admit(self, method: str, headers: HeaderInput, body: bytes) -> _Admitted | _Rejection:
        """Method, size, credentials, JSON and model checks.

        An authenticated body we cannot process comes back as a rejection that parks it, so
        nothing Codat sent is lost; anything unauthenticated is never stored.
        """
        method = method.upper()
        if method not in ALLOWED_METHODS:
            return _WRONG_METHOD
        hdrs = headers if type(headers) is Headers else Headers(headers)
        if len(body) > self.max_body_bytes:
            return self._too_large(method, hdrs, body, len(body))
        received_at = self._received_at()
        header_key = message_id(hdrs)
        try:
            verified_by = self.authenticator.verify(hdrs, body)
        except CodatWebhookError as exc:
            return _Rejection(exc, Delivery(header_key, hdrs, body, received_at, method=method))
        fingerprint = hashlib.sha256(body).hexdigest()
        key = header_key
        obj: Mapping[str, Any] | None = None
        try:
            obj = load_object(body)
            key = key or key_from_body(obj) or f"sha256:{fingerprint}"
            routed = route(obj)
            entry = Entry(
                key, fingerprint, body, tuple(redact(hdrs.raw)), routed.kind, routed.company_id
            )
            if not entry.plain():  # rare: non-ASCII, NUL or a long key; refused, not cleaned
                if (problem := key_problem(key)) is not None:
                    raise PayloadError(f"the delivery's ID is {problem}")
                if entry.storable() != entry:
                    raise PayloadError("the type or company ID is not storable text")
        except PayloadError as error:
            if key is None or key_problem(key) is not None:
                key = f"sha256:{fingerprint}"  # the body's own ID cannot be a store key
            delivery = Delivery(key, hdrs, body, received_at, verified_by, method=method)
            return _Rejection(error, delivery, self._dead_letter(delivery, fingerprint, obj))
        return _Admitted(hdrs, body, received_at, verified_by, method, routed, entry)

    def _too_large(
        self, method: str, headers: HeaderInput, body: bytes, size: int | None
    ) -> _Rejection:
        """A body over ``max_body_bytes``, measured by us or (``size``) by the adapter."""
        method = method.upper()
        if method not in ALLOWED_METHODS:
            return _WRONG_METHOD
        hdrs = headers if type(headers) is Headers else Headers(headers)
        header_key = message_id(hdrs)
        delivery = Delivery(header_key, hdrs, body, self._received_at(), method=method)
        measured = "a chunked body" if size is None else f"body of {size} bytes"
        error = PayloadTooLargeError(f"{measured} exceeds max_body_bytes={self.max_body_bytes}")
        return _Rejection(error, delivery)

    @staticmethod
    def _dead_letter(delivery: Delivery, fingerprint: str, obj: Mapping[str, Any] | None) -> Entry:
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

    # --- store calls: each goes through the outage, so a store that is down costs no wait ---

    def _call_store(self, function: Callable[..., _Result], *args: Any, **kwargs: Any) -> _Result:
        self.outage.check()
        try:
            return function(*args, **kwargs)
        except StoreError as exc:
            self.outage.failed(exc)
            raise

    def _duplicate_detail(self, key: str) -> str:
        """Where the first copy of a queued key is, for the answer to the next copy.

        Without a queue a duplicate is always done. With one it may still wait for a worker
        or be running, and "already processed" would then send whoever reads the answer
        looking for a result that does not exist yet. Still 200 ``duplicate`` either way:
        the sender must not send it again.
        """
        try:
            record = self._call_store(self.store.get, key)
        except StoreError:  # the copy is still a duplicate: only the words are vaguer
            return "already received"
        if record is None:  # purged meanwhile
            return "already received"
        return _RECEIVED.get(record.state, "already processed")

    def _claim(self, entry: Entry, force: bool) -> Claim:
        return self._call_store(self.store.claim, entry, lease=self.lease, force=force)

    def _enqueue(self, entry: Entry) -> Claim:
        return self._call_store(self.store.enqueue, entry)

    def _take(self, key: str) -> tuple[Claim, Record | None]:
        return self._call_store(self.store.take_record, key, lease=self.lease)

    def _park(self, entry: Entry, reason: str) -> None:
        self._call_store(self.store.park, entry, reason=reason)

    def _release(self, key: str, token: int, exc: BaseException) -> None:
        try:
            self._call_store(self.store.release, key, token, error=f"{type(exc).__name__}: {exc}")
        except StoreError as store_exc:
            logger.error(
                "could not release %s (%s); its lease will expire",
                key,
                store_exc,
                extra=log_fields(key),
            )

    def _defer(self, key: str, token: int, exc: BaseException, delay: float) -> None:
        error = f"{type(exc).__name__}: {exc}"
        try:
            self._call_store(self.store.defer, key, token, due=self.clock() + delay, error=error)
        except StoreError as store_exc:
            logger.error(
                "could not defer %s (%s); its lease will expire",
                key,
                store_exc,
                extra=log_fields(key),
            )

    def _complete(self, key: str, token: int) -> None:
        # The hooks ran: answering 200 is right even if recording that fails, because a retry
        # would run them again. The claim is kept and completed in the background instead.
        try:
            if not self._call_store(self.store.complete, key, token):
                logger.warning(
                    "%s completed after its lease was taken over", key, extra=log_fields(key)
                )
        except StoreError as exc:
            logger.error(
                "processed %s but could not record it (%s); retrying in the background",
                key,
                exc,
                extra=log_fields(key),
            )
            self._leases.complete_later(key, token)

    # --- replies: the status policy ----------------------------------------------------------

    def _error_reply(self, error: CodatWebhookError, key: str | None) -> Reply:
        """The reply for a rejection; the sender never learns why authentication failed."""
        status = error.status_hint
        detail = _GENERIC_DETAILS.get(status, error.reason)
        extra: tuple[tuple[str, str], ...] = ()
        if status == 405:
            extra = (("Allow", ", ".join(ALLOWED_METHODS)),)
        elif status == 503:  # our failure, not the delivery's: Codat must try again
            logger.error("could not check %s: %s", key, error.reason, extra=log_fields(key))
            extra = (("Retry-After", str(self.retry_after)),)
        return Reply.build(status, error.outcome, key, detail, extra)

    def _unavailable(self, key: str | None, exc: Exception, part: str = "store") -> Reply:
        # Logged, with the error, by the built-in log plugin's on_outcome.
        return Reply.build(
            503,
            Outcome.UNAVAILABLE,
            key,
            f"{part} unavailable; retry later",
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


_HEALTH_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
_HEALTHY = Reply(200, list(_HEALTH_HEADERS), b'{"status": "ok"}', "ok")

_GENERIC_DETAILS = {401: "authentication failed", 413: "body too large"}
"""Details that replace the error's reason in replies: a prober learns nothing from them."""
