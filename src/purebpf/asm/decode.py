"""Bytes -> instructions: the inverse of :meth:`Instruction.encode`. Pure."""

from __future__ import annotations

import struct

from . import alu, jump, ldimm64, memory
from .instruction import NATIVE, AssemblerError, ByteOrder, Fields, Instruction, Raw
from .opcodes import LD_IMM64, Class


def _slots(data: bytes, byteorder: ByteOrder) -> list[Fields]:
    if byteorder == "little":
        return [Fields(c, r & 0x0F, r >> 4, o, i)
                for c, r, o, i in struct.iter_unpack("<BBhi", data)]
    if byteorder == "big":
        return [Fields(c, r >> 4, r & 0x0F, o, i)
                for c, r, o, i in struct.iter_unpack(">BBhi", data)]
    raise ValueError(f"byteorder must be 'little' or 'big', got {byteorder!r}")


def decode_slot(f: Fields) -> Instruction | None:
    """The instruction one slot encodes (not ld_imm64), or None for an unknown encoding."""
    cls = f.code & 0x07
    if cls in (Class.ALU, Class.ALU64):
        return alu.decode(f)
    if cls in (Class.JMP, Class.JMP32):
        return jump.decode(f)
    return memory.decode(f)


def decode(data: bytes | bytearray | memoryview, byteorder: ByteOrder = NATIVE, *,
           strict: bool = False) -> list[Instruction]:
    """Decode eBPF bytecode (host byte order by default) into instructions.

    An encoding this module does not know (reserved fields set, kernel-internal opcodes, a
    malformed or cut-off ld_imm64) becomes :class:`Raw` slots, so ``encode`` gives the same
    bytes back; with ``strict=True`` it raises AssemblerError naming the instruction.
    """
    raw = bytes(data)
    if len(raw) % 8:
        raise AssemblerError(f"{len(raw)} bytes is not a whole number of 8-byte instructions")
    slots = _slots(raw, byteorder)
    out: list[Instruction] = []
    i = 0
    while i < len(slots):
        f = slots[i]
        insn: Instruction | None
        if f.code == LD_IMM64:
            insn = ldimm64.decode(f, slots[i + 1]) if i + 1 < len(slots) else None
            if insn is not None:
                out.append(insn)
                i += 2
                continue
            what = "a malformed ld_imm64" if i + 1 < len(slots) else \
                "an ld_imm64 cut off by the end of the program"
        else:
            insn = decode_slot(f)
            if insn is not None:
                out.append(insn)
                i += 1
                continue
            what = "an unknown or invalid encoding"
        if strict:
            raise AssemblerError(f"instruction {i}: {what} (opcode 0x{f.code:02x}, dst {f.dst}, "
                                 f"src {f.src}, off {f.off}, imm {f.imm})")
        out.append(Raw(*f))
        i += 1
    return out
