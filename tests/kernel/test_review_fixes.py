"""Behaviours that a review found wrong once: each test fails on the old behaviour."""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import pathlib
import threading
import time
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import (ClosedError, InvalidArgumentError, KeyNotFoundError, Map, MapOfMaps,
                     MapSpec, MapType, UpdateFlags)

from helpers import alive, needs_spin_lock_templates

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
INNER = MapSpec(MapType.ARRAY, value_size=4, value_type=int, max_entries=4)


def outer(t: MapType = MapType.HASH_OF_MAPS, n: int = 8) -> MapOfMaps:
    m = Map.create(MapSpec(t, key_size=4, key_type=int, max_entries=n, inner=INNER))
    assert isinstance(m, MapOfMaps)
    return m


def test_a_failed_setup_does_not_later_close_someone_elses_fd() -> None:
    with pytest.raises(ValueError, match="4 bytes, the map's size is 8"):
        Map.create(MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=4,
                           value_type=ctypes.c_uint32))
    r, w = os.pipe()
    try:
        gc.collect()
        os.write(w, b"x")  # the fd number the failed map had must still be ours
        assert os.read(r, 1) == b"x"
    finally:
        os.close(r)
        os.close(w)


def test_lookup_and_delete_batch_on_hash_of_maps_returns_live_maps(
        map_leak_check: None) -> None:
    with outer() as o:
        for k in (1, 2, 3):
            with o.new_inner() as m:  # each inner map is held by its slot only
                m[0] = k * 10
                o[k] = m
        got = sorted(o.lookup_and_delete_batch(), key=lambda kv: kv[0])
        assert [(k, m[0]) for k, m in got] == [(1, 10), (2, 20), (3, 30)]
        assert len(o) == 0
        del got


def test_each_lookup_is_a_handle_the_caller_owns() -> None:
    with outer() as o, o.new_inner() as m:
        o[0] = m
        a = o[0]
        with o[0] as b:
            assert b is not a and b.id == a.id
        assert b.closed and not a.closed  # with closed b, and only b
        a[1] = 5
        a.close()
        assert a.closed
        with o[0] as c:
            assert c[1] == 5


def test_each_thread_gets_its_own_inner_map_object() -> None:
    with outer() as o, o.new_inner() as m:
        o[0] = m
        seen: list[Map] = []
        t = threading.Thread(target=lambda: seen.append(o[0]))
        t.start()
        t.join()
        with o[0] as mine, seen[0]:
            assert seen[0] is not mine and seen[0].id == mine.id


def test_concurrent_swaps_never_lose_or_duplicate_a_map() -> None:
    with outer(MapType.ARRAY_OF_MAPS, 1) as o:
        with o.new_inner() as first:
            o[0] = first
            first_id = first.id
        ids: list[int] = []
        returned: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(6):
                with o.new_inner() as new:
                    with lock:
                        ids.append(new.id)
                    old = o.swap(0, new)
                    assert old is not None
                    with lock:
                        returned.append(old.id)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # every map put in comes out exactly once, or is the one left in the slot
        assert len(returned) == len(set(returned)) == 12
        assert sorted(returned + [o.inner_id(0)]) == sorted(ids + [first_id])


def test_a_slot_whose_map_went_away_is_read_again() -> None:
    with Map.create(INNER) as m:
        gone = m.id
    for _ in range(200):  # the id is freed after an RCU grace period
        if not alive(gone):
            break
        time.sleep(0.01)
    with outer() as o, o.new_inner() as live:
        o[0] = live
        reads = iter([gone, live.id])  # the slot changed between reading the id and opening
        with o._open_slot(lambda: next(reads), 0) as got:
            assert got.id == live.id

        def emptied() -> Iterator[int]:
            yield gone
            raise KeyNotFoundError(errno.ENOENT, "lookup: key 0 not found")

        reads2 = emptied()
        with pytest.raises(KeyNotFoundError, match="not found"):
            o._open_slot(lambda: next(reads2), 0)


