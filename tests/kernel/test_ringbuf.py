"""RingBuffer: records from BPF_MAP_TYPE_RINGBUF, produced by testdata/events.c run with
BPF_PROG_TEST_RUN."""

from __future__ import annotations

import errno
import gc
import threading
from typing import Any

import pytest

from purebpf import (ClosedError, Collection, InvalidArgumentError, Map, MapSpec, MapType,
                     features)
from purebpf.events import PerfEventArray, Poller, RingBuffer

from events_helpers import (CFG_DISCARD_EVERY, DATA, EVENT_SIZE, ST_DISCARDED, ST_RB_FAIL, ST_SENT,
                             Event, coll, expected, mappings, run, stat, varlen)

__all__ = ["coll"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(not features.has_map_type(MapType.RINGBUF),
                                reason="no BPF_MAP_TYPE_RINGBUF (features.has_map_type, 5.8+)")


def seqs(records: list[Any]) -> list[int]:
    return [Event.from_buffer_copy(r).seq for r in records]


def test_many_records_arrive_in_order_as_bytes_of_the_records_size(coll: Collection) -> None:
    with RingBuffer(coll.maps["events"]) as rb:
        run(coll, "rb_output", 64, repeat=20)
        got = rb.drain()
        assert len(got) == 1280 == stat(coll, ST_SENT)
        assert all(type(r) is bytes and len(r) == EVENT_SIZE for r in got)
        assert seqs(got) == list(range(1280))
        assert rb.drain() == []
        assert rb.pending_bytes() == 0


def test_records_wrap_around_the_end_of_a_small_ring(coll: Collection) -> None:
    # A one-page ring holds 102 records of 40 bytes (header included), and 4096 is not a
    # multiple of 40: records straddle the end, and positions pass the ring size many times.
    with RingBuffer(coll.maps["small"], record=Event) as rb:
        assert rb.size == 4096
        got: list[int] = []
        for _ in range(40):
            run(coll, "rb_small", 50)
            got.extend(e.seq for e in rb.drain())
        assert got == list(range(2000))
        assert stat(coll, ST_RB_FAIL) == 0


def test_records_of_every_length_wrap_around(coll: Collection) -> None:
    # 1..32-byte records (16..40 bytes with header and padding) through a 64 KiB ring, eight
    # times around, drained in passes of 640 records: the consumer position is rounded up
    # to 8 bytes after each record, as the kernel lays them out.
    with RingBuffer(coll.maps["events"]) as rb:
        got: list[bytes] = []
        for _ in range(30):
            run(coll, "rb_varlen", 64, repeat=10)
            got.extend(rb.drain())
        assert stat(coll, ST_RB_FAIL) == 0
        assert len(got) == 19200
        assert got == [varlen(s) for s in range(19200)]


def test_discarded_records_are_skipped_and_counted(coll: Collection) -> None:
    coll.maps["cfg"][CFG_DISCARD_EVERY] = 3
    with RingBuffer(coll.maps["events"], record=Event) as rb:
        run(coll, "rb_reserve", 60, repeat=5)
        got = [e.seq for e in rb.drain()]
        assert got == [s for s in range(300) if s % 3]
        assert rb.discarded == stat(coll, ST_DISCARDED) == 100
        assert rb.pending_bytes() == 0


def test_a_consumer_that_falls_behind_gets_only_what_the_kernel_accepted(
        coll: Collection) -> None:
    # The one-page ring fills: bpf_ringbuf_output fails with -ENOSPC (counted by the program)
    # and those records never exist. Every record read is one the program sent, whole.
    with RingBuffer(coll.maps["small"], record="struct event", btf=coll.spec.btf) as rb:
        run(coll, "rb_small", 64, repeat=10)
        sent, failed = stat(coll, ST_SENT), stat(coll, ST_RB_FAIL)
        assert failed > 0 and sent + failed == 640
        got = rb.drain()
        assert len(got) == sent
        assert got == [expected(s) for s in range(sent)]
        # Caught up: the ring takes records again.
        run(coll, "rb_small", 10)
        assert [e["seq"] for e in rb.drain()] == list(range(640, 650))


def test_records_decode_to_dicts_by_btf_struct_name(coll: Collection) -> None:
    for name in ("struct event", "event"):
        with RingBuffer(coll.maps["events"], record=name, btf=coll.spec.btf) as rb:
            run(coll, "rb_output", 3)
            got = rb.drain()
            first = got[0]["seq"]
            assert got == [expected(first + i) for i in range(3)]
    assert coll.maps["last"][0] == expected(first + 2)  # the map layer decodes the same way


def test_records_decode_to_ctypes_structures(coll: Collection) -> None:
    with RingBuffer(coll.maps["events"], record=Event) as rb:
        run(coll, "rb_output", 2)
        a, b = rb.drain()
        assert isinstance(a, Event)
        assert (a.seq, a.kind, a.value, a.comm) == (0, 0, 0, b"purebpf-events")
        assert (b.seq, b.kind, b.value) == (1, 1, 1000003)


def test_record_type_errors(coll: Collection) -> None:
    events = coll.maps["events"]
    with pytest.raises(InvalidArgumentError) as ei:
        RingBuffer(events, record="struct nosuch", btf=coll.spec.btf)
    assert ei.value.errno == errno.EINVAL
    assert "no type 'struct nosuch'" in str(ei.value) and "'events'" in str(ei.value)
    with pytest.raises(InvalidArgumentError, match="needs BTF.*pass btf="):
        RingBuffer(events, record="struct event")  # a RINGBUF map has no BTF of its own
    with pytest.raises(TypeError, match="record must be None, a BTF type name"):
        RingBuffer(events, record=42)


def test_a_record_shorter_than_its_type_is_dropped_with_an_error(coll: Collection) -> None:
    class Big(Event):
        _fields_ = [("more", Event)]

    seen: list[Any] = []
    with RingBuffer(coll.maps["events"], record=Big, callback=seen.append) as rb:
        run(coll, "rb_output", 3)
        with pytest.raises(InvalidArgumentError) as ei:
            rb.consume()
        assert ei.value.errno == errno.EINVAL
        assert "record of 32 bytes" in str(ei.value) and "shorter than Big (64 bytes)" \
            in str(ei.value) and "dropped" in str(ei.value)
        assert seen == []


def test_callbacks_get_every_record_and_a_raising_one_loses_nothing(coll: Collection) -> None:
    seen: list[int] = []

    def cb(e: dict[str, Any]) -> None:
        if e["seq"] == 5 and 5 not in seen:
            seen.append(5)
            raise RuntimeError("stop at 5")
        seen.append(e["seq"])

    with RingBuffer(coll.maps["events"], record="struct event", btf=coll.spec.btf,
                    callback=cb) as rb:
        run(coll, "rb_output", 10)
        with pytest.raises(RuntimeError, match="stop at 5"):
            rb.consume()
        assert seen == [0, 1, 2, 3, 4, 5]
        assert rb.consume() == 4  # the rest of the batch, then nothing new
        assert seen == list(range(10))
        run(coll, "rb_output", 2)
        assert rb.poll(timeout=5) == 2
        assert seen == list(range(12))


def test_poll_times_out_with_nothing_and_wakes_for_a_record(coll: Collection) -> None:
    with RingBuffer(coll.maps["events"]) as rb:
        assert rb.poll(timeout=0) == 0
        assert rb.poll(timeout=0.05) == 0
        t = threading.Timer(0.05, run, (coll, "rb_output", 1))
        t.start()
        try:
            assert rb.poll(timeout=30) == 1
        finally:
            t.join()
        assert len(rb.drain()) == 1


def test_iteration_yields_records_as_they_come(coll: Collection) -> None:
    with RingBuffer(coll.maps["events"], record=Event) as rb:
        def produce() -> None:
            for _ in range(5):
                run(coll, "rb_output", 4)

        t = threading.Thread(target=produce)
        t.start()
        got = []
        try:
            for e in rb:
                got.append(e.seq)
                if len(got) == 20:
                    break
        finally:
            t.join()
        assert got == list(range(20))


def test_poller_waits_on_two_ring_buffers(coll: Collection) -> None:
    a: list[Any] = []
    b: list[Any] = []
    with RingBuffer(coll.maps["events"], callback=a.append) as rb1, \
            RingBuffer(coll.maps["small"], callback=b.append) as rb2, Poller(rb1, rb2) as p:
        assert p.poll(timeout=0) == 0
        run(coll, "rb_small", 3)
        assert p.poll(timeout=30) == 3
        assert (len(a), len(b)) == (0, 3)
        run(coll, "rb_output", 2)
        run(coll, "rb_small", 1)
        total = 0
        while total < 3:
            n = p.poll(timeout=30)
            assert n > 0
            total += n
        assert (len(a), len(b)) == (2, 4)
        with pytest.raises(ValueError, match="already in it"):
            p.add(rb1)
        p.remove(rb1)
        assert p.sources == [rb2]
        with pytest.raises(KeyError):
            p.remove(rb1)


@pytest.mark.parametrize("how", ["poll", "iterate", "poller"])
def test_close_while_another_thread_waits(coll: Collection, how: str) -> None:
    rb = RingBuffer(coll.maps["events"])
    poller = Poller(rb) if how == "poller" else None
    result: list[Any] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        try:
            if how == "poll":
                result.append(rb.poll(None))
            elif how == "iterate":
                result.append(list(rb))
            else:
                assert poller is not None
                result.append(poller.poll(None))
        except BaseException as exc:  # noqa: BLE001 - reported below
            result.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    waiting.wait()
    # The thread is about to wait (or waiting): close() wakes it, then unmaps.
    rb.close()  # also ends a Poller's wait
    t.join(timeout=30)
    alive = t.is_alive()
    if poller is not None:
        poller.close()
        t.join()
    assert not alive
    assert result in ([0], [[]])
    with pytest.raises(ClosedError) as ei:
        rb.poll(0)
    assert ei.value.errno == errno.EBADF and "closed" in str(ei.value)


def test_poller_drops_a_buffer_closed_while_it_waits(coll: Collection) -> None:
    got: list[Any] = []
    rb1 = RingBuffer(coll.maps["events"])
    with RingBuffer(coll.maps["small"], callback=got.append) as rb2, Poller(rb1, rb2) as p:
        result: list[int] = []
        t = threading.Thread(target=lambda: result.append(p.poll(None)))
        t.start()
        for _ in range(100):  # wait until the thread holds the poller (it then waits)
            if not p._lock.acquire(blocking=False):
                break
            p._lock.release()
            threading.Event().wait(0.01)
        rb1.close()  # the kernel drops rb1's epoll fd from the set silently: close wakes p
        t.join(timeout=30)
        alive = t.is_alive()
        if alive:
            p.close()
            t.join()
        assert not alive and result == [0]
        run(coll, "rb_small", 2)
        n = 0
        while n < 2:
            n += p.poll(timeout=30)
        assert p.sources == [rb2] and len(got) == 2


def test_methods_after_close_raise_closed_error(coll: Collection) -> None:
    rb = RingBuffer(coll.maps["events"])
    rb.close()
    rb.close()  # idempotent
    for call in (rb.consume, rb.drain, rb.pending_bytes, rb.fileno, lambda: rb.poll(0)):
        with pytest.raises(ClosedError, match="ring buffer .*'events'.* closed"):
            call()
    assert list(rb) == []
    assert "closed" in repr(rb)


def test_wrong_map_type_and_closed_map() -> None:
    with Map.create(MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=1,
                            name="arr")) as m:
        with pytest.raises(InvalidArgumentError) as ei:
            RingBuffer(m)
        assert ei.value.errno == errno.EINVAL
        assert "'arr' is of type ARRAY, not RINGBUF" in str(ei.value)
    with pytest.raises(ClosedError, match="the map is closed"):
        RingBuffer(m)


