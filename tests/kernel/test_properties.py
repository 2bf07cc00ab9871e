"""Random operation sequences on real maps, compared step by step with a Python model.

HASH and ARRAY against a dict / list, HASH_OF_MAPS against a dict of "which inner map".
Example counts stay modest: every HASH_OF_MAPS write waits one RCU grace period (~8 ms).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf import (IndexOutOfRangeError, InvalidArgumentError, KeyExistsError,
                     KeyNotFoundError, Map, MapFlags, MapFullError, MapOfMaps, MapSpec, MapType,
                     UpdateFlags)

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
FLAGS = st.sampled_from([UpdateFlags.ANY, UpdateFlags.NOEXIST, UpdateFlags.EXIST])
CAP = 6


def expect(exc: type[BaseException] | None, fn: Any, *args: Any) -> Any:
    """Run fn(*args); it must raise exactly ``exc`` (or nothing when exc is None)."""
    if exc is None:
        return fn(*args)
    with pytest.raises(exc):
        fn(*args)
    return None


# == HASH vs dict =============================================================================
KEYS = st.integers(0, 9)
VALUES = st.integers(0, 2**64 - 1)
HASH_OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, VALUES),
    st.tuples(st.just("update"), KEYS, VALUES, FLAGS),
    st.tuples(st.just("del"), KEYS),
    st.tuples(st.just("pop"), KEYS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("clear")),
    st.tuples(st.just("walk_delete"), st.lists(st.booleans(), min_size=1, max_size=10)),
), max_size=40)


def hash_write_error(model: dict[int, int], k: int, flags: int) -> type[Exception] | None:
    present = k in model
    if flags == UpdateFlags.NOEXIST and present:
        return KeyExistsError
    if flags == UpdateFlags.EXIST and not present:
        return KeyNotFoundError
    if not present and len(model) >= CAP:
        return MapFullError
    return None


@pytest.mark.parametrize("flags", [MapFlags(0), MapFlags.NO_PREALLOC],
                         ids=["prealloc", "no-prealloc"])
@SETTINGS
@given(ops=HASH_OPS)
def test_hash_behaves_like_a_dict(flags: MapFlags, ops: list[tuple[Any, ...]]) -> None:
    spec = MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=CAP, flags=flags,
                   key_type=int, value_type=int)
    model: dict[int, int] = {}
    with Map.create(spec) as m:
        for op, *args in ops:
            if op == "set":
                k, v = args
                err = hash_write_error(model, k, UpdateFlags.ANY)
                expect(err, m.__setitem__, k, v)
                if err is None:
                    model[k] = v
            elif op == "update":
                k, v, f = args
                err = hash_write_error(model, k, f)
                expect(err, m.update, k, v, f)
                if err is None:
                    model[k] = v
            elif op == "del":
                (k,) = args
                expect(None if k in model else KeyNotFoundError, m.__delitem__, k)
                model.pop(k, None)
            elif op == "pop":
                (k,) = args
                assert m.pop(k, None) == model.pop(k, None)
            elif op == "get":
                (k,) = args
                assert (k in m) is (k in model)
                assert m.get(k) == model.get(k)
            elif op == "clear":
                m.clear()
                model.clear()
            elif op == "walk_delete":
                (pattern,) = args
                seen = []
                for i, k in enumerate(m):
                    seen.append(k)
                    if pattern[i % len(pattern)]:
                        del m[k]
                        del model[k]
                assert len(seen) == len(set(seen))
                assert set(seen) >= set(model)
            assert dict(m.items()) == model
            assert len(m) == len(model)


# == ARRAY vs list ============================================================================
INDEXES = st.integers(0, CAP + 2)  # some out of range
ARRAY_OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), INDEXES, VALUES),
    st.tuples(st.just("update"), INDEXES, VALUES, FLAGS),
    st.tuples(st.just("get"), INDEXES),
    st.tuples(st.just("del"), INDEXES),
    st.tuples(st.just("pop"), INDEXES),
), max_size=40)


@pytest.mark.parametrize("flags", [MapFlags(0), MapFlags.MMAPABLE], ids=["syscall", "mmap"])
@SETTINGS
@given(ops=ARRAY_OPS)
def test_array_behaves_like_a_list(flags: MapFlags, ops: list[tuple[Any, ...]]) -> None:
    spec = MapSpec(MapType.ARRAY, value_size=8, max_entries=CAP, flags=flags, key_type=int,
                   value_type=int)
    model = [0] * CAP
    with Map.create(spec) as m:
        for op, *args in ops:
            i = args[0]
            inside = i < CAP
            if op == "set":
                expect(None if inside else IndexOutOfRangeError, m.__setitem__, i, args[1])
                if inside:
                    model[i] = args[1]
            elif op == "update":
                _, v, f = args
                err = (IndexOutOfRangeError if not inside else
                       KeyExistsError if f == UpdateFlags.NOEXIST else None)
                expect(err, m.update, i, v, f)
                if err is None:
                    model[i] = v
            elif op == "get":
                assert (i in m) is inside
                assert m.get(i) == (model[i] if inside else None)
            elif op == "del":  # the kernel never deletes array elements: EINVAL
                expect(InvalidArgumentError, m.__delitem__, i)
            elif op == "pop":  # lookup first: an index out of range is simply not there
                expect(InvalidArgumentError if inside else KeyNotFoundError, m.pop, i)
            assert len(m) == CAP
            assert list(m.items()) == list(enumerate(model))


# == HASH_OF_MAPS vs dict of pool indexes =====================================================
OUTER_CAP = 4
POOL = 3
SLOTS = st.integers(0, 6)
PICK = st.integers(0, POOL - 1)
OUTER_OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), SLOTS, PICK),
    st.tuples(st.just("update"), SLOTS, PICK, FLAGS),
    st.tuples(st.just("swap"), SLOTS, PICK),
    st.tuples(st.just("del"), SLOTS),
    st.tuples(st.just("pop"), SLOTS),
    st.tuples(st.just("lookup"), SLOTS),
), max_size=12)


@SETTINGS
@given(ops=OUTER_OPS)
def test_hash_of_maps_behaves_like_a_dict_of_maps(ops: list[tuple[Any, ...]]) -> None:
    inner = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4, key_type=int,
                    value_type=int)
    spec = MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=OUTER_CAP, inner=inner,
                   key_type=int)
    model: dict[int, int] = {}
    with Map.create(spec) as outer:
        assert isinstance(outer, MapOfMaps)
        pool = [outer.new_inner() for _ in range(POOL)]
        try:
            ids = [p.id for p in pool]
            for op, *args in ops:
                k = args[0]
                if op in ("set", "update"):
                    j = args[1]
                    f = args[2] if op == "update" else UpdateFlags.ANY
                    present = k in model
                    err = (KeyExistsError if f == UpdateFlags.NOEXIST and present else
                           KeyNotFoundError if f == UpdateFlags.EXIST and not present else
                           MapFullError if not present and len(model) >= OUTER_CAP else None)
                    expect(err, outer.update, k, pool[j], f)
                    if err is None:
                        model[k] = j
                elif op == "swap":
                    j = args[1]
                    if k not in model and len(model) >= OUTER_CAP:
                        expect(MapFullError, outer.swap, k, pool[j])
                    else:
                        old = outer.swap(k, pool[j])
                        assert (old.id if old is not None else None) == \
                            (ids[model[k]] if k in model else None)
                        model[k] = j
                elif op == "del":
                    expect(None if k in model else KeyNotFoundError, outer.__delitem__, k)
                    model.pop(k, None)
                elif op == "pop":
                    got = outer.pop(k, None)
                    want = model.pop(k, None)
                    assert (got.id if got is not None else None) == \
                        (ids[want] if want is not None else None)
                elif op == "lookup":
                    assert (k in outer) is (k in model)
                    if k in model:
                        assert outer[k].id == ids[model[k]] == outer.inner_id(k)
                assert dict(outer.inner_ids()) == {key: ids[j] for key, j in model.items()}
            assert sorted(outer) == sorted(model) and len(outer) == len(model)
        finally:
            for p in pool:
                p.close()
