"""Map against the real kernel: the dict-like API, flags, per-CPU, mmap, LRU, errors."""

from __future__ import annotations

import ctypes
import errno
import random
import re
import sys

import pytest

from purebpf import (BPFError, BPFPermissionError, IndexOutOfRangeError, InvalidArgumentError,
                     KeyExistsError, KeyNotFoundError, Map, MapFlags, MapFullError, MapInfo,
                     MapSpec, MapType, MmapArray, UpdateFlags)
from purebpf._sys import ops
from purebpf._sys.syscall import ElemIO


def possible_cpus() -> int:
    """Read independently of the library: "0-3" or "0,2-5" -> highest + 1."""
    with open("/sys/devices/system/cpu/possible") as f:
        return max(int(p.split("-")[-1]) for p in f.read().strip().split(",")) + 1


NCPU = possible_cpus()

HASHES = [MapType.HASH, MapType.LRU_HASH, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH]
ARRAYS = [MapType.ARRAY, MapType.PERCPU_ARRAY]


def int_spec(t: MapType, max_entries: int = 16, **kw: object) -> MapSpec:
    return MapSpec(t, key_size=4, value_size=8, max_entries=max_entries, key_type=int,
                   value_type=int, name=f"t_{t.name.lower()}"[:15], **kw)  # type: ignore[arg-type]


def stored(t: MapType, v: int) -> object:
    """What a lookup returns after storing scalar ``v``."""
    return [v] * NCPU if t.is_percpu else v


