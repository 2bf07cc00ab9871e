"""Map-layer defects found in review, each with the test that would have caught it."""

from __future__ import annotations

import errno
import os
import pathlib
import struct
from typing import Any

import pytest

import purebpf
from purebpf import (BPFError, ClosedError, IndexOutOfRangeError, InvalidArgumentError,
                     KeylessMap, KeyNotFoundError, Map, MapFlags, MapFullError, MapOfMaps,
                     MapSpec, MapType, MmapArray, PinExistsError, PinNotFoundError)

from helpers import bpffs, needs_spin_lock_templates  # noqa: F401 (bpffs: a fixture)

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"


# == push/peek belong to keyless maps =========================================================
def test_push_on_a_hash_does_not_reuse_the_last_key() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8,
                            key_type=int, value_type=int)) as h:
        assert h.get(7) is None  # packs 7 into the object's key buffer
        with pytest.raises(TypeError, match=r"push\(\) is for QUEUE, STACK and BLOOM_FILTER"):
            h.push(123)
        with pytest.raises(TypeError, match="4-byte keys"):
            h.peek()
        assert list(h.items()) == []  # nothing was stored at key 7


def test_peek_on_an_array_is_refused() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=2)) as a:
        with pytest.raises(TypeError, match="push\\(\\) is for|peek"):
            a.peek()


def test_keyless_maps_refuse_keys_and_bloom_filters_answer_membership() -> None:
    with Map.create(MapSpec(MapType.BLOOM_FILTER, value_size=4, value_type=int,
                            max_entries=16)) as b:
        assert isinstance(b, KeylessMap)
        b.push(5)
        assert 5 in b and 6 not in b
        with pytest.raises(TypeError, match="has no keys; use push"):
            b[0]
        with pytest.raises(TypeError, match="only answers membership"):
            b.peek()
    with Map.create(MapSpec(MapType.QUEUE, value_size=4, max_entries=2)) as q:
        with pytest.raises(TypeError, match="has no keys"):
            q[0] = b"\0" * 4
        with pytest.raises(TypeError, match="no membership test; use peek"):
            b"\0" * 4 in q  # noqa: B015


# == pins =====================================================================================
def test_pin_with_a_nul_byte_is_refused_and_pins_nothing(bpffs: str) -> None:
    before = sorted(os.listdir(bpffs))  # maps.debug, progs.debug
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) as m:
        with pytest.raises(InvalidArgumentError, match="contains a NUL byte") as info:
            m.pin(os.path.join(bpffs, "a\0b"))
        assert info.value.errno == errno.EINVAL
        assert sorted(os.listdir(bpffs)) == before  # not pinned at the truncated path 'a'
        with pytest.raises(InvalidArgumentError, match="NUL byte"):
            Map.from_pin(os.path.join(bpffs, "a\0b"))
        with pytest.raises(InvalidArgumentError, match="NUL byte"):
            m.unpin(os.path.join(bpffs, "a\0b"))


def test_pin_over_a_path_is_file_exists_and_unpin_of_nothing_is_file_not_found(
        bpffs: str) -> None:
    path = os.path.join(bpffs, "x")
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1, name="p")) as m:
        m.pin(path)
        with pytest.raises(FileExistsError) as exists:
            m.pin(path)
        assert isinstance(exists.value, PinExistsError) and exists.value.errno == errno.EEXIST
        assert "already exists" in str(exists.value) and not isinstance(exists.value, KeyError)
        m.unpin()
        with pytest.raises(FileNotFoundError) as missing:
            m.unpin(path)
        assert isinstance(missing.value, PinNotFoundError)
        assert f"unpin map 'p' (ARRAY id={m.id}) at {path!r}: nothing is pinned there" in \
            str(missing.value)
        with pytest.raises(FileNotFoundError, match="nothing is pinned there"):
            Map.from_pin(path)


# == struct formats of standard size ==========================================================
@pytest.mark.parametrize("fmt", ["=l", "=L", "<i", "=h"])
def test_standard_size_struct_formats_are_their_size_not_c_long(fmt: str) -> None:
    size = struct.calcsize(fmt)
    signed = fmt[-1].islower()
    with Map.create(MapSpec(MapType.HASH, key_size=size, value_size=size, max_entries=64,
                            key_type=fmt, value_type=fmt)) as m:
        want = {i: -i if signed else i for i in range(40)}
        for k, v in want.items():
            m[k] = v
        assert m[5] == want[5]
        assert dict(m.lookup_batch(chunk=7)) == want
        assert dict(m.items()) == want


def test_mmap_array_with_a_standard_size_format() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=4, value_type="=l",
                            flags=MapFlags.MMAPABLE)) as a:
        assert isinstance(a, MmapArray)
        a[1] = -3
        assert a[1] == -3 and a[0] == 0


# == outer maps ===============================================================================
@needs_spin_lock_templates
def test_clone_of_an_outer_map_keeps_the_templates_btf() -> None:
    with purebpf.load(DATA / "spinlock_inner.o") as coll:
        counters = coll.maps["counters"]
        assert isinstance(counters, MapOfMaps)
        with counters.clone() as other:
            assert isinstance(other, MapOfMaps)
            with other.new_inner() as m:  # the value has a bpf_spin_lock: needs the BTF
                other[3] = m
            assert counters.inner_id(3) == m.id


class DictKey:
    """A key type that decodes to a dict (as BTF structs do)."""

    size = 4

    def encode(self, obj: Any) -> bytes:
        return struct.pack("=HH", obj["a"], obj["b"])

    def decode(self, data: bytes) -> Any:
        a, b = struct.unpack("=HH", data)
        return {"a": a, "b": b}


