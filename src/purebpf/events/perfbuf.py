"""PerfEventArray: per-CPU perf rings behind a BPF_MAP_TYPE_PERF_EVENT_ARRAY map."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._sys import events as mem
from .._sys import perf
from .._sys.events import Out
from .._sys.syscall import ElemIO, close_fd, last_errno
from ..errors import BPFError, InvalidArgumentError, error_for
from ..types import MapType
from ._consumer import Callback, Consumer

LostCallback = Callable[[int, int], Any]

# (map id, cpu) -> the token of the PerfEventArray whose perf event fd is stored there now.
# A second PerfEventArray on the same map overwrites the entries; closing the first must
# then leave them alone (the kernel cannot tell us whose fd an entry holds: a lookup of a
# PERF_EVENT_ARRAY from user space is not supported). Covers this process only.
_owners: dict[tuple[int, int], object] = {}
_owners_lock = threading.Lock()


class PerfEventArray(Consumer):
    """Samples a BPF program sends with ``bpf_perf_event_output`` into a
    PERF_EVENT_ARRAY map: one perf ring per online CPU (perf_event_open of the software event
    PERF_COUNT_SW_BPF_OUTPUT with PERF_SAMPLE_RAW, stored in the map at the CPU's index),
    each mapped as one metadata page and ``pages`` data pages (a power of 2).

    ``record``, ``btf`` and ``callback`` work as for :class:`RingBuffer`. Raw samples are
    padded by the kernel so that the 4-byte size plus the data is a multiple of 8: a record
    is ``8*k - 4`` bytes, possibly longer than what the program wrote (the original length
    is not recorded anywhere). Decoding by a struct ignores the padding.

    When a CPU's ring is full the kernel drops samples and later writes a PERF_RECORD_LOST
    with their number: ``lost`` totals them and ``lost_callback(cpu, count)`` is called;
    lost samples are never delivered as records.

    ``close()`` deletes the map entries this object stored, unmaps every ring and closes
    every perf fd. Raises InvalidArgumentError for a map that is not a PERF_EVENT_ARRAY
    or for ``pages`` that is not a power of 2, ClosedError for a closed map, and the
    perf_event_open error (EACCES: see perf_event_paranoid) if a ring cannot be opened.
    """

    _map_type = MapType.PERF_EVENT_ARRAY
    _kind = "perf event array"

    def __init__(self, map: Any, *, record: Any = None, btf: Any = None,
                 callback: Callback | None = None, lost_callback: LostCallback | None = None,
                 pages: int = 8) -> None:
        if not isinstance(pages, int) or pages < 1 or pages & (pages - 1):
            raise InvalidArgumentError(errno.EINVAL, f"open perf event array: pages={pages!r}"
                                       " is not a power of 2")
        self.pages = pages
        self.lost = 0
        self.lost_callback = lost_callback
        super().__init__(map, record, btf, callback)

    def _wrong_type_hint(self, actual: Any) -> str:
        if actual == MapType.RINGBUF:
            return "use RingBuffer for a RINGBUF map"
        return ""

    def _setup(self, map: Any, stack: contextlib.ExitStack) -> None:
        self.cpus: list[int] = [c for c in mem.online_cpus() if c < map.max_entries]
        """The CPUs with a ring (online CPUs below the map's max_entries)."""
        self._rings: list[tuple[int, mem.PerfRingMemory]] = []
        io = ElemIO(self._fd, 4, 4)
        token = object()  # not self: the undo callbacks must not keep the object alive
        map_id = int(map.id)
        for cpu in self.cpus:
            fd = perf.perf_event_open(
                type=perf.PERF_TYPE_SOFTWARE, config=perf.PERF_COUNT_SW_BPF_OUTPUT, pid=-1,
                cpu=cpu, sample_type=perf.PERF_SAMPLE_RAW, sample_period=1, wakeup_events=1,
                what=f"open {self._desc}: perf_event_open for CPU {cpu}")
            stack.callback(close_fd, fd)
            try:
                ring = mem.PerfRingMemory(fd, self.pages)
            except OSError as exc:
                raise error_for(exc.errno, f"open {self._desc}: mmap the {self.pages}-page "
                                f"ring of CPU {cpu}: {exc.strerror}",
                                hint="fewer pages= (perf_event_mlock_kb limits unprivileged "
                                     "users)") from None
            stack.callback(ring.close)
            perf.ioctl(fd, perf.PERF_EVENT_IOC_ENABLE, 0,
                       what=f"open {self._desc}: enable the perf event of CPU {cpu}")
            with _owners_lock:
                self._store(io, cpu, fd)
                _owners[(map_id, cpu)] = token
            stack.callback(_delete, io, cpu, (map_id, cpu), token)
            self._waiter.add(fd)
            self._rings.append((cpu, ring))

    def _store(self, io: ElemIO, cpu: int, fd: int) -> None:
        io.key[:4] = cpu.to_bytes(4, sys.byteorder)
        io.value[:4] = fd.to_bytes(4, sys.byteorder)
        if io.update_any() < 0:
            code = last_errno()
            raise error_for(code, f"open {self._desc}: store the perf event of CPU {cpu} at "
                            f"index {cpu}: {os.strerror(code)}")

    def _read(self, out: Out) -> int:
        got = 0
        lost: list[tuple[int, int]] = []
        for cpu, ring in self._rings:
            got += ring.consume(out, functools.partial(_note_lost, lost, cpu))
        # After every ring's data_tail moved on: a raising lost_callback loses nothing.
        for cpu, count in lost:
            self.lost += count
        if self.lost_callback is not None:
            for cpu, count in lost:
                self.lost_callback(cpu, count)
        return got


def _note_lost(into: list[tuple[int, int]], cpu: int, count: int) -> None:
    into.append((cpu, count))


def _delete(io: ElemIO, cpu: int, key: tuple[int, int], token: object) -> None:
    """Remove the entry at ``cpu`` if it still holds our perf event (ENOENT: someone
    removed it already); an entry another PerfEventArray stored since is left alone."""
    with _owners_lock:
        if _owners.get(key) is not token:
            return
        del _owners[key]
        io.key[:4] = cpu.to_bytes(4, sys.byteorder)
        rc = io.delete()
    if rc < 0:
        code = last_errno()
        if code != errno.ENOENT:
            raise BPFError(code, f"delete the perf event of CPU {cpu} from its map: "
                           f"{os.strerror(code)}")
