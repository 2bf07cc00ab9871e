"""MapSpec and the inner-map Template: pure checks that mirror the kernel's rules.

The kernel side of every rule checked here is confirmed against the real syscall in
tests/kernel/test_map_in_map.py (``test_kernel_*``), so these pre-checks cannot drift.
"""

from __future__ import annotations

import ctypes
import errno
import struct

import pytest

from purebpf import (InnerMapMismatchError, InvalidArgumentError, MapFlags, MapSpec, MapType,
                     NotSupportedError)
from purebpf._spec import REJECTED_INNER, Template, check_template, flag_names
from purebpf.errors import ENOTSUPP

ARRAY4 = MapSpec(MapType.ARRAY, value_size=4, max_entries=4)
HASH4 = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4)


class Rec(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint64), ("y", ctypes.c_uint32)]


class Sized:
    size = 12

    def encode(self, obj: object) -> bytes:
        return bytes(12)

    def decode(self, data: bytes) -> object:
        return data


# -- defaults --------------------------------------------------------------------------------
@pytest.mark.parametrize("mtype", [MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.ARRAY_OF_MAPS,
                                   MapType.PROG_ARRAY, MapType.CGROUP_ARRAY,
                                   MapType.PERF_EVENT_ARRAY],
                         ids=lambda t: t.name)
def test_array_types_default_key_size_4(mtype: MapType) -> None:
    assert MapSpec(mtype).key_size == 4


@pytest.mark.parametrize("mtype", [MapType.HASH, MapType.LRU_HASH, MapType.HASH_OF_MAPS],
                         ids=lambda t: t.name)
def test_hash_types_have_no_default_key_size(mtype: MapType) -> None:
    assert MapSpec(mtype).key_size == 0


@pytest.mark.parametrize("mtype", [MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
                                   MapType.PROG_ARRAY], ids=lambda t: t.name)
def test_fd_valued_types_default_value_size_4(mtype: MapType) -> None:
    assert MapSpec(mtype).value_size == 4


@pytest.mark.parametrize("declared,size", [
    ("I", 4), ("=HHQ", 12), (struct.Struct("<q"), 8), (ctypes.c_uint16, 2), (Rec, 16),
    (ctypes.c_uint8 * 5, 5), (Sized(), 12),
], ids=["fmt-I", "fmt-HHQ", "Struct", "c_uint16", "Structure", "Array", "TypeCodec"])
def test_sizes_from_declared_types(declared: object, size: int) -> None:
    spec = MapSpec(MapType.HASH, key_type=declared, value_type=declared, max_entries=1)
    assert (spec.key_size, spec.value_size) == (size, size)


def test_explicit_sizes_win_over_declared_types() -> None:
    spec = MapSpec(MapType.HASH, key_size=8, value_size=2, key_type="I", value_type="I")
    assert (spec.key_size, spec.value_size) == (8, 2)


def test_plain_int_declares_no_size() -> None:
    assert MapSpec(MapType.HASH, key_type=int, value_type=int).value_size == 0


def test_type_and_flags_are_coerced_to_enums() -> None:
    spec = MapSpec(1, key_size=4, value_size=4, flags=1)  # type: ignore[arg-type]
    assert spec.type is MapType.HASH
    assert isinstance(spec.flags, MapFlags) and spec.flags == MapFlags.NO_PREALLOC


def test_replace_and_describe() -> None:
    spec = HASH4.replace(max_entries=64, name="flows")
    assert spec.max_entries == 64 and HASH4.max_entries == 4
    assert spec.describe() == "map 'flows' (HASH)"
    assert HASH4.describe() == "HASH map"


# -- check(): what the kernel would refuse ---------------------------------------------------
GOOD = [
    ARRAY4, HASH4, ARRAY4.replace(name="a" * 15), ARRAY4.replace(name="x.y_Z9"),
    ARRAY4.replace(flags=MapFlags.MMAPABLE), ARRAY4.replace(flags=MapFlags.INNER_MAP),
    MapSpec(MapType.ARRAY_OF_MAPS, max_entries=2, inner=ARRAY4),
    MapSpec(MapType.HASH_OF_MAPS, key_size=8, max_entries=2, inner=HASH4,
            flags=MapFlags.NO_PREALLOC),
    MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=2,
            inner=ARRAY4.replace(flags=MapFlags.INNER_MAP)),
    MapSpec(MapType.BLOOM_FILTER, value_size=4, max_entries=8, map_extra=3),
    MapSpec(MapType.SK_STORAGE, key_size=4, value_size=4, flags=MapFlags.NO_PREALLOC),
    HASH4.replace(numa_node=0),
]


@pytest.mark.parametrize("spec", GOOD, ids=lambda s: s.describe() + f" {s.flags!r}")
def test_good_specs_pass(spec: MapSpec) -> None:
    spec.check()