# -- the dict API on every basic type --------------------------------------------------------
@pytest.mark.parametrize("t", HASHES + ARRAYS, ids=lambda t: t.name)
def test_set_get_contains_get(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        m[3] = 42
        assert m[3] == stored(t, 42)
        assert 3 in m
        assert m.get(3) == stored(t, 42)
        m[3] = 43
        assert m[3] == stored(t, 43)


@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_hash_missing_key(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        assert 5 not in m
        assert m.get(5) is None and m.get(5, "d") == "d"
        with pytest.raises(KeyNotFoundError) as info:
            m[5]
        e = info.value
        assert isinstance(e, KeyError) and e.errno == errno.ENOENT
        assert str(e) == f"lookup map '{m.name}' ({t.name} id={m.id}): key 5 not found [ENOENT]"


@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_hash_keys_values_items_len(t: MapType) -> None:
    model = {k: k * 10 for k in range(0, 24, 2)}
    with Map.create(int_spec(t, max_entries=32)) as m:
        assert len(m) == 0 and list(m) == []
        for k, v in model.items():
            m[k] = v
        assert len(m) == len(model)
        assert sorted(m.keys()) == sorted(model)
        assert sorted(m) == sorted(model)
        assert dict(m.items()) == {k: stored(t, v) for k, v in model.items()}
        assert sorted(map(str, m.values())) == sorted(str(stored(t, v)) for v in model.values())


@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_hash_delete(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        m[1], m[2] = 1, 2
        del m[1]
        assert 1 not in m and list(m) == [2]
        with pytest.raises(KeyNotFoundError) as info:
            del m[1]
        assert info.value.errno == errno.ENOENT
        assert str(info.value).startswith(f"delete map '{m.name}' ({t.name} id={m.id}): key 1 "
                                          "not found")


@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_pop(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        m[1] = 11
        assert m.pop(1) == stored(t, 11)
        assert 1 not in m
        assert m.pop(1, "dflt") == "dflt"
        with pytest.raises(KeyNotFoundError) as info:
            m.pop(1)
        assert info.value.errno == errno.ENOENT and "pop" in str(info.value)


@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_clear(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=64)) as m:
        for k in range(50):
            m[k] = k
        m.clear()
        assert len(m) == 0 and list(m.items()) == []
        m.clear()  # on an empty map: nothing to do


# -- update flags ----------------------------------------------------------------------------
@pytest.mark.parametrize("t", HASHES, ids=lambda t: t.name)
def test_hash_update_flags(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        m.update(1, 10, UpdateFlags.NOEXIST)
        assert m[1] == stored(t, 10)
        with pytest.raises(KeyExistsError) as info:
            m.update(1, 11, UpdateFlags.NOEXIST)
        assert info.value.errno == errno.EEXIST
        assert f"update map '{m.name}' ({t.name} id={m.id}): key 1 already exists (NOEXIST " \
               "given)" in str(info.value)
        assert m[1] == stored(t, 10)
        m.update(1, 12, UpdateFlags.EXIST)
        assert m[1] == stored(t, 12)
        with pytest.raises(KeyNotFoundError) as info2:
            m.update(2, 1, UpdateFlags.EXIST)
        assert info2.value.errno == errno.ENOENT and "update" in str(info2.value)
        assert 2 not in m
        m.update(2, 3)  # BPF_ANY creates
        m.update(2, 4, UpdateFlags.ANY)  # ... and replaces
        assert m[2] == stored(t, 4)


@pytest.mark.parametrize("t", ARRAYS, ids=lambda t: t.name)
def test_array_update_flags(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=4)) as m:
        with pytest.raises(KeyExistsError) as info:  # every index always exists
            m.update(0, 1, UpdateFlags.NOEXIST)
        assert info.value.errno == errno.EEXIST
        m.update(0, 5, UpdateFlags.EXIST)
        assert m[0] == stored(t, 5)


@pytest.mark.parametrize("flags", [0, MapFlags.NO_PREALLOC], ids=["prealloc", "no-prealloc"])
def test_full_hash_raises_map_full(flags: MapFlags) -> None:
    with Map.create(int_spec(MapType.HASH, max_entries=4, flags=flags)) as m:
        for k in range(4):
            m[k] = k
        with pytest.raises(MapFullError) as info:
            m[99] = 1
        e = info.value
        assert e.errno == errno.E2BIG
        assert f"update map '{m.name}' (HASH id={m.id}): map is full (max_entries 4)" in str(e)
        assert "larger max_entries" in e.hint
        m[0] = 100  # replacing an existing key still works when full
        assert m[0] == 100 and 99 not in m


# -- arrays ----------------------------------------------------------------------------------
@pytest.mark.parametrize("t", ARRAYS, ids=lambda t: t.name)
def test_array_iteration_is_every_index_in_order(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=5)) as m:
        m[2] = 7
        assert len(m) == 5
        assert list(m) == [0, 1, 2, 3, 4]
        assert list(m.items()) == [(i, stored(t, 7 if i == 2 else 0)) for i in range(5)]
        assert all(i in m for i in range(5)) and 5 not in m


@pytest.mark.parametrize("t", ARRAYS, ids=lambda t: t.name)
def test_array_index_out_of_range(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=4)) as m:
        with pytest.raises(IndexOutOfRangeError) as info:
            m[4] = 1
        e = info.value
        assert isinstance(e, IndexError) and e.errno == errno.E2BIG
        assert f"update map '{m.name}' ({t.name} id={m.id}): index 4 out of range " \
               "(max_entries 4)" in str(e)
        with pytest.raises(KeyNotFoundError):  # the kernel's lookup says ENOENT
            m[4]


@pytest.mark.parametrize("t", ARRAYS, ids=lambda t: t.name)
def test_array_elements_cannot_be_deleted(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=2)) as m:
        m[0] = 1
        for op in (lambda: m.__delitem__(0), lambda: m.pop(0), m.clear):
            with pytest.raises(InvalidArgumentError) as info:
                op()
            assert info.value.errno == errno.EINVAL
            assert f"{t.name} elements cannot be deleted" in str(info.value)
            assert "store a zero value" in info.value.hint
        assert m[0] == stored(t, 1)


# -- per-CPU ---------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [MapType.PERCPU_HASH, MapType.PERCPU_ARRAY,
                               MapType.LRU_PERCPU_HASH], ids=lambda t: t.name)
def test_percpu_values_are_lists(t: MapType) -> None:
    with Map.create(int_spec(t)) as m:
        per = list(range(100, 100 + NCPU))
        m[1] = per
        assert m[1] == per
        m[2] = 9
        assert m[2] == [9] * NCPU
        with pytest.raises(ValueError, match=re.escape(
                f"value of map '{m.name}' ({t.name} id={m.id}): per-CPU map takes {NCPU} values")):
            m[3] = [1] * (NCPU + 1)
        assert dict(m.items())[1] == per


def test_percpu_struct_format_value() -> None:
    spec = MapSpec(MapType.PERCPU_ARRAY, value_size=4, max_entries=2, value_type="I")
    with Map.create(spec) as m:
        per = [7 + i for i in range(NCPU)]
        m[0] = per
        assert m[0] == per


def test_percpu_layout_matches_the_kernel() -> None:
    """Raw bytes through ElemIO: stride round8(value_size), one slot per possible CPU."""
    spec = MapSpec(MapType.PERCPU_ARRAY, value_size=4, max_entries=1, value_type=int)
    with Map.create(spec) as m:
        m[0] = list(range(1, NCPU + 1))
        assert ops.possible_cpus() == NCPU
        io = ElemIO(m.fd, 4, 8 * NCPU)
        assert io.lookup() == 0  # key buffer is zeroed: index 0
        buf = bytes(io.value)
        assert [int.from_bytes(buf[8 * i:8 * i + 4], sys.byteorder) for i in range(NCPU)] == \
            list(range(1, NCPU + 1))


# -- LRU -------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [MapType.LRU_HASH, MapType.LRU_PERCPU_HASH],
                         ids=lambda t: t.name)
def test_lru_evicts_instead_of_filling(t: MapType) -> None:
    with Map.create(int_spec(t, max_entries=32)) as m:
        for k in range(500):
            m[k] = k
        assert 0 < len(m) <= 32
        assert 499 in m and m[499] == stored(t, 499)
        assert 0 not in m


# -- keys deleted during a walk --------------------------------------------------------------
@pytest.mark.parametrize("t", [MapType.HASH, MapType.LRU_HASH, MapType.PERCPU_HASH],
                         ids=lambda t: t.name)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deleting_during_a_walk_neither_ends_nor_repeats(t: MapType, seed: int) -> None:
    rng = random.Random(seed)
    keys = rng.sample(range(10_000), 64)
    with Map.create(int_spec(t, max_entries=128)) as m:
        for k in keys:
            m[k] = k
        yielded: list[int] = []
        deleted_early: set[int] = set()
        for k in m:
            assert k not in deleted_early
            yielded.append(k)
            if rng.random() < 0.5:
                del m[k]  # the current key: GET_NEXT_KEY on it restarts the hash walk
            if rng.random() < 0.3:
                others = [o for o in keys if o not in yielded and o not in deleted_early]
                if others:
                    victim = rng.choice(others)
                    del m[victim]
                    deleted_early.add(victim)
        assert len(yielded) == len(set(yielded)), "a key was yielded twice"
        assert set(yielded) == set(keys) - deleted_early, "the walk ended early"


def test_items_skips_keys_deleted_under_it() -> None:
    with Map.create(int_spec(MapType.HASH, max_entries=64)) as m:
        for k in range(40):
            m[k] = k
        seen = {}
        for k, v in m.items():
            seen[k] = v
            m.pop(k)
        assert seen == {k: k for k in range(40)}
        assert len(m) == 0


def test_deleting_every_other_key_mid_walk_ends_cleanly() -> None:
    with Map.create(int_spec(MapType.HASH, max_entries=64)) as m:
        for k in range(30):
            m[k] = k
        it = iter(m)
        first = next(it)
        for k in range(30):
            if k != first:
                del m[k]
        assert list(it) == []


# -- MMAPABLE arrays -------------------------------------------------------------------------
def mm_spec(**kw: object) -> MapSpec:
    return MapSpec(MapType.ARRAY, value_size=4, max_entries=10, flags=MapFlags.MMAPABLE,
                   value_type=int, name="mm", **kw)  # type: ignore[arg-type]


