"""What test_ringbuf.py and test_perfbuf.py share: the producer object (testdata/events.c)
and how to run it."""

from __future__ import annotations

import ctypes
import pathlib
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import Collection

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
EVENTS_O = DATA / "events.o"
PACKET = bytes(64)
EVENT_SIZE = 32
# stats[] slots and cfg[] slots of events.c
ST_SEQ, ST_RB_FAIL, ST_PERF_FAIL, ST_DISCARDED, ST_SENT = range(5)
CFG_COUNT, CFG_DISCARD_EVERY = range(2)


class Event(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint32), ("kind", ctypes.c_uint32),
                ("value", ctypes.c_uint64), ("comm", ctypes.c_char * 16)]


def expected(seq: int) -> dict[str, object]:
    """struct event as the producer fills it, decoded."""
    return {"seq": seq, "kind": seq % 3, "value": seq * 1000003, "comm": "purebpf-events"}


def varlen(seq: int) -> bytes:
    """What rb_varlen / perf_varlen send for ``seq``."""
    return bytes((seq + j) & 0xFF for j in range((seq & 31) + 1))


@pytest.fixture
def coll() -> Iterator[Collection]:
    with purebpf.load(EVENTS_O) as c:
        yield c


def run(coll: Collection, prog: str, count: int, repeat: int = 1) -> None:
    """Run ``prog`` ``repeat`` times, each sending ``count`` records (at most 64)."""
    coll.maps["cfg"][CFG_COUNT] = count
    coll.programs[prog].test_run(PACKET, repeat=repeat)


def stat(coll: Collection, slot: int) -> int:
    return int(coll.maps["stats"][slot])


def mappings() -> int:
    """Mappings of BPF maps and perf events in this process (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if "anon_inode:" in line or "bpf-map" in line
                   or "perf_event" in line)
