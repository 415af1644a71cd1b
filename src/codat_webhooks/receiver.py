"""The receiver: ``(method, headers, body)`` in, :class:`Reply` out, told as one story.

A delivery is admitted without any I/O (:mod:`.admission`: method, size, credentials, JSON,
model, key), then its key is claimed in the store, its hooks run under the claim's lease, and
the claim is completed, or released so Codat's retry runs them again. With a queue, the
delivery is recorded and acknowledged instead, and a worker later takes the key and runs the
same hooks (:meth:`Receiver.process_queued`). Every answer comes from the status policy in
:mod:`.replies`.

The pipelines below are generators that *yield* the I/O they need as effects (:mod:`.effects`)
and receive the results; the sync and async runners perform them. So each decision is written
once for both calling styles, and the facts ``on_outcome`` reports are handed over as the
pipeline learns them (:class:`~.observe.Facts`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from . import replies, settle
from ._logging import library_logger
from .admission import ALLOWED_METHODS, Admission, Admitted, Rejection, TooLarge
from .attempts import asked, ended, unauthorized
from .clock import Clock, system_clock, utc_now
from .delivery import Delivery, Reply
from .effects import (
    Ask,
    Effect,
    Enqueue,
    Hooks,
    Notify,
    Performer,
    run,
    run_async,
)
from .errors import ConfigurationError, ConflictError, PayloadError, StoreError
from .headers import HeaderInput, Headers
from .hooks.dispatch import Dispatcher
from .hooks.manager import make_plugin_manager
from .horizon import CODAT_ATTEMPTS
from .leases import LeaseKeeper
from .models._parse import load_object
from .observe import Facts, log_fields
from .outage import StoreOutage
from .outcomes import Outcome
from .queues.base import RetryPolicy, Work
from .routing import key_from_body, route
from .stale import StalePolicy, checked_policy, order_of, ordered, skip
from .stores.base import CODAT_RETRY_WINDOW, Claim, ClaimStatus, State, Store, conflict_key
from .stores.history import UNAUTHORIZED_KEY
from .stores.sqlite import default_store
from .verify import Authenticator, Credentials, SecretCredentials, message_id

if TYPE_CHECKING:
    import pluggy

    from .queues.base import Queue

__all__ = ["ALLOWED_METHODS", "Receiver", "TooLarge", "default_store"]

logger = library_logger("codat_webhooks.receiver")

_Pipeline: TypeAlias = Generator[Effect, Any, Reply]
_F = TypeVar("_F", Reply, Work)
_Start: TypeAlias = Callable[..., Generator[Effect, Any, _F]]
"""A pipeline: called with its arguments and the delivery's :class:`Facts` to fill."""


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
    :param dispatcher: a ready :class:`~codat_webhooks.hooks.dispatch.Dispatcher` (which
        brings its plugin manager) instead of ``plugins`` and ``load_entrypoints``: to share one
        receiver's plugins with another without registering them twice.
    :param queue: queued dispatch (see :mod:`codat_webhooks.queues`): deliveries are recorded
        as ``queued`` and answered 202, and workers run the hooks through
        :meth:`process_queued`.
    :param retries: how a worker retries a key whose hook raised
        (:class:`~codat_webhooks.queues.RetryPolicy`); then the key is ``failed``.
    :param stale: what a stale delivery runs, ``"deliver"`` or ``"skip"`` (:mod:`.ordering`).
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
        queue: Queue | None = None,
        retries: RetryPolicy = RetryPolicy(),  # noqa: B008 - an immutable NamedTuple
        authenticator: Authenticator | None = None,
        dispatcher: Dispatcher | None = None,
        stale: StalePolicy = "deliver",
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
        received_at: Callable[[], datetime] = (
            functools.partial(datetime.now, timezone.utc)
            if clock is system_clock
            else functools.partial(utc_now, clock)
        )
        authenticator = authenticator or Authenticator(
            authorization, signing_secrets, tolerance=tolerance, insecure=insecure, clock=clock
        )
        self.admission = Admission(authenticator, max_body_bytes, received_at)
        self.store = store or default_store(clock)
        if self.store.retention < CODAT_RETRY_WINDOW:
            logger.warning(
                "store retention %.0fs is shorter than Codat's 28-hour retry window: "
                "late retries of processed alerts will run the hooks again",
                self.store.retention,
                extra=log_fields(),
            )
        self.dispatcher = dispatcher or Dispatcher(
            make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
        )
        self.lease = float(lease)
        self.retry_after = retry_after
        self.retries = retries.validate()
        self.stale = checked_policy(stale)
        self.lease_keeper = LeaseKeeper(
            self.store, self.lease, clock=clock, completion_retry=float(completion_retry)
        )
        """What renews the leases of running hooks; metrics plugins listen to it."""
        self.outage = StoreOutage(self.store)
        """Whether the store is down: while it is, deliveries are answered 503 at once."""
        self.queue = queue
        self._unauthorized_noted = 0.0
        self._performer = Performer(
            self.store, self.dispatcher, self.lease_keeper, self.outage, queue, self.lease
        )
        if queue is not None:
            queue.bind(self)

    @property
    def authenticator(self) -> Authenticator:
        return self.admission.authenticator

    @property
    def max_body_bytes(self) -> int:
        return self.admission.max_body_bytes

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return self.dispatcher.manager

    # --- public entry points -----------------------------------------------------------------

    def handle(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """Process one delivery synchronously; async hook implementations are run to completion.

        ``force`` re-runs the hooks of an already processed key (used by ``replay --force``).
        """
        return self._drive(self._deliver, (method, headers, body, force))

    async def handle_async(
        self, method: str, headers: HeaderInput, body: bytes, *, force: bool = False
    ) -> Reply:
        """As :meth:`handle`, for event loops: sync hooks and blocking stores run in threads."""
        return await self._drive_async(self._deliver, (method, headers, body, force))

    def reject_too_large(self, method: str, headers: HeaderInput, size: int | None) -> Reply:
        """The reply for a body an adapter stopped reading because it exceeds ``max_body_bytes``.

        Adapters must not buffer an oversize body just to have :meth:`handle` measure it, so
        they call this instead: ``on_rejected`` runs with a :class:`PayloadTooLargeError` and
        the reply is the same 413 (405 for a wrong method) that :meth:`handle` would give.
        ``size`` is the declared ``Content-Length``, or ``None`` for a cut-off chunked body.
        """
        rejection = self.admission.too_large(method, headers, size)
        return self._drive(self._reject, (rejection,))

    async def reject_too_large_async(
        self, method: str, headers: HeaderInput, size: int | None
    ) -> Reply:
        """As :meth:`reject_too_large`, for event loops."""
        rejection = self.admission.too_large(method, headers, size)
        return await self._drive_async(self._reject, (rejection,))

    def process_queued(self, key: str) -> Work:
        """The worker entry point of queued dispatch: run the hooks of a ``queued`` key.

        Claims the key (so a job delivered twice runs the hooks once), runs the same hooks as
        inline dispatch on the stored body, and completes it; a hook that raises puts the key
        back as ``queued`` with a backoff and ``Work.retry_in`` says when to run it again,
        until the attempts of ``retries`` are spent: then it is ``failed`` and
        ``on_handler_error`` runs. Async hook implementations are run to completion.
        """
        return self._drive(self._work, (key,), worker=True)

    async def process_queued_async(self, key: str) -> Work:
        """As :meth:`process_queued`, for workers that run an event loop."""
        return await self._drive_async(self._work, (key,), worker=True)

    def health(self) -> Reply:
        """The answer to ``GET <path>/health``: 200 when the store answers a ping, else 503.

        For load balancers and Kubernetes probes, so it needs no credentials; its body says
        ``ok`` or ``unavailable`` and nothing else (no store, path or setting is named). While
        the receiver knows the store is down it answers 503 without pinging it again.
        """
        try:
            self.outage.ping()
        except StoreError as exc:
            fields = log_fields(outcome="unavailable", status=503)
            logger.warning("health check: store unavailable: %s", exc, extra=fields)
            return replies.unhealthy(self.retry_after)
        return replies.HEALTHY

    async def health_async(self) -> Reply:
        """As :meth:`health`, for event loops: a blocking store is pinged in a thread."""
        if not self.store.blocking:
            return self.health()
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.health, thread_sensitive=False)()

    def close(self) -> None:
        """Stop the queue's workers, the outage watcher and the lease renewer; close the store."""
        if self.queue is not None:
            self.queue.close()
        self.outage.close()
        self.lease_keeper.close()
        self.store.close()

    # --- running a pipeline, then telling on_outcome what it learned -------------------------

    def _drive(self, pipeline: _Start[_F], args: tuple[Any, ...], worker: bool = False) -> _F:
        """Run ``pipeline(*args, facts)``, then tell ``on_outcome`` what it learned."""
        observers = self.dispatcher.observers()
        facts = Facts(worker, self.dispatcher.timed_observers)
        final = run(pipeline(*args, facts), self._performer, facts)
        if observers:
            self.dispatcher.observe(observers, facts.conclude(final))
        return final

    async def _drive_async(
        self, pipeline: _Start[_F], args: tuple[Any, ...], worker: bool = False
    ) -> _F:
        observers = self.dispatcher.observers()
        facts = Facts(worker, self.dispatcher.timed_observers)
        final = await run_async(pipeline(*args, facts), self._performer, facts)
        if observers:
            await self.dispatcher.observe_async(observers, facts.conclude(final))
        return final

    # --- the story of a delivery -------------------------------------------------------------

    def _deliver(
        self, method: str, headers: HeaderInput, body: bytes, force: bool, facts: Facts
    ) -> _Pipeline:
        """Admit, then claim and run the hooks (or, with a queue, record and acknowledge)."""
        admitted = self.admission.admit(method, headers, body)
        if isinstance(admitted, Rejection):
            return (yield from self._reject(admitted, facts))
        facts.admitted(admitted.entry)
        if self.queue is not None and not force:
            return (yield from self._accept(admitted, facts))
        key, by = admitted.entry.key, admitted.verified_by
        try:
            claim = yield Ask("claim", (admitted.entry, force, asked(by)))
        except StoreError as exc:
            facts.error = exc
            return replies.unavailable(key, self.retry_after)
        if claim.status is not ClaimStatus.CLAIMED:
            return (yield from self._not_claimed(admitted, claim, facts))

        routed = admitted.route
        delivery = facts.delivery = admitted.delivery(claim.attempts, order_of(claim.order))
        if delivery.stale and self.stale == "skip" and not force:
            attempt = ended(self.clock, facts.started, 200, Outcome.STALE, by)
            return (yield from skip(claim, routed, delivery, replies.stale(key), attempt))
        kwargs = {"delivery": delivery, routed.argument: routed.payload}
        try:
            yield Hooks(routed.hooks, kwargs, key, claim.token)
        except Exception as exc:
            facts.error = exc
            # ``alert`` is the contract's name; ``payload`` says it may be an event as well.
            failure = {"payload": routed.payload, "alert": routed.payload, "error": exc}
            yield Notify("on_handler_error", {"delivery": delivery, **failure})
            attempt = ended(self.clock, facts.started, 503, Outcome.FAILED, by, exc)
            yield from settle.release(key, claim.token, exc, attempt)
            # Codat's last attempt failed: on_outcome (and the log) hear ``abandoned``, once
            # (a replay, forced or not, is ours, not Codat's).
            facts.abandoned = claim.attempts == CODAT_ATTEMPTS and not force
            return replies.failed(key, self.retry_after)
        attempt = ended(self.clock, facts.started, 200, Outcome.PROCESSED, by)
        yield from settle.complete(key, claim.token, attempt)
        return replies.processed(key)

    def _accept(self, admitted: Admitted, facts: Facts) -> _Pipeline:
        """Queued dispatch: record the delivery as ``queued``, hand its key over, answer 202."""
        key, by = admitted.entry.key, admitted.verified_by
        entry = admitted.entry._replace(verified_by=by)  # for the worker
        try:
            queued = yield Ask("enqueue", (entry, asked(by)))
        except StoreError as exc:
            facts.error = exc
            return replies.unavailable(key, self.retry_after)
        if queued.status is ClaimStatus.DUPLICATE:  # queued, being processed or done: say which
            return (yield from self._not_claimed(admitted, queued, facts, queued.state))
        if queued.status is not ClaimStatus.QUEUED:
            return (yield from self._not_claimed(admitted, queued, facts))
        try:
            yield Enqueue(key)
        except Exception as exc:
            # Recorded but not handed over: the sweeper re-enqueues it once it is stale, and
            # the sender's retry meanwhile is answered as a duplicate. Nothing is lost. The
            # record's entry says 202; the history goes on with the 503 the sender got.
            facts.error = exc
            attempt = ended(self.clock, facts.started, 503, Outcome.UNAVAILABLE, by, exc)
            yield from settle.noted(key, attempt)
            return replies.unavailable(key, self.retry_after, "queue")
        return replies.queued(key)

    def _not_claimed(
        self, admitted: Admitted, claim: Claim, facts: Facts, first: State | None = State.DONE
    ) -> _Pipeline:
        """The answer for a key we could not claim, with the hook that hears of it."""
        key = admitted.entry.key
        if claim.status is ClaimStatus.DUPLICATE:
            delivery = facts.delivery = admitted.delivery()
            yield Notify("on_duplicate", {"delivery": delivery})
            return replies.duplicate(key, first)
        if claim.status is ClaimStatus.IN_PROGRESS:
            return replies.in_progress(key, claim.retry_after)
        # Authenticated, so kept: parked beside the original, under a key that names both.
        error = ConflictError("this key was already received with a different body")
        parked = admitted.entry._replace(
            key=conflict_key(key, admitted.entry.fingerprint), verified_by=admitted.verified_by
        )
        return (yield from self._reject(Rejection(error, admitted.delivery(), parked), facts))

    def _reject(self, rejection: Rejection, facts: Facts) -> _Pipeline:
        """Park what deserves keeping, tell ``on_rejected``, answer with the error's status."""
        error, delivery, park = rejection
        key = None if delivery is None else delivery.key
        facts.error = error
        if park is not None:
            facts.admitted(park)  # authenticated: its type and company may be reported
            try:
                attempt = ended(
                    self.clock,
                    facts.started,
                    error.status_hint,
                    error.outcome,
                    park.verified_by,
                    error.reason,
                )
                yield Ask("park", (park, error.reason, attempt))
            except StoreError as exc:
                facts.error = exc
                return replies.unavailable(key or park.key, self.retry_after)
        if delivery is not None:
            facts.delivery = delivery
            yield Notify("on_rejected", {"delivery": delivery, "error": error})
        if error.status_hint == 503:  # our failure, not the delivery's
            logger.error("could not check %s: %s", key, error.reason, extra=log_fields(key))
        if error.status_hint == 401:
            yield from self._note_unauthorized(error.reason)
        return replies.rejected(error, key, self.retry_after)

    def _note_unauthorized(self, reason: str) -> Generator[Effect, Any, None]:
        """Note a 401 for ``codat-webhooks status`` (at most one a second per receiver, so a
        flood of unauthenticated requests costs the store little)."""
        now = self.clock()
        if now - self._unauthorized_noted < 1.0:
            return
        self._unauthorized_noted = now
        with contextlib.suppress(StoreError):  # the answer is 401 whatever the store says
            yield Ask("note", (UNAUTHORIZED_KEY, unauthorized(self.clock, reason)))

    # --- the story of a queued key on a worker -----------------------------------------------

    def _work(self, key: str, facts: Facts) -> Generator[Effect, Any, Work]:
        """A worker's run of a queued key: take it, run its hooks, complete, defer or fail."""
        facts.key = key
        try:
            claim, record = yield Ask("take", (key,))
        except StoreError as exc:
            facts.error = exc
            return Work(key, Outcome.UNAVAILABLE, float(self.retry_after))
        if claim.status is ClaimStatus.IN_PROGRESS:
            # Another worker holds it: look again when its lease would run out, in case that
            # worker died (if it finishes, the next look is a no-op).
            return Work(key, Outcome.IN_PROGRESS, claim.retry_after + 0.1)
        if claim.status is not ClaimStatus.CLAIMED:
            return Work(key, Outcome.DUPLICATE)
        if record is None or record.token != claim.token:  # purged or taken over meanwhile
            return Work(key, Outcome.DUPLICATE)
        facts.kind, facts.company_id = record.kind, record.company_id
        by = record.verified_by
        received_at = datetime.fromtimestamp(record.first_seen, timezone.utc)
        headers = Headers(record.headers)
        delivery = Delivery(
            key, headers, record.body, received_at, record.verified_by, claim.attempts
        )
        try:
            obj = load_object(record.body)
            routed = route(obj)
        except PayloadError as exc:  # it parsed when accepted: the stored body was altered
            facts.error = exc
            attempt = ended(self.clock, facts.started, None, Outcome.FAILED, by, exc)
            yield from settle.release(key, claim.token, exc, attempt)
            return Work(key, Outcome.FAILED)
        carried = message_id(headers) or key_from_body(obj) or f"sha256:{record.fingerprint}"
        if record.key != key or carried != key:
            # Hooks must never see another delivery's body under this key; the claim's lease
            # runs out and the key is taken again from a store that answers correctly.
            facts.error = StoreError(f"the store returned the record of {carried!r}")
            logger.error(
                "the store returned a record for %r when asked for %r; hooks not run",
                carried,
                key,
                extra=log_fields(key, outcome="unavailable"),
            )
            return Work(key, Outcome.UNAVAILABLE, float(self.retry_after))
        facts.delivery = delivery = yield from ordered(delivery, routed.payload)
        if delivery.stale and self.stale == "skip":
            attempt = ended(self.clock, facts.started, None, Outcome.STALE, by)
            return (yield from skip(claim, routed, delivery, Work(key, Outcome.STALE), attempt))
        kwargs = {"delivery": delivery, routed.argument: routed.payload}
        try:
            yield Hooks(routed.hooks, kwargs, key, claim.token)
        except Exception as exc:
            facts.error = exc
            delay = self.retries.delay(claim.attempts)
            if delay is not None:
                attempt = ended(self.clock, facts.started, None, Outcome.RETRY, by, exc)
                yield from settle.defer(key, claim.token, exc, self.clock() + delay, attempt)
                return Work(key, Outcome.FAILED, delay)
            failure = {"payload": routed.payload, "alert": routed.payload, "error": exc}
            yield Notify("on_handler_error", {"delivery": delivery, **failure})
            attempt = ended(self.clock, facts.started, None, Outcome.FAILED, by, exc)
            yield from settle.release(key, claim.token, exc, attempt)
            return Work(key, Outcome.FAILED)
        attempt = ended(self.clock, facts.started, None, Outcome.PROCESSED, by)
        yield from settle.complete(key, claim.token, attempt)
        return Work(key, Outcome.PROCESSED)
