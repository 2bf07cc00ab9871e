""".BTF.ext: func_info, line_info and CO-RE relocations from clang, by hand, and errors."""

from __future__ import annotations

import struct

import pytest

from purebpf.btf import (
    BTFError, BTFExt, CoreRelo, CoreReloKind, Func, FuncInfo, Kind, LineInfo, Spec, encode_ext,
    encode_with_ext, parse, parse_ext, string_builder,
)

try:
    from . import test_btf_helpers as h
except ImportError:
    import test_btf_helpers as h  # type: ignore[no-redef]

K = Kind


def load(name: str) -> tuple[Spec, BTFExt, bytes, bytes]:
    elf = h.load_object(name)
    btf, ext = elf.section(".BTF"), elf.section(".BTF.ext")
    spec = parse(btf)
    return spec, parse_ext(ext, spec), btf, ext


@pytest.mark.parametrize("name", h.OBJECTS)
def test_clang_ext_round_trips_byte_for_byte(name: str) -> None:
    spec, ext, btf, raw = load(name)
    assert encode_with_ext(spec, ext) == (btf, raw)


@pytest.mark.parametrize("name", h.OBJECTS)
def test_func_info_points_at_funcs_and_line_info_at_source(name: str) -> None:
    spec, ext, _, _ = load(name)
    assert ext.func_info and ext.line_info
    for recs in ext.func_info.values():
        assert recs[0].insn_off == 0
        assert all(isinstance(spec.types[r.type], Func) for r in recs)
    matched = 0
    for recs in ext.line_info.values():
        for r in recs:
            source = (h.TESTDATA / r.file_name).read_text().splitlines()
            if r.line:  # clang leaves some lines' text out (a lone "}", for one)
                assert source[r.line_num - 1] == r.line
                assert r.column <= len(r.line) + 1
                matched += 1
    assert matched > 5


def test_kinds_ext_sections() -> None:
    spec, ext, _, _ = load("kinds.o")
    assert set(ext.func_info) == {".text", "xdp"}
    assert [spec.types[r.type].name for r in ext.func_info["xdp"]] == ["prog"]
    assert sorted(spec.types[r.type].name for r in ext.func_info[".text"]) == \
        ["global_sub", "helper"]
    assert ext.core_relos == {} and ext.byteorder == "little"
    lines = ext.line_info["xdp"]
    assert lines[0].insn_off == 0 and lines[0].file_name == "./kinds.c"
    assert lines[0].line == "\t__u32 key = ctx->ingress_ifindex;"
    assert (lines[0].line_num, lines[0].column) == (105, 19)


def test_big_endian_ext_matches_little_endian() -> None:
    _, le, _, _ = load("kinds.o")
    _, be, _, _ = load("kinds.bpfeb.o")
    assert be.byteorder == "big"
    assert be.func_info == le.func_info
    assert be.line_info.keys() == le.line_info.keys()


def test_core_relocations() -> None:
    spec, ext, _, _ = load("core.o")
    relos = ext.core_relos["tp_btf/sched_switch"]
    assert {r.kind for r in relos} == set(CoreReloKind) - {CoreReloKind.TYPE_MATCHES}
    by_kind = {r.kind: r for r in relos}
    task = spec.find_id("task_struct")
    exists = by_kind[CoreReloKind.FIELD_EXISTS]
    assert exists.type == task and exists.access == "0:3" and exists.accessors == (0, 3)
    assert spec.types[task].members[3].name == "mm"  # type: ignore[union-attr]
    enum = by_kind[CoreReloKind.ENUMVAL_VALUE]
    assert spec.types[enum.type].kind == Kind.ENUM and enum.access == "1"
    assert spec.types[by_kind[CoreReloKind.TYPE_SIZE].type].name == "task_t"
    assert ext.core_relo_rec_size == 16 and ext.hdr_len == 32


# -- hand-built .BTF.ext ----------------------------------------------------------------

def small_spec(order: str = "<") -> tuple[Spec, h.Strings]:
    S = h.Strings()
    types = (h.rec(K.INT, S("int"), 0, 0, 4, 1 << 24 | 32, order=order)
             + h.rec(K.FUNC_PROTO, 0, 0, 0, 1, order=order)
             + h.rec(K.FUNC, S("main"), 1, 0, 2, order=order))
    for s in ("prog", "a.c", "int main(void)", "0:1"):
        S(s)
    return parse(h.blob(types, bytes(S.raw), order)), S


def block(rec_size: int, sections: list[tuple[int, list[bytes]]], order: str = "<") -> bytes:
    out = struct.pack(order + "I", rec_size)
    for sec, recs in sections:
        out += struct.pack(order + "II", sec, len(recs)) + b"".join(recs)
    return out