BAD: list[tuple[str, MapSpec, type[Exception], int, list[str]]] = [
    ("name-too-long", ARRAY4.replace(name="a" * 16), InvalidArgumentError, errno.EINVAL,
     ["name", "invalid", "at most 15 characters"]),
    ("name-bad-char", ARRAY4.replace(name="my-map"), InvalidArgumentError, errno.EINVAL,
     ["'my-map'", "invalid"]),
    ("inner-on-plain", HASH4.replace(inner=ARRAY4), InvalidArgumentError, errno.EINVAL,
     ["only ARRAY_OF_MAPS and HASH_OF_MAPS take an inner"]),
    ("inner-map-flag-on-hash", HASH4.replace(flags=MapFlags.INNER_MAP), InvalidArgumentError,
     errno.EINVAL, ["BPF_F_INNER_MAP is only valid on ARRAY maps, not HASH"]),
    ("inner-map-flag-on-outer",
     MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1, inner=ARRAY4, flags=MapFlags.INNER_MAP),
     InvalidArgumentError, errno.EINVAL, ["BPF_F_INNER_MAP", "not ARRAY_OF_MAPS"]),
    ("mmapable-hash", HASH4.replace(flags=MapFlags.MMAPABLE), InvalidArgumentError,
     errno.EINVAL, ["BPF_F_MMAPABLE is only valid on ARRAY"]),
    ("array-key-8", ARRAY4.replace(key_size=8), InvalidArgumentError, errno.EINVAL,
     ["key_size must be 4 for ARRAY, got 8"]),
    ("hash-key-0", HASH4.replace(key_size=0), InvalidArgumentError, errno.EINVAL,
     ["key_size must be at least 1 for HASH"]),
    ("array-value-0", ARRAY4.replace(value_size=0), InvalidArgumentError, errno.EINVAL,
     ["value_size must be at least 1 for ARRAY"]),
    ("max-entries-0", HASH4.replace(max_entries=0), InvalidArgumentError, errno.EINVAL,
     ["max_entries must be at least 1, got 0"]),
    ("map-extra-hash", HASH4.replace(map_extra=1), InvalidArgumentError, errno.EINVAL,
     ["map_extra is only used by BLOOM_FILTER and ARENA"]),
    ("numa-negative", HASH4.replace(numa_node=-1), InvalidArgumentError, errno.EINVAL,
     ["numa_node must be >= 0"]),
    ("outer-value-8", MapSpec(MapType.HASH_OF_MAPS, key_size=4, value_size=8, max_entries=1,
                              inner=HASH4),
     InvalidArgumentError, errno.EINVAL, ["value_size must be 4 for HASH_OF_MAPS", "got 8"]),
    ("outer-no-inner", MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1), InvalidArgumentError,
     errno.EINVAL, ["needs an inner-map template", "inner=MapSpec"]),
    ("nested", MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1,
                       inner=MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=1,
                                     inner=HASH4)),
     InvalidArgumentError, errno.EINVAL, ["HASH_OF_MAPS is itself a map-in-map",
                                          "one level of nesting"]),
    ("aom-no-prealloc", MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1, inner=ARRAY4,
                                flags=MapFlags.NO_PREALLOC),
     InvalidArgumentError, errno.EINVAL, ["not valid on ARRAY_OF_MAPS", "NUMA_NODE, RDONLY"]),
    ("aom-rdonly-prog", MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1, inner=ARRAY4,
                                flags=MapFlags.RDONLY_PROG),
     InvalidArgumentError, errno.EINVAL, ["not valid on ARRAY_OF_MAPS"]),
] + [
    (f"inner-{t.name}", MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1,
                                inner=MapSpec(t, key_size=4, value_size=4, max_entries=1)),
     NotSupportedError, ENOTSUPP, [f"{t.name} cannot be an inner map"])
    for t in sorted(REJECTED_INNER)
]


@pytest.mark.parametrize("spec,exc,code,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_specs_raise_what_the_kernel_would(spec: MapSpec, exc: type[Exception], code: int,
                                                 words: list[str]) -> None:
    with pytest.raises(exc) as info:
        spec.check()
    err = info.value
    assert type(err) is exc
    assert err.errno == code  # type: ignore[attr-defined]
    text = str(err)
    assert text.startswith(f"create {spec.describe()}: ")
    for w in words:
        assert w in text


def test_rejected_inner_types_are_exactly_the_kernels_four() -> None:
    assert REJECTED_INNER == {MapType.PROG_ARRAY, MapType.CGROUP_STORAGE,
                              MapType.PERCPU_CGROUP_STORAGE, MapType.STRUCT_OPS}


def test_not_supported_error_names_the_feature() -> None:
    with pytest.raises(NotSupportedError) as info:
        check_template(MapSpec(MapType.PROG_ARRAY, max_entries=1), "create outer")
    assert info.value.feature == "inner map type PROG_ARRAY"
    assert "refuses PROG_ARRAY, CGROUP_STORAGE, PERCPU_CGROUP_STORAGE and STRUCT_OPS" in \
        str(info.value)


