"""Objects that own threads or connections start over in a forked child, whose copy has none.

``fork`` copies a process with only the thread that called it: every other thread of ours
(lease renewer, queue workers, sweeper, a pool's workers) is gone in the child, while the
objects that own them still say they run, and their locks may be copied held. Worse, a socket
opened by the parent is the *same* socket in the child: two processes writing requests on one
PostgreSQL connection read each other's replies. gunicorn with ``--preload`` and Celery's
default prefork pool fork their workers from a process that built the receiver at import time,
so this is the normal case there, not a corner.

One rule for every owner: a child never touches what its parent opened (not even to close it,
which would end the parent's session: libpq says goodbye to the server on close), and opens its
own on first use. :func:`start_over_in_children` registers an owner whose ``_forked`` runs in
each child; :class:`PerProcess` is that rule for one resource; :func:`leave_to_parent` keeps an
inherited object alive and untouched for the child's whole life, so no finaliser closes it.

A C library's own locks are out of reach of that rule. SQLite takes process-wide mutexes (its
allocator's, its file table's) inside every call, and Python lets other threads run meanwhile:
a fork while another thread is inside SQLite copies that mutex held, and the child's first
SQLite call waits for it forever (a gunicorn worker that never answers, and ignores SIGTERM).
:func:`hold_forks_while_inside` registers an owner that makes the forking thread wait until none
of its threads is inside such a call, and lets them go on once the fork is done.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = [
    "Forkable",
    "HoldsForks",
    "PerProcess",
    "hold_forks_while_inside",
    "leave_to_parent",
    "start_over_in_children",
]

_T = TypeVar("_T")


class Forkable(Protocol):
    def _forked(self) -> None:
        """Drop the parent's threads, locks, connections and pending work; start again."""


class HoldsForks(Forkable, Protocol):
    def _before_fork(self) -> None:
        """Wait until no thread is inside the C library, and keep new ones out."""

    def _after_fork_in_parent(self) -> None:
        """Let the threads the fork kept out go on."""


_owners: weakref.WeakSet[Forkable] = weakref.WeakSet()
_holders: weakref.WeakSet[HoldsForks] = weakref.WeakSet()
_registered = False
_lock = threading.Lock()
_left_to_parent: list[object] = []
"""What a child inherited and must never use nor finalise; it lives as long as the child."""


def start_over_in_children(owner: Forkable) -> None:
    """Call ``owner._forked()`` in every child forked from this process from now on."""
    with _lock:
        _owners.add(owner)
        _register()


def hold_forks_while_inside(owner: HoldsForks) -> None:
    """Around every fork from now on: ``owner._before_fork()`` in the forking thread, then
    ``owner._after_fork_in_parent()`` in the parent and ``owner._forked()`` in the child."""
    with _lock:
        _owners.add(owner)
        _holders.add(owner)
        _register()


def _register() -> None:
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):  # not on Windows: no fork
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )
        _registered = True


_held: list[HoldsForks] = []
"""The owners holding the fork under way, in the order they were asked (let go in reverse)."""


def _before_fork() -> None:
    _lock.acquire()  # no owner registers meanwhile; let go after the fork (a child makes anew)
    for owner in list(_holders):
        owner._before_fork()
        _held.append(owner)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._after_fork_in_parent()
    _lock.release()


def leave_to_parent(inherited: object) -> None:
    """Keep ``inherited`` (a connection, pool or client the parent opened) referenced and
    untouched in this child, so that garbage collection never runs its close."""
    if inherited is not None:
        _left_to_parent.append(inherited)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent's may have been copied held
    _held.clear()
    for owner in list(_owners):
        owner._forked()


class PerProcess(Generic[_T]):
    """One resource per process, made by ``opener`` on first use in each process.

    The parent's resource is left to it in a forked child (see :func:`leave_to_parent`), and
    the child's first :meth:`get` opens a new one. ``opener`` may fail (a database that is down);
    the next :meth:`get` tries again.
    """

    def __init__(self, opener: Callable[[], _T]) -> None:
        self._open = opener
        self._value: _T | None = None
        self._lock = threading.Lock()
        start_over_in_children(self)

    def get(self) -> _T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._open()
                value = self._value
        return value

    def take(self) -> _T | None:
        """Forget this process's resource and hand it over (to close it), if one was opened."""
        with self._lock:
            value, self._value = self._value, None
        return value

    def _forked(self) -> None:
        leave_to_parent(self._value)
        self._value = None
        self._lock = threading.Lock()