def test_mmapable_array_is_an_mmap_array_coherent_with_the_syscall_path() -> None:
    with Map.create(mm_spec()) as m:
        assert isinstance(m, MmapArray)
        m[3] = 0xAABBCCDD  # through the mmap
        assert Map.__getitem__(m, 3) == 0xAABBCCDD  # through BPF_MAP_LOOKUP_ELEM
        Map.__setitem__(m, 4, 77)  # through BPF_MAP_UPDATE_ELEM
        assert m[4] == 77  # through the mmap
        assert m[2] == 0 and m[5] == 0  # stride is round8(4) = 8: neighbours untouched
        assert list(m) == list(range(10)) and len(m) == 10
        assert list(m.items())[3:5] == [(3, 0xAABBCCDD), (4, 77)]
        assert 9 in m and 10 not in m


def test_mmap_array_index_errors_match_the_syscall_path() -> None:
    with Map.create(mm_spec()) as m:
        with pytest.raises(KeyNotFoundError) as info:
            m[10]
        assert info.value.errno == errno.ENOENT and "index 10 out of range" in str(info.value)
        with pytest.raises(IndexOutOfRangeError) as info2:
            m[10] = 1
        assert info2.value.errno == errno.E2BIG
        assert f"update map 'mm' (ARRAY id={m.id}): index 10 out of range (max_entries 10)" \
            in str(info2.value)
        with pytest.raises(IndexOutOfRangeError):
            Map.__setitem__(m, 10, 1)  # the kernel agrees: E2BIG
        m[(1).to_bytes(4, sys.byteorder)] = 5  # bytes keys index the same element
        assert m[1] == 5


def test_mmap_array_freeze() -> None:
    with Map.create(mm_spec()) as m:
        m[0] = 1
        m.freeze()
        assert m[0] == 1  # still readable through the (now read-only) mapping
        with pytest.raises(BPFPermissionError) as info:
            m[0] = 2
        assert info.value.errno == errno.EPERM and "frozen" in str(info.value)
        with pytest.raises(BPFPermissionError) as info2:
            m.update(0, 2)  # the syscall path: the kernel refuses too
        assert info2.value.errno == errno.EPERM
        assert m[0] == 1
        with Map.from_id(m.id) as again:  # reopened: mapped read-only from the start
            assert isinstance(again, MmapArray) and again[0] == (1).to_bytes(4, sys.byteorder)
            with pytest.raises(BPFPermissionError):
                again[0] = 3


# -- freeze ----------------------------------------------------------------------------------
def test_freeze_then_update_is_permission_error() -> None:
    with Map.create(int_spec(MapType.HASH)) as m:
        m[1] = 1
        m.freeze()
        assert m[1] == 1 and list(m) == [1]
        for op, name in ((lambda: m.__setitem__(1, 2), "update"),
                         (lambda: m.__delitem__(1), "delete"),
                         (lambda: m.update(2, 2, UpdateFlags.NOEXIST), "update")):
            with pytest.raises(BPFPermissionError) as info:
                op()
            e = info.value
            assert isinstance(e, PermissionError) and e.errno == errno.EPERM
            assert str(e).startswith(f"{name} map '{m.name}' (HASH id={m.id}): not permitted")
            assert "frozen" in e.hint
        with pytest.raises(BPFPermissionError) as info2:
            m.freeze()
        # EBUSY on 6.1, EPERM on 6.18: the same error and words on both
        assert info2.value.errno in (errno.EPERM, errno.EBUSY)
        assert str(info2.value).startswith(f"freeze map '{m.name}' (HASH id={m.id}): the map "
                                           "is already frozen")
        assert "mmap" not in str(info2.value)
        assert m[1] == 1


def test_rdonly_fd_refuses_writes() -> None:
    spec = int_spec(MapType.HASH, flags=MapFlags.RDONLY)
    with Map.create(spec) as m:
        assert m.flags == 0  # an fd property: the kernel does not store it with the map
        with pytest.raises(BPFPermissionError) as info:
            m[1] = 1
        assert info.value.errno == errno.EPERM and "read-only" in info.value.hint


# -- encoding errors name the map ------------------------------------------------------------
def test_wrong_key_and_value_length_and_type() -> None:
    spec = MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=4, name="kv")
    with Map.create(spec) as m:
        desc = re.escape(f"map 'kv' (HASH id={m.id})")
        with pytest.raises(ValueError, match=rf"key of {desc} must be 4 bytes, got 3"):
            m[b"abc"] = 1
        with pytest.raises(ValueError, match=rf"value of {desc} must be 8 bytes, got 2"):
            m[1] = b"ab"
        with pytest.raises(ValueError, match=rf"key of {desc}: {2**32} does not fit"):
            m[2**32] = 1
        with pytest.raises(TypeError, match=rf"key of {desc}: expected an int, bytes or "
                                            "ctypes object of 4 bytes, got str"):
            m["k"] = 1
        with pytest.raises(TypeError, match=rf"value of {desc}: .* got float"):
            m[1] = 1.5
        with pytest.raises(TypeError, match=rf"key of {desc}: .* got NoneType"):
            m[None]
        assert len(m) == 0  # nothing was written


class Flow(ctypes.Structure):
    _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32),
                ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16)]


def test_declared_types_roundtrip_through_the_kernel() -> None:
    spec = MapSpec(MapType.HASH, key_type=Flow, value_type="=QI", max_entries=8, name="flows")
    assert (spec.key_size, spec.value_size) == (12, 12)
    with Map.create(spec) as m:
        m[Flow(1, 2, 3, 4)] = (10, 20)
        m[{"saddr": 5, "daddr": 6, "sport": 7, "dport": 8}] = (1, 2)
        assert m[(1, 2, 3, 4)] == (10, 20)
        keys = sorted((k.saddr, k.dport) for k in m.keys())
        assert keys == [(1, 4), (5, 8)]


# -- identity, info, creation errors ---------------------------------------------------------
def test_repr_info_and_identity() -> None:
    spec = int_spec(MapType.HASH, max_entries=8).replace(name="ident")
    with Map.create(spec) as m:
        assert repr(m) == f"<Map HASH 'ident' id={m.id} fd={m.fd}>"
        info = m.info()
        assert isinstance(info, MapInfo)
        assert (info.id, info.type, info.name, info.key_size, info.value_size,
                info.max_entries, info.flags) == (m.id, MapType.HASH, "ident", 4, 8, 8, 0)
        assert info.to_spec() == MapSpec(MapType.HASH, key_size=4, value_size=8,
                                         max_entries=8, name="ident")
        assert (m.type, m.name, m.key_size, m.value_size, m.max_entries) == \
            (MapType.HASH, "ident", 4, 8, 8)
        assert m.id in set(Map.ids())
        with Map.from_id(m.id) as same:
            assert same == m and hash(same) == hash(m) and same is not m
            assert same.fd != m.fd
            m[1] = 5
            assert same[1] == b"\x05" + bytes(7)  # opened by id: no declared types
        ids = list(Map.ids())
        assert ids == sorted(ids)
    assert repr(m) == f"<Map HASH 'ident' id={m.id} closed>"


def test_numa_node_sets_the_flag() -> None:
    with Map.create(int_spec(MapType.HASH, numa_node=0)) as m:
        assert m.flags & MapFlags.NUMA_NODE


@pytest.mark.parametrize("spec,cls,code,words", [
    (MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=1, name="lru",
             flags=MapFlags.NO_COMMON_LRU),
     InvalidArgumentError, errno.EINVAL,
     ["create map 'lru' (HASH): the kernel refused the definition (key_size=4, value_size=4, "
      "max_entries=1, flags=<MapFlags.NO_COMMON_LRU: 2>)", "check the sizes and flags"]),
    (MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=2**31 + 1, name="big"),
     InvalidArgumentError, errno.E2BIG, ["create map 'big' (HASH): key, value or max_entries too "
                                 "large"]),
    (MapSpec(MapType.ARRAY, value_size=4, max_entries=1, name="bad name"),
     InvalidArgumentError, errno.EINVAL, ["name 'bad name' is invalid", "15 characters"]),
], ids=["kernel-einval", "too-big", "bad-name"])
def test_create_errors(map_leak_check: None, spec: MapSpec, cls: type[BPFError], code: int,
                       words: list[str]) -> None:
    with pytest.raises(cls) as info:
        Map.create(spec)
    assert type(info.value) is cls and info.value.errno == code
    for w in words:
        assert w in str(info.value)
