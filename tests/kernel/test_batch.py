"""Batch commands (BPF_MAP_*_BATCH) on plain and outer maps, and their fallbacks."""

from __future__ import annotations

import errno
import random
import sys
from collections.abc import Iterator

import pytest

from purebpf import (ClosedError, IndexOutOfRangeError, InnerMapMismatchError,
                     InvalidArgumentError, KeyExistsError, KeyNotFoundError, Map, MapFullError,
                     MapOfMaps, MapSpec, MapType, UpdateFlags)
from purebpf._sys import ops
from purebpf._sys.constants import Cmd
from purebpf.errors import ENOTSUPP

NE = sys.byteorder
AOM, HOM = MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS
INNER = MapSpec(MapType.ARRAY, value_size=4, max_entries=2, key_type=int, value_type=int)


def spec(t: MapType = MapType.HASH, n: int = 8192, **kw: object) -> MapSpec:
    return MapSpec(t, key_size=4, value_size=8, max_entries=n, key_type=int, value_type=int,
                   name="batch", **kw)  # type: ignore[arg-type]


def raw_batch_errno(m: Map, cmd: Cmd, capacity: int = 4) -> int:
    """The kernel's own answer to one batch command from the start of the map."""
    b = ops.Batch(m.fd, m.key_size, m.value_size, capacity, max(m.key_size, 4))
    ret = b.run(cmd, capacity, first=True)
    return -ret if ret < 0 else 0


@pytest.fixture
def hmap() -> Iterator[Map]:
    with Map.create(spec()) as m:
        yield m


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_update_and_lookup_batch_hash(hmap: Map, chunk: int) -> None:
    model = {k: k * 3 for k in random.Random(chunk).sample(range(1_000_000), 300)}
    assert hmap.update_batch(model.keys(), model.values()) == 300
    got = hmap.lookup_batch(chunk=chunk)
    assert len(got) == 300 and dict(got) == model
    assert dict(hmap.items()) == model


def test_lookup_batch_survives_buckets_bigger_than_the_chunk(hmap: Map) -> None:
    for k in range(2000):
        hmap[k] = k
    # The kernel refuses a bucket that does not fit (ENOSPC, nothing copied) ...
    b = ops.Batch(hmap.fd, 4, 8, 1, 4)
    first, saw_enospc = True, False
    while True:
        ret = b.run(Cmd.BPF_MAP_LOOKUP_BATCH, 1, first=first)
        if ret == -errno.ENOSPC:
            saw_enospc = True
            break
        if ret == -errno.ENOENT:
            break
        assert ret == 0
        b.advance()
        first = False
    assert saw_enospc, "2000 keys in 8192 buckets: some bucket must hold two"
    # ... and lookup_batch grows its buffer and retries the bucket.
    got = hmap.lookup_batch(chunk=1)
    assert sorted(k for k, _ in got) == list(range(2000))


def test_update_batch_more_than_one_syscall_chunk(hmap: Map) -> None:
    n = 5000  # the library splits at 4096 elements per syscall
    assert hmap.update_batch(range(n), range(n)) == n
    assert len(hmap.lookup_batch(chunk=4096)) == n
    assert hmap.delete_batch(range(n)) == n
    assert len(hmap) == 0


def test_lookup_and_delete_batch_empties(hmap: Map) -> None:
    hmap.update_batch(range(100), range(100, 200))
    got = hmap.lookup_and_delete_batch(chunk=16)
    assert dict(got) == {k: k + 100 for k in range(100)}
    assert len(hmap) == 0
    assert hmap.lookup_and_delete_batch() == []


