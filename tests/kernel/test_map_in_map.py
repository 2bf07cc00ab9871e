"""ARRAY_OF_MAPS / HASH_OF_MAPS through MapOfMaps, checked against the kernel's rules
(docs: kernel-map-in-map.md sections 2, 3, 5, 9).

Tests named ``test_kernel_*`` call the _sys layer directly to confirm what the kernel itself
returns, so the library's pre-syscall checks cannot drift from it.
"""

from __future__ import annotations

import errno
import gc
import os
import re
import sys
import uuid
from collections.abc import Iterator

import pytest

from purebpf import (BPFError, BPFPermissionError, ClosedError, IndexOutOfRangeError,
                     InnerMapMismatchError, InvalidArgumentError, KeyExistsError,
                     KeyNotFoundError, Map, MapFlags, MapFullError, MapOfMaps, MapSpec, MapType,
                     NotSupportedError, UpdateFlags)
from purebpf._spec import Template
from purebpf._sys import ops
from purebpf._sys.syscall import ElemIO, close_fd, last_errno
from purebpf.errors import ENOTSUPP

from conftest import open_fds, wait_for
from helpers import alive, bpffs  # noqa: F401 (bpffs: a fixture)

AOM, HOM = MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS
INNER_ARRAY = MapSpec(MapType.ARRAY, value_size=4, max_entries=4, key_type=int, value_type=int)
INNER_HASH = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8, key_type=int,
                     value_type=int)
DYN_ARRAY = INNER_ARRAY.replace(flags=MapFlags.INNER_MAP)


def outer_spec(t: MapType = AOM, inner: MapSpec | None = INNER_ARRAY, n: int = 4,
               **kw: object) -> MapSpec:
    extra = {"key_size": 4, "key_type": int} if t == HOM else {"key_type": int}
    return MapSpec(t, max_entries=n, inner=inner, name=f"o_{t.name[:4].lower()}",
                   **extra, **kw)  # type: ignore[arg-type]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:15 - len(prefix)]}"


def map_names() -> set[str]:
    """Names of every live kernel map (maps vanishing meanwhile are skipped)."""
    names = set()
    for i in Map.ids():
        try:
            with Map.from_id(i) as m:
                names.add(m.name)
        except BPFError as exc:
            if exc.errno != errno.ENOENT:
                raise
    return names


def fd_target(fd: int) -> str:
    """What fd points at ('' when it is not open); readlink opens no fd itself."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        return ""


NE = sys.byteorder


def u32(v: int) -> bytes:
    return v.to_bytes(4, NE)


# -- raw kernel helpers (the _sys layer, no library logic) -----------------------------------
def raw_create_errno(t: int, ks: int, vs: int, n: int, flags: int = 0,
                     inner_fd: int = 0) -> int:
    """0 if BPF_MAP_CREATE succeeds (the map is closed again), else its errno."""
    try:
        fd = ops.map_create(int(t), ks, vs, n, int(flags), inner_map_fd=inner_fd)
    except BPFError as exc:
        return exc.errno or -1
    close_fd(fd)
    return 0


def raw_update_errno(outer: Map, key: bytes, inner_fd: int, flags: int = 0) -> int:
    io = ElemIO(outer.fd, outer.key_size, 4, gil=False)
    io.key[:len(key)] = key
    io.value[:4] = u32(inner_fd)
    return 0 if io.update(flags) == 0 else last_errno()


def raw_errno(outer: Map, key: bytes, op: str) -> int:
    io = ElemIO(outer.fd, outer.key_size, 4, gil=False)
    io.key[:len(key)] = key
    return 0 if getattr(io, op)() == 0 else last_errno()


@pytest.fixture
def aom() -> Iterator[MapOfMaps]:
    with Map.create(outer_spec(AOM)) as m:
        assert isinstance(m, MapOfMaps)
        yield m


@pytest.fixture
def hom() -> Iterator[MapOfMaps]:
    with Map.create(outer_spec(HOM, INNER_HASH, n=4)) as m:
        assert isinstance(m, MapOfMaps)
        yield m


# == creation =================================================================================
@pytest.mark.parametrize("t,inner", [(AOM, INNER_ARRAY), (AOM, INNER_HASH), (HOM, INNER_ARRAY),
                                     (HOM, INNER_HASH)], ids=["aom-array", "aom-hash",
                                                              "hom-array", "hom-hash"])
def test_create_from_inner_spec_closes_the_template(map_leak_check: None, t: MapType,
                                                    inner: MapSpec) -> None:
    tname = unique("tmpl")
    with Map.create(outer_spec(t, inner.replace(name=tname))) as outer:
        assert isinstance(outer, MapOfMaps)
        assert (outer.type, outer.value_size) == (t, 4)
        assert outer.template == Template.of(inner)
        spec = outer.inner_spec
        assert spec is not None
        assert (spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.flags) == \
            (inner.type, inner.key_size, inner.value_size, inner.max_entries, inner.flags)
        assert tname not in map_names(), "the temporary template map is still alive"
        assert repr(outer) == f"<MapOfMaps {t.name} '{outer.name}' id={outer.id} fd={outer.fd}>"


def test_create_from_live_inner_map(map_leak_check: None) -> None:
    with Map.create(INNER_HASH.replace(name="live")) as tmpl:
        with Map.create(outer_spec(HOM, inner=None), inner_map=tmpl) as outer:
            assert outer.template == tmpl.info().template
            assert outer.inner_spec is not None and outer.inner_spec.value_type is int
            tmpl[1] = 2  # the template map is left open and is a normal map
            outer[7] = tmpl  # ... which can itself be an inner map
            assert outer[7].id == tmpl.id and outer[7][1] == 2
        assert tmpl[1] == 2


def test_live_inner_map_wins_over_inner_spec() -> None:
    with Map.create(INNER_ARRAY.replace(max_entries=8)) as tmpl, \
            Map.create(outer_spec(AOM, INNER_ARRAY), inner_map=tmpl) as outer:
        assert outer.template is not None and outer.template.max_entries == 8
        with outer.new_inner() as fresh:
            assert fresh.max_entries == 8
            outer[0] = fresh
            assert outer.inner_id(0) == fresh.id


PRE_SYSCALL = [
    ("nested-spec", outer_spec(AOM, outer_spec(HOM, INNER_HASH)), InvalidArgumentError,
     errno.EINVAL, ["is itself a map-in-map", "one level of nesting"]),
    ("inner-map-flag-on-hash-inner", outer_spec(HOM, INNER_HASH.replace(flags=MapFlags.INNER_MAP)),
     InvalidArgumentError, errno.EINVAL, ["inner-map template", "BPF_F_INNER_MAP is only valid on "
                                          "ARRAY maps, not HASH"]),
    ("inner-map-flag-on-outer", outer_spec(AOM, flags=MapFlags.INNER_MAP), InvalidArgumentError,
     errno.EINVAL, ["BPF_F_INNER_MAP is only valid on ARRAY maps, not ARRAY_OF_MAPS"]),
    ("value-size-8", outer_spec(HOM, INNER_HASH, value_size=8), InvalidArgumentError,
     errno.EINVAL, ["value_size must be 4 for HASH_OF_MAPS", "got 8"]),
    ("no-template", outer_spec(AOM, None), InvalidArgumentError, errno.EINVAL,
     ["needs an inner-map template"]),
    ("max-entries-0", outer_spec(AOM, n=0), InvalidArgumentError, errno.EINVAL,
     ["max_entries must be at least 1"]),
] + [
    (f"rejected-{t.name}", outer_spec(AOM, MapSpec(t, key_size=4, value_size=4, max_entries=1)),
     NotSupportedError, ENOTSUPP, [f"{t.name} cannot be an inner map"])
    for t in (MapType.PROG_ARRAY, MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE,
              MapType.STRUCT_OPS)
]


@pytest.mark.parametrize("spec,cls,code,words", [p[1:] for p in PRE_SYSCALL],
                         ids=[p[0] for p in PRE_SYSCALL])
def test_create_refused_before_the_syscall(map_leak_check: None, spec: MapSpec,
                                           cls: type[BPFError], code: int,
                                           words: list[str]) -> None:
    with pytest.raises(cls) as info:
        Map.create(spec)
    assert type(info.value) is cls and info.value.errno == code
    assert str(info.value).startswith(f"create {spec.describe()}: ")
    for w in words:
        assert w in str(info.value)


# Live maps of each type the kernel refuses as a template (STRUCT_OPS needs kernel BTF).
REJECTED_LIVE = [
    MapSpec(MapType.PROG_ARRAY, max_entries=1),
    MapSpec(MapType.CGROUP_STORAGE, key_size=16, value_size=4, max_entries=0),
    MapSpec(MapType.PERCPU_CGROUP_STORAGE, key_size=16, value_size=4, max_entries=0),
]


@pytest.mark.parametrize("inner", REJECTED_LIVE, ids=lambda s: s.type.name)
def test_kernel_refuses_these_inner_types_with_enotsupp(inner: MapSpec) -> None:
    with Map.create(inner) as live:
        assert raw_create_errno(AOM, 4, 4, 1, inner_fd=live.fd) == ENOTSUPP
        assert raw_create_errno(HOM, 4, 4, 1, inner_fd=live.fd) == ENOTSUPP
        with pytest.raises(NotSupportedError) as info:
            Map.create(outer_spec(AOM, None), inner_map=live)
        assert info.value.errno == ENOTSUPP
        assert f"{inner.type.name} cannot be an inner map" in str(info.value)
        assert info.value.feature == f"inner map type {inner.type.name}"


@pytest.mark.parametrize("t", [AOM, HOM], ids=lambda t: t.name)
def test_outer_map_as_template_is_refused(map_leak_check: None, aom: MapOfMaps,
                                          t: MapType) -> None:
    assert raw_create_errno(t, 4, 4, 1, inner_fd=aom.fd) == errno.EINVAL  # the kernel's rule
    with pytest.raises(InvalidArgumentError) as info:
        Map.create(outer_spec(t, None), inner_map=aom)
    assert info.value.errno == errno.EINVAL
    assert "inner map ARRAY_OF_MAPS is itself a map-in-map" in str(info.value)


def test_kernel_create_rules_our_prechecks_mirror() -> None:
    with Map.create(INNER_HASH) as h:
        inner = h.fd
        assert raw_create_errno(MapType.HASH, 4, 4, 1, MapFlags.INNER_MAP) == errno.EINVAL
        assert raw_create_errno(MapType.ARRAY, 4, 4, 1, MapFlags.INNER_MAP) == 0
        assert raw_create_errno(AOM, 4, 4, 1, MapFlags.INNER_MAP, inner) == errno.EINVAL
        assert raw_create_errno(HOM, 4, 4, 1, MapFlags.INNER_MAP, inner) == errno.EINVAL
        assert raw_create_errno(HOM, 4, 8, 1, 0, inner) == errno.EINVAL
        assert raw_create_errno(AOM, 4, 8, 1, 0, inner) == errno.EINVAL
        assert raw_create_errno(AOM, 8, 4, 1, 0, inner) == errno.EINVAL
        assert raw_create_errno(AOM, 4, 4, 0, 0, inner) == errno.EINVAL
        assert raw_create_errno(AOM, 4, 4, 1, MapFlags.NO_PREALLOC, inner) == errno.EINVAL
        assert raw_create_errno(HOM, 4, 4, 1, MapFlags.NO_PREALLOC, inner) == 0
        assert raw_create_errno(AOM, 4, 4, 1, 0, inner) == 0


def test_closed_template_map_is_closed_error() -> None:
    m = Map.create(INNER_ARRAY)
    m.close()
    with pytest.raises(ClosedError) as info:
        Map.create(outer_spec(AOM, None), inner_map=m)
    assert info.value.errno == errno.EBADF and "the template map is closed" in str(info.value)


def test_kernel_failure_after_the_template_leaves_nothing(map_leak_check: None) -> None:
    tname = unique("tmpl")
    spec = outer_spec(HOM, INNER_HASH.replace(name=tname), n=2**31 + 1)
    with pytest.raises(InvalidArgumentError) as info:
        Map.create(spec)
    assert info.value.errno == errno.E2BIG and "too large" in str(info.value)
    assert tname not in map_names()


def test_template_creation_failure_is_prefixed(map_leak_check: None) -> None:
    spec = outer_spec(HOM, INNER_HASH.replace(max_entries=2**31 + 1))
    with pytest.raises(InvalidArgumentError) as info:
        Map.create(spec)
    assert str(info.value).startswith(f"create {spec.describe()}: inner-map template: create ")


# == the template check on insertion ==========================================================
MISMATCH = [
    ("type", INNER_ARRAY, INNER_HASH, MapType.ARRAY, MapType.HASH),
    ("key_size", INNER_HASH, INNER_HASH.replace(key_size=8, key_type=None), 4, 8),
    ("value_size", INNER_HASH, INNER_HASH.replace(value_size=8, value_type=None), 4, 8),
    ("map_flags", INNER_HASH, INNER_HASH.replace(flags=MapFlags.NO_PREALLOC), 0,
     int(MapFlags.NO_PREALLOC)),
    ("map_flags", INNER_HASH.replace(flags=MapFlags.NO_PREALLOC), INNER_HASH,
     int(MapFlags.NO_PREALLOC), 0),
    ("map_flags", DYN_ARRAY, INNER_ARRAY, int(MapFlags.INNER_MAP), 0),
    ("max_entries", INNER_ARRAY, INNER_ARRAY.replace(max_entries=8), 4, 8),
]


@pytest.mark.parametrize("outer_type", [AOM, HOM], ids=lambda t: t.name)
@pytest.mark.parametrize("field,tmpl,cand,expected,actual", MISMATCH,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISMATCH)])
def test_mismatched_inner_map(map_leak_check: None, outer_type: MapType, field: str,
                              tmpl: MapSpec, cand: MapSpec, expected: object,
                              actual: object) -> None:
    with Map.create(outer_spec(outer_type, tmpl)) as outer, Map.create(cand) as inner:
        assert raw_update_errno(outer, u32(0), inner.fd) == errno.EINVAL  # the kernel agrees
        with pytest.raises(InnerMapMismatchError) as info:
            outer[0] = inner
        e = info.value
        assert isinstance(e, ValueError) and e.errno == errno.EINVAL
        assert (e.field, e.expected, e.actual) == (field, expected, actual)
        assert "update map" not in str(e)  # raised by our check, not from the kernel's EINVAL
        assert str(e).startswith(f"insert into map '{outer.name}' ({outer_type.name} "
                                 f"id={outer.id}): inner map {field} ")
        if field == "max_entries":
            assert "BPF_F_INNER_MAP" in e.hint
        if field == "map_flags":
            assert "outer.new_inner()" in e.hint
        assert len(outer) == 0


ACCEPTED = [
    ("hash-other-max-entries", INNER_HASH, INNER_HASH.replace(max_entries=100)),
    ("inner-map-array-other-size", DYN_ARRAY, DYN_ARRAY.replace(max_entries=64)),
    ("percpu-array-other-size", MapSpec(MapType.PERCPU_ARRAY, value_size=4, max_entries=2),
     MapSpec(MapType.PERCPU_ARRAY, value_size=4, max_entries=9)),
    ("rdonly-fd-flag-ignored", INNER_HASH, INNER_HASH.replace(flags=MapFlags.RDONLY)),
]


@pytest.mark.parametrize("tmpl,cand", [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted_inner_maps_that_differ(map_leak_check: None, tmpl: MapSpec,
                                         cand: MapSpec) -> None:
    with Map.create(outer_spec(AOM, tmpl)) as outer, Map.create(cand) as inner:
        assert raw_update_errno(outer, u32(1), inner.fd) == 0  # the kernel accepts it ...
        del outer[1]
        outer[0] = inner  # ... and so do we
        assert outer.inner_id(0) == inner.id


# == elements =================================================================================
@pytest.mark.parametrize("inner", [
    INNER_ARRAY, INNER_HASH, INNER_HASH.replace(type=MapType.LRU_HASH),
    MapSpec(MapType.PERCPU_ARRAY, value_size=4, max_entries=2, value_type=int),
    MapSpec(MapType.PERCPU_HASH, key_size=4, value_size=4, max_entries=2, key_type=int,
            value_type=int),
], ids=lambda s: s.type.name)
@pytest.mark.parametrize("t", [AOM, HOM], ids=lambda t: t.name)
def test_insert_then_lookup_returns_the_same_live_map(t: MapType, inner: MapSpec) -> None:
    with Map.create(outer_spec(t, inner)) as outer, outer.new_inner() as m:
        m[1] = 5
        outer[2] = m
        with outer[2] as got, outer.get(2) as again:
            assert isinstance(got, Map) and not isinstance(got, MapOfMaps)
            assert got.id == m.id and got == m and got is not m
            assert outer.inner_id(2) == m.id
            assert 2 in outer and again.id == got.id and again is not got
            assert outer.get(3) is None
            five = [5] * len(got[1]) if inner.type.is_percpu else 5
            assert got[1] == five  # decoded with the template's declared types
            got[0] = 9  # writes through either handle reach the one kernel map
            assert m[0] == ([9] * len(five) if inner.type.is_percpu else 9)


def test_kernel_lookup_returns_the_inner_map_id(aom: MapOfMaps) -> None:
    with aom.new_inner() as m:
        aom[1] = m
        io = ElemIO(aom.fd, 4, 4, gil=False)
        io.key[:4] = u32(1)
        assert io.lookup() == 0
        assert int.from_bytes(bytes(io.value)[:4], NE) == m.id == ops.map_info(m.fd).id


def test_with_on_a_lookup_closes_its_fd_every_time(hom: MapOfMaps) -> None:
    """10^4 ``with outer[k] as m:`` cycles leave the fd count where it started."""
    with hom.new_inner() as m:
        hom[1] = m
        before = open_fds()
        for _ in range(10_000):
            with hom[1] as got:
                assert not got.closed
            assert got.closed
        assert open_fds() == before, "lookups left fds open"
        first = hom[1]
        fd = first.fd
        assert "bpf-map" in fd_target(fd)
        first.close()
        assert first.closed and fd_target(fd) != "anon_inode:bpf-map"
        dropped = hom[1]
        fd = dropped.fd
        del dropped  # a dropped handle closes at once (CPython), without a warning
        gc.collect()
        assert "bpf-map" not in fd_target(fd), "a dropped looked-up map kept its fd"


def test_array_of_maps_iteration_skips_empty_slots(aom: MapOfMaps) -> None:
    with Map.create(outer_spec(AOM, n=6)) as outer:
        a, b = outer.new_inner(), outer.new_inner()
        with a, b:
            outer[1], outer[4] = a, b
            assert raw_errno(outer, u32(0), "lookup") == errno.ENOENT  # empty slot, kernel
            assert list(outer) == [1, 4] and list(outer.keys()) == [1, 4]
            assert len(outer) == 2
            assert [(k, v.id) for k, v in outer.items()] == [(1, a.id), (4, b.id)]
            assert [v.id for v in outer.values()] == [a.id, b.id]
            assert list(outer.inner_ids()) == [(1, a.id), (4, b.id)]
            assert 0 not in outer and 5 not in outer and 6 not in outer
            with pytest.raises(KeyNotFoundError) as info:
                outer[0]
            assert info.value.errno == errno.ENOENT
            assert f"lookup map '{outer.name}' (ARRAY_OF_MAPS id={outer.id}): key 0 not found" \
                in str(info.value)


def test_hash_of_maps_iteration(hom: MapOfMaps) -> None:
    maps = [hom.new_inner() for _ in range(3)]
    try:
        for k, m in zip((10, 20, 30), maps):
            hom[k] = m
        assert sorted(hom) == [10, 20, 30] and len(hom) == 3
        assert {k: v.id for k, v in hom.items()} == {10: maps[0].id, 20: maps[1].id,
                                                      30: maps[2].id}
    finally:
        for m in maps:
            m.close()


def test_array_of_maps_replace_occupied_slot(aom: MapOfMaps) -> None:
    with aom.new_inner() as a, aom.new_inner() as b:
        aom[0] = a
        aom[0] = b  # BPF_ANY replaces
        assert aom.inner_id(0) == b.id


def test_delete(aom: MapOfMaps, hom: MapOfMaps) -> None:
    with aom.new_inner() as a, hom.new_inner() as h:
        aom[3] = a
        del aom[3]
        assert 3 not in aom and len(aom) == 0
        assert raw_errno(aom, u32(3), "delete") == errno.ENOENT
        with pytest.raises(KeyNotFoundError) as info:
            del aom[3]
        assert info.value.errno == errno.ENOENT
        assert f"delete map '{aom.name}' (ARRAY_OF_MAPS id={aom.id}): key 3 not found" in \
            str(info.value)
        hom[5] = h
        del hom[5]
        with pytest.raises(KeyNotFoundError) as info2:
            del hom[5]
        assert "delete" in str(info2.value) and info2.value.errno == errno.ENOENT


def test_array_of_maps_index_out_of_range(aom: MapOfMaps) -> None:
    with aom.new_inner() as a:
        assert raw_update_errno(aom, u32(4), a.fd) == errno.E2BIG
        assert raw_errno(aom, u32(4), "delete") == errno.E2BIG
        assert raw_errno(aom, u32(4), "lookup") == errno.ENOENT
        with pytest.raises(IndexOutOfRangeError) as info:
            aom[4] = a
        e = info.value
        assert isinstance(e, IndexError) and e.errno == errno.E2BIG
        assert f"update map '{aom.name}' (ARRAY_OF_MAPS id={aom.id}): index 4 out of range " \
               "(max_entries 4)" in str(e)
        with pytest.raises(IndexOutOfRangeError) as info2:
            del aom[4]
        assert info2.value.errno == errno.E2BIG and "delete" in str(info2.value)
        with pytest.raises(KeyNotFoundError):
            aom[4]


@pytest.mark.parametrize("flags", [UpdateFlags.NOEXIST, UpdateFlags.EXIST],
                         ids=lambda f: f.name)
def test_array_of_maps_takes_only_bpf_any(aom: MapOfMaps, flags: UpdateFlags) -> None:
    with aom.new_inner() as a:
        assert raw_update_errno(aom, u32(0), a.fd, int(flags)) == errno.EINVAL  # the kernel
        aom.freeze()  # a frozen map: the kernel would now say EPERM, so EINVAL is ours
        with pytest.raises(InvalidArgumentError) as info:
            aom.update(0, a, flags)
        e = info.value
        assert type(e) is InvalidArgumentError and e.errno == errno.EINVAL
        assert f"update map '{aom.name}' (ARRAY_OF_MAPS id={aom.id}): ARRAY_OF_MAPS accepts " \
               f"only BPF_ANY, got {flags.name}" in str(e)
        assert "HASH_OF_MAPS" in e.hint
        with pytest.raises(InvalidArgumentError):
            aom.update_batch([0], [a], flags)


def test_hash_of_maps_update_flags_and_capacity(hom: MapOfMaps) -> None:
    maps = [hom.new_inner() for _ in range(5)]
    try:
        hom.update(1, maps[0], UpdateFlags.NOEXIST)
        assert raw_update_errno(hom, u32(1), maps[1].fd, UpdateFlags.NOEXIST) == errno.EEXIST
        with pytest.raises(KeyExistsError) as info:
            hom.update(1, maps[1], UpdateFlags.NOEXIST)
        assert info.value.errno == errno.EEXIST
        assert f"update map '{hom.name}' (HASH_OF_MAPS id={hom.id}): key 1 already exists " \
               "(NOEXIST given)" in str(info.value)
        assert hom.inner_id(1) == maps[0].id
        assert raw_update_errno(hom, u32(2), maps[1].fd, UpdateFlags.EXIST) == errno.ENOENT
        with pytest.raises(KeyNotFoundError) as info2:
            hom.update(2, maps[1], UpdateFlags.EXIST)
        assert info2.value.errno == errno.ENOENT and "key 2 not found" in str(info2.value)
        hom.update(1, maps[1], UpdateFlags.EXIST)
        assert hom.inner_id(1) == maps[1].id
        for k in (2, 3, 4):
            hom[k] = maps[k]
        assert raw_update_errno(hom, u32(5), maps[0].fd) == errno.E2BIG
        with pytest.raises(MapFullError) as info3:
            hom[5] = maps[0]
        assert info3.value.errno == errno.E2BIG
        assert f"update map '{hom.name}' (HASH_OF_MAPS id={hom.id}): map is full " \
               "(max_entries 4)" in str(info3.value)
    finally:
        for m in maps:
            m.close()


@pytest.mark.parametrize("t", [AOM, HOM], ids=lambda t: t.name)
def test_pop_on_outer_maps(t: MapType) -> None:
    inner = INNER_ARRAY if t == AOM else INNER_HASH
    with Map.create(outer_spec(t, inner)) as outer, outer.new_inner() as m:
        outer[1] = m
        # the kernel has no BPF_MAP_LOOKUP_AND_DELETE_ELEM for outer maps: ENOTSUPP (524)
        assert raw_errno(outer, u32(1), "lookup_and_delete") == ENOTSUPP
        got = outer.pop(1)
        assert isinstance(got, Map) and got.id == m.id
        assert 1 not in outer
        assert outer.pop(1, None) is None
        with pytest.raises(KeyNotFoundError) as info:
            outer.pop(1)
        assert info.value.errno == errno.ENOENT


def test_swap_returns_the_old_map(hom: MapOfMaps) -> None:
    with hom.new_inner() as a, hom.new_inner() as b:
        assert hom.swap(1, a) is None  # empty before
        a[7] = 70
        old = hom.swap(1, b)
        assert old is not None and old.id == a.id and old[7] == 70
        assert hom.inner_id(1) == b.id


def test_swap_on_array_of_maps_out_of_range(aom: MapOfMaps) -> None:
    with aom.new_inner() as a:
        with pytest.raises(IndexOutOfRangeError):
            aom.swap(9, a)


# == staged ===================================================================================
def test_staged_success_swaps_in_and_frees_the_old(map_leak_check: None,
                                                   hom: MapOfMaps) -> None:
    with hom.new_inner() as old:
        old[1] = 1
        hom[5] = old
        old_id = old.id
    with hom.staged(5) as new:
        assert hom.inner_id(5) == old_id  # not yet swapped inside the block
        new[2] = 2
        new_id = new.id
    assert new.closed
    assert hom.inner_id(5) == new_id != old_id
    assert dict(hom[5].items()) == {2: 2}
    assert wait_for(lambda: not alive(old_id)), "the replaced inner map was not freed"


class Boom(Exception):
    pass


def test_staged_exception_keeps_the_old_and_discards_the_new(map_leak_check: None,
                                                             aom: MapOfMaps) -> None:
    with aom.new_inner() as old:
        old[0] = 11
        aom[2] = old
        new_id = None
        with pytest.raises(Boom):
            with aom.staged(2) as new:
                new_id = new.id
                new[0] = 99
                raise Boom
        assert new.closed and new_id is not None
        assert aom.inner_id(2) == old.id and aom[2][0] == 11
        assert wait_for(lambda: not alive(new_id)), "the discarded inner map leaked"


def test_staged_copy_into_a_bigger_inner_array(map_leak_check: None) -> None:
    with Map.create(outer_spec(AOM, DYN_ARRAY)) as outer:
        with outer.new_inner() as old:
            for i in range(4):
                old[i] = 10 + i
            outer[0] = old
        with outer.staged(0, copy=True, max_entries=8) as new:
            assert new.max_entries == 8 and new.flags & MapFlags.INNER_MAP
            assert [new[i] for i in range(4)] == [10, 11, 12, 13]
            new[7] = 17
        cur = outer[0]
        assert cur.max_entries == 8
        assert [cur[i] for i in range(8)] == [10, 11, 12, 13, 0, 0, 0, 17]


def test_staged_copy_of_an_empty_slot_starts_empty(hom: MapOfMaps) -> None:
    with hom.staged(3, copy=True) as new:
        assert len(new) == 0
        new[1] = 1
    assert dict(hom[3].items()) == {1: 1}


def test_staged_with_a_failing_swap_discards_the_new(map_leak_check: None,
                                                     aom: MapOfMaps) -> None:
    with pytest.raises(IndexOutOfRangeError):
        with aom.staged(99) as new:
            new_id = new.id
    assert new.closed
    assert wait_for(lambda: not alive(new_id))


# == the template after reopening =============================================================
def test_new_inner_matches_the_template(hom: MapOfMaps) -> None:
    with hom.new_inner() as m, hom.new_inner(max_entries=32) as big:
        assert m.info().template == hom.template
        assert big.max_entries == 32  # HASH: max_entries is not compared
        hom[1], hom[2] = m, big


def test_inner_spec_recovered_by_id(map_leak_check: None) -> None:
    with Map.create(outer_spec(HOM, INNER_HASH.replace(flags=MapFlags.NO_PREALLOC))) as outer:
        with outer.new_inner() as m:
            outer[1] = m
        with Map.from_id(outer.id) as again:
            assert isinstance(again, MapOfMaps)
            assert again.template == outer.template
            spec = again.inner_spec
            assert spec is not None and spec.flags == MapFlags.NO_PREALLOC
            with Map.create(INNER_HASH) as wrong:  # no NO_PREALLOC: caught before the kernel
                with pytest.raises(InnerMapMismatchError) as info:
                    again[2] = wrong
                assert info.value.field == "map_flags"
            with again.new_inner() as fits:
                again[2] = fits


def test_inner_spec_recovered_by_pin(map_leak_check: None, bpffs: str) -> None:
    path = os.path.join(bpffs, "outer")
    with Map.create(outer_spec(AOM, DYN_ARRAY)) as outer:
        with outer.new_inner(max_entries=16) as m:
            outer[3] = m
        outer.pin(path)
    with Map.from_pin(path) as again:
        assert isinstance(again, MapOfMaps)
        tmpl = again.template
        assert tmpl is not None
        assert (tmpl.type, tmpl.key_size, tmpl.value_size, tmpl.map_flags) == \
            (MapType.ARRAY, 4, 4, int(MapFlags.INNER_MAP))
        with again.new_inner(max_entries=2) as small:
            again[0] = small  # BPF_F_INNER_MAP: any size fits
        again.unpin(path)


def test_opened_empty_outer_has_no_template(aom: MapOfMaps) -> None:
    with Map.from_id(aom.id) as again:
        assert isinstance(again, MapOfMaps)
        assert again.inner_spec is None and again.template is None
        with pytest.raises(InvalidArgumentError) as info:
            again.new_inner()
        assert "the template is unknown" in str(info.value)
        with Map.create(INNER_ARRAY.replace(max_entries=9)) as wrong:
            with pytest.raises(InvalidArgumentError) as info2:
                again[0] = wrong  # only the kernel can judge it now
            e = info2.value
            assert type(e) is InvalidArgumentError and e.errno == errno.EINVAL
            assert "the kernel refused" in str(e) and "template is unknown" in e.hint
        with Map.create(INNER_ARRAY) as fits:
            again[0] = fits
            assert again.template == fits.info().template  # learnt from the first inner map


# == sharing ==================================================================================
def test_same_inner_map_in_two_slots_and_two_outer_maps(map_leak_check: None) -> None:
    with Map.create(outer_spec(AOM)) as o1, Map.create(outer_spec(HOM, INNER_ARRAY)) as o2:
        m = o1.new_inner()
        m[0] = 5
        o1[0] = o1[3] = o2[77] = m
        mid = m.id
        m.close()
        assert o1.inner_id(0) == o1.inner_id(3) == o2.inner_id(77) == mid
        with o1[0] as a, o1[3] as b, o2[77] as c:
            assert a is not b and a.id == b.id == c.id == mid  # one kernel map, three handles
            c[1] = 6
            assert b[1] == 6
        del o1[0], o1[3]
        with o2[77] as c:
            assert alive(mid) and c[0] == 5
        del o2[77]
        assert wait_for(lambda: not alive(mid))


# == errors with values and keys ==============================================================
def test_value_must_be_a_live_map(aom: MapOfMaps) -> None:
    with aom.new_inner() as m:
        for bad in (m.fd, m.id, "x", None):
            with pytest.raises(TypeError, match=re.escape(
                    f"insert into map '{aom.name}' (ARRAY_OF_MAPS id={aom.id}): values are Map "
                    f"objects, got {type(bad).__name__} (pass the inner Map, not its fd or id)")):
                aom[0] = bad  # type: ignore[assignment]
    with pytest.raises(ClosedError) as info:
        aom[0] = m
    assert info.value.errno == errno.EBADF and "the inner map is closed" in str(info.value)


def test_outer_map_as_value_is_refused(aom: MapOfMaps, hom: MapOfMaps) -> None:
    assert raw_update_errno(aom, u32(0), hom.fd) == errno.EINVAL  # the kernel agrees
    with pytest.raises(InvalidArgumentError) as info:
        aom[0] = hom
    assert info.value.errno == errno.EINVAL
    assert f"{hom._desc} is itself a map-in-map" in str(info.value)


def test_wrong_key_length_names_the_map(hom: MapOfMaps) -> None:
    with hom.new_inner() as m:
        with pytest.raises(ValueError, match=re.escape(
                f"key of map '{hom.name}' (HASH_OF_MAPS id={hom.id}) must be 4 bytes, got 2")):
            hom[b"ab"] = m
        with pytest.raises(TypeError, match="got str"):
            hom["k"]


def test_operations_on_a_closed_outer_map(hom: MapOfMaps) -> None:
    m = hom.new_inner()
    with m:
        hom[1] = m
        with Map.from_id(hom.id) as other:
            other.close()
            for op in (lambda: other.__setitem__(2, m), lambda: other[1],
                       lambda: other.__delitem__(1), lambda: list(other),
                       lambda: other.inner_id(1), lambda: other.update_batch([3], [m])):
                with pytest.raises(ClosedError) as info:
                    op()
                assert info.value.errno == errno.EBADF
                assert "inner map" not in str(info.value), str(info.value)
        assert hom.inner_id(1) == m.id


def test_frozen_outer_map_refuses_writes(hom: MapOfMaps) -> None:
    with hom.new_inner() as m:
        hom[1] = m
        hom.freeze()
        with pytest.raises(BPFPermissionError) as info:
            hom[2] = m
        assert info.value.errno == errno.EPERM
        with pytest.raises(BPFPermissionError):
            del hom[1]
        assert hom.inner_id(1) == m.id


def test_tree_and_to_dict(aom: MapOfMaps) -> None:
    with aom.new_inner() as m:
        m[1] = 42
        aom[2] = m
        assert aom.to_dict() == {2: {0: 0, 1: 42, 2: 0, 3: 0}}
        assert aom.to_dict(deep=False)[2].id == m.id
        text = aom.tree()
        assert f"map '{aom.name}' (ARRAY_OF_MAPS id={aom.id}) max_entries=4" in text
        assert "template: ARRAY key=4 value=4 max_entries=4 flags=0" in text
        assert f"[2] -> map (ARRAY id={m.id}) max_entries=4 entries=4" in text
        assert "1: 42" in text
