"""The shared memory of BPF ring buffers and perf rings, and the epoll sets that wait on them.

Everything here reads or writes memory the kernel shares with us; the public classes in
:mod:`purebpf.events` only see lists of copied records.

Memory ordering: the kernel publishes a position with a store-release and we read it before
the records it covers; we write our position after copying the records out. On x86-64 (TSO)
plain loads and stores already have acquire/release semantics, which is what CPython's 8-byte
``struct`` loads and stores compile to. On weakly ordered CPUs (arm64) CPython offers no
barrier; the busy bit of each ring buffer record (set until the producer's store-release)
and perf's data_head are still read before the data they cover, in program order.
"""

from __future__ import annotations

import mmap
import operator
import os
import select
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

PAGE_SIZE = mmap.PAGESIZE

# include/uapi/linux/bpf.h: the 8-byte header in front of each ring buffer record.
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
_FLAG_BITS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT
_LEN_MASK = ~_FLAG_BITS & 0xFFFFFFFF
# Records of one length in a row, from which one struct iteration copies them out.
_RUN_MIN = 8
_RUN_MAX = 1 << 14
_BACKOFF_MAX = 1 << 10
_ORDER: Any = sys.byteorder
_LITTLE = sys.byteorder == "little"
_FIRST = operator.itemgetter(0)

# include/uapi/linux/perf_event.h: struct perf_event_mmap_page, perf_event_header.
PERF_DATA_HEAD_OFF = 1024
PERF_DATA_TAIL_OFF = 1032
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
PERF_HEADER_SZ = 8

_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")
_LOST = struct.Struct("=QQ")

Append = Callable[[bytes], Any]


class Out(Protocol):
    def append(self, item: bytes, /) -> Any: ...
    def extend(self, items: Iterable[bytes], /) -> Any: ...


def _same(items: bytes, one: bytes, k: int) -> int:
    """How many of the ``k`` items (each ``len(one)`` bytes) at the start of ``items`` are
    equal to ``one`` (C-speed comparisons of prefixes, a binary search on mismatch)."""
    if items == one * k:
        return k
    w = len(one)
    lo, hi = 1, k - 1  # items[0] == one; items are not all equal
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if items[:mid * w] == one * mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


