"""Encoding specs to .BTF: fresh and edited specs, string sections, byte order, errors."""

from __future__ import annotations

import pytest

from purebpf.btf import (
    VOID, Array, BTFError, Datasec, Enum, Enum64, EnumValue, Func, FuncProto, Int, IntEncoding,
    Member, Param, Ptr, Spec, StringTable, StringTableBuilder, Struct, Type, Typedef, Var,
    VarLinkage, VarSecinfo, encode, fixup_datasecs, parse, string_builder,
)

S32 = Int("int", 4, IntEncoding.SIGNED, 32)


def test_fresh_spec_string_section_is_deduplicated_in_first_use_order() -> None:
    spec = Spec([S32, Typedef("int_t", 1), Struct("s", 4, (Member("int_t", 2, 0),))])
    raw = encode(spec)
    assert raw.endswith(b"\0int\0int_t\0s\0")
    assert list(parse(raw).types) == list(spec.types)


def test_edits_keep_old_strings_and_append_new_ones() -> None:
    raw = encode(Spec([S32, Typedef("old", 1)]))
    spec = parse(raw)
    spec.replace(2, Typedef("new", 1))
    spec.add(Ptr(2))
    out = encode(spec)
    assert out.endswith(b"\0int\0old\0new\0")  # "old" stays: offsets never move
    again = parse(out, validate=True)
    assert list(again.types) == [VOID, S32, Typedef("new", 1), Ptr(2)]


def test_byte_order_can_be_chosen() -> None:
    spec = Spec([S32, Ptr(1)])
    be = encode(spec, byteorder="big")
    assert be[:2] == b"\xeb\x9f" and encode(spec)[:2] == b"\x9f\xeb"
    parsed = parse(be)
    assert parsed.byteorder == "big" and list(parsed.types) == list(spec.types)
    assert encode(parsed) == be


def test_string_tables() -> None:
    table = StringTable(b"\0ab\0cd\0")
    assert table.get(1) == "ab" and table.get(2) == "b" and table.get(4) == "cd"
    assert table.offsets_of("b") == [2] and table.offsets_of("") == []
    assert len(table) == 7 and table.index() == {"": 0, "ab": 1, "cd": 4}
    seeded = StringTableBuilder(table)
    assert seeded.add("cd") == 4 and seeded.add("x") == 7
    assert seeded.tobytes() == b"\0ab\0cd\0x\0"
    fresh = StringTableBuilder()
    assert fresh.add("") == 0 and fresh.add("q") == 1 and len(fresh) == 3
    with pytest.raises(BTFError, match="contains a NUL byte"):
        fresh.add("a\0b")
    assert isinstance(string_builder(Spec()), StringTableBuilder)


def test_non_utf8_names_survive_a_round_trip() -> None:
    raw = encode(Spec([Int("caf\udce9", 1, IntEncoding.NONE, 8)]))
    assert b"caf\xe9\0" in raw
    assert encode(parse(raw)) == raw


ENCODE_ERRORS: list[tuple[str, Type, str]] = [
    ("vlen", Struct("big", 4, tuple(Member(f"m{i}", 1, 0) for i in range(0x10000))),
     "type id 2 (STRUCT): 65536 entries exceed the BTF limit of 65535"),
    ("enum-value", Enum("e", 4, False, (EnumValue("X", 1 << 32),)),
     "enumerator 'X' = 4294967296 does not fit 32 bits"),
    ("enum64-value", Enum64("e", 8, True, (EnumValue("Y", -(1 << 64)),)), "does not fit 64 bits"),
    ("bitfield-offset", Struct("b", 4, (Member("x", 1, 1 << 24, 3),)),
     "member 'x': bit offset 16777216 or bitfield size 3 does not fit"),
    ("negative-size", Struct("n", -1, ()), "cannot encode type id 2 (STRUCT)"),
    ("void", VOID, "void is type id 0"),
]


@pytest.mark.parametrize(("t", "words"), [pytest.param(t, w, id=i) for i, t, w in ENCODE_ERRORS])
def test_encode_errors(t: Type, words: str) -> None:
    with pytest.raises(BTFError, match=words.replace("(", r"\(").replace(")", r"\)")):
        encode(Spec([S32, t]))


def test_signed_enum_values_wrap_into_words() -> None:
    spec = Spec([Enum("s", 4, True, (EnumValue("M", -(1 << 31)),)),
                 Enum64("u", 8, False, (EnumValue("H", (1 << 64) - 1),))])
    assert list(parse(encode(spec)).types) == list(spec.types)


def datasec_spec() -> Spec:
    return Spec([
        S32, Array(1, 1, 4),
        Var("a", 1, VarLinkage.GLOBAL), Var("b", 2, VarLinkage.GLOBAL),
        Var("c", 1, VarLinkage.STATIC),
        FuncProto(1, (Param("x", 1),)), Func("kfunc", 6),
        Datasec(".data", 0, (VarSecinfo(3, 0, 4), VarSecinfo(4, 0, 16), VarSecinfo(5, 0, 4))),
        Datasec(".ksyms", 0, (VarSecinfo(7, 0, 0),)),
    ])


def test_fixup_datasecs_fills_sizes_and_offsets_and_sorts() -> None:
    spec = datasec_spec()
    changed = fixup_datasecs(spec, {".data": 24, ".text": 100}, {"a": 20, "b": 0, "c": 16})
    assert changed == 1
    assert spec.types[8] == Datasec(".data", 24, (
        VarSecinfo(4, 0, 16), VarSecinfo(5, 16, 4), VarSecinfo(3, 20, 4)))
    assert spec.types[9] == Datasec(".ksyms", 0, (VarSecinfo(7, 0, 0),))  # not in the ELF
    assert list(parse(encode(spec), validate=True).types) == list(spec.types)


def test_fixup_datasecs_leaves_unknown_names_alone() -> None:
    spec = datasec_spec()
    assert fixup_datasecs(spec, {}, {}) == 0
    assert spec.types[8] == datasec_spec().types[8]


PURE_MODULES = ["__init__", "_wire", "cdecl", "cdump", "decode", "encode", "errors", "ext",
                "layout", "spec", "strings", "types"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_btf_modules_stay_pure(module: str) -> None:
    # The style guide's rule for purebpf.btf: no ctypes, no syscalls, no purebpf._sys.
    import ast
    from pathlib import Path

    import purebpf.btf
    path = Path(purebpf.btf.__file__).with_name(f"{module}.py")
    allowed = {"__future__", "array", "collections", "dataclasses", "enum", "functools", "os",
               "struct", "typing"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                continue  # a sibling module of the package
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in allowed, f"{module}.py imports {name}"
