"""PerfEventArray: samples from bpf_perf_event_output through per-CPU perf rings, produced
by testdata/events.c run with BPF_PROG_TEST_RUN (on whichever CPU the test runs)."""

from __future__ import annotations

import errno
import gc
import threading
from typing import Any

import pytest
from events_helpers import (EVENT_SIZE, ST_PERF_FAIL, ST_SENT, Event, coll, expected,
                            mappings, run, stat, varlen)

from purebpf import (BPFError, ClosedError, Collection, InvalidArgumentError, Map, MapSpec,
                     MapType)
from purebpf.events import PerfEventArray, Poller, RingBuffer

__all__ = ["coll"]  # the fixture, imported for pytest


def padded(n: int) -> int:
    """The length of a raw sample of n bytes: u32 size + data rounded up to 8, minus 4."""
    return (n + 4 + 7) // 8 * 8 - 4


def test_many_samples_arrive_padded_to_8k_minus_4_bytes(coll: Collection) -> None:
    with PerfEventArray(coll.maps["perf"]) as pe:
        assert pe.cpus and pe.cpus[0] == 0
        run(coll, "perf_output", 64, repeat=5)
        got = pe.drain()
        assert len(got) == 320 == stat(coll, ST_SENT)
        assert all(type(r) is bytes and len(r) == padded(EVENT_SIZE) == 36 for r in got)
        # Per CPU in order; test_run may run on several CPUs in turn.
        assert sorted(Event.from_buffer_copy(r).seq for r in got) == list(range(320))
        assert pe.lost == 0 and pe.drain() == []


def test_samples_of_every_length_keep_their_data_and_gain_padding(coll: Collection) -> None:
    with PerfEventArray(coll.maps["perf"]) as pe:
        run(coll, "perf_varlen", 64)
        got = {r[0]: r for r in pe.drain()}  # byte 0 is the seq (below 256 here)
        assert sorted(got) == list(range(64))
        for seq, r in got.items():
            want = varlen(seq)
            assert len(r) == padded(len(want)) and r[:len(want)] == want


def test_samples_wrap_around_a_one_page_ring(coll: Collection) -> None:
    # 48-byte records (header, size, 36 bytes) in a 4096-byte ring: some straddle its end
    # and are copied in two pieces; 40 passes go around it 23 times.
    with PerfEventArray(coll.maps["perf"], pages=1, record=Event) as pe:
        got: list[int] = []
        for _ in range(40):
            run(coll, "perf_output", 50)
            got.extend(e.seq for e in pe.drain())
        assert sorted(got) == list(range(2000))
        assert stat(coll, ST_PERF_FAIL) == 0 and pe.lost == 0


def test_a_full_ring_reports_lost_samples_never_as_data(coll: Collection) -> None:
    lost: list[tuple[int, int]] = []
    with PerfEventArray(coll.maps["perf"], pages=1, record="struct event",
                        btf=coll.spec.btf, lost_callback=lambda c, n: lost.append((c, n))) as pe:
        run(coll, "perf_output", 64, repeat=10)  # 640 samples into 85 slots per CPU
        failed = stat(coll, ST_PERF_FAIL)
        assert failed > 0
        first = pe.drain()
        # The kernel writes PERF_RECORD_LOST when room comes back: with the next sample.
        run(coll, "perf_output", 1)
        rest = pe.drain()
        got = first + rest
        assert len(got) == stat(coll, ST_SENT) == 641 - failed
        assert all(e == expected(e["seq"]) for e in got)
        assert len({e["seq"] for e in got}) == len(got)
        assert pe.lost == failed == sum(n for _, n in lost)
        assert all(cpu in pe.cpus for cpu, _ in lost)


def test_samples_decode_by_btf_name_and_ctypes(coll: Collection) -> None:
    with PerfEventArray(coll.maps["perf"], record="struct event", btf=coll.spec.btf) as pe:
        run(coll, "perf_output", 2)
        assert sorted(pe.drain(), key=lambda e: e["seq"]) == [expected(0), expected(1)]
    with PerfEventArray(coll.maps["perf"], record=Event) as pe:
        run(coll, "perf_output", 1)
        (e,) = pe.drain()
        assert (e.seq, e.value, e.comm) == (2, 2000006, b"purebpf-events")


def test_callback_poll_and_timeout(coll: Collection) -> None:
    seen: list[int] = []
    with PerfEventArray(coll.maps["perf"], record=Event,
                        callback=lambda e: seen.append(e.seq)) as pe:
        assert pe.poll(timeout=0) == 0
        assert pe.poll(timeout=0.05) == 0
        t = threading.Timer(0.05, run, (coll, "perf_output", 3))
        t.start()
        try:
            n = pe.poll(timeout=30)
        finally:
            t.join()
        while n < 3:
            n += pe.poll(timeout=30)
        assert sorted(seen) == [0, 1, 2]


