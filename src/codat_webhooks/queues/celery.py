"""Queued dispatch on Celery (extra ``celery``): one task on *your* Celery app moves keys.

    from celery import Celery
    from codat_webhooks.queues.celery import CeleryQueue

    celery_app = Celery("myapp", broker="redis://localhost:6379/0")
    receiver = Receiver(authorization=..., store=RedisStore(...), queue=CeleryQueue(celery_app))

Web processes and ``celery -A myapp worker`` import the same module, so both build the
receiver: the web side records and enqueues, the worker's task calls
:meth:`~codat_webhooks.Receiver.process_queued`. The task acknowledges late and is rejected
back to the broker when its worker process dies, so a killed worker's key is delivered again;
a hook failure is retried with ``task.retry(countdown=...)`` as the receiver's retry policy
says. A second sweep task re-enqueues keys the store holds as ``queued`` for too long (a
publish lost between store and broker): schedule it with Celery beat, or run
``codat-webhooks worker`` beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery, Task

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..receiver import Receiver

__all__ = ["CeleryQueue"]


class CeleryQueue:
    """Registers ``{name}.run`` and ``{name}.sweep`` on ``celery_app`` when constructed.

    ``queue`` routes the run task to a named Celery queue (default: the app's default).
    ``stale_after`` is the sweep task's grace period, in seconds.
    """

    blocking = True

    def __init__(
        self,
        celery_app: Celery,
        *,
        name: str = "codat_webhooks",
        queue: str | None = None,
        stale_after: float = 300.0,
    ) -> None:
        self.app = celery_app
        self.queue = queue
        self.stale_after = float(stale_after)
        self._receiver: Receiver | None = None
        owner = self

        def run(task: Task, key: str) -> str:
            work = owner.receiver.process_queued(key)
            if work.retry_in is not None:
                raise task.retry(countdown=work.retry_in)
            return str(work.outcome)

        def sweep() -> int:
            return owner.sweep()

        self.run_task: Task = celery_app.task(
            name=f"{name}.run",
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            max_retries=None,  # the receiver's RetryPolicy decides, and marks the key failed
            ignore_result=True,
        )(run)
        self.sweep_task: Task = celery_app.task(name=f"{name}.sweep", ignore_result=True)(sweep)

    @property
    def receiver(self) -> Receiver:
        if self._receiver is None:
            raise ConfigurationError("this CeleryQueue is not a Receiver's queue yet")
        return self._receiver

    def bind(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def enqueue(self, key: str) -> None:
        """Publish the run task for ``key``; raises (kombu's errors) when the broker is down."""
        self.run_task.apply_async((key,), queue=self.queue, retry=False)

    def sweep(self) -> int:
        """Re-enqueue keys ``queued`` (or leased by a dead worker) for over ``stale_after``."""
        keys = self.receiver.store.due(older_than=self.stale_after, limit=1000)
        for key in keys:
            self.enqueue(key)
        return len(keys)

    def close(self) -> None:
        """Nothing to stop: the Celery app, its connections and workers are yours."""
