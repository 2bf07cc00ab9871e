"""Encoding a ``Spec`` back to raw .BTF, and fixing up DATASECs for loading."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from ._wire import MAX_VLEN, ByteOrder, pack_header, prefix
from .errors import BTFError
from .spec import Spec
from .strings import StringTableBuilder
from .types import (
    Array, Datasec, DeclTag, Enum, Enum64, Float, Func, FuncProto, Fwd, Int, Ptr,
    Struct, Type, TypeTag, Union, Var, Void,
)


def string_builder(spec: Spec) -> StringTableBuilder:
    """A string-section builder for ``spec``: seeded with its parsed strings, if any, so
    that names keep their offsets and an unmodified spec re-encodes byte for byte."""
    base = spec.base
    if base is not None and base.strings is None:
        raise BTFError("cannot encode split BTF: its base was not parsed from bytes, so "
                       "the base string offsets are unknown")
    base_strings = base.strings if base is not None else None
    if spec.strings is not None and spec.strings.base is base_strings:
        return StringTableBuilder(spec.strings)
    return StringTableBuilder(base=base_strings)


def encode(spec: Spec, *, strings: StringTableBuilder | None = None,
           byteorder: ByteOrder | None = None) -> bytes:
    """Raw .BTF for ``spec``'s own types (a split spec's base is not included).

    Pass ``strings`` to share one string section with a .BTF.ext being encoded (whose
    strings must be added first; see ``purebpf.btf.ext.encode_with_ext``).
    """
    order = byteorder or spec.byteorder
    if strings is None:
        strings = string_builder(spec)
    enc = _Encoder(prefix(order), strings.add)
    types = b"".join(enc.encode(tid, spec.type_by_id(tid))
                     for tid in range(spec.start_id, spec.end_id))
    strs = strings.tobytes()
    return pack_header(order, spec.flags, len(types), len(strs)) + types + strs


class _Encoder:
    """Packs single types; ``add`` maps a string to its string-section offset."""

    def __init__(self, p: str, add: Callable[[str], int]) -> None:
        self.add = add
        self.head = struct.Struct(p + "III").pack
        self.word = struct.Struct(p + "I").pack
        self.sword = struct.Struct(p + "i").pack
        self.pair = struct.Struct(p + "II").pack

    def encode(self, tid: int, t: Type) -> bytes:
        try:
            return self._encode(t)
        except (struct.error, OverflowError) as exc:
            raise BTFError(f"cannot encode type id {tid} ({t.kind.name}): {exc}") from None
        except BTFError as exc:
            raise BTFError(f"cannot encode type id {tid} ({t.kind.name}): {exc}") from None

    def _info(self, t: Type, vlen: int = 0, kflag: bool = False) -> int:
        # info: vlen in bits 0-15, kind in bits 24-28, kind_flag in bit 31.
        if not 0 <= vlen <= MAX_VLEN:
            raise BTFError(f"{vlen} entries exceed the BTF limit of {MAX_VLEN}")
        return kflag << 31 | int(t.kind) << 24 | vlen

    def _encode(self, t: Type) -> bytes:
        head, name = self.head, self.add(t.name)
        if isinstance(t, Int):
            return (head(name, self._info(t), t.size)
                    + self.word((t.encoding & 0x0F) << 24 | (t.offset & 0xFF) << 16 | t.bits & 0xFF))
        if isinstance(t, Ptr):
            return head(0, self._info(t), t.target)
        if isinstance(t, Array):
            return head(0, self._info(t), 0) + head(t.elem, t.index, t.nelems)
        if isinstance(t, (Struct, Union)):
            return self._composite(t, name)
        if isinstance(t, (Enum, Enum64)):
            return self._enum(t, name)
        if isinstance(t, Fwd):
            return head(name, self._info(t, 0, t.union), 0)
        if isinstance(t, Func):
            return head(name, self._info(t, int(t.linkage)), t.proto)
        if isinstance(t, FuncProto):
            return head(0, self._info(t, len(t.params)), t.ret) + b"".join(
                self.pair(self.add(p.name), p.type) for p in t.params)
        if isinstance(t, Var):
            return head(name, self._info(t), t.type) + self.word(int(t.linkage))
        if isinstance(t, Datasec):
            return head(name, self._info(t, len(t.vars)), t.size) + b"".join(
                head(v.type, v.offset, v.size) for v in t.vars)
        if isinstance(t, Float):
            return head(name, self._info(t), t.size)
        if isinstance(t, DeclTag):
            return head(name, self._info(t, 0, t.attr), t.target) + self.sword(t.component_idx)
        if isinstance(t, TypeTag):
            return head(name, self._info(t, 0, t.attr), t.type)
        if isinstance(t, Void):
            raise BTFError("void is type id 0 and cannot be encoded as a type record")
        return head(name, self._info(t), t.type)  # Typedef and the qualifiers

    def _composite(self, t: Struct | Union, name: int) -> bytes:
        # Any bitfield sets kind_flag; each member's offset word is then
        # bitfield_size << 24 | bit_offset, and plain members have bitfield_size 0.
        kflag = any(m.bitfield_size for m in t.members)
        out = [self.head(name, self._info(t, len(t.members), kflag), t.size)]
        for m in t.members:
            if kflag:
                if m.bit_offset >= 1 << 24 or not 0 <= m.bitfield_size < 256:
                    raise BTFError(f"member {m.name!r}: bit offset {m.bit_offset} or bitfield "
                                   f"size {m.bitfield_size} does not fit 24 / 8 bits")
                offset = m.bitfield_size << 24 | m.bit_offset
            else:
                offset = m.bit_offset
            out.append(self.head(self.add(m.name), m.type, offset))
        return b"".join(out)

    def _enum(self, t: Enum | Enum64, name: int) -> bytes:
        out = [self.head(name, self._info(t, len(t.values), t.signed), t.size)]
        bits = 32 if isinstance(t, Enum) else 64
        for v in t.values:
            if not -(1 << (bits - 1)) <= v.value < 1 << bits:
                raise BTFError(f"enumerator {v.name!r} = {v.value} does not fit {bits} bits")
            val = v.value & ((1 << bits) - 1)
            if bits == 32:
                out.append(self.pair(self.add(v.name), val))
            else:
                out.append(self.head(self.add(v.name), val & 0xFFFFFFFF, val >> 32))
        return b"".join(out)


def fixup_datasecs(spec: Spec, section_sizes: Mapping[str, int],
                   symbol_offsets: Mapping[str, int]) -> int:
    """Fill in DATASEC sizes and variable offsets, as a loader does before BTF_LOAD.

    Clang leaves both 0 in relocatable objects; they come from the ELF section headers
    (``section_sizes``, by section name) and symbol values (``symbol_offsets``, by
    variable name). Entries are re-sorted by offset, as the kernel requires. Returns the
    number of DATASECs changed.
    """
    changed = 0
    for tid, t in list(spec.items()):
        if not isinstance(t, Datasec):
            continue
        size = section_sizes.get(t.name, t.size)
        entries = []
        for v in t.vars:
            target = spec.type_by_id(v.type)
            offset = symbol_offsets.get(target.name, v.offset) if target.name else v.offset
            entries.append(type(v)(v.type, offset, v.size))
        entries.sort(key=lambda v: v.offset)
        new = Datasec(t.name, size, tuple(entries))
        if new != t:
            spec.replace(tid, new)
            changed += 1
    return changed
