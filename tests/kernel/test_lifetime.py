"""Lifetimes: close, with, forgotten maps, from_id/from_fd/from_pin, pins, and leaks of
fds and kernel maps (inner maps are freed after an RCU grace period: hence wait_for)."""

from __future__ import annotations

import errno
import gc
import os
import sys
import warnings
from collections.abc import Callable

import pytest

from purebpf import (BPFError, BPFPermissionError, ClosedError, InnerMapMismatchError,
                     InvalidArgumentError, Map, MapFlags, MapOfMaps, MapSpec,
                     MapType, MmapArray)

from conftest import open_fds, wait_for
from helpers import alive, bpffs  # noqa: F401 (bpffs: a fixture)

NE = sys.byteorder
HASH = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8, key_type=int,
               value_type=int, name="life")
INNER = MapSpec(MapType.ARRAY, value_size=4, max_entries=2, key_type=int, value_type=int)


def outer_spec(t: MapType = MapType.HASH_OF_MAPS, inner: MapSpec = INNER) -> MapSpec:
    kw = {"key_size": 4} if t == MapType.HASH_OF_MAPS else {}
    return MapSpec(t, max_entries=8, inner=inner, key_type=int, name="life_o", **kw)


def bpf_fds() -> set[int]:
    out = set()
    for fd in open_fds():
        try:
            if "bpf-map" in os.readlink(f"/proc/self/fd/{fd}"):
                out.add(fd)
        except FileNotFoundError:
            pass
    return out


# == close ====================================================================================
def test_close_is_idempotent_and_frees_the_map(map_leak_check: None) -> None:
    m = Map.create(HASH)
    mid, fd = m.id, m.fd
    assert not m.closed and fd in bpf_fds()
    m.close()
    m.close()
    assert m.closed and fd not in bpf_fds()
    assert wait_for(lambda: not alive(mid))
    with pytest.raises(ClosedError) as info:
        m.fd
    assert info.value.errno == errno.EBADF and "is closed" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_with_closes_even_on_error() -> None:
    with pytest.raises(RuntimeError):
        with Map.create(HASH) as m:
            raise RuntimeError
    assert m.closed


CLOSED_OPS: list[tuple[str, Callable[[Map], object]]] = [
    ("getitem", lambda m: m[0]),
    ("setitem", lambda m: m.__setitem__(0, 1)),
    ("delitem", lambda m: m.__delitem__(0)),
    ("contains", lambda m: 0 in m),
    ("update", lambda m: m.update(0, 1)),
    ("pop", lambda m: m.pop(0)),
    ("keys", lambda m: list(m.keys())),
    ("items", lambda m: list(m.items())),
    ("len", len),
    ("info", lambda m: m.info()),
    ("freeze", lambda m: m.freeze()),
    ("pin", lambda m: m.pin("/sys/fs/bpf/never")),
    ("lookup_batch", lambda m: m.lookup_batch()),
    ("update_batch", lambda m: m.update_batch([0], [1])),
]


@pytest.mark.parametrize("spec", [HASH, HASH.replace(type=MapType.ARRAY, key_size=4),
                                  HASH.replace(type=MapType.PERCPU_HASH)],
                         ids=lambda s: s.type.name)
@pytest.mark.parametrize("op", [o[1] for o in CLOSED_OPS], ids=[o[0] for o in CLOSED_OPS])
def test_operations_on_a_closed_map(spec: MapSpec, op: Callable[[Map], object]) -> None:
    m = Map.create(spec)
    m.close()
    with pytest.raises(ClosedError) as info:
        op(m)
    assert info.value.errno == errno.EBADF
    assert f"map 'life' ({spec.type.name} id={m.id})" in str(info.value)


@pytest.mark.parametrize("op", [lambda m: m[0], lambda m: m.__setitem__(0, 1),
                                lambda m: list(m.items())], ids=["get", "set", "items"])
def test_operations_on_a_closed_mmap_array(op: Callable[[Map], object]) -> None:
    m = Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=2,
                           flags=MapFlags.MMAPABLE))
    assert isinstance(m, MmapArray)
    m.close()
    with pytest.raises(ClosedError) as info:
        op(m)
    assert info.value.errno == errno.EBADF and "is closed" in str(info.value)


def test_closing_one_handle_leaves_others_working() -> None:
    with Map.create(HASH) as m:
        other = Map.from_id(m.id)
        other.close()
        m[1] = 1
        assert m[1] == 1


