"""Raw bytes decoded by a BTF type into plain Python values, as ``bpftool map dump``
"formatted" shows them. Pure: no syscalls.

========================  ==============================================================
BTF type                  Python value
========================  ==============================================================
INT                       ``int`` (``bool`` for a BOOL encoding); bitfields are extracted
ENUM, ENUM64              the enumerator's name, or the ``int`` when no name matches
FLOAT                     ``float`` (2, 4 or 8 bytes)
PTR                       ``int`` (the address)
ARRAY                     ``list``; a char array holding a NUL-terminated printable string
                          is that ``str``
STRUCT, UNION             ``dict`` of member name -> value (anonymous members' fields are
                          merged in)
DATASEC                   ``dict`` of variable name -> value
typedefs, qualifiers      the value of the type they refer to
anything without a size   the bytes, as a hex string
========================  ==============================================================

Everything returned is JSON-serialisable.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import BTFError
from .spec import Spec
from .types import (
    MODIFIERS, Array, Datasec, Enum, Enum64, Float, Int, IntEncoding, Member, Ptr, Struct,
    Union, Var,
)

_FLOAT = {2: "e", 4: "f", 8: "d"}
# Types inside types (members, elements, typedefs) deeper than this are malformed BTF; the
# running kernel's deepest is about 30, and each level costs a few Python frames.
MAX_DEPTH = 64
# Elements of an array of zero-size elements that decode to anything at all.
_MAX_EMPTY_ELEMENTS = 1 << 12
# No map value can be this big (the kernel's KMALLOC_MAX_SIZE, 4 MiB on x86-64, is at most
# 512 MiB on any configuration): a bigger size comes from malformed BTF.
_MAX_VALUE_SIZE = 1 << 29
_CHAR_NAMES = frozenset({"char", "signed char", "unsigned char"})


def decode(spec: Spec, type_id: int, data: bytes | bytearray | memoryview,
           offset: int = 0) -> Any:
    """The value of BTF type ``type_id`` stored at ``data[offset:]``.

    Raises ``BTFError`` when ``data`` is shorter than the type or the type id is unknown.
    """
    return _Decoder(spec, bytes(data)).value(type_id, offset, 0)


class _Decoder:
    def __init__(self, spec: Spec, data: bytes) -> None:
        self.spec = spec
        self.data = data
        self.order: Any = "little" if spec.byteorder == "little" else "big"
        self.prefix = "<" if spec.byteorder == "little" else ">"

    def _bytes(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset + size > len(self.data):
            raise BTFError(f"value of {len(self.data)} bytes is too short: needs {size} bytes "
                           f"at offset {offset}")
        return self.data[offset:offset + size]

    def value(self, tid: int, offset: int, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise BTFError(f"type id {tid}: nested too deeply (a reference loop?)")
        t = self.spec.type_by_id(tid)
        if isinstance(t, (*MODIFIERS, Var)):
            return self.value(t.type, offset, depth + 1)
        if isinstance(t, Int):
            return self._int(t, offset)
        if isinstance(t, (Enum, Enum64)):
            raw = int.from_bytes(self._bytes(offset, t.size), self.order, signed=t.signed)
            for v in t.values:
                if v.value == raw or (not t.signed and v.value & ((1 << 8 * t.size) - 1) == raw):
                    return v.name
            return raw
        if isinstance(t, Float):
            fmt = _FLOAT.get(t.size)
            raw_f = self._bytes(offset, t.size)
            return struct.unpack(self.prefix + fmt, raw_f)[0] if fmt else raw_f.hex()
        if isinstance(t, Ptr):
            return int.from_bytes(self._bytes(offset, 8), self.order)
        if isinstance(t, Array):
            return self._array(t, offset, depth)
        if isinstance(t, (Struct, Union)):
            return self._composite(t, offset, depth)
        if isinstance(t, Datasec):
            out: dict[str, Any] = {}
            for vs in t.vars:
                var = self.spec.type_by_id(vs.type)
                if isinstance(var, Var):
                    out[var.name] = self.value(var.type, offset + vs.offset, depth + 1)
            return out
        size = self._size_or_none(tid)
        if size is None:
            return self.data[offset:].hex()
        return self._bytes(offset, size).hex()

    def _size_or_none(self, tid: int) -> int | None:
        try:
            return self.spec.sizeof(tid)
        except BTFError:
            return None

    def _int(self, t: Int, offset: int) -> Any:
        raw = int.from_bytes(self._bytes(offset, t.size), self.order)
        if t.offset or t.bits != t.size * 8:
            raw = (raw >> t.offset) & ((1 << t.bits) - 1)
        signed = bool(t.encoding & IntEncoding.SIGNED)
        if signed and t.bits and raw >> (t.bits - 1) & 1:
            raw -= 1 << t.bits
        if t.encoding & IntEncoding.BOOL:
            return bool(raw)
        return raw

    def _array(self, t: Array, offset: int, depth: int) -> Any:
        elem = self.spec.resolve(t.elem)
        esize = self.spec.sizeof(t.elem)
        self._bytes(offset, t.nelems * esize)  # the whole array is there
        if not esize and t.nelems > _MAX_EMPTY_ELEMENTS:
            raise BTFError(f"array of {t.nelems} elements of type id {t.elem}, which has no "
                           f"size: more than the {_MAX_EMPTY_ELEMENTS} such elements decoded")
        if isinstance(elem, Int) and elem.size == 1 and (
                elem.encoding & IntEncoding.CHAR or elem.name in _CHAR_NAMES):
            text = _c_string(self._bytes(offset, t.nelems))
            if text is not None:
                return text
        return [self.value(t.elem, offset + i * esize, depth + 1) for i in range(t.nelems)]

    def _composite(self, t: Struct | Union, offset: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, m in enumerate(t.members):
            v = self._member(m, offset, depth)
            if not m.name and isinstance(v, dict):
                out.update(v)  # anonymous struct/union: its fields belong to the parent
            else:
                out[m.name or f"(anon{i})"] = v
        return out

    def _member(self, m: Member, offset: int, depth: int) -> Any:
        if not m.bitfield_size:
            if m.bit_offset % 8:
                raise BTFError(f"member {m.name!r} starts at bit {m.bit_offset}, not on a "
                               "byte boundary, and is not a bitfield")
            return self.value(m.type, offset + m.bit_offset // 8, depth + 1)
        # A bitfield: read the bytes that hold it and shift (BPF targets lay bitfields out
        # from the least significant bit on little-endian, the most significant on big).
        first = m.bit_offset // 8
        last = (m.bit_offset + m.bitfield_size + 7) // 8
        chunk = int.from_bytes(self._bytes(offset + first, last - first), self.order)
        nbits = (last - first) * 8
        if self.order == "little":
            shift = m.bit_offset - first * 8
        else:
            shift = nbits - (m.bit_offset - first * 8) - m.bitfield_size
        raw = (chunk >> shift) & ((1 << m.bitfield_size) - 1)
        base = self.spec.resolve(m.type)
        if isinstance(base, Int) and base.encoding & IntEncoding.SIGNED and \
                raw >> (m.bitfield_size - 1) & 1:
            raw -= 1 << m.bitfield_size
        if isinstance(base, (Enum, Enum64)):
            for v in base.values:
                if v.value == raw:
                    return v.name
        if isinstance(base, Int) and base.encoding & IntEncoding.BOOL:
            return bool(raw)
        return raw


def _c_string(raw: bytes) -> str | None:
    """``raw`` as text if it is a NUL-terminated printable string padded with NULs."""
    end = raw.find(b"\0")
    if end < 0 or any(raw[end:]):
        return None
    try:
        text = raw[:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


__all__ = ["decode"]


def encode(spec: Spec, type_id: int, value: Any) -> bytes:
    """The bytes of ``value`` as BTF type ``type_id``: the inverse of :func:`decode`.

    Accepts what decode returns (ints, bools, enumerator names, floats, str for char
    arrays, lists for arrays, dicts for structs and unions; missing members and array tail
    are zero) and, for any type, bytes of exactly its size. Raises ``BTFError`` naming the
    member or element that does not fit.
    """
    size = spec.sizeof(type_id)
    if size > _MAX_VALUE_SIZE:
        raise BTFError(f"type id {type_id} is {size} bytes, more than any map value can be "
                       f"({_MAX_VALUE_SIZE})")
    buf = bytearray(size)
    _Encoder(spec, buf).put(type_id, 0, value, "value", 0)
    return bytes(buf)


class _Encoder:
    def __init__(self, spec: Spec, buf: bytearray) -> None:
        self.spec = spec
        self.buf = buf
        self.order: Any = "little" if spec.byteorder == "little" else "big"
        self.prefix = "<" if spec.byteorder == "little" else ">"

    def put(self, tid: int, offset: int, value: Any, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise BTFError(f"{where}: type id {tid} nested too deeply (a reference loop?)")
        t = self.spec.type_by_id(tid)
        if isinstance(t, (*MODIFIERS, Var)):
            return self.put(t.type, offset, value, where, depth + 1)
        if isinstance(value, bytes | bytearray | memoryview) and not isinstance(t, Array):
            return self._raw(tid, offset, bytes(value), where)
        if isinstance(t, Int):
            return self._int(t.size, offset, value, t.encoding & IntEncoding.SIGNED, where)
        if isinstance(t, (Enum, Enum64)):
            if isinstance(value, str):
                match = [v.value for v in t.values if v.name == value]
                if not match:
                    raise BTFError(f"{where}: {value!r} is not an enumerator of "
                                   f"{t.name or 'the enum'}")
                value = match[0]
            return self._int(t.size, offset, value, t.signed or value < 0, where)
        if isinstance(t, Float):
            fmt = _FLOAT.get(t.size)
            if fmt is None or not isinstance(value, int | float):
                raise BTFError(f"{where}: expected a number for a {t.size}-byte float")
            self._room(offset, t.size, where)
            struct.pack_into(self.prefix + fmt, self.buf, offset, value)
            return None
        if isinstance(t, Ptr):
            return self._int(8, offset, value, False, where)
        if isinstance(t, Array):
            return self._array(t, offset, value, where, depth)
        if isinstance(t, (Struct, Union)):
            return self._composite(t, offset, value, where, depth)
        return self._raw(tid, offset, value, where)

    def _raw(self, tid: int, offset: int, value: Any, where: str) -> None:
        size = self.spec.sizeof(tid)
        if not isinstance(value, bytes | bytearray | memoryview) or len(value) != size:
            raise BTFError(f"{where}: expected {size} bytes")
        self._room(offset, size, where)
        self.buf[offset:offset + size] = value

    def _room(self, offset: int, size: int, where: str) -> None:
        """Refuse a write past the value's end (a member placed outside its struct)."""
        if offset < 0 or offset + size > len(self.buf):
            raise BTFError(f"{where}: {size} bytes at offset {offset} do not fit the "
                           f"{len(self.buf)}-byte value (a member outside its struct?)")

    def _int(self, size: int, offset: int, value: Any, signed: Any, where: str) -> None:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise BTFError(f"{where}: expected an int, got {type(value).__name__}")
        self._room(offset, size, where)
        try:
            self.buf[offset:offset + size] = value.to_bytes(size, self.order,
                                                            signed=bool(signed) or value < 0)
        except OverflowError:
            raise BTFError(f"{where}: {value} does not fit in {size} bytes") from None

    def _array(self, t: Array, offset: int, value: Any, where: str, depth: int) -> None:
        esize = self.spec.sizeof(t.elem)
        if isinstance(value, str):
            value = value.encode()
            if len(value) >= t.nelems * esize:
                raise BTFError(f"{where}: string of {len(value)} bytes does not fit "
                               f"char[{t.nelems}] with its NUL")
        if isinstance(value, bytes | bytearray | memoryview):
            if len(value) > t.nelems * esize:
                raise BTFError(f"{where}: {len(value)} bytes do not fit {t.nelems * esize}")
            self._room(offset, len(value), where)
            self.buf[offset:offset + len(value)] = value
            return
        if not isinstance(value, list | tuple):
            raise BTFError(f"{where}: expected a list of up to {t.nelems} elements")
        if len(value) > t.nelems:
            raise BTFError(f"{where}: {len(value)} elements, the array holds {t.nelems}")
        for i, v in enumerate(value):
            self.put(t.elem, offset + i * esize, v, f"{where}[{i}]", depth + 1)

    def _composite(self, t: Struct | Union, offset: int, value: Any, where: str,
                   depth: int) -> None:
        if not isinstance(value, dict):
            raise BTFError(f"{where}: expected a dict of {t.kind.name.lower()} members")
        left = dict(value)
        self._members(t, offset, left, where, depth)
        if left:
            raise BTFError(f"{where}: {t.name or 'the struct'} has no member "
                           f"{sorted(left)[0]!r}")

    def _members(self, t: Struct | Union, offset: int, left: dict[str, Any], where: str,
                 depth: int) -> None:
        for m in t.members:
            if not m.name:
                inner = self.spec.resolve(m.type)
                if isinstance(inner, (Struct, Union)):  # anonymous: its fields are ours
                    self._members(inner, offset + m.bit_offset // 8, left, where, depth + 1)
                continue
            if m.name not in left:
                continue
            v = left.pop(m.name)
            path = f"{where}.{m.name}"
            if m.bitfield_size:
                self._bitfield(m, offset, v, path)
            else:
                self.put(m.type, offset + m.bit_offset // 8, v, path, depth + 1)

    def _bitfield(self, m: Member, offset: int, value: Any, where: str) -> None:
        base = self.spec.resolve(m.type)
        if isinstance(value, str) and isinstance(base, (Enum, Enum64)):
            match = [v.value for v in base.values if v.name == value]
            if not match:
                raise BTFError(f"{where}: {value!r} is not an enumerator")
            value = match[0]
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise BTFError(f"{where}: expected an int for a {m.bitfield_size}-bit field")
        bits = m.bitfield_size
        if not -(1 << (bits - 1)) <= value < 1 << bits:
            raise BTFError(f"{where}: {value} does not fit in {bits} bits")
        value &= (1 << bits) - 1
        first, last = m.bit_offset // 8, (m.bit_offset + bits + 7) // 8
        at = offset + first
        self._room(at, last - first, where)
        chunk = int.from_bytes(self.buf[at:offset + last], self.order)
        nbits = (last - first) * 8
        shift = m.bit_offset - first * 8 if self.order == "little" else \
            nbits - (m.bit_offset - first * 8) - bits
        chunk = (chunk & ~(((1 << bits) - 1) << shift)) | (value << shift)
        self.buf[at:offset + last] = chunk.to_bytes(last - first, self.order)


class BTFValue:
    """A BTF type as a map key or value type: decodes to plain Python values (see
    :func:`decode`) and encodes them back (:func:`encode`)."""

    def __init__(self, spec: Spec, type_id: int) -> None:
        self.spec = spec
        self.type_id = type_id
        self.size = spec.sizeof(type_id)

    def encode(self, obj: Any) -> bytes:
        return encode(self.spec, self.type_id, obj)

    def decode(self, data: bytes) -> Any:
        return decode(self.spec, self.type_id, data)

    def __repr__(self) -> str:
        t = self.spec.type_by_id(self.type_id)
        return f"<BTFValue {t.kind.name.lower()} {t.name or '(anon)'} size={self.size}>"
