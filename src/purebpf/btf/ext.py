"""Parsing and encoding .BTF.ext: per-section func_info, line_info and CO-RE relocations."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ._wire import MAGIC, VERSION, ByteOrder, detect_byteorder, prefix
from .encode import encode, string_builder
from .errors import BTFError
from .spec import Spec
from .strings import StringTable, StringTableBuilder

# struct btf_ext_header: magic u16, version u8, flags u8, hdr_len u32, then (offset,
# length) pairs relative to the header's end for func_info, line_info and, when
# hdr_len allows, core_relo.
EXT_HEADER_LEN = 24
EXT_HEADER_LEN_CORE = 32


class CoreReloKind(enum.IntEnum):
    """What a CO-RE relocation asks the loader to compute (enum bpf_core_relo_kind)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """The FUNC type id of the subprogram starting at byte ``insn_off`` of a section."""

    insn_off: int
    type: int


@dataclass(frozen=True, slots=True)
class LineInfo:
    """Source position of the instruction at byte ``insn_off`` of a section."""

    insn_off: int
    file_name: str
    line: str
    line_num: int
    column: int


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """A CO-RE relocation: ``access`` ("0:1:2") walks from local type id ``type``."""

    insn_off: int
    type: int
    access: str
    kind: CoreReloKind

    @property
    def accessors(self) -> tuple[int, ...]:
        """The access string's indices (first: array index, then member/enumerator).

        Raises ``BTFError`` if the string is not decimal numbers separated by ``:``.
        """
        parts = [x for x in self.access.split(":") if x]
        if not all(x.isascii() and x.isdigit() for x in parts):
            raise BTFError(f"CO-RE relocation at instruction offset {self.insn_off}: access "
                           f"string {self.access!r} is not indices separated by ':'")
        return tuple(int(x) for x in parts)


@dataclass(slots=True)
class BTFExt:
    """A parsed .BTF.ext; each mapping is keyed by ELF section name, in file order."""

    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)
    byteorder: ByteOrder = "little"
    flags: int = 0
    hdr_len: int = EXT_HEADER_LEN_CORE
    # Record sizes as found; larger ones than we know carry fields we cannot interpret
    # and re-encode as zeros.
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    core_relo_rec_size: int = 16


_MIN_REC = {"func_info": 8, "line_info": 16, "core_relo": 16}
_R = TypeVar("_R")


def parse_ext(data: bytes | bytearray | memoryview, strings: Spec | StringTable) -> BTFExt:
    """Parse .BTF.ext; its string offsets refer to the .BTF string section ``strings``."""
    buf = bytes(data)
    table = strings.strings if isinstance(strings, Spec) else strings
    if table is None:
        raise BTFError("parsing .BTF.ext needs the string section of a parsed .BTF")
    order = detect_byteorder(buf, "BTF.ext")
    p = prefix(order)
    if len(buf) < 8:
        raise BTFError(f"truncated BTF.ext header: {len(buf)} bytes, need at least 8")
    _, version, flags, hdr_len = struct.unpack_from(p + "HBBI", buf, 0)
    if version != VERSION:
        raise BTFError(f"unsupported BTF.ext version {version} at offset 2: only {VERSION} is known")
    if hdr_len < EXT_HEADER_LEN or hdr_len > len(buf):
        raise BTFError(f"bad BTF.ext header length {hdr_len} at offset 4 (data has {len(buf)} "
                       f"bytes, minimum header is {EXT_HEADER_LEN})")
    offs = struct.unpack_from(p + "IIII", buf, 8)
    core = struct.unpack_from(p + "II", buf, 24) if hdr_len >= EXT_HEADER_LEN_CORE else (0, 0)
    ext = BTFExt(byteorder=order, flags=flags, hdr_len=hdr_len)
    rd = _Reader(buf, hdr_len, p, table)
    quad = struct.Struct(p + "IIII").unpack_from

    def func(b: bytes, o: int) -> FuncInfo:
        insn_off, tid = struct.unpack_from(p + "II", b, o)
        return FuncInfo(insn_off, tid)

    def line(b: bytes, o: int) -> LineInfo:
        # line_col packs the line number in its top 22 bits and the column in the low 10.
        insn_off, file_off, line_off, line_col = quad(b, o)
        return LineInfo(insn_off, rd.string(file_off, "file name"), rd.string(line_off, "line"),
                        line_col >> 10, line_col & 0x3FF)

    def relo(b: bytes, o: int) -> CoreRelo:
        insn_off, tid, access_off, kind = quad(b, o)
        if kind > max(CoreReloKind):
            raise BTFError(f"unknown CO-RE relocation kind {kind}")
        return CoreRelo(insn_off, tid, rd.string(access_off, "access string"), CoreReloKind(kind))

    ext.func_info_rec_size = rd.section("func_info", offs[0], offs[1], func, ext.func_info, 8)
    ext.line_info_rec_size = rd.section("line_info", offs[2], offs[3], line, ext.line_info, 16)
    ext.core_relo_rec_size = rd.section("core_relo", core[0], core[1], relo, ext.core_relos, 16)
    return ext