# == forgotten maps ===========================================================================
def test_forgotten_map_warns_and_is_closed(map_leak_check: None) -> None:
    m = Map.create(HASH.replace(name="forgotten"))
    mid, fd = m.id, m.fd
    with pytest.warns(ResourceWarning, match=rf"unclosed map 'forgotten' \(HASH id={mid}\) "
                                             rf"\(fd {fd}\); close it or use 'with'"):
        del m
        gc.collect()
    assert fd not in bpf_fds()
    assert wait_for(lambda: not alive(mid))


def test_maps_from_lookups_close_quietly() -> None:
    with Map.create(outer_spec()) as outer, outer.new_inner() as m:
        outer[1] = m
        got = outer[1]
        fd = got.fd
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            del got
            gc.collect()
        assert fd not in bpf_fds()


# == from_id / from_fd ========================================================================
def test_from_id() -> None:
    with Map.create(HASH) as m:
        m[1] = 2
        with Map.from_id(m.id) as again:
            assert again.id == m.id and again.fd != m.fd
            assert again[1] == (2).to_bytes(4, NE)
        assert m[1] == 2


def test_from_id_of_a_missing_map() -> None:
    with pytest.raises(BPFError) as info:
        Map.from_id(0xFFFFFFF0)
    e = info.value
    assert type(e) is BPFError and e.errno == errno.ENOENT  # not a KeyError: no such object
    assert str(e) == f"open map id {0xFFFFFFF0}: no such map [ENOENT]"


def test_from_fd_duplicates() -> None:
    with Map.create(HASH) as m:
        m[1] = 1
        w = Map.from_fd(m.fd)
        assert w.fd != m.fd and w.id == m.id and isinstance(w, Map)
        w.close()
        assert m[1] == 1  # our fd survives the wrapper's close
        fd2 = os.dup(m.fd)
        try:
            w2 = Map.from_fd(fd2)
        finally:
            os.close(fd2)
        with w2:
            assert w2[1] == (1).to_bytes(4, NE)  # the wrapper survives ours


def test_from_fd_picks_the_class() -> None:
    with Map.create(outer_spec()) as outer, Map.from_fd(outer.fd) as w:
        assert isinstance(w, MapOfMaps)
    with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=1,
                            flags=MapFlags.MMAPABLE)) as mm, Map.from_fd(mm.fd) as w2:
        assert isinstance(w2, MmapArray)


def test_from_fd_errors() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(InvalidArgumentError) as info:
            Map.from_fd(r)
        assert info.value.errno == errno.EINVAL
        assert f"open map from fd {r}: not a BPF map" in str(info.value)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(BPFError) as info2:
        Map.from_fd(r)  # closed now
    assert info2.value.errno in (errno.EBADF, errno.EBADFD)
    assert f"open map from fd {r}: the fd is not open" in str(info2.value)


# == pins =====================================================================================
def test_pin_outlives_close_and_from_pin_reopens(map_leak_check: None, bpffs: str) -> None:
    path = os.path.join(bpffs, "m")
    m = Map.create(HASH)
    m[3] = 4
    m.pin(path)
    mid = m.id
    m.close()
    assert alive(mid) and os.path.exists(path)
    with Map.from_pin(path) as again:
        assert again.id == mid and again[3] == (4).to_bytes(4, NE)
        again.unpin()  # a map opened from a pin remembers where it came from
        with pytest.raises(InvalidArgumentError, match="it was not pinned by this object; "
                                                       "pass the path"):
            again.unpin()  # already removed: nothing left to unpin
        assert again.closed is False  # unpin only removes the path
        again[5] = 6
    assert not os.path.exists(path)
    assert wait_for(lambda: not alive(mid))


def test_unpin_by_path(bpffs: str) -> None:
    path = os.path.join(bpffs, "p")
    with Map.create(HASH) as m:
        m.pin(path)
        with Map.from_pin(path) as other:
            other.unpin(path)
        assert not os.path.exists(path)


