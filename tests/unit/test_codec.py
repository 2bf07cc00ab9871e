"""Key/value codecs: what a map accepts, the bytes the kernel gets, and what comes back."""

from __future__ import annotations

import ctypes
import errno
import struct
import sys

import pytest

from purebpf.codec import Codec, PerCPUCodec, TypeCodec, round8

BO = sys.byteorder


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16), ("c", ctypes.c_uint16)]


class Celsius:
    """A user type codec: stores tenths of a degree as a signed 32-bit int."""

    size = 4

    def encode(self, obj: float) -> bytes:
        return round(obj * 10).to_bytes(4, BO, signed=True)

    def decode(self, data: bytes) -> float:
        return int.from_bytes(data, BO, signed=True) / 10


# -- integers --------------------------------------------------------------------------------
INT_CASES = [
    (1, 0), (1, 255), (1, -1), (1, -128),
    (2, 0x1234), (2, 65535), (2, -2),
    (4, 7), (4, 2**32 - 1), (4, -2**31),
    (8, 2**64 - 1), (8, -5),
    (16, 2**128 - 1), (16, 3), (16, -1),
]


@pytest.mark.parametrize("size,value", INT_CASES, ids=[f"u{s*8}:{v}" for s, v in INT_CASES])
def test_int_encodes_native_order_twos_complement(size: int, value: int) -> None:
    c = Codec(size)
    assert c.encode(value) == value.to_bytes(size, BO, signed=value < 0)


@pytest.mark.parametrize("size,value", INT_CASES, ids=[f"u{s*8}:{v}" for s, v in INT_CASES])
def test_declared_int_decodes_unsigned(size: int, value: int) -> None:
    c = Codec(size, int)
    assert c.decode(c.encode(value)) == value % (1 << (8 * size))


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16])
def test_undeclared_decodes_to_bytes(size: int) -> None:
    c = Codec(size)
    data = bytes(range(1, size + 1))
    assert c.decode(c.encode(data)) == data
    assert type(c.decode(data)) is bytes


@pytest.mark.parametrize("size,value", [(1, 256), (1, -129), (2, 65536), (4, 2**32),
                                        (4, -2**31 - 1), (8, 2**64), (16, 2**128)],
                         ids=lambda v: str(v))
def test_int_out_of_range_is_value_error(size: int, value: int) -> None:
    c = Codec(size, what="key of map 'flows'")
    with pytest.raises(ValueError, match=rf"key of map 'flows': {value} does not fit in "
                                         rf"{size} bytes"):
        c.encode(value)


@pytest.mark.parametrize("size", [3, 5, 12])
def test_int_for_odd_size_is_type_error(size: int) -> None:
    c = Codec(size, what="value of map 'v'")
    with pytest.raises(TypeError, match=rf"value of map 'v' is {size} bytes: pass bytes"):
        c.encode(1)
    assert c.encode(b"\x01" * size) == b"\x01" * size


def test_declared_int_of_odd_size_still_decodes() -> None:
    assert Codec(3, int).decode(b"\x01\x02\x03") == int.from_bytes(b"\x01\x02\x03", BO)


# -- bytes-likes and wrong kinds -------------------------------------------------------------
@pytest.mark.parametrize("obj", [b"abcd", bytearray(b"abcd"), memoryview(b"abcd"),
                                 (ctypes.c_char * 4)(*b"abcd"), ctypes.c_uint32(
                                     int.from_bytes(b"abcd", BO))],
                         ids=["bytes", "bytearray", "memoryview", "ctypes-array", "c_uint32"])
def test_bytes_likes_and_ctypes_objects_are_taken_verbatim(obj: object) -> None:
    assert Codec(4).encode(obj) == b"abcd"


@pytest.mark.parametrize("size,data", [(4, b"abc"), (4, b"abcde"), (16, b""), (3, b"ab")],
                         ids=["short", "long", "empty", "odd"])
def test_wrong_length_is_value_error_naming_the_map(size: int, data: bytes) -> None:
    c = Codec(size, what="key of map 'flows' (HASH id=7)")
    with pytest.raises(ValueError, match=rf"key of map 'flows' \(HASH id=7\) must be {size} "
                                         rf"bytes, got {len(data)}"):
        c.encode(data)


