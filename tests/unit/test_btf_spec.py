"""Spec queries: name lookup, resolve, sizeof/alignof, member lookup, edits, split BTF."""

from __future__ import annotations

import pytest

from purebpf.btf import (
    VOID, Array, BTFError, BTFNotFoundError, Const, Enum, Enum64, EnumValue, Float, Func,
    FuncProto, Fwd, Int, IntEncoding, Kind, Member, Ptr, Spec, Struct, TypeRef, TypeTag,
    Typedef, Union, Var, Volatile, encode, parse,
)

S32 = Int("int", 4, IntEncoding.SIGNED, 32)
CHAR = Int("char", 1, IntEncoding.CHAR, 8)


def sample() -> Spec:
    """A small spec with nesting, modifiers and every sized kind."""
    return Spec([
        S32,                                                    # 1
        CHAR,                                                   # 2
        Ptr(1),                                                 # 3
        Array(1, 1, 3),                                         # 4
        Typedef("i32", 1),                                      # 5
        Const(5),                                               # 6
        Struct("pair", 8, (Member("a", 1, 0), Member("b", 6, 32))),  # 7
        Struct("packed", 5, (Member("c", 2, 0), Member("i", 1, 8))),  # 8
        Union("", 4, (Member("u1", 1, 0), Member("u2", 2, 0))),  # 9
        Struct("", 8, (Member("x", 1, 0), Member("", 9, 32))),   # 10
        Struct("outer", 24, (Member("first", 2, 0), Member("", 10, 32),
                             Member("p", 7, 96), Member("tail", 2, 160))),  # 11
        Enum("e", 4, False, (EnumValue("A", 0),)),              # 12
        Enum64("e64", 8, True, (EnumValue("B", -1),)),          # 13
        Float("double", 8),                                     # 14
        Int("__int128", 16, IntEncoding.SIGNED, 128),           # 15
        FuncProto(1, ()),                                       # 16
        Func("fn", 16),                                         # 17
        Fwd("opaque"),                                          # 18
        Var("glob", 7),                                         # 19
        Volatile(4),                                            # 20
        TypeTag("user", 2),                                     # 21
        Typedef("pair", 7),                                     # 22: same name, other kind
        Array(7, 1, 2),                                         # 23
        Struct("bits", 4, (Member("lo", 1, 0, 3), Member("hi", 1, 3, 29))),  # 24
    ])


@pytest.fixture(params=["built", "parsed"])
def spec(request: pytest.FixtureRequest) -> Spec:
    s = sample()
    return s if request.param == "built" else parse(encode(s), validate=True)


SIZES = [
    ("int", 1, 4, 4), ("ptr", 3, 8, 8), ("array", 4, 12, 4), ("typedef", 5, 4, 4),
    ("const-typedef", 6, 4, 4), ("struct", 7, 8, 4), ("packed", 8, 5, 1), ("anon-union", 9, 4, 4),
    ("outer", 11, 24, 4), ("enum", 12, 4, 4), ("enum64", 13, 8, 8), ("float", 14, 8, 8),
    ("int128", 15, 16, 16), ("var", 19, 8, 4), ("volatile-array", 20, 12, 4),
    ("type-tag", 21, 1, 1), ("array-of-struct", 23, 16, 4), ("bitfields", 24, 4, 4),
]


@pytest.mark.parametrize(("tid", "size", "align"), [pytest.param(t, s, a, id=i) for i, t, s, a in SIZES])
def test_sizeof_and_alignof(spec: Spec, tid: int, size: int, align: int) -> None:
    assert spec.sizeof(tid) == size
    assert spec.alignof(tid) == align
    assert spec.sizeof(spec.types[tid]) == size  # a type object works too
    assert spec.alignof(spec.types[tid]) == align


@pytest.mark.parametrize(("tid", "words"), [
    pytest.param(0, "type id 0 .VOID", id="void"), pytest.param(16, "FUNC_PROTO", id="proto"),
    pytest.param(17, "FUNC 'fn'", id="func"), pytest.param(18, "FWD 'opaque'", id="fwd"),
])
def test_unsized_types(spec: Spec, tid: int, words: str) -> None:
    with pytest.raises(BTFError, match=f"{words}.* has no size"):
        spec.sizeof(tid)
    with pytest.raises(BTFError, match="has no alignment"):
        spec.alignof(tid)


def test_resolve_skips_modifiers(spec: Spec) -> None:
    assert spec.resolve(6) == S32
    assert spec.resolve_id(6) == 1
    assert spec.resolve(21) == CHAR
    assert spec.resolve(spec.types[22]).name == "pair"
    assert spec.resolve(3) == Ptr(1)  # pointers are not skipped


def test_is_packed(spec: Spec) -> None:
    assert spec.is_packed(8) and not spec.is_packed(7) and not spec.is_packed(1)