def test_a_perf_map_gets_a_hint_and_vice_versa(coll: Collection) -> None:
    with pytest.raises(InvalidArgumentError, match="not RINGBUF.*use PerfEventArray"):
        RingBuffer(coll.maps["perf"])
    with pytest.raises(InvalidArgumentError, match="not PERF_EVENT_ARRAY.*use RingBuffer"):
        PerfEventArray(coll.maps["events"])


def test_the_ring_buffer_outlives_its_map_object_and_leaves_no_mapping(
        coll: Collection) -> None:
    before = mappings()
    rb = RingBuffer(coll.maps["events"])
    assert mappings() == before + 2  # consumer page, producer page + data
    coll.maps["events"].close()  # the RingBuffer has its own fd
    run(coll, "rb_output", 2)
    assert seqs(rb.drain()) == [0, 1]
    rb.close()
    assert mappings() == before


def test_a_forgotten_ring_buffer_is_closed_with_a_resource_warning(coll: Collection) -> None:
    before = mappings()
    rb = RingBuffer(coll.maps["events"])
    with pytest.warns(ResourceWarning, match="unclosed ring buffer"):
        del rb
        gc.collect()
    assert mappings() == before


@pytest.mark.parametrize("obj,name", [("events.o", "struct event"), ("events.o", "struct sample"),
                                      ("structs.o", "struct flow"), ("structs.o", "struct stats")])