class RingbufMemory:
    """The two mappings of a BPF_MAP_TYPE_RINGBUF (5.8+), laid out as the kernel wants them:
    the consumer page (read-write, offset 0) and, read-only from offset one page, the producer
    page followed by the data area mapped twice in a row, so that a record that wraps around
    the end of the ring is contiguous."""

    def __init__(self, fd: int, data_size: int) -> None:
        self.size = data_size
        self.mask = data_size - 1
        self._cons = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._prod = mmap.mmap(fd, PAGE_SIZE + 2 * data_size, mmap.MAP_SHARED,
                                   mmap.PROT_READ, offset=PAGE_SIZE)
        except BaseException:
            self._cons.close()
            raise
        # Typed views of the mappings (released before unmapping, in close()).
        self._view = memoryview(self._prod)
        self._v32 = self._view.cast("I")
        self._v64p = self._view.cast("Q")
        self._v64c = memoryview(self._cons).cast("Q")
        self._runs: dict[int, struct.Struct] = {}

    def positions(self) -> tuple[int, int]:
        """(consumer_pos, producer_pos)."""
        return self._v64c[0], self._v64p[0]

    def consume(self, out: Out, limit: int = 1 << 62) -> tuple[int, int]:
        """Copy every committed record out (``out.append(bytes)`` / ``out.extend``),
        skipping discarded ones, and stop at the first one still being written (busy).
        Passes repeat until the producer position stops moving, ``limit`` records were
        taken or a ring's worth of bytes was read. consumer_pos is written once per pass, after that pass's records were copied
        (the kernel may reuse their space as soon as it sees the new position). Returns
        (records, discarded)."""
        prod_mm, v32, v64p, v64c = self._prod, self._v32, self._v64p, self._v64c
        append, extend = out.append, out.extend
        mask, base, flag_bits = self.mask, PAGE_SIZE, _FLAG_BITS
        cons = v64c[0]
        # At most one ring's worth per call: a producer faster than us must not keep us here.
        stop = cons + self.size
        got = discarded = 0
        single = 0  # records to take one by one before looking for a run again
        backoff = _RUN_MIN
        win = _RUN_MIN  # records checked at once: doubles while runs go on
        while got < limit and cons < stop:
            prod = v64p[0]
            if cons >= prod:
                break
            start, busy = cons, False
            while cons < prod:
                off = base + (cons & mask)
                hdr = v32[off >> 2]
                if hdr & flag_bits:
                    if hdr & BPF_RINGBUF_BUSY_BIT:
                        busy = True
                        break
                    discarded += 1
                    cons += ((hdr & _LEN_MASK) + 15) & ~7
                    continue
                stride = (hdr + 15) & ~7  # header + data, rounded up to 8 bytes
                if single:
                    single -= 1
                elif (k := min((prod - cons) // stride, win)) >= _RUN_MIN:
                    # A run of records of one length (the usual case): check all their
                    # headers at once, then copy them out with one struct iteration.
                    heads = v32[off >> 2:(off + k * stride) >> 2:stride >> 2].tobytes()
                    n = _same(heads, hdr.to_bytes(4, _ORDER), k)
                    win = min(win * 2, _RUN_MAX) if n == k else _RUN_MIN
                    if n < _RUN_MIN:
                        # Mixed lengths: take records one by one for a while (longer
                        # each time this happens again).
                        single = backoff
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                    else:
                        backoff = _RUN_MIN
                        end = off + n * stride
                        st = self._runs.get(hdr)
                        if st is None:
                            st = self._runs[hdr] = struct.Struct(
                                f"=8x{hdr}s{stride - 8 - hdr}x")
                        extend(map(_FIRST, st.iter_unpack(self._view[off:end])))
                        cons += n * stride
                        got += n
                        continue
                cons += stride
                off += 8
                append(prod_mm[off:off + hdr])
                got += 1
            if cons != start:
                v64c[0] = cons
            if busy:
                break
        return got, discarded

    def close(self) -> None:
        for v in (self._v32, self._v64p, self._v64c, self._view):
            v.release()
        self._prod.close()
        self._cons.close()


class PerfRingMemory:
    """One perf event's ring (perf_event_open + mmap): the metadata page (data_head written
    by the kernel, data_tail by us) and ``pages`` data pages. Records are not mapped twice:
    one that wraps around the end is copied in two pieces."""

    def __init__(self, fd: int, pages: int) -> None:
        self.size = pages * PAGE_SIZE
        self.mask = self.size - 1
        self._mm = mmap.mmap(fd, PAGE_SIZE * (pages + 1), mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self._view = memoryview(self._mm)
        self._v32 = self._view.cast("I")
        self._v64 = self._view.cast("Q")
        self._runs: dict[tuple[int, int], struct.Struct] = {}

    def positions(self) -> tuple[int, int]:
        """(data_tail, data_head)."""
        return self._v64[PERF_DATA_TAIL_OFF >> 3], self._v64[PERF_DATA_HEAD_OFF >> 3]

    def consume(self, out: Out, lost: Callable[[int], Any]) -> int:
        """Copy out every record between data_tail and data_head: the raw data of each
        PERF_RECORD_SAMPLE goes to ``out``, the count of each PERF_RECORD_LOST to ``lost``;
        then write data_tail. Returns the number of samples."""
        mm, v32, v64 = self._mm, self._v32, self._v64
        size, mask, base = self.size, self.mask, PAGE_SIZE
        append, extend = out.append, out.extend
        head = v64[PERF_DATA_HEAD_OFF >> 3]
        tail = v64[PERF_DATA_TAIL_OFF >> 3]
        got = single = 0
        win = backoff = _RUN_MIN
        while tail < head:
            off = tail & mask
            start = base + off
            # Records are 8-byte aligned and the ring a power of two: a header never wraps.
            word = v64[start >> 3]  # struct perf_event_header {u32 type; u16 misc, size}
            if _LITTLE:
                rtype, rsize = word & 0xFFFFFFFF, word >> 48
            else:
                rtype, rsize = word >> 32, word & 0xFFFF
            if rsize < PERF_HEADER_SZ:
                break  # never written by a sane kernel; stop rather than spin
            if off + rsize <= size:
                if rtype == PERF_RECORD_SAMPLE:
                    n = v32[(start + 8) >> 2]
                    k = min((head - tail) // rsize, (size - off) // rsize, win)
                    if single:
                        single -= 1
                    elif k >= _RUN_MIN:
                        # Samples of one size in a row: check every header and raw size at
                        # once, then copy the data out with one struct iteration.
                        step = rsize >> 3
                        m = _same(v64[start >> 3:(start + k * rsize) >> 3:step].tobytes(),
                                  word.to_bytes(8, _ORDER), k)
                        m = _same(v32[(start + 8) >> 2:(start + 8 + m * rsize) >> 2:2 * step]
                                  .tobytes(), n.to_bytes(4, _ORDER), m)
                        win = min(win * 2, _RUN_MAX) if m == k else _RUN_MIN
                        k = m
                        if k < _RUN_MIN:
                            single = backoff
                            backoff = min(backoff * 2, _BACKOFF_MAX)
                        else:
                            backoff = _RUN_MIN
                            st = self._runs.get((rsize, n))
                            if st is None:
                                st = self._runs[(rsize, n)] = struct.Struct(
                                    f"=12x{n}s{rsize - 12 - n}x")
                            extend(map(_FIRST, st.iter_unpack(
                                self._view[start:start + k * rsize])))
                            got += k
                            tail += k * rsize
                            continue
                    append(mm[start + 12:start + 12 + n])
                    got += 1
                elif rtype == PERF_RECORD_LOST:
                    lost(_LOST.unpack_from(mm, start + 8)[1])
            else:
                rec = mm[start:base + size] + mm[base:base + off + rsize - size]
                if rtype == PERF_RECORD_SAMPLE:
                    n = _U32.unpack_from(rec, 8)[0]
                    append(rec[12:12 + n])
                    got += 1
                elif rtype == PERF_RECORD_LOST:
                    lost(_LOST.unpack_from(rec, 8)[1])
            tail += rsize
        v64[PERF_DATA_TAIL_OFF >> 3] = tail
        return got

    def close(self) -> None:
        for v in (self._v32, self._v64, self._view):
            v.release()
        self._mm.close()


class Waiter:
    """An epoll set (level-triggered EPOLLIN) and an eventfd in it that :meth:`wake` makes
    readable, so that closing an object interrupts a wait in another thread."""

    def __init__(self) -> None:
        self._ep = select.epoll()
        try:
            self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except BaseException:
            self._ep.close()
            raise
        self._ep.register(self._wake, select.EPOLLIN)

    def fileno(self) -> int:
        return self._ep.fileno()

    def add(self, fd: int) -> None:
        self._ep.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        self._ep.unregister(fd)

    def wait(self, timeout: float | None) -> tuple[list[int], bool]:
        """(the fds that are readable, whether :meth:`wake` was called), waiting up to
        ``timeout`` seconds (None: forever) for either. A wake is reported once."""
        events = self._ep.poll(-1 if timeout is None else max(timeout, 0.0))
        fds = [fd for fd, _ in events if fd != self._wake]
        woken = len(fds) != len(events)
        if woken:
            try:
                os.eventfd_read(self._wake)
            except BlockingIOError:
                pass  # another thread read it first
        return fds, woken

    def wake(self) -> None:
        os.eventfd_write(self._wake, 1)

    def close(self) -> None:
        os.close(self._wake)
        self._ep.close()


def online_cpus() -> list[int]:
    """The online CPUs (/sys/devices/system/cpu/online, e.g. "0-3,6")."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus
