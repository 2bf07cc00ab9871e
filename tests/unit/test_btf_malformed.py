"""Malformed BTF in the layout queries, the C renderer, value decoding and CO-RE access
strings: a BTFError naming the type ids, never a RecursionError, a ZeroDivisionError or a
hang."""

from __future__ import annotations

import pytest

from purebpf.btf import (
    Array, BTFError, CoreRelo, CoreReloKind, Float, FuncProto, Int, IntEncoding, Member, Param, Ptr,
    Spec, Struct, Type, Typedef, Union, dump_c, format_type,
)
from purebpf.btf.values import decode, encode

S32 = Int("int", 4, IntEncoding.SIGNED, 32)


def self_struct() -> Spec:
    return Spec([S32, Struct("loop", 8, (Member("a", 1, 0), Member("self", 2, 32)))])


@pytest.mark.parametrize("query", ["alignof", "is_packed"])
def test_struct_containing_itself_is_a_btf_error(query: str) -> None:
    with pytest.raises(BTFError, match=r"type id 2 \(STRUCT 'loop'\) contains itself by value "
                       r"\(type ids 2 -> 2\): a reference loop"):
        getattr(self_struct(), query)(2)


def test_loop_through_several_structs_names_the_ids() -> None:
    spec = Spec([S32, Struct("a", 4, (Member("b", 3, 0),)), Array(4, 1, 1),
                 Struct("b", 4, (Member("a", 2, 0),))])
    with pytest.raises(BTFError, match=r"contains itself by value \(type ids 2 -> 3 -> 4 -> 2\)"):
        spec.alignof(2)


def test_deep_but_finite_nesting_needs_no_recursion() -> None:
    # 250 structs, each holding the next by value: more Python frames than the recursion
    # limit allows if each level recursed.
    types: list[Type] = [S32]
    for i in range(250):
        types.append(Struct(f"s{i}", 4, (Member("x", i + 3 if i < 249 else 1, 0),)))
    spec = Spec(types)
    assert spec.alignof(2) == 4 and not spec.is_packed(2)


def test_nesting_past_the_limit_is_refused() -> None:
    types: list[Type] = [S32]
    for i in range(400):
        types.append(Struct(f"s{i}", 4, (Member("x", i + 3 if i < 399 else 1, 0),)))
    with pytest.raises(BTFError, match=r"type id 2 \(STRUCT 's0'\): types nest more than 256 deep"):
        Spec(types).alignof(2)


@pytest.mark.parametrize("render", [lambda s: format_type(s, 2), lambda s: dump_c(s)],
                         ids=["format_type", "dump_c"])
def test_prototype_whose_parameter_is_itself(render) -> None:  # type: ignore[no-untyped-def]
    spec = Spec([S32, FuncProto(1, (Param("f", 3),)), Ptr(2), Typedef("cb_t", 3)])
    with pytest.raises(BTFError, match=r"type id 2 \(FUNC_PROTO\) refers to itself "
                       r"\(type ids 2 -> 2\): a reference loop cannot be written as C"):
        render(spec)


def test_prototype_returning_itself() -> None:
    spec = Spec([FuncProto(1, ())])
    with pytest.raises(BTFError, match=r"type id 1 \(FUNC_PROTO\): its declarator comes back "
                       "to type id 1"):
        format_type(spec, 1)


def test_dump_c_of_struct_containing_itself() -> None:
    with pytest.raises(BTFError, match=r"type id 2 \(STRUCT 'loop'\) contains itself by value"):
        dump_c(self_struct())


def test_dump_c_of_typedef_of_itself() -> None:
    # Used to print "typedef loop_t loop_t;", which is not C.
    with pytest.raises(BTFError, match=r"type id 1 \(TYPEDEF 'loop_t'\) is defined in terms of "
                       r"itself \(type ids 1 -> 1\)"):
        dump_c(Spec([Typedef("loop_t", 1)]))


def test_dump_c_of_typedef_loop_through_a_pointer() -> None:
    spec = Spec([Typedef("a_t", 2), Ptr(3), Typedef("b_t", 4), Ptr(1)])
    with pytest.raises(BTFError, match=r"TYPEDEF 'a_t'\) is defined in terms of itself "
                       r"\(type ids 1 -> 3 -> 1\)"):
        dump_c(spec)


def test_anonymous_struct_containing_itself() -> None:
    spec = Spec([S32, Struct("outer", 4, (Member("", 3, 0),)),
                 Struct("", 4, (Member("", 3, 0),))])
    with pytest.raises(BTFError, match=r"type id 3 \(STRUCT\) (refers to|contains) itself"):
        format_type(spec, 2)


@pytest.mark.parametrize("size,bits,why", [(0, 3, "which is 0 bytes"),
                                           (1, 12, "12-bit bitfield of type id 1 "
                                                   r"\(INT 'u8'\), which is 1 bytes")])