@needs_spin_lock_templates
def test_new_inner_keeps_the_templates_btf_special_fields() -> None:
    with purebpf.load(DATA / "spinlock_inner.o") as coll:
        counters = coll.maps["counters"]
        assert isinstance(counters, MapOfMaps)
        with counters.new_inner() as m:  # the value holds a bpf_spin_lock
            counters[1] = m
        with counters.staged(2) as staged:
            staged[0] = bytes(8)
        count = coll.programs["count"]
        assert [count.test_run(b"\x01\0\0\0" + bytes(60)).retval for _ in range(2)] == [1, 2]
        assert count.test_run(b"\x02\0\0\0" + bytes(60)).retval == 1


def test_from_fd_refuses_a_program_fd() -> None:
    with purebpf.load(DATA / "tailcall.o") as coll:
        with pytest.raises(InvalidArgumentError, match="program"):
            Map.from_fd(coll.programs["dispatch"].fd)


def test_tree_and_to_dict_show_keyless_inner_maps() -> None:
    rb = MapSpec(MapType.RINGBUF, max_entries=4096)
    with Map.create(MapSpec(MapType.ARRAY_OF_MAPS, max_entries=2, inner=rb)) as o, \
            Map.create(rb) as ring:
        o[1] = ring
        assert "-> map (RINGBUF" in o.tree() and " entries=" not in o.tree()
        assert o.to_dict() == {1: {}}


@pytest.mark.parametrize("flags", [UpdateFlags.LOCK, 8])
def test_invalid_update_flags_on_hash_of_maps_are_named(flags: int) -> None:
    with outer() as o, o.new_inner() as m:
        with pytest.raises(InvalidArgumentError, match="not valid for an outer map") as info:
            o.update(1, m, flags)
        assert info.value.errno == errno.EINVAL and "BPF_F_LOCK" in info.value.hint


def test_storage_maps_need_max_entries_zero_and_queues_need_some() -> None:
    with pytest.raises(InvalidArgumentError, match="max_entries must be 0 for TASK_STORAGE"):
        MapSpec(MapType.TASK_STORAGE, key_size=4, value_size=4, max_entries=8).check()
    with pytest.raises(InvalidArgumentError, match="max_entries must be at least 1"):
        MapSpec(MapType.QUEUE, value_size=4, max_entries=0).check()


def test_numa_node_is_part_of_the_template() -> None:
    from purebpf._spec import Template

    spec = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4, numa_node=0)
    with Map.create(spec) as m:
        assert Template.of(spec) == m.info().template


def test_closed_mmap_array_refuses_keys_and_membership() -> None:
    m = Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=4,
                           flags=purebpf.MapFlags.MMAPABLE))
    m.close()
    with pytest.raises(ClosedError):
        1 in m  # noqa: B015
    with pytest.raises(ClosedError):
        list(m.keys())


def test_oserror_strerror_is_the_errnos_text() -> None:
    with pytest.raises(purebpf.BPFError) as info:
        Map.from_id(0x7FFFFFF0)
    assert info.value.strerror == os.strerror(errno.ENOENT)
    assert "no such map" in str(info.value)


def test_map_of_maps_create_is_typed_and_refuses_other_types() -> None:
    with MapOfMaps.create(MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1, inner=INNER)) as o:
        assert isinstance(o, MapOfMaps)
    with pytest.raises(InvalidArgumentError, match="ARRAY_OF_MAPS and HASH_OF_MAPS maps only"):
        MapOfMaps.create(INNER)


def test_spin_lock_templates_load_or_say_why_not() -> None:
    """Linux 6.1 refuses an outer map whose template's value holds a bpf_spin_lock: the
    loader reports that (not a bare EINVAL for the declared slots after retrying without
    BTF); newer kernels load the object."""
    if purebpf.features.has_spin_lock_inner_map():
        with purebpf.load(DATA / "spinlock_inner.o") as coll:
            assert isinstance(coll.maps["counters"], MapOfMaps)
        return
    with pytest.raises(purebpf.NotSupportedError) as info:
        purebpf.load(DATA / "spinlock_inner.o")
    e = info.value
    assert e.feature == "bpf_spin_lock in inner-map templates"
    assert "refuses an inner-map template whose value holds a bpf_spin_lock" in str(e)