def ext_blob(func: bytes = b"", line: bytes = b"", core: bytes = b"", order: str = "<",
             hdr_len: int = 32, magic: int = 0xEB9F, version: int = 1) -> bytes:
    head = struct.pack(order + "HBBIIIII", magic, version, 0, hdr_len, 0, len(func), len(func),
                       len(line))
    if hdr_len >= 32:
        head += struct.pack(order + "II", len(func) + len(line), len(core))
    return head + b"\0" * (hdr_len - len(head)) + func + line + core


def full_ext(order: str = "<") -> tuple[Spec, bytes]:
    spec, S = small_spec(order)
    p = order
    func = block(8, [(S("prog"), [struct.pack(p + "II", 0, 3)])], p)
    line = block(16, [(S("prog"), [struct.pack(p + "IIII", 8, S("a.c"), S("int main(void)"),
                                               12 << 10 | 5)])], p)
    core = block(16, [(S("prog"), [struct.pack(p + "IIII", 16, 1, S("0:1"), 9)])], p)
    return spec, ext_blob(func, line, core, order)


@pytest.mark.parametrize("order", [pytest.param("<", id="le"), pytest.param(">", id="be")])
def test_hand_built_ext(order: str) -> None:
    spec, raw = full_ext(order)
    ext = parse_ext(raw, spec)
    assert ext.func_info == {"prog": [FuncInfo(0, 3)]}
    assert ext.line_info == {"prog": [LineInfo(8, "a.c", "int main(void)", 12, 5)]}
    assert ext.core_relos == {"prog": [CoreRelo(16, 1, "0:1", CoreReloKind.TYPE_SIZE)]}
    assert encode_ext(ext, string_builder(spec)) == raw
    assert parse_ext(raw, spec.strings) == ext  # type: ignore[arg-type]


def test_ext_without_core_part_and_larger_records() -> None:
    spec, S = small_spec()
    func = block(12, [(S("prog"), [struct.pack("<III", 0, 3, 0xAA)])])
    ext = parse_ext(ext_blob(func, hdr_len=24), spec)
    assert ext.func_info == {"prog": [FuncInfo(0, 3)]} and ext.func_info_rec_size == 12
    assert ext.hdr_len == 24
    again = parse_ext(encode_ext(ext, string_builder(spec)), spec)
    assert again == ext  # the unknown word re-encodes as zero, the known fields survive


def test_edited_ext_adds_strings_to_btf() -> None:
    spec, raw = full_ext()
    ext = parse_ext(raw, spec)
    ext.line_info["prog"].append(LineInfo(24, "new.c", "return 0;", 13, 2))
    btf, ext_raw = encode_with_ext(spec, ext)
    again = parse(btf)
    assert parse_ext(ext_raw, again) == ext
    assert list(again.types) == list(spec.types)


PROG = 10  # offset of "prog" in small_spec()'s string section

EXT_ERRORS = [
    ("empty", b"", "truncated BTF.ext header"),
    ("bad-magic", b"\x00\x01" + b"\0" * 30, "bad BTF.ext magic 0x0001"),
    ("short", b"\x9f\xeb\x01\x00", "truncated BTF.ext header: 4 bytes"),
    ("version", ext_blob(version=3), "unsupported BTF.ext version 3"),
    ("hdr-len", ext_blob(hdr_len=16), "bad BTF.ext header length 16"),
    ("rec-size", ext_blob(block(4, [])), "func_info at offset 32: record size 4 is below"),
    ("records-past-end", ext_blob(block(8, [(PROG, [b"\0" * 8])])[:-4]),
     "truncated BTF.ext func_info for section 'prog': 1 records of 8 bytes at offset 44"),
    ("sec-name", ext_blob(block(8, [(999, [b"\0" * 8])])),
     "func_info at offset 36: section name: string offset 999 is out of range"),
    ("line-file", ext_blob(line=block(16, [(PROG, [struct.pack("<IIII", 0, 500, 0, 0)])])),
     "line_info record 0 of section 'prog' at offset 44: file name: string offset 500"),
    ("relo-kind", ext_blob(core=block(16, [(PROG, [struct.pack("<IIII", 0, 1, 0, 42)])])),
     "unknown CO-RE relocation kind 42"),
]


def test_prog_offset() -> None:
    assert small_spec()[1]("prog") == PROG


@pytest.mark.parametrize(("data", "words"), [pytest.param(d, w, id=i) for i, d, w in EXT_ERRORS])
def test_ext_errors(data: bytes, words: str) -> None:
    spec, _ = small_spec()
    with pytest.raises(BTFError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_ext(data, spec)


def test_ext_length_past_data() -> None:
    spec, _ = small_spec()
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 64, 64, 0)
    with pytest.raises(BTFError, match="func_info at offset 24 with length 64 does not fit"):
        parse_ext(raw, spec)


def test_ext_needs_parsed_strings() -> None:
    with pytest.raises(BTFError, match="needs the string section"):
        parse_ext(ext_blob(), Spec())