def test_wrong_size_ctypes_object_is_value_error() -> None:
    with pytest.raises(ValueError, match="must be 4 bytes, got 8"):
        Codec(4).encode(ctypes.c_uint64(1))


@pytest.mark.parametrize("obj", [1.5, None, "abcd", [1, 2, 3, 4], {"a": 1}, object()],
                         ids=["float", "None", "str", "list", "dict", "object"])
@pytest.mark.parametrize("size", [4, 16])
def test_wrong_type_is_type_error_naming_the_map(size: int, obj: object) -> None:
    c = Codec(size, what="value of map 'm'")
    with pytest.raises(TypeError, match=rf"value of map 'm': expected an int, bytes or ctypes "
                                        rf"object of {size} bytes, got {type(obj).__name__}"):
        c.encode(obj)


@pytest.mark.parametrize("size,type_", [(4, None), (4, int), (16, None), (8, "=q"),
                                         (4, ctypes.c_int32)],
                         ids=["fast-bytes", "fast-int", "general-16", "struct", "ctypes"])
def test_bool_is_an_int_on_every_path(size: int, type_: object) -> None:
    """The fast (struct) and general paths agree: True encodes as 1, False as 0."""
    c = Codec(size, type_)
    assert c.encode(True) == (1).to_bytes(size, sys.byteorder)
    assert c.encode(False) == bytes(size)


def test_a_user_codec_raising_a_purebpf_error_keeps_it() -> None:
    from purebpf import InvalidArgumentError

    class Strict:
        size = 4

        def encode(self, obj: object) -> bytes:
            raise InvalidArgumentError(errno.EINVAL, "must be even", hint="try 2")

        def decode(self, data: bytes) -> object:
            return data

    with pytest.raises(InvalidArgumentError) as info:
        Codec(4, Strict(), what="value of map 'm'").encode(3)
    assert info.value.errno == errno.EINVAL and info.value.hint == "try 2"
    assert str(info.value) == "value of map 'm': must be even [EINVAL]; try 2"


def test_a_user_codec_raising_a_value_error_with_another_signature() -> None:
    class Bad:
        size = 4

        def encode(self, obj: object) -> bytes:
            return bytes([0xff]).decode("ascii").encode()  # UnicodeDecodeError

        def decode(self, data: bytes) -> object:
            return data

    with pytest.raises(ValueError, match="value of map 'm': 'ascii' codec can't decode"):
        Codec(4, Bad(), what="value of map 'm'").encode(3)


def test_pack_into_writes_only_its_slot() -> None:
    c = Codec(4, int)
    buf = bytearray(b"\xff" * 12)
    c.pack_into(buf, 0x01020304, 4)
    assert buf[:4] == b"\xff" * 4 and buf[8:] == b"\xff" * 4
    assert c.unpack(buf, 4) == 0x01020304
    c.pack_into(buf, b"wxyz", 8)
    assert bytes(buf[8:]) == b"wxyz"