# -- Template --------------------------------------------------------------------------------
def test_template_of_strips_fd_access_flags() -> None:
    spec = HASH4.replace(flags=MapFlags.RDONLY | MapFlags.WRONLY | MapFlags.NO_PREALLOC)
    assert Template.of(spec).map_flags == int(MapFlags.NO_PREALLOC)


@pytest.mark.parametrize("mtype,flags,compares", [
    (MapType.ARRAY, 0, True), (MapType.ARRAY, MapFlags.INNER_MAP, False),
    (MapType.HASH, 0, False), (MapType.LRU_HASH, 0, False), (MapType.PERCPU_ARRAY, 0, False),
    (MapType.XSKMAP, 0, True), (MapType.RINGBUF, 0, False),
], ids=lambda v: getattr(v, "name", str(v)))
def test_which_templates_compare_max_entries(mtype: MapType, flags: int,
                                             compares: bool) -> None:
    assert Template(mtype, 4, 4, int(flags), 8).compares_max_entries() is compares


T_ARRAY = Template(MapType.ARRAY, 4, 4, 0, 8)
T_HASH = Template(MapType.HASH, 4, 4, 0, 8)
MISMATCH = [
    ("type", T_ARRAY, Template(MapType.HASH, 4, 4, 0, 8), "ARRAY", "HASH",
     "inner map type HASH != template ARRAY", "one type only"),
    ("key_size", T_HASH, Template(MapType.HASH, 8, 4, 0, 8), 4, 8,
     "inner map key_size 8 != template 4", ""),
    ("value_size", T_HASH, Template(MapType.HASH, 4, 16, 0, 8), 4, 16,
     "inner map value_size 16 != template 4", ""),
    ("map_flags", T_HASH, Template(MapType.HASH, 4, 4, 1, 8), 0, 1,
     "inner map map_flags NO_PREALLOC != template 0", "has NO_PREALLOC which the template lacks"),
    ("map_flags-missing", Template(MapType.HASH, 4, 4, 1, 8), T_HASH, 1, 0,
     "inner map map_flags 0 != template NO_PREALLOC", "lacks NO_PREALLOC"),
    ("max_entries", T_ARRAY, Template(MapType.ARRAY, 4, 4, 0, 16), 8, 16,
     "inner map max_entries 16 != template 8", "BPF_F_INNER_MAP"),
]


@pytest.mark.parametrize("field,tmpl,cand,expected,actual,msg,hint",
                         MISMATCH, ids=[m[0] for m in MISMATCH])
def test_template_diff_names_the_field(field: str, tmpl: Template, cand: Template,
                                       expected: object, actual: object, msg: str,
                                       hint: str) -> None:
    err = tmpl.diff(cand, "insert into map 'o' (ARRAY_OF_MAPS id=1)")
    assert isinstance(err, InnerMapMismatchError)
    assert err.field == field.split("-")[0]
    want_e = getattr(MapType, expected) if isinstance(expected, str) else expected
    want_a = getattr(MapType, actual) if isinstance(actual, str) else actual
    assert (err.expected, err.actual) == (want_e, want_a)
    assert err.errno == errno.EINVAL
    assert str(err).startswith(f"insert into map 'o' (ARRAY_OF_MAPS id=1): {msg} [EINVAL]")
    assert hint in err.hint


def test_template_diff_reports_the_first_field_in_kernel_order() -> None:
    err = T_ARRAY.diff(Template(MapType.HASH, 8, 8, 1, 1), "x")
    assert err is not None and err.field == "type"
    err = T_HASH.diff(Template(MapType.HASH, 4, 8, 1, 1), "x")
    assert err is not None and err.field == "value_size"


@pytest.mark.parametrize("tmpl,cand", [
    (T_HASH, Template(MapType.HASH, 4, 4, 0, 1000)),
    (Template(MapType.ARRAY, 4, 4, int(MapFlags.INNER_MAP), 8),
     Template(MapType.ARRAY, 4, 4, int(MapFlags.INNER_MAP), 1)),
    (T_ARRAY, T_ARRAY),
], ids=["hash-other-size", "inner-map-array-other-size", "identical"])
def test_template_diff_none_when_the_kernel_accepts(tmpl: Template, cand: Template) -> None:
    assert tmpl.diff(cand, "x") is None


@pytest.mark.parametrize("v,text", [
    (0, "0"), (1, "NO_PREALLOC"), (int(MapFlags.NO_PREALLOC | MapFlags.INNER_MAP),
                                   "NO_PREALLOC|INNER_MAP"),
    (1 << 30, hex(1 << 30)), (1 | 1 << 30, "NO_PREALLOC|" + hex(1 << 30)),
], ids=["none", "one", "two", "unknown", "mixed"])
def test_flag_names(v: int, text: str) -> None:
    assert flag_names(v) == text