def test_to_dict_with_inner_keys_that_decode_to_dicts() -> None:
    inner = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4,
                    key_type=DictKey(), value_type=int)
    with Map.create(MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=2, key_type=int,
                            inner=inner)) as outer:
        with outer.new_inner() as m:
            m[{"a": 1, "b": 2}] = 7
            outer[9] = m
        raw = struct.pack("=HH", 1, 2)
        assert outer.to_dict() == {9: {raw: 7}}  # unhashable dict keys become their bytes
        assert "{'a': 1, 'b': 2}: 7" in outer.tree()
        shallow = outer.to_dict(deep=False)
        with shallow[9] as handle:
            assert handle[{"a": 1, "b": 2}] == 7


def test_create_with_inner_map_for_a_plain_type_is_refused() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) as tmpl:
        with pytest.raises(InvalidArgumentError, match="inner_map is only for ARRAY_OF_MAPS "
                                                       "and HASH_OF_MAPS"):
            Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=1),
                       inner_map=tmpl)


# == mmap arrays ==============================================================================
def test_freeze_after_close_does_not_bring_the_map_back() -> None:
    a = Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=2, value_type=int,
                           flags=MapFlags.MMAPABLE))
    a.close()
    with pytest.raises(ClosedError, match="closed"):
        a.freeze()
    assert a.closed and a._mm is None or a._mm.closed
    with pytest.raises(ClosedError):
        a[0]
    with pytest.raises(ClosedError):
        a[0] = 1


def test_mmap_array_membership_agrees_with_lookup_on_bytes_keys() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=2, value_type=int,
                            flags=MapFlags.MMAPABLE)) as a:
        a[1] = 5
        one, two = (1).to_bytes(4, "little"), (2).to_bytes(4, "little")
        assert a[one] == 5 and one in a
        assert two not in a
        with pytest.raises(KeyNotFoundError):
            a[two]


def test_mmap_array_read_and_write_touch_only_the_named_bytes() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=2,
                            flags=MapFlags.MMAPABLE)) as a:
        a[1] = b"abcdefgh"
        a.write(1, 2, b"XY")
        assert a[1] == b"abXYefgh" and a.read(1, 2, 2) == b"XY" and a.read(1) == b"abXYefgh"
        with pytest.raises(InvalidArgumentError, match="outside the 8-byte value"):
            a.write(1, 7, b"XY")
        assert a[1] == b"abXYefgh"


# == which error for which errno ==============================================================
@pytest.mark.parametrize("t", [MapType.DEVMAP, MapType.CPUMAP, MapType.XSKMAP,
                               MapType.REUSEPORT_SOCKARRAY], ids=lambda t: t.name)
def test_index_past_the_end_of_an_indexed_map_is_index_out_of_range(t: MapType) -> None:
    vs = 8 if t == MapType.REUSEPORT_SOCKARRAY else 4
    with Map.create(MapSpec(t, key_size=4, value_size=vs, max_entries=4)) as m:
        with pytest.raises(IndexOutOfRangeError, match=r"index 10 out of range \(max_entries 4"
                           ) as info:
            m[10] = 1
        assert isinstance(info.value, IndexError) and info.value.errno == errno.E2BIG
        assert list(m.keys())[:2] == [0, 1]  # keys are indexes: ints by default


def test_a_full_lpm_trie_is_map_full() -> None:
    with Map.create(MapSpec(MapType.LPM_TRIE, key_size=8, value_size=4, max_entries=2,
                            flags=MapFlags.NO_PREALLOC)) as m:
        m[struct.pack("<I4B", 32, 10, 0, 0, 1)] = 1
        m[struct.pack("<I4B", 32, 10, 0, 0, 2)] = 1
        with pytest.raises(MapFullError, match="the trie is full") as info:
            m[struct.pack("<I4B", 32, 10, 0, 0, 3)] = 1
        assert info.value.errno == errno.ENOSPC


def test_create_time_e2big_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="too large for this type") as info:
        Map.create(MapSpec(MapType.ARRAY, value_size=1 << 31, max_entries=4))
    assert info.value.errno == errno.E2BIG and isinstance(info.value, ValueError)


# == sizes handed to the kernel ===============================================================
def test_huge_lookup_batch_chunk_is_bounded() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8,
                            key_type=int, value_type=int)) as m:
        m[1] = 2
        assert m.lookup_batch(chunk=2**40) == [(1, 2)]
        with pytest.raises(TypeError, match="chunk must be an int"):
            m.lookup_batch(chunk=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="chunk must be >= 1"):
            m.lookup_batch(chunk=0)


def test_update_flags_out_of_range_are_refused() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8,
                            key_type=int, value_type=int)) as m:
        with pytest.raises(InvalidArgumentError, match="out of range"):
            m.update(1, 2, 1 << 64)  # ctypes would have kept the low bits: BPF_ANY
        assert 1 not in m


def test_bool_keys_are_ints_on_the_fast_and_general_paths() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8,
                            key_type=int, value_type=int)) as m:
        m[True] = 1  # fast path
        m.update(False, 2)  # general path
        assert m[1] == 1 and m[0] == 2


def test_errors_keep_their_type_through_a_failing_lookup() -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=8)) as m:
        with pytest.raises(KeyNotFoundError) as info:
            m[3]
        assert isinstance(info.value, BPFError) and isinstance(info.value, KeyError)
