"""QUEUE and STACK maps: values without keys."""

from __future__ import annotations

import errno

import pytest

from purebpf import (BPFError, KeyNotFoundError, Map, MapFullError, MapSpec, MapType,
                     UpdateFlags)


def test_queue_is_first_in_first_out() -> None:
    with Map.create(MapSpec(MapType.QUEUE, value_size=4, value_type=int, max_entries=3)) as q:
        for v in (1, 2, 3):
            q.push(v)
        with pytest.raises(MapFullError) as full:
            q.push(4)
        assert full.value.errno == errno.E2BIG
        q.push(4, UpdateFlags.EXIST)  # BPF_EXIST: drop the oldest to make room
        assert q.peek() == 2
        assert [q.pop(), q.pop(), q.pop()] == [2, 3, 4]
        with pytest.raises(KeyNotFoundError, match="the map is empty") as empty:
            q.pop()
        assert empty.value.errno == errno.ENOENT


def test_stack_is_last_in_first_out() -> None:
    with Map.create(MapSpec(MapType.STACK, value_size=8, value_type=int, max_entries=4)) as s:
        s.push(1)
        s.push(2)
        assert s.peek() == 2 and s.pop() == 2 and s.pop() == 1
        with pytest.raises(KeyNotFoundError, match="empty"):
            s.peek()


def test_pop_without_a_key_needs_a_keyless_map() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=2)) as h:
        with pytest.raises(TypeError, match="a key is needed"):
            h.pop()


def test_pinning_over_an_existing_path_is_not_a_key_error(tmp_path) -> None:  # type: ignore
    import os
    import subprocess

    d = tmp_path / "bpffs"
    d.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(d)], check=True)
    try:
        with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) as m:
            m.pin(d / "x")
            with pytest.raises(BPFError) as info:
                m.pin(d / "x")
            assert info.value.errno == errno.EEXIST
            assert not isinstance(info.value, KeyError)
            with Map.from_pin(d / "x") as again:
                again.unpin()  # from_pin remembers the path
            assert not os.path.exists(d / "x")
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_iterating_a_keyless_map_says_what_to_use() -> None:
    with Map.create(MapSpec(MapType.QUEUE, value_size=4, max_entries=2)) as q:
        with pytest.raises(TypeError, match="has no keys; use push"):
            list(q.keys())
