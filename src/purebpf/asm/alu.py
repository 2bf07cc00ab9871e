"""Arithmetic: ``dst op= src`` on 64-bit registers or, with W registers, their low 32 bits.

``Add(R1, 5)`` is ``r1 += 5`` (BPF_ALU64 | BPF_ADD | BPF_K), ``Add(W1, W2)`` is
``w1 += w2`` (BPF_ALU | BPF_ADD | BPF_X). The second operand is a register or an int.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from . import instruction as I
from .instruction import Fields, Fmt, Instruction, Register
from .opcodes import (BPF_ADDR_SPACE_CAST, BPF_K, BPF_SDIV_SMOD, BPF_TO_BE, BPF_TO_LE, BPF_X,
                      ALUOp, Class)


def _cls(dst: Register) -> int:
    return Class.ALU64 if dst.wide else Class.ALU


@dataclasses.dataclass(frozen=True)
class ALU(Instruction):
    """``dst op= src``: the two-operand arithmetic instructions (use a subclass: Add, ...)."""

    dst: Register
    src: Register | int
    op: ClassVar[ALUOp] = ALUOp.ADD
    signed: ClassVar[bool] = False   # SDiv/SMod: off=1 (v4)
    symbol: ClassVar[str] = "+="

    def __post_init__(self) -> None:
        name = type(self).__name__
        if type(self) is ALU:
            raise TypeError("ALU is abstract: use Add, Sub, Mov, ...")
        dst = I.reg(self.dst, f"{name} dst")
        if isinstance(self.src, Register):
            if self.src.wide != dst.wide:
                raise I.AssemblerError(f"{name}({dst!r}, {self.src!r}): both registers must "
                                       "be 64-bit (R) or both 32-bit (W)")
        else:
            I.setattr_frozen(self, "src", I.s32(self.src, f"{name} immediate"))

    def fields(self) -> tuple[Fields, ...]:
        off = BPF_SDIV_SMOD if self.signed else 0
        if isinstance(self.src, Register):
            return (Fields(_cls(self.dst) | BPF_X | self.op, self.dst.num, self.src.num, off),)
        return (Fields(_cls(self.dst) | BPF_K | self.op, self.dst.num, 0, off, self.src),)

    def _text(self, f: Fmt) -> str:
        src = str(self.src) if isinstance(self.src, Register) else f.num(self.src)
        return f"{self.dst} {self.symbol} {src}"


class Add(ALU):
    """``dst += src`` (BPF_ADD)."""

    op, symbol = ALUOp.ADD, "+="


class Sub(ALU):
    """``dst -= src`` (BPF_SUB)."""

    op, symbol = ALUOp.SUB, "-="


class Mul(ALU):
    """``dst *= src`` (BPF_MUL)."""

    op, symbol = ALUOp.MUL, "*="


class Div(ALU):
    """``dst /= src``, unsigned (BPF_DIV); division by zero gives 0."""

    op, symbol = ALUOp.DIV, "/="


class SDiv(ALU):
    """``dst s/= src``, signed (BPF_DIV with off=1; ISA v4, Linux 6.6)."""

    op, symbol, signed = ALUOp.DIV, "s/=", True


class Mod(ALU):
    """``dst %= src``, unsigned (BPF_MOD); modulo zero leaves dst unchanged."""

    op, symbol = ALUOp.MOD, "%="


class SMod(ALU):
    """``dst s%= src``, signed (BPF_MOD with off=1; ISA v4, Linux 6.6)."""

    op, symbol, signed = ALUOp.MOD, "s%=", True


class Or(ALU):
    """``dst |= src`` (BPF_OR)."""

    op, symbol = ALUOp.OR, "|="


class And(ALU):
    """``dst &= src`` (BPF_AND)."""

    op, symbol = ALUOp.AND, "&="


class Lsh(ALU):
    """``dst <<= src`` (BPF_LSH)."""

    op, symbol = ALUOp.LSH, "<<="


class Rsh(ALU):
    """``dst >>= src``, logical (BPF_RSH)."""

    op, symbol = ALUOp.RSH, ">>="


class Arsh(ALU):
    """``dst s>>= src``, arithmetic (BPF_ARSH)."""

    op, symbol = ALUOp.ARSH, "s>>="


class Xor(ALU):
    """``dst ^= src`` (BPF_XOR)."""

    op, symbol = ALUOp.XOR, "^="


class Mov(ALU):
    """``dst = src`` (BPF_MOV). A 32-bit move zeroes the upper half of the register."""

    op, symbol = ALUOp.MOV, "="


@dataclasses.dataclass(frozen=True)
class Neg(Instruction):
    """``dst = -dst`` (BPF_NEG)."""

    dst: Register

    def __post_init__(self) -> None:
        I.reg(self.dst, "Neg dst")

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_cls(self.dst) | BPF_K | ALUOp.NEG, self.dst.num),)

    def _text(self, f: Fmt) -> str:
        return f"{self.dst} = -{self.dst}"


@dataclasses.dataclass(frozen=True)
class MovSX(Instruction):
    """``dst = (s8)src``: move sign-extending the low ``bits`` (BPF_MOV | BPF_X, off=bits).

    64-bit: bits 8, 16 or 32; 32-bit (W registers): 8 or 16. ISA v4, Linux 6.6.
    """

    dst: Register
    src: Register
    bits: int

    def __post_init__(self) -> None:
        dst, src = I.reg(self.dst, "MovSX dst"), I.reg(self.src, "MovSX src")
        if dst.wide != src.wide:
            raise I.AssemblerError(f"MovSX({dst!r}, {src!r}): both registers must be R or W")
        allowed = (8, 16, 32) if dst.wide else (8, 16)
        if self.bits not in allowed:
            raise I.AssemblerError(f"MovSX into {dst!r} takes bits {allowed}, got {self.bits!r}")

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_cls(self.dst) | BPF_X | ALUOp.MOV, self.dst.num, self.src.num,
                       self.bits),)

    def _text(self, f: Fmt) -> str:
        return f"{self.dst} = (s{self.bits}){self.src}"


@dataclasses.dataclass(frozen=True)
class _Endian(Instruction):
    dst: Register
    bits: int
    word: ClassVar[str] = ""

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, f"{type(self).__name__} dst").r)
        if self.bits not in (16, 32, 64):
            raise I.AssemblerError(f"{type(self).__name__} bits must be 16, 32 or 64, got "
                                   f"{self.bits!r}")

    def _text(self, f: Fmt) -> str:
        return f"{self.dst} = {self.word}{self.bits} {self.dst}"


class ToLE(_Endian):
    """``dst = le16 dst``: convert to little-endian, truncating to ``bits``.

    BPF_ALU | BPF_END | BPF_TO_LE. A no-op (but for the truncation) on little-endian hosts.
    """

    word = "le"

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.ALU | BPF_TO_LE | ALUOp.END, self.dst.num, 0, 0, self.bits),)


class ToBE(_Endian):
    """``dst = be16 dst``: convert to big-endian (BPF_ALU | BPF_END | BPF_TO_BE)."""

    word = "be"

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.ALU | BPF_TO_BE | ALUOp.END, self.dst.num, 0, 0, self.bits),)


class BSwap(_Endian):
    """``dst = bswap16 dst``: unconditional byte swap (BPF_ALU64 | BPF_END; v4, Linux 6.6)."""

    word = "bswap"

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.ALU64 | BPF_TO_LE | ALUOp.END, self.dst.num, 0, 0, self.bits),)


@dataclasses.dataclass(frozen=True)
class AddrSpaceCast(Instruction):
    """``dst = addr_space_cast(src, dst_as, src_as)``: convert an arena pointer.

    BPF_ALU64 | BPF_MOV | BPF_X with off=BPF_ADDR_SPACE_CAST and
    ``imm = dst_as << 16 | src_as``; address space 1 is the arena's user view (Linux 6.9).
    """

    dst: Register
    src: Register
    dst_as: int
    src_as: int

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, "AddrSpaceCast dst").r)
        I.setattr_frozen(self, "src", I.reg(self.src, "AddrSpaceCast src").r)
        for name in ("dst_as", "src_as"):
            v = I.as_int(getattr(self, name), f"AddrSpaceCast {name}")
            if not 0 <= v <= 0xFFFF:
                raise I.AssemblerError(f"AddrSpaceCast {name} must be 0..65535, got {v}")

    def fields(self) -> tuple[Fields, ...]:
        imm = I.s32(self.dst_as << 16 | self.src_as, "address spaces")
        return (Fields(Class.ALU64 | BPF_X | ALUOp.MOV, self.dst.num, self.src.num,
                       BPF_ADDR_SPACE_CAST, imm),)

    def _text(self, f: Fmt) -> str:
        return f"{self.dst} = addr_space_cast({self.src}, {f.num(self.dst_as)}, " \
               f"{f.num(self.src_as)})"


_BY_OP: dict[tuple[int, bool], type[ALU]] = {
    (c.op, c.signed): c
    for c in (Add, Sub, Mul, Div, SDiv, Mod, SMod, Or, And, Lsh, Rsh, Arsh, Xor, Mov)
}


def decode(f: Fields) -> Instruction | None:
    """The instruction for an ALU/ALU64 slot, or None if it is not a valid encoding."""
    wide = f.code & 0x07 == Class.ALU64
    op, x = f.code & 0xF0, f.code & BPF_X
    if f.dst > 10 or f.src > 10:
        return None
    dst = Register(f.dst, wide)
    if op == ALUOp.END:
        if f.src or f.off or f.imm not in (16, 32, 64) or (wide and x):
            return None
        kind = BSwap if wide else (ToBE if x else ToLE)
        return kind(dst, f.imm)
    if op == ALUOp.NEG:
        return Neg(dst) if not (x or f.src or f.off or f.imm) else None
    if op == ALUOp.MOV and x and f.off:
        if f.off == BPF_ADDR_SPACE_CAST and wide:
            imm = f.imm & 0xFFFFFFFF
            return AddrSpaceCast(dst, Register(f.src), imm >> 16, imm & 0xFFFF)
        if f.imm or f.off not in ((8, 16, 32) if wide else (8, 16)):
            return None
        return MovSX(dst, Register(f.src, wide), f.off)
    signed = f.off == BPF_SDIV_SMOD and op in (ALUOp.DIV, ALUOp.MOD)
    cls = _BY_OP.get((op, signed))
    if cls is None or (f.off and not signed):
        return None
    if x:
        return cls(dst, Register(f.src, wide)) if not f.imm else None
    return cls(dst, f.imm) if not f.src else None
