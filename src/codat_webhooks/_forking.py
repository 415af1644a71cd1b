"""Objects that own threads start over in a forked child, whose copy of them has none.

``fork`` copies a process with only the thread that called it: every other thread of ours
(lease renewer, queue workers, sweeper) is gone in the child, while the objects that own them
still say they run, and their locks may be copied held. gunicorn with ``--preload`` forks its
workers from a master that built the receiver, so this is the normal case there, not a corner.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["Forkable", "start_over_in_children"]


class Forkable(Protocol):
    def _forked(self) -> None:
        """Drop the parent's threads, locks and pending work; start again if it should."""


_owners: weakref.WeakSet[Forkable] = weakref.WeakSet()
_registered = False
_lock = threading.Lock()


def start_over_in_children(owner: Forkable) -> None:
    """Call ``owner._forked()`` in every child forked from this process from now on."""
    global _registered
    with _lock:
        _owners.add(owner)
        if not _registered and hasattr(os, "register_at_fork"):  # not on Windows: no fork
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _registered = True


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent's may have been copied held
    for owner in list(_owners):
        owner._forked()
