"""Real clang output: the objects in tests/testdata/btf, checked against the C and bpftool."""

from __future__ import annotations

import re
import subprocess

import pytest

from purebpf.btf import (
    Datasec, DeclTag, Enum, EnumValue, Float, Func, FuncLinkage, FuncProto, Fwd, Int, Kind,
    Member, Ptr, Spec, Struct, TypeTag, Typedef, Union, Var, VarLinkage, encode, fixup_datasecs,
    parse,
)

try:
    from . import test_btf_helpers as h
except ImportError:
    import test_btf_helpers as h  # type: ignore[no-redef]


def spec_of(name: str) -> Spec:
    return parse(h.load_object(name).section(".BTF"), validate=True)


@pytest.fixture(scope="module")
def kinds() -> Spec:
    return spec_of("kinds.o")


@pytest.mark.parametrize("name", h.OBJECTS)
def test_objects_round_trip_byte_for_byte(name: str) -> None:
    raw = h.load_object(name).section(".BTF")
    spec = parse(raw)
    assert encode(spec) == raw
    assert list(parse(encode(spec)).types) == list(spec.types)


def test_big_endian_object_matches_little_endian(kinds: Spec) -> None:
    be = spec_of("kinds.bpfeb.o")
    assert be.byteorder == "big" and kinds.byteorder == "little"
    assert list(be.types) == list(kinds.types)
    assert encode(kinds, byteorder="big") == h.load_object("kinds.bpfeb.o").section(".BTF")


def test_clang_emits_every_kind_but_enum64(kinds: Spec) -> None:
    # clang 14 predates ENUM64; the hand-built and vmlinux tests cover it.
    seen = {t.kind for t in kinds.types}
    assert seen == set(Kind) - {Kind.ENUM64}


def test_struct_members_match_the_source(kinds: Spec) -> None:
    ev = kinds.find("everything", Struct)
    assert isinstance(ev, Struct) and ev.size == 288
    names = [m.name for m in ev.members]
    assert names[:3] == ["i", "name", "matrix"] and names.count("") == 2
    assert kinds.sizeof(ev.member("name").type) == 16
    eid = kinds.find_id("everything")
    assert kinds.field(eid, "word").bit_offset == kinds.field(eid, "bytes").bit_offset == 1856
    assert kinds.field(eid, "hi").bit_offset == 1888 + 16
    assert kinds.field(eid, "point.y").bit_offset == 1792 + 32
    assert kinds.field(eid, "as").bit_offset == 896  # aligned(16) forced a gap
    assert kinds.alignof(eid) == 16 and not kinds.is_packed(eid)
    cvp = kinds.types[ev.member("cvp").type]
    assert isinstance(cvp, Ptr)
    assert [t.kind for t in (kinds.types[cvp.target], kinds.types[kinds.types[cvp.target].type])] \
        == [Kind.CONST, Kind.VOLATILE]  # type: ignore[union-attr]


def test_bitfields_and_packing(kinds: Spec) -> None:
    flags = kinds.find("flags", Struct)
    assert isinstance(flags, Struct)
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in flags.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 8, 12), ("d", 20, 40), ("tail", 64, 0)]
    packed = kinds.find_id("packed_s")
    assert kinds.sizeof(packed) == 7 and kinds.alignof(packed) == 1 and kinds.is_packed(packed)
    assert kinds.field(packed, "i") == Member("i", kinds.find_id("int"), 8)


def test_scalars_enums_and_forwards(kinds: Spec) -> None:
    # clang 14 stores BLUE = -1 as an unsigned word; clang 15+ marks the enum signed.
    assert kinds.find("color") in (
        Enum("color", 4, False, (EnumValue("RED", 0), EnumValue("GREEN", 5),
                                 EnumValue("BLUE", 0xFFFFFFFF))),
        Enum("color", 4, True, (EnumValue("RED", 0), EnumValue("GREEN", 5),
                                EnumValue("BLUE", -1))))
    assert kinds.find("node") == Fwd("node") and kinds.find("opaque_u") == Fwd("opaque_u", True)
    assert kinds.find("double") == Float("double", 8)
    wide = kinds.find("unsigned __int128")
    assert isinstance(wide, Int) and wide.size == 16 and wide.bits == 128 and not wide.signed
    assert kinds.find("_Bool", Int).encoding == 4  # type: ignore[union-attr]
    assert kinds.sizeof(kinds.find_id("u64_t")) == 8
    cb = kinds.find("callback_t", Typedef)
    proto = kinds.types[kinds.types[cb.type].target]  # type: ignore[union-attr]
    assert isinstance(proto, FuncProto) and proto.variadic and len(proto.params) == 3


