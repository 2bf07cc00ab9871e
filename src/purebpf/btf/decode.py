"""Parsing raw .BTF: one framing scan up front, each type decoded when first asked for."""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

from ._wire import FIXED, MAX_KIND, PER_VLEN, TYPE_LEN, Header, parse_header, prefix
from .errors import BTFError
from .spec import Spec
from .strings import StringTable
from .types import (
    Array, Const, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func, FuncLinkage,
    FuncProto, Fwd, Int, IntEncoding, Kind, Member, Param, Ptr, Restrict, Struct, Type,
    TypeTag, Typedef, Union, Var, VarLinkage, VarSecinfo, Volatile,
)

# A kind outside 1..MAX_KIND gets an impossible record size, so the scan's single
# bounds check also catches it; the error path then tells the two causes apart.
_BAD = 1 << 40
_FIXED = [_BAD if k == 0 or k > MAX_KIND else FIXED[k] for k in range(32)]


def parse(data: bytes | bytearray | memoryview, base: Spec | None = None, *,
          validate: bool = False) -> Spec:
    """Parse a raw .BTF blob (either byte order) into a ``Spec``.

    The header, section bounds, string-section framing and the size and kind of every
    type record are checked now; each type's fields (names, referenced ids) are checked
    when it is first decoded, or all at once with ``validate=True`` / ``Spec.validate()``.
    With ``base``, ``data`` is split BTF (e.g. a kernel module's) whose ids and string
    offsets continue from the base's.
    """
    buf = bytes(data)
    hdr = parse_header(buf)
    if base is not None and base.byteorder != hdr.byteorder:
        raise BTFError(f"split BTF is {hdr.byteorder}-endian but its base is {base.byteorder}-endian")
    strings = StringTable(buf[hdr.strings_start:hdr.strings_start + hdr.str_len],
                          base.strings if base is not None else None)
    start_id = len(base.types) if base is not None else 1
    source = Source(buf, hdr, strings, start_id)
    spec = Spec._parsed(source, strings, hdr, base)
    if validate:
        spec.validate()
    return spec