@pytest.mark.parametrize(("ref", "path", "expected"), [
    pytest.param(7, "b", Member("b", 6, 32), id="direct"),
    pytest.param(11, "x", Member("x", 1, 32), id="anon-struct"),
    pytest.param(11, "u2", Member("u2", 2, 64), id="anon-struct-union"),
    pytest.param(11, "p.b", Member("b", 6, 128), id="dotted"),
    pytest.param(19, "a", Member("a", 1, 0), id="through-var"),
    pytest.param(22, "b", Member("b", 6, 32), id="through-typedef"),
    pytest.param(24, "hi", Member("hi", 1, 3, 29), id="bitfield"),
])
def test_field(spec: Spec, ref: TypeRef, path: str, expected: Member) -> None:
    assert spec.field(ref, path) == expected


def test_field_errors(spec: Spec) -> None:
    with pytest.raises(BTFNotFoundError, match="STRUCT 'pair' type has no member 'zz'"):
        spec.field(7, "zz")
    with pytest.raises(KeyError):
        spec.field(7, "zz")
    with pytest.raises(BTFError, match="'a' of path 'a.a'.*INT 'int' type is not a struct"):
        spec.field(7, "a.a")
    assert spec.types[7].member("a") == Member("a", 1, 0)  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        spec.types[7].member("nope")  # type: ignore[union-attr]


def test_find(spec: Spec) -> None:
    assert spec.find("outer").size == 24  # type: ignore[union-attr]
    assert spec.find_id("int") == 1
    assert spec.find_ids("pair") == [7, 22]
    assert spec.find_id("pair", Kind.TYPEDEF) == 22
    assert spec.find_id("pair", Struct) == 7
    assert spec.find("fn", Func) == Func("fn", 16)
    assert spec.find_ids("") == []
    assert spec.find_ids("ai") == []  # a suffix of "pair" is not a name


def test_find_errors(spec: Spec) -> None:
    with pytest.raises(BTFNotFoundError, match="no type named 'missing'"):
        spec.find("missing")
    with pytest.raises(BTFNotFoundError, match="no UNION type named 'pair'"):
        spec.find("pair", Union)
    with pytest.raises(BTFError, match=r"'pair' names types of several kinds \(STRUCT \[7\], "
                                       r"TYPEDEF \[22\]\); pass kind="):
        spec.find("pair")
    with pytest.raises(TypeError):
        spec.find_ids("pair", int)


def test_add_and_replace_keep_the_index(spec: Spec) -> None:
    assert spec.find_ids("int") == [1]
    new = spec.add(Typedef("newname", 1))
    assert new == 25 and spec.find_id("newname") == 25 and len(spec.types) == 26
    spec.replace(1, Int("myint", 4, IntEncoding.SIGNED, 32))
    assert spec.find_ids("int") == [] and spec.find_id("myint") == 1
    assert spec.sizeof(5) == 4
    again = parse(encode(spec), validate=True)
    assert list(again.types) == list(spec.types)
    assert again.find_id("myint") == 1 and again.find_id("newname") == 25


def test_items_and_iteration(spec: Spec) -> None:
    items = list(spec.items())
    assert items[0] == (1, S32) and len(items) == 24
    assert list(spec.items(include_base=True))[0] == (0, VOID)
    assert spec.types[-1] == spec.types[24]
    assert spec.types[1:3] == [S32, CHAR]
    assert "Spec 24 types" in repr(spec)


def test_pointer_to(spec: Spec) -> None:
    assert spec.pointer_to(1) == 3
    assert spec.pointer_to(7) == 25 and spec.types[25] == Ptr(7)


def test_reference_loop_is_an_error() -> None:
    loop = Spec([Typedef("a", 2), Typedef("b", 1)])
    with pytest.raises(BTFError, match="typedef/qualifier hops"):
        loop.resolve(1)
    with pytest.raises(BTFError, match="a reference loop"):
        loop.sizeof(1)


# -- split BTF --------------------------------------------------------------------------

def test_split_btf_continues_ids_and_strings() -> None:
    base = parse(encode(Spec([S32, Ptr(1)])))
    split = Spec(base=base)
    assert split.start_id == 3
    sid = split.add(Struct("modstruct", 16, (Member("int", 1, 0), Member("p", 2, 64))))
    assert sid == 3
    raw = encode(split)
    assert b"int\0" not in raw[24:]  # "int" comes from the base's string section
    mod = parse(raw, base, validate=True)
    assert mod.start_id == 3 and len(mod.types) == 4
    assert mod.types[3] == split.types[3] and mod.types[1] == S32
    assert mod.find_id("modstruct") == 3 and mod.find_id("int") == 1
    assert mod.sizeof(3) == 16 and mod.field(3, "p").bit_offset == 64
    assert encode(mod) == raw
    assert list(mod.items()) == [(3, split.types[3])]
    with pytest.raises(BTFError, match="belongs to the base"):
        mod.replace(1, CHAR)


def test_split_btf_errors() -> None:
    base = parse(encode(Spec([S32])))
    with pytest.raises(BTFError, match="split BTF is big-endian but its base is little-endian"):
        parse(encode(Spec([S32], byteorder="big")), base)
    with pytest.raises(BTFError, match="its base was not parsed"):
        encode(Spec([CHAR], base=Spec([S32])))
    bad = Spec(base=base)
    bad.add(Ptr(9))
    with pytest.raises(BTFError, match="type id 2 .*refers to type id 9"):
        parse(encode(bad), base, validate=True)