def test_pin_errors(bpffs: str) -> None:
    path = os.path.join(bpffs, "dup")
    with Map.create(HASH) as m:
        m.pin(path)
        with pytest.raises(BPFError) as info:
            m.pin(path)
        assert info.value.errno == errno.EEXIST and not isinstance(info.value, KeyError)
        assert "already exists" in info.value.hint
        assert f"pin map 'life' (HASH id={m.id}) at '{path}'" in str(info.value)
        with pytest.raises(BPFPermissionError) as info2:
            m.pin("/tmp/not-a-bpffs-pin")
        assert info2.value.errno == errno.EPERM and "mounted bpffs" in info2.value.hint
        with pytest.raises(BPFError) as info3:
            m.pin(os.path.join(bpffs, "no", "such", "dir"))
        assert info3.value.errno == errno.ENOENT and "mounted bpffs" in info3.value.hint
        m.unpin()
    with pytest.raises(BPFError) as info4:
        Map.from_pin(os.path.join(bpffs, "missing"))
    assert info4.value.errno == errno.ENOENT
    assert f"open pinned map '{bpffs}/missing'" in str(info4.value)


def test_pinned_outer_map_keeps_its_inner_maps(map_leak_check: None, bpffs: str) -> None:
    path = os.path.join(bpffs, "outer")
    with Map.create(outer_spec()) as outer:
        with outer.new_inner() as m:
            m[0] = 9
            outer[1] = m
            inner_id = m.id
        outer.pin(path)
        outer_id = outer.id
    gc.collect()
    assert alive(outer_id) and alive(inner_id)
    with Map.from_pin(path) as again:
        assert again[1][0] == (9).to_bytes(4, NE)  # opened from a pin: no declared types
        again.unpin(path)
    assert wait_for(lambda: not alive(outer_id) and not alive(inner_id))


# == inner map lifetime =======================================================================
def test_inner_map_lives_in_its_slot_after_its_fd_closes(map_leak_check: None) -> None:
    with Map.create(outer_spec(MapType.ARRAY_OF_MAPS)) as outer:
        m = outer.new_inner()
        m[1] = 7
        outer[0] = m
        mid = m.id
        m.close()
        gc.collect()
        assert alive(mid)
        with Map.from_id(mid) as again:  # still usable by id
            assert again[1] == (7).to_bytes(4, NE)
        del outer[0]
        assert wait_for(lambda: not alive(mid)), "the removed inner map was not freed"
        with pytest.raises(BPFError) as info:
            Map.from_id(mid)
        assert info.value.errno == errno.ENOENT


def test_closing_the_outer_map_frees_its_inner_maps(map_leak_check: None) -> None:
    outer = Map.create(outer_spec())
    ids = []
    for k in range(3):
        with outer.new_inner() as m:
            outer[k] = m
            ids.append(m.id)
    outer.close()
    assert wait_for(lambda: not any(alive(i) for i in ids))


# == leak loops ===============================================================================
@pytest.mark.parametrize("t", [MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS],
                         ids=lambda t: t.name)
def test_create_insert_swap_close_loop_leaks_nothing(map_leak_check: None, t: MapType) -> None:
    fds = bpf_fds()
    for _ in range(5):
        with Map.create(outer_spec(t)) as outer:
            for k in range(3):
                with outer.new_inner() as m:
                    outer[k] = m
            for k in range(3):
                with outer.new_inner() as m:
                    old = outer.swap(k, m)
                    assert old is not None
                    del old
            with outer.staged(0, copy=True) as new:
                new[0] = 1
            looked = [outer[k] for k in range(3)]
            assert len({x.fd for x in looked}) == 3
            del looked
    gc.collect()
    assert bpf_fds() == fds


def test_failures_leak_nothing(map_leak_check: None) -> None:
    fds = bpf_fds()
    for _ in range(3):
        with pytest.raises(BPFError):
            Map.create(outer_spec(inner=INNER.replace(max_entries=2**31 + 1,
                                                      type=MapType.HASH, key_size=4)))
        with pytest.raises(BPFError):
            Map.create(MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=2**31 + 1,
                               inner=INNER))
        with Map.create(outer_spec(MapType.ARRAY_OF_MAPS)) as outer:
            with Map.create(INNER.replace(max_entries=5)) as wrong:
                with pytest.raises(InnerMapMismatchError):
                    outer[0] = wrong
            with outer.new_inner() as m:
                with pytest.raises(BPFError):
                    outer[100] = m
            with pytest.raises(ZeroDivisionError):
                with outer.staged(1) as new:
                    new[0] = 1 // 0
    gc.collect()
    assert bpf_fds() == fds


def test_plain_create_close_loop(map_leak_check: None) -> None:
    fds = bpf_fds()
    for i in range(50):
        with Map.create(HASH) as m:
            m[i] = i
    assert bpf_fds() == fds