def test_poller_with_a_ring_buffer_and_a_perf_event_array(coll: Collection) -> None:
    a: list[Any] = []
    b: list[Any] = []
    with RingBuffer(coll.maps["events"], callback=a.append) as rb, \
            PerfEventArray(coll.maps["perf"], callback=b.append) as pe, Poller(rb, pe) as p:
        run(coll, "perf_output", 2)
        run(coll, "rb_output", 3)
        n = 0
        while n < 5:
            got = p.poll(timeout=30)
            assert got > 0
            n += got
        assert (len(a), len(b)) == (3, 2)


@pytest.mark.parametrize("how", ["poll", "iterate"])
def test_close_while_another_thread_waits(coll: Collection, how: str) -> None:
    pe = PerfEventArray(coll.maps["perf"])
    result: list[Any] = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        result.append(pe.poll(None) if how == "poll" else list(pe))

    t = threading.Thread(target=wait)
    t.start()
    started.wait()
    pe.close()
    t.join(timeout=30)
    assert not t.is_alive()
    assert result in ([0], [[]])
    with pytest.raises(ClosedError, match="perf event array .*'perf'.* closed"):
        pe.drain()


def test_close_removes_its_entries_from_the_map_and_every_mapping(coll: Collection) -> None:
    before = mappings()
    pe = PerfEventArray(coll.maps["perf"], pages=2)
    assert mappings() == before + len(pe.cpus)
    pe.close()
    pe.close()  # idempotent
    assert mappings() == before
    # With no perf event at the CPU's index, bpf_perf_event_output fails (-ENOENT).
    run(coll, "perf_output", 4)
    assert stat(coll, ST_PERF_FAIL) == 4 and stat(coll, ST_SENT) == 0


def test_a_forgotten_perf_event_array_is_closed_with_a_resource_warning(
        coll: Collection) -> None:
    before = mappings()
    pe = PerfEventArray(coll.maps["perf"])
    with pytest.warns(ResourceWarning, match="unclosed perf event array"):
        del pe
        gc.collect()
    assert mappings() == before
    run(coll, "perf_output", 1)
    assert stat(coll, ST_PERF_FAIL) == 1


@pytest.mark.parametrize("pages", [0, 3, -1, 1.0])
def test_pages_must_be_a_power_of_two(coll: Collection, pages: Any) -> None:
    with pytest.raises(InvalidArgumentError) as ei:
        PerfEventArray(coll.maps["perf"], pages=pages)
    assert ei.value.errno == errno.EINVAL and "is not a power of 2" in str(ei.value)


def test_wrong_map_type_and_closed_map() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=1,
                            name="h")) as m:
        with pytest.raises(InvalidArgumentError) as ei:
            PerfEventArray(m)
        assert ei.value.errno == errno.EINVAL
        assert "'h' is of type HASH, not PERF_EVENT_ARRAY" in str(ei.value)
    with pytest.raises(ClosedError) as ce:
        PerfEventArray(m)
    assert ce.value.errno == errno.EBADF and "the map is closed" in str(ce.value)


def test_a_ring_the_kernel_cannot_map_fails_cleanly(coll: Collection) -> None:
    before = mappings()
    with pytest.raises(BPFError) as ei:
        PerfEventArray(coll.maps["perf"], pages=1 << 24)  # 64 GiB per CPU
    assert ei.value.errno == errno.ENOMEM
    assert "mmap the 16777216-page ring of CPU 0" in str(ei.value) and "fewer pages=" \
        in str(ei.value)
    assert mappings() == before  # and no fd left (the suite's leak check)
    run(coll, "perf_output", 1)  # no perf event left in the map
    assert stat(coll, ST_PERF_FAIL) == 1


def test_a_raising_lost_callback_loses_no_sample(coll: Collection) -> None:
    def boom(cpu: int, count: int) -> None:
        raise RuntimeError(f"lost {count} on CPU {cpu}")

    with PerfEventArray(coll.maps["perf"], pages=1, lost_callback=boom) as pe:
        run(coll, "perf_output", 64, repeat=10)
        got = pe.drain()  # the LOST record comes with the next sample, after room is made
        run(coll, "perf_output", 1)
        with pytest.raises(RuntimeError, match="lost [0-9]+ on CPU"):
            pe.drain()
        got += pe.drain()  # what the raising read had copied out is still there
        assert len(got) == stat(coll, ST_SENT)
        assert pe.lost == stat(coll, ST_PERF_FAIL) > 0
        assert pe.drain() == []