def test_bitfield_c_cannot_declare(size: int, bits: int, why: str) -> None:
    spec = Spec([Int("u8", size, IntEncoding.NONE, 8 * size),
                 Struct("s", 4, (Member("x", 1, 0, bits),))])
    with pytest.raises(BTFError, match=rf"type id 2 \(STRUCT 's'\): member 0 \('x'\) is a .*{why}"):
        format_type(spec, 2)


def test_huge_struct_pads_with_one_array() -> None:
    # 1.2 GB of padding used to be written as 150 million "long: 64;" lines.
    spec = Spec([S32, Struct("big", 1_200_000_000, (Member("x", 1, 0),))])
    text = format_type(spec, 2)
    assert text == "struct big {\n\tint x;\n\tchar __pad_4[1199999996];\n};"


def test_long_gap_between_members_is_an_array_and_keeps_offsets() -> None:
    spec = Spec([S32, Struct("gap", 4104, (Member("a", 1, 0), Member("b", 1, 4100 * 8)))])
    assert format_type(spec, 2) == "struct gap {\n\tint a;\n\tchar __pad_4[4096];\n\tint b;\n};"


def test_union_with_no_members_gets_its_size() -> None:
    spec = Spec([Union("u", 16, ())])
    assert format_type(spec, 1) == "union u {\n\tchar __pad_0[16];\n};"


def test_shared_anonymous_types_cannot_blow_up_the_text() -> None:
    # Each anonymous struct holds the next one twice: 2**20 members if written out.
    types: list[Type] = [S32]
    for i in range(20):
        nxt = i + 3 if i < 19 else 1
        types.append(Struct("" if i else "top", 8, (Member("a", nxt, 0), Member("b", nxt, 32))))
    with pytest.raises(BTFError, match="anonymous types written inline would take more than "
                       "65536 members"):
        format_type(Spec(types), 2)


# -- decoding and encoding values with malformed BTF --------------------------------------------
def test_decode_array_of_billions_of_empty_elements() -> None:
    spec = Spec([Struct("empty", 0, ()), S32, Array(1, 2, 0xFFFFFFFF)])
    with pytest.raises(BTFError, match="array of 4294967295 elements of type id 1, which has "
                       "no size: more than the 4096 such elements decoded"):
        decode(spec, 3, bytes(4))


def test_decode_array_longer_than_the_data() -> None:
    spec = Spec([S32, Array(1, 1, 1 << 30)])
    with pytest.raises(BTFError, match=r"value of 8 bytes is too short: needs 4294967296 bytes"):
        decode(spec, 2, bytes(8))


@pytest.mark.parametrize("direction", ["decode", "encode"])
def test_value_of_a_struct_containing_itself(direction: str) -> None:
    spec = Spec([S32, Struct("loop", 4, (Member("a", 1, 0), Member("self", 2, 0)))])
    with pytest.raises(BTFError, match=r"nested too deeply \(a reference loop\?\)"):
        if direction == "decode":
            decode(spec, 2, bytes(4))
        else:
            encode(spec, 2, _nested(100))


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"a": 1}
    for _ in range(depth):
        value = {"a": 1, "self": value}
    return value


def test_encode_of_a_type_bigger_than_any_map_value() -> None:
    spec = Spec([S32, Array(1, 1, 1 << 31), Array(2, 1, 1 << 31)])
    with pytest.raises(BTFError, match=r"type id 3 is 18446744073709551616 bytes, more than "
                       "any map value can be"):
        encode(spec, 3, b"")


def test_decode_signed_int_of_zero_bits() -> None:
    spec = Spec([Int("nothing", 4, IntEncoding.SIGNED, 0)])
    assert decode(spec, 1, b"\xff\xff\xff\xff") == 0


@pytest.mark.parametrize("access", ["0:x", "0:-1", "1:2\u0663"])
def test_core_relo_access_string_that_is_not_indices(access: str) -> None:
    relo = CoreRelo(16, 3, access, CoreReloKind.FIELD_BYTE_OFFSET)
    with pytest.raises(BTFError, match=rf"CO-RE relocation at instruction offset 16: access "
                       rf"string '{access}' is not indices separated by ':'"):
        relo.accessors


@pytest.mark.parametrize("member", [Member("far", 1, 64), Member("far", 3, 64)],
                         ids=["int", "double"])
def test_encode_member_outside_its_struct(member: Member) -> None:
    # Used to grow the value silently (int) or raise struct.error (double).
    spec = Spec([S32, Struct("s", 4, (Member("a", 1, 0), member)), Float("double", 8)])
    with pytest.raises(BTFError, match=r"value\.far: \d bytes at offset 8 do not fit the 4-byte "
                       r"value \(a member outside its struct\?\)"):
        encode(spec, 2, {"a": 1, "far": 2})