class Source:
    """The undecoded type records of one blob: where each starts, and how to decode it."""

    def __init__(self, buf: bytes, hdr: Header, strings: StringTable, start_id: int) -> None:
        self.buf = buf
        self.strings = strings
        self.start_id = start_id
        p = prefix(hdr.byteorder)
        self._word = struct.Struct(p + "I").unpack_from
        self._sword = struct.Struct(p + "i").unpack_from
        self._head = struct.Struct(p + "III").unpack_from
        self._triples = struct.Struct(p + "III").iter_unpack
        self._pairs = struct.Struct(p + "II").iter_unpack
        self.offsets, self.name_offs = self._scan(hdr.types_start, hdr.types_start + hdr.type_len)
        self.count = len(self.offsets)
        self.end_id = start_id + self.count  # ids the records may refer to: [0, end_id)

    def _scan(self, off: int, end: int) -> tuple[array[int], array[int]]:
        """Record the offset and name offset of every type record between off and end."""
        offsets, names = array("I"), array("I")
        add_off, add_name, head, buf = offsets.append, names.append, self._head, self.buf
        fixed, per = _FIXED, PER_VLEN
        try:
            while off < end:
                name_off, info, _ = head(buf, off)
                kind = (info >> 24) & 0x1F
                nxt = off + TYPE_LEN + fixed[kind] + per[kind] * (info & 0xFFFF)
                if nxt > end:
                    break
                add_off(off)
                add_name(name_off)
                off = nxt
        except struct.error:
            kind = -1  # fewer than 12 bytes left at the very end of the buffer
        if off < end:
            tid = self.start_id + len(offsets)
            if fixed[kind & 0x1F] == _BAD and kind >= 0:
                raise BTFError(f"type id {tid} at offset {off}: unknown kind {kind} "
                               f"(known kinds are 1..{MAX_KIND})")
            what = Kind(kind).name if kind >= 0 else "record"
            raise BTFError(f"truncated BTF type section: type id {tid} ({what}) at offset {off} "
                           f"runs past the section's end at offset {end}")
        return offsets, names

    def kind_of(self, local: int) -> Kind:
        """The kind of the ``local``-th record, without decoding it."""
        return Kind((self._word(self.buf, self.offsets[local] + 4)[0] >> 24) & 0x1F)

    def decode(self, local: int) -> Type:
        """Decode the ``local``-th record (type id ``start_id + local``)."""
        off = self.offsets[local]
        name_off, info, word = self._head(self.buf, off)
        kind = (info >> 24) & 0x1F
        try:
            return _DECODERS[kind](self, self.strings.get(name_off), info, word, off + TYPE_LEN)
        except BTFError as exc:
            raise BTFError(f"type id {self.start_id + local} ({Kind(kind).name}) at offset "
                           f"{off}: {exc}") from None

    def _ref(self, tid: int, what: str) -> int:
        if tid >= self.end_id:
            raise BTFError(f"{what} refers to type id {tid}, past the last type id {self.end_id - 1}")
        return tid

    def _int(self, name: str, info: int, size: int, body: int) -> Type:
        # The INT's extra word: encoding in bits 24-27, bit offset in 16-23, bits in 0-7.
        data = self._word(self.buf, body)[0]
        return Int(name, size, IntEncoding((data >> 24) & 0x0F), data & 0xFF, (data >> 16) & 0xFF)

    def _ptr(self, name: str, info: int, tid: int, body: int) -> Type:
        return Ptr(self._ref(tid, "pointer"))

    def _array(self, name: str, info: int, word: int, body: int) -> Type:
        elem, index, nelems = self._head(self.buf, body)
        return Array(self._ref(elem, "element type"), self._ref(index, "index type"), nelems)

    def _members(self, info: int, body: int) -> tuple[Member, ...]:
        # With kind_flag set, a member's offset word packs bitfield_size << 24 | bit_offset.
        get, bitfields, end_id = self.strings.get, info >> 31, self.end_id
        end = body + 12 * (info & 0xFFFF)
        out: list[Member] = []
        for name_off, tid, offset in self._triples(self.buf[body:end]):
            if tid >= end_id:
                self._ref(tid, f"member {len(out)}")
            if bitfields:
                out.append(Member(get(name_off), tid, offset & 0xFFFFFF, offset >> 24))
            else:
                out.append(Member(get(name_off), tid, offset))
        return tuple(out)

    def _struct(self, name: str, info: int, size: int, body: int) -> Type:
        return Struct(name, size, self._members(info, body))

    def _union(self, name: str, info: int, size: int, body: int) -> Type:
        return Union(name, size, self._members(info, body))

    def _enum(self, name: str, info: int, size: int, body: int) -> Type:
        # kind_flag marks a signed enum; values are stored as 32-bit words.
        get, signed = self.strings.get, bool(info >> 31)
        end = body + 8 * (info & 0xFFFF)
        values = []
        for name_off, val in self._pairs(self.buf[body:end]):
            if signed and val & 0x80000000:
                val -= 1 << 32
            values.append(EnumValue(get(name_off), val))
        return Enum(name, size, signed, tuple(values))

    def _enum64(self, name: str, info: int, size: int, body: int) -> Type:
        get, signed = self.strings.get, bool(info >> 31)
        end = body + 12 * (info & 0xFFFF)
        values = []
        for name_off, lo, hi in self._triples(self.buf[body:end]):
            val = hi << 32 | lo
            if signed and val & (1 << 63):
                val -= 1 << 64
            values.append(EnumValue(get(name_off), val))
        return Enum64(name, size, signed, tuple(values))

    def _fwd(self, name: str, info: int, word: int, body: int) -> Type:
        return Fwd(name, bool(info >> 31))

    def _typedef(self, name: str, info: int, tid: int, body: int) -> Type:
        return Typedef(name, self._ref(tid, "typedef"))

    def _volatile(self, name: str, info: int, tid: int, body: int) -> Type:
        return Volatile(self._ref(tid, "volatile"))

    def _const(self, name: str, info: int, tid: int, body: int) -> Type:
        return Const(self._ref(tid, "const"))

    def _restrict(self, name: str, info: int, tid: int, body: int) -> Type:
        return Restrict(self._ref(tid, "restrict"))

    def _func(self, name: str, info: int, tid: int, body: int) -> Type:
        # A FUNC's vlen holds its linkage rather than a count.
        linkage = info & 0xFFFF
        if linkage > FuncLinkage.EXTERN:
            raise BTFError(f"unknown function linkage {linkage}")
        return Func(name, self._ref(tid, "function prototype"), FuncLinkage(linkage))

    def _func_proto(self, name: str, info: int, ret: int, body: int) -> Type:
        get, end_id = self.strings.get, self.end_id
        end = body + 8 * (info & 0xFFFF)
        params: list[Param] = []
        for name_off, tid in self._pairs(self.buf[body:end]):
            if tid >= end_id:
                self._ref(tid, f"parameter {len(params)}")
            params.append(Param(get(name_off), tid))
        return FuncProto(self._ref(ret, "return type"), tuple(params))

    def _var(self, name: str, info: int, tid: int, body: int) -> Type:
        linkage = self._word(self.buf, body)[0]
        if linkage > VarLinkage.EXTERN:
            raise BTFError(f"unknown variable linkage {linkage}")
        return Var(name, self._ref(tid, "variable"), VarLinkage(linkage))

    def _datasec(self, name: str, info: int, size: int, body: int) -> Type:
        end = body + 12 * (info & 0xFFFF)
        return Datasec(name, size, tuple(
            VarSecinfo(self._ref(tid, f"variable {i}"), offset, vsize)
            for i, (tid, offset, vsize) in enumerate(self._triples(self.buf[body:end]))))

    def _float(self, name: str, info: int, size: int, body: int) -> Type:
        return Float(name, size)

    def _decl_tag(self, name: str, info: int, tid: int, body: int) -> Type:
        return DeclTag(name, self._ref(tid, "tagged type"), self._sword(self.buf, body)[0],
                       bool(info >> 31))

    def _type_tag(self, name: str, info: int, tid: int, body: int) -> Type:
        return TypeTag(name, self._ref(tid, "tagged type"), bool(info >> 31))


_Decoder = Callable[[Source, str, int, int, int], Type]
_DECODERS: dict[int, _Decoder] = {
    Kind.INT: Source._int, Kind.PTR: Source._ptr, Kind.ARRAY: Source._array,
    Kind.STRUCT: Source._struct, Kind.UNION: Source._union, Kind.ENUM: Source._enum,
    Kind.FWD: Source._fwd, Kind.TYPEDEF: Source._typedef, Kind.VOLATILE: Source._volatile,
    Kind.CONST: Source._const, Kind.RESTRICT: Source._restrict, Kind.FUNC: Source._func,
    Kind.FUNC_PROTO: Source._func_proto, Kind.VAR: Source._var, Kind.DATASEC: Source._datasec,
    Kind.FLOAT: Source._float, Kind.DECL_TAG: Source._decl_tag, Kind.TYPE_TAG: Source._type_tag,
    Kind.ENUM64: Source._enum64,
}