# -- declared types --------------------------------------------------------------------------
@pytest.mark.parametrize("ctype,value", [
    (ctypes.c_int32, -5), (ctypes.c_uint16, 65535), (ctypes.c_int64, -2**63),
    (ctypes.c_double, 2.5), (ctypes.c_float, -0.5), (ctypes.c_uint8, 200),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_ctypes_scalar_roundtrip(ctype: type, value: object) -> None:
    c = Codec(ctypes.sizeof(ctype), ctype)
    assert c.decode(c.encode(value)) == value
    assert c.encode(value) == bytes(ctype(value))


def test_ctypes_scalar_accepts_raw_bytes_and_refuses_str() -> None:
    c = Codec(4, ctypes.c_int32)
    assert c.decode(c.encode(b"\x01\x00\x00\x00" if BO == "little" else b"\0\0\0\1")) == 1
    with pytest.raises(TypeError, match="got str"):
        c.encode("1")


def test_ctypes_structure_from_instance_dict_tuple() -> None:
    c = Codec(8, Pair)
    ref = bytes(Pair(1, 2, 3))
    assert c.encode(Pair(1, 2, 3)) == ref
    assert c.encode({"a": 1, "b": 2, "c": 3}) == ref
    assert c.encode((1, 2, 3)) == ref
    out = c.decode(ref)
    assert isinstance(out, Pair) and (out.a, out.b, out.c) == (1, 2, 3)


def test_ctypes_array_type_from_list() -> None:
    arr = ctypes.c_uint16 * 4
    c = Codec(8, arr)
    assert c.encode([1, 2, 3, 4]) == bytes(arr(1, 2, 3, 4))
    assert list(c.decode(bytes(arr(5, 6, 7, 8)))) == [5, 6, 7, 8]


@pytest.mark.parametrize("fmt,value", [("I", 7), ("=HH", (1, 2)), ("<Q", 2**63),
                                       (struct.Struct("=iI"), (-1, 1)), ("4s", b"abcd")],
                         ids=["I", "HH", "Q", "Struct", "4s"])
def test_struct_formats(fmt: str | struct.Struct, value: object) -> None:
    st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
    c = Codec(st.size, fmt)
    packed = st.pack(*value) if isinstance(value, tuple) else st.pack(value)
    assert c.encode(value) == packed
    assert c.decode(packed) == value


def test_struct_format_wrong_arity_is_type_error() -> None:
    c = Codec(4, "=HH")
    with pytest.raises(TypeError, match="got tuple"):
        c.encode((1, 2, 3))
    assert c.encode(b"abcd") == b"abcd"


def test_type_codec_roundtrip_and_raw_passthrough() -> None:
    t = Celsius()
    assert isinstance(t, TypeCodec)
    c = Codec(4, t)
    assert c.decode(c.encode(21.5)) == 21.5
    assert c.encode(b"\0\0\0\0") == b"\0\0\0\0"


@pytest.mark.parametrize("declared", [ctypes.c_uint64, Pair, "=Q", struct.Struct("=HHHH"),
                                      Celsius()],
                         ids=["c_uint64", "Structure", "fmt", "Struct", "TypeCodec"])
def test_declared_type_of_wrong_size_is_value_error_at_construction(declared: object) -> None:
    with pytest.raises(ValueError, match=r"value of map 'x'.* bytes, the map's size is 2"):
        Codec(2, declared, what="value of map 'x'")


def test_unsupported_declared_type_is_type_error() -> None:
    with pytest.raises(TypeError, match="unsupported declared type"):
        Codec(4, float)


# -- per-CPU ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n,r", [(0, 0), (1, 8), (4, 8), (8, 8), (9, 16), (17, 24)])
def test_round8(n: int, r: int) -> None:
    assert round8(n) == r


def test_percpu_layout_is_round8_stride_per_cpu() -> None:
    p = PerCPUCodec(Codec(4, int), 3)
    assert (p.stride, p.size) == (8, 24)
    buf = bytearray(p.size)
    p.pack_into(buf, [1, 2, 3])
    assert [int.from_bytes(buf[i * 8:i * 8 + 4], BO) for i in range(3)] == [1, 2, 3]
    assert buf[4:8] == b"\0\0\0\0"  # padding stays zero
    assert p.unpack(buf) == [1, 2, 3]


def test_percpu_single_value_is_stored_on_every_cpu() -> None:
    p = PerCPUCodec(Codec(2, int), 4)
    buf = bytearray(p.size)
    p.pack_into(buf, 9)
    assert p.unpack(buf) == [9, 9, 9, 9]


def test_percpu_wrong_count_is_value_error() -> None:
    p = PerCPUCodec(Codec(4, int, what="value of map 'pc'"), 2)
    with pytest.raises(ValueError, match=r"value of map 'pc': per-CPU map takes 2 values "
                                         r"\(one per possible CPU\), got 3"):
        p.pack_into(bytearray(p.size), [1, 2, 3])


def test_percpu_single_field_struct_format_takes_a_list_per_cpu() -> None:
    p = PerCPUCodec(Codec(4, "I"), 2)
    buf = bytearray(p.size)
    p.pack_into(buf, [3, 4])
    assert p.unpack(buf) == [3, 4]


def test_percpu_multi_field_struct_format_tuple_is_one_value() -> None:
    p = PerCPUCodec(Codec(4, "=HH"), 2)
    buf = bytearray(p.size)
    p.pack_into(buf, (1, 2))
    assert p.unpack(buf) == [(1, 2), (1, 2)]
    p.pack_into(buf, [(1, 2), (3, 4)])
    assert p.unpack(buf) == [(1, 2), (3, 4)]