def test_delete_batch_stops_at_the_first_missing_key(hmap: Map) -> None:
    hmap.update_batch([1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(KeyNotFoundError) as info:
        hmap.delete_batch([1, 2, 99, 3])
    assert info.value.errno == errno.ENOENT
    assert f"delete_batch map 'batch' (HASH id={hmap.id}): key 99 not found" in str(info.value)
    assert sorted(hmap) == [3, 4]


def test_update_batch_noexist_stops_at_an_existing_key(hmap: Map) -> None:
    hmap[5] = 50
    with pytest.raises(KeyExistsError) as info:
        hmap.update_batch([1, 2, 5, 6], [1, 2, 3, 4], UpdateFlags.NOEXIST)
    assert info.value.errno == errno.EEXIST and "key 5 already exists" in str(info.value)
    assert dict(hmap.items()) == {1: 1, 2: 2, 5: 50}


def test_update_batch_full_map() -> None:
    with Map.create(spec(n=4)) as m:
        with pytest.raises(MapFullError) as info:
            m.update_batch(range(6), range(6))
        assert info.value.errno == errno.E2BIG
        assert len(m) == 4


def test_batch_argument_errors(hmap: Map) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        hmap.update_batch([1, 2, 3], [1, 2])
    assert info.value.errno == errno.EINVAL
    assert f"update_batch map 'batch' (HASH id={hmap.id}): 3 keys but 2 values" in \
        str(info.value)
    assert hmap.update_batch([], []) == 0 and hmap.delete_batch([]) == 0
    with pytest.raises(InvalidArgumentError, match="chunk must be >= 1"):
        hmap.lookup_batch(chunk=0)
    with pytest.raises(ValueError, match="must be 4 bytes, got 2"):
        hmap.update_batch([b"ab"], [1])
    assert len(hmap) == 0


def test_percpu_hash_batch_values_are_lists() -> None:
    ncpu = ops.possible_cpus()
    with Map.create(spec(MapType.PERCPU_HASH, n=64)) as m:
        m.update_batch([1, 2], [[1] * ncpu, list(range(ncpu))])
        assert dict(m.lookup_batch(chunk=1)) == {1: [1] * ncpu, 2: list(range(ncpu))}
        assert dict(m.lookup_and_delete_batch()) == {1: [1] * ncpu, 2: list(range(ncpu))}
        assert len(m) == 0


def test_array_batch_and_its_unsupported_deletes() -> None:
    with Map.create(spec(MapType.ARRAY, n=16)) as m:
        assert m.update_batch(range(16), range(100, 116)) == 16
        assert m.lookup_batch(chunk=5) == [(i, 100 + i) for i in range(16)]
        with pytest.raises(IndexOutOfRangeError):
            m.update_batch([15, 16], [0, 0])
        # The kernel has no delete batches for arrays ...
        assert raw_batch_errno(m, Cmd.BPF_MAP_DELETE_BATCH) == ENOTSUPP
        assert raw_batch_errno(m, Cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH) == ENOTSUPP
        # ... and array elements cannot be deleted one by one either.
        for op in (lambda: m.delete_batch([0]), m.lookup_and_delete_batch):
            with pytest.raises(InvalidArgumentError, match="elements cannot be deleted"):
                op()
        assert m[0] == 100


def test_batches_on_a_closed_map() -> None:
    m = Map.create(spec(n=4))
    m.close()
    for op in (lambda: m.update_batch([1], [1]), m.lookup_batch, lambda: m.delete_batch([1]),
               m.lookup_and_delete_batch):
        with pytest.raises(ClosedError):
            op()


# == outer maps ===============================================================================
@pytest.fixture(params=[AOM, HOM], ids=lambda t: t.name)
def outer(request: pytest.FixtureRequest) -> Iterator[MapOfMaps]:
    t = request.param
    kw = {"key_size": 4} if t == HOM else {}
    with Map.create(MapSpec(t, max_entries=64, inner=INNER, key_type=int, name="ob",
                            **kw)) as m:
        assert isinstance(m, MapOfMaps)
        yield m


@pytest.fixture
def inners(outer: MapOfMaps) -> Iterator[list[Map]]:
    maps = [outer.new_inner() for _ in range(64)]
    for i, m in enumerate(maps):
        m[0] = i
    yield maps
    for m in maps:
        m.close()


def test_update_batch_of_64_maps_and_lookup_batch_returns_maps(map_leak_check: None,
                                                               outer: MapOfMaps,
                                                               inners: list[Map]) -> None:
    keys = list(range(63, -1, -1))
    assert outer.update_batch(keys, inners) == 64
    assert {k: outer.inner_id(k) for k in keys} == {k: m.id for k, m in zip(keys, inners)}
    got = outer.lookup_batch(chunk=10)
    assert len(got) == 64
    by_key = dict(got)
    for k, m in zip(keys, inners):
        inner = by_key[k]
        assert isinstance(inner, Map) and inner.id == m.id
        assert inner[0] == m[0]  # a live map, decoded with the template's types
        with outer[k] as single:
            assert single is not inner and single.id == inner.id  # a handle of its own
    for _, inner in got:
        inner.close()  # lookup_batch's handles are the caller's


def test_lookup_batch_on_array_of_maps_skips_holes(inners: list[Map]) -> None:
    with Map.create(MapSpec(AOM, max_entries=10, inner=INNER, key_type=int)) as o:
        o.update_batch([1, 5, 9], inners[:3])
        assert [(k, v.id) for k, v in o.lookup_batch(chunk=2)] == \
            [(1, inners[0].id), (5, inners[1].id), (9, inners[2].id)]


def test_kernel_batch_support_on_outer_maps(outer: MapOfMaps, inners: list[Map]) -> None:
    outer.update_batch([0], inners[:1])
    assert raw_batch_errno(outer, Cmd.BPF_MAP_LOOKUP_BATCH) in (0, errno.ENOENT)
    expect = ENOTSUPP if outer.type == AOM else errno.ENOENT
    assert raw_batch_errno(outer, Cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH) in (expect, 0)


def test_delete_batches_on_outer_maps(map_leak_check: None, outer: MapOfMaps,
                                      inners: list[Map]) -> None:
    outer.update_batch(range(10), inners[:10])
    assert outer.delete_batch([0, 1, 2]) == 3  # ARRAY_OF_MAPS: one delete at a time
    assert sorted(outer) == list(range(3, 10))
    got = outer.lookup_and_delete_batch(chunk=3)
    assert sorted((k, v.id) for k, v in got) == [(k, inners[k].id) for k in range(3, 10)]
    assert len(outer) == 0
    del got
    with pytest.raises(KeyNotFoundError):
        outer.delete_batch([0])


def test_update_batch_checks_every_map_first(map_leak_check: None, outer: MapOfMaps,
                                             inners: list[Map]) -> None:
    with Map.create(INNER.replace(max_entries=3)) as wrong:
        with pytest.raises(InnerMapMismatchError) as info:
            outer.update_batch(range(5), inners[:4] + [wrong])
        assert info.value.field == "max_entries"
        assert "update_batch" in str(info.value)
    assert len(outer) == 0, "a batch with a bad map must write nothing"
    closed = outer.new_inner()
    closed.close()
    with pytest.raises(ClosedError):
        outer.update_batch([0, 1], [inners[0], closed])
    with pytest.raises(TypeError, match="values are Map objects"):
        outer.update_batch([0], [inners[0].fd])
    assert len(outer) == 0


def test_update_batch_stops_at_a_bad_key(outer: MapOfMaps, inners: list[Map]) -> None:
    if outer.type == AOM:
        with pytest.raises(IndexOutOfRangeError) as info:
            outer.update_batch([0, 1, 64, 2], inners[:4])
        assert info.value.errno == errno.E2BIG and "index 64 out of range" in str(info.value)
        assert sorted(outer) == [0, 1]
    else:
        outer.update_batch([7], inners[:1])
        with pytest.raises(KeyExistsError) as info2:
            outer.update_batch([5, 7, 9], inners[1:4], UpdateFlags.NOEXIST)
        assert "key 7 already exists" in str(info2.value)
        assert sorted(outer) == [5, 7] and outer.inner_id(7) == inners[0].id
