"""On-disk layout shared by the decoder and encoder: header, record sizes, byte order."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from .errors import BTFError
from .types import Kind

ByteOrder = Literal["little", "big"]

MAGIC = 0xEB9F
VERSION = 1
HEADER_LEN = 24  # struct btf_header: magic u16, version u8, flags u8, then 5 x u32
TYPE_LEN = 12  # struct btf_type: name_off, info, size/type

# Bytes that follow the 12-byte btf_type, per kind: a fixed part, plus vlen times an
# entry for kinds whose vlen counts entries (FUNC's vlen is its linkage instead).
FIXED = [0] * 32
PER_VLEN = [0] * 32
FIXED[Kind.INT] = 4  # u32: encoding<<24 | offset<<16 | bits
FIXED[Kind.ARRAY] = 12  # struct btf_array: type, index_type, nelems
FIXED[Kind.VAR] = 4  # struct btf_var: linkage
FIXED[Kind.DECL_TAG] = 4  # struct btf_decl_tag: s32 component_idx
PER_VLEN[Kind.STRUCT] = 12  # struct btf_member: name_off, type, offset
PER_VLEN[Kind.UNION] = 12
PER_VLEN[Kind.ENUM] = 8  # struct btf_enum: name_off, s32 val
PER_VLEN[Kind.FUNC_PROTO] = 8  # struct btf_param: name_off, type
PER_VLEN[Kind.DATASEC] = 12  # struct btf_var_secinfo: type, offset, size
PER_VLEN[Kind.ENUM64] = 12  # struct btf_enum64: name_off, val_lo32, val_hi32
MAX_KIND = max(Kind)

MAX_VLEN = 0xFFFF
MAX_TYPE_ID = 0x000FFFFF  # the kernel's BTF_MAX_TYPE
MAX_RESOLVE_DEPTH = 32  # modifier chains longer than this are rejected, as by the kernel


def prefix(byteorder: ByteOrder) -> str:
    """The struct-module prefix for a byte order."""
    return "<" if byteorder == "little" else ">"


def detect_byteorder(data: bytes | memoryview, what: str) -> ByteOrder:
    """Byte order from the 0xeB9F magic in the first two bytes of a .BTF or .BTF.ext."""
    if len(data) < 2:
        raise BTFError(f"truncated {what} header: {len(data)} bytes, no room for the magic")
    head = bytes(data[:2])
    if head == b"\x9f\xeb":
        return "little"
    if head == b"\xeb\x9f":
        return "big"
    raise BTFError(f"bad {what} magic 0x{head.hex()} at offset 0: expected 0xeb9f in either byte order")


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded ``struct btf_header``; section offsets are relative to its end."""

    byteorder: ByteOrder
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int

    @property
    def types_start(self) -> int:
        """Absolute offset of the type section."""
        return self.hdr_len + self.type_off

    @property
    def strings_start(self) -> int:
        """Absolute offset of the string section."""
        return self.hdr_len + self.str_off


def parse_header(data: bytes | memoryview) -> Header:
    """Decode and bounds-check the .BTF header of ``data``."""
    order = detect_byteorder(data, "BTF")
    if len(data) < HEADER_LEN:
        raise BTFError(f"truncated BTF header: {len(data)} bytes, need {HEADER_LEN}")
    _, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        prefix(order) + "HBBIIIII", data, 0)
    if version != VERSION:
        raise BTFError(f"unsupported BTF version {version} at offset 2: only {VERSION} is known")
    if hdr_len < HEADER_LEN:
        raise BTFError(f"BTF header length {hdr_len} at offset 4 is below the minimum {HEADER_LEN}")
    if hdr_len > len(data):
        raise BTFError(f"truncated BTF header: hdr_len says {hdr_len} bytes, data has {len(data)}")
    hdr = Header(order, version, flags, hdr_len, type_off, type_len, str_off, str_len)
    for name, start, length in (("type", hdr.types_start, type_len),
                                ("string", hdr.strings_start, str_len)):
        if start + length > len(data):
            raise BTFError(f"truncated BTF: {name} section at offset {start} with length {length} "
                           f"ends past the {len(data)} bytes of data")
    if type_off % 4 or type_len % 4:
        raise BTFError(f"misaligned BTF type section: offset {type_off}, length {type_len} "
                       "(both must be multiples of 4)")
    if (type_len and str_len and type_off < str_off + str_len
            and str_off < type_off + type_len):
        raise BTFError(f"BTF type section (offset {type_off}, length {type_len}) overlaps the "
                       f"string section (offset {str_off}, length {str_len})")
    return hdr


def pack_header(byteorder: ByteOrder, flags: int, type_len: int, str_len: int) -> bytes:
    """A 24-byte header for types followed directly by strings."""
    return struct.pack(prefix(byteorder) + "HBBIIIII", MAGIC, VERSION, flags, HEADER_LEN,
                       0, type_len, type_len, str_len)