def test_the_fast_struct_decoder_agrees_with_btf_values(obj: str, name: str) -> None:
    # Structs of plain integers and arrays get a struct.Struct decoder; others (enums,
    # bitfields) the general one: both must give what purebpf.btf.values.decode gives.
    import random

    from purebpf import CollectionSpec
    from purebpf.btf.values import decode
    from purebpf.events.decode import _compile, find_record_type, make_record_type

    btf = CollectionSpec.from_file(DATA / obj).btf
    tid = find_record_type(btf, name, "test")
    size = btf.sizeof(tid)
    assert (_compile(btf, tid) is None) == (name == "struct stats")
    rt = make_record_type(name, btf, "test")
    rng = random.Random(9)
    samples = [bytes(size), b"\xff" * size, b"ab\0" + bytes(size - 3), b"A" * size]
    samples += [rng.randbytes(size) for _ in range(200)]
    for raw in samples:
        assert rt.decode is not None
        got, want = rt.decode(raw), decode(btf, tid, raw)
        assert got == want and list(got) == list(want)  # the members' order too
    longer = samples[-1] + b"\x01\x02\x03\x04"  # perf samples carry padding after the struct
    assert rt.decode(longer) == decode(btf, tid, samples[-1])


def test_runs_of_one_length_mixed_lengths_and_discards_interleave_in_order(
        coll: Collection) -> None:
    # The consumer copies runs of equal-length records at once and falls back to one record
    # at a time: every switch between the two must keep the records and their order.
    coll.maps["cfg"][CFG_DISCARD_EVERY] = 5
    want: list[bytes] = []
    with RingBuffer(coll.maps["events"]) as rb:
        for step in range(12):
            first = stat(coll, 0)  # ST_SEQ: the next sequence number
            if step % 3 == 0:
                run(coll, "rb_output", 64, repeat=4)
                want += [bytes(Event(s, s % 3, s * 1000003, b"purebpf-events"))
                         for s in range(first, first + 256)]
            elif step % 3 == 1:
                run(coll, "rb_varlen", 40)
                want += [varlen(s) for s in range(first, first + 40)]
            else:
                run(coll, "rb_reserve", 30)
                want += [bytes(Event(s, s % 3, s * 1000003, b"purebpf-events"))
                         for s in range(first, first + 30) if s % 5]
            if step % 4 == 3:
                assert rb.drain() == want
                want = []
        assert rb.drain() == want
        assert stat(coll, ST_RB_FAIL) == 0
