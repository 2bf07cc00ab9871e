"""Poller: wait on several ring buffers and perf event arrays at once."""

from __future__ import annotations

import errno
import threading
import weakref

from .._sys import events as mem
from ..errors import ClosedError
from ._consumer import Consumer, _cleanup, check_timeout


class Poller:
    """One epoll wait over several :class:`RingBuffer` / :class:`PerfEventArray` objects:
    :meth:`poll` waits until any of them has records, then consumes every one that does
    (each delivers to its own callback, or keeps the records for its ``drain()``).

    The Poller does not own the buffers: closing it leaves them open, and a buffer closed
    (even by another thread while the Poller waits) simply drops out. Each buffer's own
    epoll fd is what the Poller waits on, so a buffer can be in several Pollers.
    """

    def __init__(self, *sources: Consumer) -> None:
        self._lock = threading.RLock()
        self._close_lock = threading.Lock()
        self._closing = self._closed = False
        self._waiter = mem.Waiter()
        self._sources: dict[int, Consumer] = {}
        try:
            for s in sources:
                self.add(s)
        except BaseException:
            self._waiter.close()
            raise
        self._finalizer = weakref.finalize(self, _cleanup, self._waiter.close, "poller")

    def _check(self, op: str) -> None:
        if self._closed:
            raise ClosedError(errno.EBADF, f"{op} poller: it is closed")

    def add(self, source: Consumer) -> None:
        """Wait on ``source`` too (ClosedError if it is closed; ValueError if present)."""
        if not isinstance(source, Consumer):
            raise TypeError(f"add to poller: expected a RingBuffer or PerfEventArray, not "
                            f"{type(source).__name__}")
        with self._lock:
            self._check("add to")
            fd = source.fileno()
            old = self._sources.get(fd)
            if old is source:
                raise ValueError(f"add to poller: {source!r} is already in it")
            if old is not None:
                # A closed buffer whose fd number was reused: the kernel dropped it already.
                del self._sources[fd]
            self._waiter.add(fd)
            self._sources[fd] = source
            source._pollers.add(self)

    def remove(self, source: Consumer) -> None:
        """Stop waiting on ``source`` (KeyError if it is not in the Poller)."""
        with self._lock:
            self._check("remove from")
            for fd, s in list(self._sources.items()):
                if s is source:
                    del self._sources[fd]
                    source._pollers.discard(self)
                    if not source.closed:
                        self._waiter.remove(fd)
                    return
            raise KeyError(f"remove from poller: {source!r} is not in it")

    @property
    def sources(self) -> list[Consumer]:
        """The buffers polled (closed ones drop out at the next poll)."""
        return list(self._sources.values())

    def _consume(self, fds: list[int] | None) -> int:
        n = 0
        for fd, s in list(self._sources.items()):
            if fds is not None and fd not in fds:
                continue
            try:
                n += s.consume()
            except ClosedError:
                if s.closed:
                    del self._sources[fd]  # its epoll fd closed: the kernel dropped it
                    continue
                raise
        return n

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: no limit) until a buffer has records, then
        consume each that has; the number of records (0 on timeout, or when the Poller or
        one of its buffers was closed by another thread meanwhile)."""
        timeout = check_timeout(timeout, "poll poller")
        with self._lock:
            self._check("poll")
            if self._closing:
                # close() is waiting for the lock; its wake may have been taken by the
                # poll that held the lock before us: waiting now could be forever.
                return 0
            n = self._consume(None)
            if n:
                return n
            ready, _ = self._waiter.wait(timeout)
            if self._closing:
                return 0
            return self._consume(ready)  # also drops buffers closed meanwhile

    def _source_closing(self) -> None:
        """Called by a buffer's close(): end a wait, since the kernel drops the buffer's
        epoll fd from our set without waking us."""
        with self._close_lock:
            if not self._closed:
                self._waiter.wake()

    def close(self) -> None:
        """Close the Poller's epoll fd (idempotent); the buffers stay open."""
        with self._close_lock:
            if self._closed:
                return
            self._closing = True
            self._waiter.wake()
            with self._lock:
                self._closed = True
                for src in self._sources.values():
                    src._pollers.discard(self)
                self._sources.clear()
                self._finalizer.detach()
                self._waiter.close()

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._sources)} sources"
        return f"<Poller {state}>"