class _Reader:
    """Walks the info blocks of one .BTF.ext."""

    def __init__(self, buf: bytes, hdr_len: int, p: str, strings: StringTable) -> None:
        self.buf, self.hdr_len, self.strings = buf, hdr_len, strings
        self.word = struct.Struct(p + "I").unpack_from
        self.where = ""

    def string(self, off: int, what: str) -> str:
        try:
            return self.strings.get(off)
        except BTFError as exc:
            raise BTFError(f"BTF.ext {self.where}: {what}: {exc}") from None

    def section(self, name: str, off: int, length: int, decode: Callable[[bytes, int], _R],
                out: dict[str, list[_R]], default: int) -> int:
        # Each block: u32 record size, then per ELF section: u32 section-name offset,
        # u32 record count, and that many records.
        if not length:
            return default
        start = self.hdr_len + off
        end = start + length
        if end > len(self.buf) or length < 4:
            raise BTFError(f"truncated BTF.ext: {name} at offset {start} with length {length} "
                           f"does not fit the {len(self.buf)} bytes of data")
        rec_size: int = self.word(self.buf, start)[0]
        if rec_size < _MIN_REC[name]:
            raise BTFError(f"BTF.ext {name} at offset {start}: record size {rec_size} is below "
                           f"the minimum {_MIN_REC[name]}")
        pos = start + 4
        while pos < end:
            if pos + 8 > end:
                raise BTFError(f"truncated BTF.ext {name}: section header at offset {pos}")
            sec_off, count = self.word(self.buf, pos)[0], self.word(self.buf, pos + 4)[0]
            self.where = f"{name} at offset {pos}"
            sec = self.string(sec_off, "section name")
            pos += 8
            if pos + count * rec_size > end:
                raise BTFError(f"truncated BTF.ext {name} for section {sec!r}: {count} records "
                               f"of {rec_size} bytes at offset {pos} pass the end at {end}")
            recs = out.setdefault(sec, [])
            for i in range(count):
                self.where = f"{name} record {i} of section {sec!r} at offset {pos}"
                try:
                    recs.append(decode(self.buf, pos))
                except BTFError as exc:
                    raise BTFError(f"BTF.ext {self.where}: {exc}") from None
                pos += rec_size
        return rec_size


def encode_ext(ext: BTFExt, strings: StringTableBuilder, byteorder: ByteOrder | None = None) -> bytes:
    """Raw .BTF.ext for ``ext``, adding its strings to ``strings`` (the .BTF's section)."""
    p = prefix(byteorder or ext.byteorder)
    add = strings.add

    def block(infos: dict[str, list[_R]], rec_size: int, known: int,
              pack: Callable[[_R], bytes]) -> bytes:
        if not infos:
            return b""
        pad = b"\0" * (rec_size - known)
        out = [struct.pack(p + "I", rec_size)]
        for sec, recs in infos.items():
            out.append(struct.pack(p + "II", add(sec), len(recs)))
            out.extend(pack(r) + pad for r in recs)
        return b"".join(out)

    funcs = block(ext.func_info, max(ext.func_info_rec_size, 8), 8,
                  lambda r: struct.pack(p + "II", r.insn_off, r.type))
    lines = block(ext.line_info, max(ext.line_info_rec_size, 16), 16,
                  lambda r: struct.pack(p + "IIII", r.insn_off, add(r.file_name), add(r.line),
                                        r.line_num << 10 | r.column & 0x3FF))
    relos = block(ext.core_relos, max(ext.core_relo_rec_size, 16), 16,
                  lambda r: struct.pack(p + "IIII", r.insn_off, r.type, add(r.access), int(r.kind)))
    hdr_len = max(ext.hdr_len, EXT_HEADER_LEN_CORE if relos else EXT_HEADER_LEN)
    head = struct.pack(p + "HBBIIIII", MAGIC, VERSION, ext.flags, hdr_len, 0, len(funcs),
                       len(funcs), len(lines))
    if hdr_len >= EXT_HEADER_LEN_CORE:
        head += struct.pack(p + "II", len(funcs) + len(lines), len(relos))
    head += b"\0" * (hdr_len - len(head))
    return head + funcs + lines + relos


def encode_with_ext(spec: Spec, ext: BTFExt) -> tuple[bytes, bytes]:
    """Encode ``.BTF`` and ``.BTF.ext`` together, sharing one string section."""
    strings = string_builder(spec)
    ext_bytes = encode_ext(ext, strings, spec.byteorder)
    return encode(spec, strings=strings), ext_bytes
