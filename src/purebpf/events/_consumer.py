"""What ring buffers and perf event arrays share: waiting, delivering, iterating, closing."""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .._sys import events as mem
from .._sys import ops
from .._sys.events import Out
from .._sys.syscall import close_fd
from .._map import Map
from ..errors import ClosedError, InvalidArgumentError
from ..types import MapType
from .decode import RecordType, make_record_type

Callback = Callable[[Any], Any]


# epoll_wait takes milliseconds in a C int: a longer timeout is as good as no limit.
_MAX_TIMEOUT = (2**31 - 1) / 1000


def check_timeout(timeout: Any, what: str) -> float | None:
    """``timeout`` as epoll wants it: None (no limit; also for +inf and anything past
    what epoll_wait can wait), or seconds >= 0 (a negative one does not wait). Raises
    TypeError for a non-number, InvalidArgumentError for NaN."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{what}: timeout must be a number of seconds or None, not "
                        f"{type(timeout).__name__}")
    if math.isnan(timeout):
        raise InvalidArgumentError(errno.EINVAL, f"{what}: timeout is NaN")
    if timeout > _MAX_TIMEOUT:
        return None
    return max(float(timeout), 0.0)


def _cleanup(release: Callable[[], None], desc: str) -> None:
    release()
    warnings.warn(f"unclosed {desc}; close it or use 'with'", ResourceWarning, stacklevel=2)


class Consumer:
    """Base of :class:`RingBuffer` and :class:`PerfEventArray`: records read out of shared
    memory wait in ``_pending`` until a callback, :meth:`drain` or iteration takes them."""

    _map_type: MapType
    _kind: str

    def __init__(self, map: Any, record: Any, btf: Any, callback: Callback | None) -> None:
        self._lock = threading.RLock()  # one consumer at a time; held while waiting
        self._close_lock = threading.Lock()
        self._closing = False
        self._closed = True  # until everything is set up
        self._desc = f"{self._kind} (map {map.name!r})" if getattr(map, "name", "") else \
            self._kind
        what = f"open {self._desc}"
        if not isinstance(map, Map):
            raise TypeError(f"{what}: expected a purebpf.Map, not {type(map).__name__}")
        if getattr(map, "closed", False):
            raise ClosedError(errno.EBADF, f"{what}: the map is closed")
        if map.type != self._map_type:
            tname = getattr(map.type, "name", str(map.type))
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: map {map.name!r} is of type {tname}, not "
                f"{self._map_type.name}",
                hint=self._wrong_type_hint(map.type))
        if btf is None and isinstance(record, str):
            btf = map.btf()
        self._record: RecordType = make_record_type(record, btf, self._desc)
        self.callback = callback
        self._pending: collections.deque[bytes] = collections.deque()
        # Pollers waiting on this object: woken by close() (the kernel drops a closed epoll
        # fd from their sets without waking them).
        self._pollers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.map_name: str = map.name
        # Everything this object owns is released by one ExitStack (in reverse order), which
        # the finalizer can call without keeping the object alive.
        with contextlib.ExitStack() as stack:
            self._waiter = mem.Waiter()
            stack.callback(self._waiter.close)
            self._fd = fd = ops.dup(map.fd)
            stack.callback(close_fd, fd)
            self._setup(map, stack)
            self._resources = stack.pop_all()
        self._closed = False
        self._finalizer = weakref.finalize(self, _cleanup, self._resources.close, self._desc)

    # -- for subclasses -----------------------------------------------------------------------
    def _wrong_type_hint(self, actual: Any) -> str:
        return ""

    def _setup(self, map: Any, stack: contextlib.ExitStack) -> None:
        """Map the rings and add their fds to the waiter; push every undo onto ``stack``
        (nothing in it may refer to ``self``)."""
        raise NotImplementedError

    def _read(self, out: Out) -> int:
        """Copy every available record out of shared memory into ``out`` (append/extend)."""
        raise NotImplementedError

    # -- consuming ----------------------------------------------------------------------------
    def _check(self, op: str) -> None:
        if self._closed:
            raise ClosedError(errno.EBADF, f"{op} {self._desc}: it is closed")

    def _fill(self) -> int:
        """Read what is available into the pending records (lock held)."""
        if self._closed:
            return 0
        return self._read(self._pending)

    def _take(self) -> list[bytes]:
        """The pending records and what is available now, taken out (lock held)."""
        pending = self._pending
        raws: list[bytes] = list(pending) if pending else []
        pending.clear()
        if not self._closed:
            try:
                self._read(raws)
            except BaseException:
                pending.extend(raws)  # read out of the ring already: keep them
                raise
        return raws

    def _deliver(self, raws: list[bytes]) -> int:
        """Give ``raws`` to the callback (lock held); the number given. What is not given
        (the callback raised, or a record could not be decoded) stays pending."""
        cb, pending = self.callback, self._pending
        if cb is None:
            pending.extend(raws)
            return len(raws)
        try:
            records = self._record.decode_all(raws, self._desc)
        except InvalidArgumentError as exc:
            bad = getattr(exc, "failed_index", 0)
            pending.extend(raws[:bad])
            pending.extend(raws[bad + 1:])
            raise
        i = 0
        try:
            for rec in records:
                cb(rec)
                i += 1
        except BaseException:
            pending.extend(raws[i + 1:])  # delivered next time
            raise
        return i

    def consume(self) -> int:
        """Read every record available now, without waiting, and pass each to the callback;
        the number of records. Without a callback the records wait for :meth:`drain` or
        iteration, and the number read is returned. Raises ClosedError once closed."""
        with self._lock:
            self._check("consume")
            return self._deliver(self._take())

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: no limit) for records, then
        :meth:`consume` them; the number of records (0 on timeout, or when another
        thread closed this object during the wait). Waits in epoll, never spins."""
        timeout = check_timeout(timeout, f"poll {self._desc}")
        with self._lock:
            self._check("poll")
            if self._closing:
                # close() is waiting for the lock: its one wake may have been taken by
                # the poll that held the lock before us, so do not wait (forever).
                return 0
            raws = self._take()
            if not raws:
                self._waiter.wait(timeout)
                if self._closing:
                    return 0
                raws = self._take()
            return self._deliver(raws)

    def drain(self) -> list[Any]:
        """Every record available now (decoded as ``record=`` says), without waiting and
        without calling the callback."""
        with self._lock:
            self._check("drain")
            raws = self._take()
            try:
                return self._record.decode_all(raws, self._desc)
            except InvalidArgumentError as exc:
                bad = getattr(exc, "failed_index", 0)
                self._pending.extend(raws[:bad])
                self._pending.extend(raws[bad + 1:])
                raise

    def __iter__(self) -> Iterator[Any]:
        """Records as they come, waiting for more when there are none; ends when the object
        is closed (also by another thread)."""
        decode = self._record.decode
        while True:
            with self._lock:
                while not self._pending:
                    if self._closing or self._closed:
                        return
                    if not self._fill():
                        self._waiter.wait(None)
                raw = self._pending.popleft()
            if decode is None:
                yield raw
                continue
            try:
                rec = decode(raw)
            except Exception as exc:
                raise self._record.error(raw, exc, self._desc) from exc
            yield rec

    # -- lifetime -----------------------------------------------------------------------------
    def fileno(self) -> int:
        """An epoll fd that is readable when records are available (for select/asyncio)."""
        self._check("fileno")
        return self._waiter.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unmap the rings and close every fd (idempotent). A poll or iteration waiting in
        another thread returns first."""
        with self._close_lock:
            if self._closed:
                return
            self._closing = True
            self._waiter.wake()
            for p in list(self._pollers):
                p._source_closing()
            with self._lock:
                self._closed = True
                self._pending.clear()
                self._finalizer.detach()
                self._resources.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {self.map_name!r} record={self._record.desc} {state}>"

