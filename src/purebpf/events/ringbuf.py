"""RingBuffer: the consumer side of a BPF_MAP_TYPE_RINGBUF map (5.8+)."""

from __future__ import annotations

import contextlib
from typing import Any

from .._sys import events as mem
from .._sys.events import Out
from ..errors import error_for
from ..types import MapType
from ._consumer import Callback, Consumer


class RingBuffer(Consumer):
    """Records a BPF program sends with ``bpf_ringbuf_output`` or
    ``bpf_ringbuf_reserve``/``bpf_ringbuf_submit`` (kernel 5.8+), read from the map's shared
    memory.

    ``RingBuffer(map, record=None, btf=None, callback=None)``:

    - ``record``: None for ``bytes`` records (exactly as long as the program's record), a BTF
      type name (``"struct event"``) to get dicts, looked up in ``btf`` (a
      :class:`purebpf.btf.Spec`, e.g. a Collection's ``spec.btf``; by default the map's own
      BTF, which ring buffer maps usually lack), or a ctypes type (``Structure`` subclass).
    - ``callback(record)``: called by :meth:`poll` and :meth:`consume` for each record.
      Without one, records read by them wait for :meth:`drain` or iteration.

    Records the program discarded (``bpf_ringbuf_discard``) are skipped and counted in
    ``discarded``. A full ring makes the program's ``bpf_ringbuf_output``/``reserve`` fail
    (-ENOSPC / NULL): such records never exist, so nothing is reported lost here; count
    the failures in the program.

    One consumer at a time: methods hold a lock (``poll`` also while it waits); ``close()``
    from another thread wakes a waiting ``poll`` (which returns 0) or iteration (which ends).
    The object owns a duplicate of the map's fd, its two mappings and an epoll fd; the Map
    may be closed independently.

    Raises :class:`~purebpf.errors.InvalidArgumentError` for a map that is not a RINGBUF,
    :class:`~purebpf.errors.ClosedError` for a closed map.
    """

    _map_type = MapType.RINGBUF
    _kind = "ring buffer"

    def __init__(self, map: Any, *, record: Any = None, btf: Any = None,
                 callback: Callback | None = None) -> None:
        self.discarded = 0
        super().__init__(map, record, btf, callback)

    def _wrong_type_hint(self, actual: Any) -> str:
        if actual == MapType.PERF_EVENT_ARRAY:
            return "use PerfEventArray for a PERF_EVENT_ARRAY map"
        return ""

    def _setup(self, map: Any, stack: contextlib.ExitStack) -> None:
        self.size: int = map.max_entries
        """The size of the data area in bytes (the map's max_entries, a power of 2)."""
        try:
            self._mem = mem.RingbufMemory(self._fd, self.size)
        except OSError as exc:
            raise error_for(exc.errno, f"open {self._desc}: mmap its {self.size}-byte ring: "
                            f"{exc.strerror}") from None
        stack.callback(self._mem.close)
        self._waiter.add(self._fd)

    def _read(self, out: Out) -> int:
        got, discarded = self._mem.consume(out)
        if discarded:
            self.discarded += discarded
        return got

    def pending_bytes(self) -> int:
        """Bytes between the consumer and producer positions (records not yet read,
        including discarded ones and the 8-byte headers)."""
        with self._lock:
            self._check("pending_bytes")
            cons, prod = self._mem.positions()
            return prod - cons
