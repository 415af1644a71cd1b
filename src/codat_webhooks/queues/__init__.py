"""Queued dispatch: acknowledge at once, run the hooks on workers.

``Receiver(..., queue=LocalQueue())`` runs them on threads of the receiving process (plus any
``codat-webhooks worker`` process sharing the store); ``codat_webhooks.queues.celery``
runs them on Celery workers. Any other engine implements :class:`Queue`.
"""

from __future__ import annotations

from .base import Queue, RetryPolicy, Work
from .local import LocalQueue

__all__ = ["LocalQueue", "Queue", "RetryPolicy", "Work"]