def test_functions_tags_and_variables(kinds: Spec) -> None:
    linkages = {t.name: t.linkage for t in kinds.types if isinstance(t, Func)}
    assert linkages == {"prog": FuncLinkage.GLOBAL, "global_sub": FuncLinkage.GLOBAL,
                        "helper": FuncLinkage.STATIC, "bpf_kfunc_example": FuncLinkage.EXTERN}
    helper = kinds.find("helper", Func)
    params = kinds.types[helper.proto].params  # type: ignore[union-attr]
    assert [p.name for p in params] == ["e", "n"]
    tags = {t.name: (kinds.types[t.target].name, t.component_idx)
            for t in kinds.types if isinstance(t, DeclTag)}
    assert tags == {"field_tag": ("everything", 22), "func_tag": ("global_sub", -1),
                    "param_tag": ("helper", 1)}
    assert any(isinstance(t, TypeTag) and t.name == "user" for t in kinds.types)
    vars_ = {t.name: t.linkage for t in kinds.types if isinstance(t, Var)}
    assert vars_["hidden_total"] == VarLinkage.STATIC
    assert vars_["LINUX_KERNEL_VERSION"] == VarLinkage.EXTERN
    assert vars_["global_counter"] == VarLinkage.GLOBAL
    secs = {t.name for t in kinds.types if isinstance(t, Datasec)}
    assert secs == {".bss", ".data", ".kconfig", ".ksyms", ".maps", ".rodata", "license"}


def test_fixup_datasecs_from_elf_headers_and_symbols() -> None:
    elf = h.load_object("kinds.o")
    spec = parse(elf.section(".BTF"))
    bss = spec.find(".bss", Datasec)
    assert isinstance(bss, Datasec) and bss.size == 0
    assert {v.offset for v in bss.vars} == {0}  # clang leaves them for the loader
    changed = fixup_datasecs(spec, elf.section_sizes(), elf.symbol_offsets())
    assert changed >= 4
    bss = spec.find(".bss", Datasec)
    assert isinstance(bss, Datasec)
    sizes, syms = elf.section_sizes(), elf.symbol_offsets()
    assert bss.size == sizes[".bss"]
    entries = {spec.types[v.type].name: v.offset for v in bss.vars}
    assert entries == {"hidden_total": syms["hidden_total"], "scratch": syms["scratch"]}
    assert [v.offset for v in bss.vars] == sorted(v.offset for v in bss.vars)
    again = parse(encode(spec), validate=True)
    assert again.find(".bss", Datasec) == bss
    assert fixup_datasecs(spec, sizes, syms) == 0  # idempotent


_BPFTOOL_LINE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'")


def bpftool_types(path: str) -> list[tuple[int, str, str]]:
    out = subprocess.run([h.tool_path("bpftool"), "btf", "dump", "file", path],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = _BPFTOOL_LINE.match(line)
        if m:
            name = "" if m[3] == "(anon)" else m[3]
            rows.append((int(m[1]), m[2], name))
    return rows


def ours(spec: Spec) -> list[tuple[int, str, str]]:
    return [(tid, t.kind.name, t.name) for tid, t in spec.items()]


@pytest.mark.skipif(not h.have("bpftool"), reason="bpftool not installed")
@pytest.mark.parametrize("name", h.OBJECTS)
def test_ids_kinds_and_names_match_bpftool(name: str) -> None:
    assert ours(spec_of(name)) == bpftool_types(str(h.TESTDATA / name))


@pytest.mark.skipif(not h.have("bpftool"), reason="bpftool not installed")
def test_struct_details_match_bpftool(kinds: Spec) -> None:
    out = subprocess.run([h.tool_path("bpftool"), "btf", "dump", "file",
                          str(h.TESTDATA / "kinds.o")], capture_output=True, text=True).stdout
    for tid, t in kinds.items():
        if isinstance(t, (Struct, Union)):
            block = out.split(f"[{tid}] ", 1)[1].split("\n[", 1)[0]
            assert f"size={t.size} vlen={len(t.members)}" in block
            for m in t.members:
                bits = f" bitfield_size={m.bitfield_size}" if m.bitfield_size else ""
                name = m.name or "(anon)"
                assert f"'{name}' type_id={m.type} bits_offset={m.bit_offset}{bits}" in block
