"""Decoding raw .BTF: every kind in both byte orders, the header, and every error path."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from purebpf.btf import (
    Array, BTFError, Const, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func,
    FuncLinkage, FuncProto, Fwd, Int, IntEncoding, Kind, Member, Param, Ptr, Restrict, Struct,
    Type, TypeTag, Typedef, Union, Var, VarLinkage, VarSecinfo, Volatile, encode, parse,
)

try:
    from . import test_btf_helpers as h
except ImportError:
    import test_btf_helpers as h  # type: ignore[no-redef]

K = Kind
SIGNED = 1 << 24  # BTF_INT_SIGNED in an INT's extra word


def _int(S: h.Strings, o: str) -> bytes:
    """Type id 1 of most cases: a signed 32-bit int."""
    return h.rec(K.INT, S("int"), 0, 0, 4, SIGNED | 32, order=o)


Builder = Callable[[h.Strings, str], bytes]
CASES: list[tuple[str, Builder, Type]] = [
    ("int", _int, Int("int", 4, IntEncoding.SIGNED, 32)),
    ("int-char", lambda S, o: h.rec(K.INT, S("char"), 0, 0, 1, 2 << 24 | 8, order=o),
     Int("char", 1, IntEncoding.CHAR, 8)),
    ("int-bool", lambda S, o: h.rec(K.INT, S("_Bool"), 0, 0, 1, 4 << 24 | 8, order=o),
     Int("_Bool", 1, IntEncoding.BOOL, 8)),
    ("int-offset-bits", lambda S, o: h.rec(K.INT, S("u3"), 0, 0, 1, 2 << 16 | 3, order=o),
     Int("u3", 1, IntEncoding.NONE, 3, 2)),
    ("int128", lambda S, o: h.rec(K.INT, S("__int128"), 0, 0, 16, SIGNED | 128, order=o),
     Int("__int128", 16, IntEncoding.SIGNED, 128)),
    ("ptr", lambda S, o: _int(S, o) + h.rec(K.PTR, 0, 0, 0, 1, order=o), Ptr(1)),
    ("void-ptr", lambda S, o: h.rec(K.PTR, 0, 0, 0, 0, order=o), Ptr(0)),
    ("array", lambda S, o: _int(S, o) + h.rec(K.ARRAY, 0, 0, 0, 0, 1, 1, 5, order=o),
     Array(1, 1, 5)),
    ("struct", lambda S, o: _int(S, o) + h.rec(K.STRUCT, S("pair"), 2, 0, 8,
                                               S("a"), 1, 0, S("b"), 1, 32, order=o),
     Struct("pair", 8, (Member("a", 1, 0), Member("b", 1, 32)))),
    ("struct-bitfields", lambda S, o: _int(S, o) + h.rec(
        K.STRUCT, S("bits"), 2, 1, 4, S("x"), 1, 3 << 24 | 0, S("y"), 1, 5 << 24 | 3, order=o),
     Struct("bits", 4, (Member("x", 1, 0, 3), Member("y", 1, 3, 5)))),
    ("struct-empty", lambda S, o: h.rec(K.STRUCT, S("empty"), 0, 0, 0, order=o),
     Struct("empty", 0, ())),
    ("struct-anon", lambda S, o: _int(S, o) + h.rec(K.STRUCT, 0, 1, 0, 4, 0, 1, 0, order=o),
     Struct("", 4, (Member("", 1, 0),))),
    ("union", lambda S, o: _int(S, o) + h.rec(K.UNION, S("u"), 2, 0, 4,
                                              S("i"), 1, 0, S("j"), 1, 0, order=o),
     Union("u", 4, (Member("i", 1, 0), Member("j", 1, 0)))),
    ("enum-unsigned", lambda S, o: h.rec(K.ENUM, S("e"), 2, 0, 4, S("A"), 0,
                                         S("B"), 0xFFFFFFFF, order=o),
     Enum("e", 4, False, (EnumValue("A", 0), EnumValue("B", 0xFFFFFFFF)))),
    ("enum-signed", lambda S, o: h.rec(K.ENUM, S("s"), 2, 1, 4, S("NEG"), -5, S("POS"), 7,
                                       order=o, signed_words=(1,)),
     Enum("s", 4, True, (EnumValue("NEG", -5), EnumValue("POS", 7)))),
    ("enum-byte", lambda S, o: h.rec(K.ENUM, S("b"), 1, 0, 1, S("X"), 1, order=o),
     Enum("b", 1, False, (EnumValue("X", 1),))),
    ("fwd-struct", lambda S, o: h.rec(K.FWD, S("later"), 0, 0, 0, order=o), Fwd("later")),
    ("fwd-union", lambda S, o: h.rec(K.FWD, S("u_later"), 0, 1, 0, order=o),
     Fwd("u_later", union=True)),
    ("typedef", lambda S, o: _int(S, o) + h.rec(K.TYPEDEF, S("i32"), 0, 0, 1, order=o),
     Typedef("i32", 1)),
    ("volatile", lambda S, o: _int(S, o) + h.rec(K.VOLATILE, 0, 0, 0, 1, order=o), Volatile(1)),
    ("const", lambda S, o: _int(S, o) + h.rec(K.CONST, 0, 0, 0, 1, order=o), Const(1)),
    ("restrict", lambda S, o: _int(S, o) + h.rec(K.PTR, 0, 0, 0, 1, order=o)
     + h.rec(K.RESTRICT, 0, 0, 0, 2, order=o), Restrict(2)),
    ("func-proto", lambda S, o: _int(S, o) + h.rec(K.FUNC_PROTO, 0, 2, 0, 1,
                                                   S("x"), 1, S("y"), 1, order=o),
     FuncProto(1, (Param("x", 1), Param("y", 1)))),
    ("func-proto-varargs", lambda S, o: _int(S, o) + h.rec(K.FUNC_PROTO, 0, 2, 0, 1,
                                                           S("fmt"), 1, 0, 0, order=o),
     FuncProto(1, (Param("fmt", 1), Param("", 0)))),
    ("func-proto-void", lambda S, o: h.rec(K.FUNC_PROTO, 0, 0, 0, 0, order=o), FuncProto(0, ())),
    ("func-static", lambda S, o: h.rec(K.FUNC_PROTO, 0, 0, 0, 0, order=o)
     + h.rec(K.FUNC, S("f"), 0, 0, 1, order=o), Func("f", 1, FuncLinkage.STATIC)),
    ("func-global", lambda S, o: h.rec(K.FUNC_PROTO, 0, 0, 0, 0, order=o)
     + h.rec(K.FUNC, S("g"), 1, 0, 1, order=o), Func("g", 1, FuncLinkage.GLOBAL)),
    ("func-extern", lambda S, o: h.rec(K.FUNC_PROTO, 0, 0, 0, 0, order=o)
     + h.rec(K.FUNC, S("x"), 2, 0, 1, order=o), Func("x", 1, FuncLinkage.EXTERN)),
    ("var", lambda S, o: _int(S, o) + h.rec(K.VAR, S("v"), 0, 0, 1, 1, order=o),
     Var("v", 1, VarLinkage.GLOBAL)),
    ("var-extern", lambda S, o: _int(S, o) + h.rec(K.VAR, S("ev"), 0, 0, 1, 2, order=o),
     Var("ev", 1, VarLinkage.EXTERN)),
    ("datasec", lambda S, o: _int(S, o) + h.rec(K.VAR, S("v"), 0, 0, 1, 1, order=o)
     + h.rec(K.DATASEC, S(".data"), 1, 0, 16, 2, 8, 4, order=o),
     Datasec(".data", 16, (VarSecinfo(2, 8, 4),))),
    ("float", lambda S, o: h.rec(K.FLOAT, S("double"), 0, 0, 8, order=o), Float("double", 8)),
    ("decl-tag", lambda S, o: _int(S, o) + h.rec(K.VAR, S("v"), 0, 0, 1, 1, order=o)
     + h.rec(K.DECL_TAG, S("hot"), 0, 0, 2, -1, order=o, signed_words=(0,)),
     DeclTag("hot", 2, -1)),
    ("decl-tag-member-attr", lambda S, o: _int(S, o) + h.rec(
        K.STRUCT, S("s"), 1, 0, 4, S("m"), 1, 0, order=o)
     + h.rec(K.DECL_TAG, S("t"), 0, 1, 2, 0, order=o, signed_words=(0,)),
     DeclTag("t", 2, 0, attr=True)),
    ("type-tag", lambda S, o: _int(S, o) + h.rec(K.TYPE_TAG, S("user"), 0, 0, 1, order=o),
     TypeTag("user", 1)),
    ("type-tag-attr", lambda S, o: _int(S, o) + h.rec(K.TYPE_TAG, S("a"), 0, 1, 1, order=o),
     TypeTag("a", 1, attr=True)),
    ("enum64-unsigned", lambda S, o: h.rec(K.ENUM64, S("e64"), 2, 0, 8, S("LO"), 1, 0,
                                           S("HI"), 0xFFFFFFFF, 0xFFFFFFFF, order=o),
     Enum64("e64", 8, False, (EnumValue("LO", 1), EnumValue("HI", (1 << 64) - 1)))),
    ("enum64-signed", lambda S, o: h.rec(K.ENUM64, S("s64"), 1, 1, 8, S("M"),
                                         0, 0x80000000, order=o),
     Enum64("s64", 8, True, (EnumValue("M", -(1 << 63)),))),
]


def _build(builder: Builder, order: str) -> bytes:
    S = h.Strings()
    types = builder(S, order)
    return h.blob(types, bytes(S.raw), order)


ORDERS = [pytest.param("<", id="le"), pytest.param(">", id="be")]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("builder", "expected"), [pytest.param(b, e, id=i) for i, b, e in CASES])
def test_kind_decodes_and_round_trips(builder: Builder, expected: Type, order: str) -> None:
    raw = _build(builder, order)
    spec = parse(raw, validate=True)
    assert spec.types[-1] == expected
    assert spec.byteorder == ("little" if order == "<" else "big")
    assert encode(spec) == raw  # byte for byte
    assert list(parse(encode(spec)).types) == list(spec.types)


def test_every_kind_has_a_case() -> None:
    covered = {e.kind for _, _, e in CASES}
    assert covered == set(Kind) - {Kind.VOID}


def test_type_zero_is_void_and_ids_follow_records() -> None:
    spec = parse(_build(CASES[5][1], "<"))  # int, ptr
    assert spec.types[0].kind == Kind.VOID
    assert len(spec.types) == 3 and spec.start_id == 1 and spec.end_id == 3
    assert spec.type_by_id(2) == Ptr(1)
    assert [t.kind for t in spec.types] == [Kind.VOID, Kind.INT, Kind.PTR]


def test_header_flags_are_kept() -> None:
    raw = h.blob(b"", b"\0", flags=3)
    spec = parse(raw)
    assert spec.flags == 3 and len(spec.types) == 1 and encode(spec) == raw


def test_longer_header_and_gap_are_accepted() -> None:
    S = h.Strings()
    types = _int(S, "<")
    strings = bytes(S.raw) + b"\0" * (-len(S.raw) % 4)
    # hdr_len 32 with zero padding, strings first and types after them.
    head = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 32, len(strings), len(types), 0,
                       len(strings)) + b"\0" * 8
    spec = parse(head + strings + types, validate=True)
    assert spec.types[1] == Int("int", 4, IntEncoding.SIGNED, 32)


# -- errors -----------------------------------------------------------------------------

def _types(*recs: bytes, strings: bytes = b"\0int\0") -> bytes:
    return h.blob(b"".join(recs), strings)


INT = h.rec(K.INT, 1, 0, 0, 4, SIGNED | 32)
HEADER_ERRORS = [
    ("empty", b"", "truncated BTF header"),
    ("one-byte", b"\x9f", "truncated BTF header"),
    ("bad-magic", b"\x34\x12" + b"\0" * 22, "bad BTF magic 0x3412"),
    ("short-header", b"\x9f\xeb\x01\x00" + b"\0" * 6, "truncated BTF header: 10 bytes, need 24"),
    ("version", h.blob(b"", b"\0", version=2), "unsupported BTF version 2"),
    ("hdr-len-small", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 8, 0, 0, 0, 1) + b"\0",
     "header length 8"),
    ("hdr-len-large", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 64, 0, 0, 0, 1) + b"\0",
     "hdr_len says 64"),
    ("type-past-end", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 16, 16, 1) + b"\0",
     "type section at offset 24 with length 16"),
    ("string-past-end", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 9) + b"\0",
     "string section at offset 24 with length 9"),
    ("misaligned", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 2, 4, 0, 1) + b"\0" * 8,
     "misaligned BTF type section"),
    ("overlap", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 16, 8, 8) + INT,
     "overlaps the string section"),
    ("strings-no-leading-nul", h.blob(b"", b"x\0"), "must start with a NUL byte"),
    ("strings-no-trailing-nul", h.blob(b"", b"\0int"), "is not a NUL terminator"),
    ("unknown-kind", _types(h.rec(25, 0, 0, 0, 0)), "type id 1 at offset 24: unknown kind 25"),
    ("kind-zero", _types(INT, h.rec(0, 0, 0, 0, 0)), "type id 2 at offset 40: unknown kind 0"),
    ("truncated-members", _types(INT, h.rec(K.STRUCT, 1, 2, 0, 8, 1, 1, 0)),
     "type id 2 (STRUCT) at offset 40 runs past the section's end"),
    ("truncated-at-buffer-end",
     struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 8, 8, 0, 8) + b"\0int\0\0\0\0" + INT[:8],
     "truncated BTF type section: type id 1 (record) at offset 32"),
]


@pytest.mark.parametrize(("data", "words"), [pytest.param(d, w, id=i) for i, d, w in HEADER_ERRORS])
def test_parse_errors(data: bytes, words: str) -> None:
    with pytest.raises(BTFError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


LAZY_ERRORS = [
    ("name-offset", _types(h.rec(K.INT, 99, 0, 0, 4, 32)),
     "type id 1 (INT) at offset 24: string offset 99 is out of range"),
    ("member-name-offset", _types(INT, h.rec(K.STRUCT, 0, 1, 0, 4, 77, 1, 0)),
     "type id 2 (STRUCT) at offset 40: string offset 77 is out of range"),
    ("ptr-target", _types(h.rec(K.PTR, 0, 0, 0, 5)),
     "type id 1 (PTR) at offset 24: pointer refers to type id 5, past the last type id 1"),
    ("member-type", _types(INT, h.rec(K.STRUCT, 0, 1, 0, 4, 1, 9, 0)),
     "type id 2 (STRUCT) at offset 40: member 0 refers to type id 9"),
    ("array-elem", _types(h.rec(K.ARRAY, 0, 0, 0, 0, 3, 0, 1)), "element type refers to type id 3"),
    ("param-type", _types(h.rec(K.FUNC_PROTO, 0, 1, 0, 0, 0, 4)), "parameter 0 refers to type id 4"),
    ("func-linkage", _types(h.rec(K.FUNC_PROTO, 0, 0, 0, 0), h.rec(K.FUNC, 1, 3, 0, 1)),
     "type id 2 (FUNC) at offset 36: unknown function linkage 3"),
    ("var-linkage", _types(INT, h.rec(K.VAR, 1, 0, 0, 1, 7)), "unknown variable linkage 7"),
    ("datasec-var", _types(h.rec(K.DATASEC, 1, 1, 0, 4, 8, 0, 4)),
     "variable 0 refers to type id 8"),
]


@pytest.mark.parametrize(("data", "words"), [pytest.param(d, w, id=i) for i, d, w in LAZY_ERRORS])
def test_type_errors_surface_on_access_and_validate(data: bytes, words: str) -> None:
    spec = parse(data)  # framing is fine: the fault is inside one type
    pattern = words.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(BTFError, match=pattern):
        list(spec.types)
    with pytest.raises(BTFError, match=pattern):
        parse(data, validate=True)


def test_type_id_out_of_range() -> None:
    spec = parse(_types(INT))
    with pytest.raises(BTFError, match="type id 7 is out of range"):
        spec.type_by_id(7)
    with pytest.raises(IndexError):
        spec.types[7]
    with pytest.raises(BTFError, match="type id -1 is out of range"):
        spec.type_by_id(-1)


@pytest.mark.parametrize(("recs", "words"), [
    pytest.param((INT, h.rec(K.FUNC, 1, 0, 0, 1)),
                 "type id 2 (FUNC 'int'): its prototype, type id 1, is not a FUNC_PROTO",
                 id="func-proto-kind"),
    pytest.param((INT, h.rec(K.DATASEC, 1, 1, 0, 4, 1, 0, 4)),
                 "entry type id 1 is not a VAR or FUNC", id="datasec-entry-kind"),
])
def test_validate_checks_referenced_kinds(recs: tuple[bytes, ...], words: str) -> None:
    spec = parse(_types(*recs))
    with pytest.raises(BTFError, match=words.replace("(", r"\(").replace(")", r"\)")):
        spec.validate()


def test_btf_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse(b"nope")
