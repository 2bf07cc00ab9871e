"""Loads, stores and atomic operations on memory, and the legacy packet loads.

Operands read in the order of the assembly they make::

    Load(R1, R2, 4, U32)        r1 = *(u32 *)(r2 + 4)
    Store(R10, -8, R1, U64)     *(u64 *)(r10 - 8) = r1
    Store(R10, -8, 0, U64)      *(u64 *)(r10 - 8) = 0
    AtomicAdd(R1, 0, R2, U64)   lock *(u64 *)(r1 + 0) += r2
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from . import instruction as I
from .instruction import Fields, Fmt, Instruction, Register
from .opcodes import AtomicOp, Class, Mode, Size

_WORDS = (Size.U32, Size.U64)  # sizes of the read-modify-write atomics


def _init_mem(obj: Instruction, *regs: str, sizes: tuple[Size, ...] = tuple(Size),
              imm_offset: bool = False) -> None:
    """Check and normalise the common operands: registers, ``off`` and ``size``.

    ``off`` is the 16-bit offset field, or for the packet loads (``imm_offset``) the imm.
    """
    name = type(obj).__name__
    for r in regs:
        I.setattr_frozen(obj, r, I.reg(getattr(obj, r), f"{name} {r}").r)
    check = I.s32 if imm_offset else I.s16
    I.setattr_frozen(obj, "off", check(getattr(obj, "off"), f"{name} offset"))
    sz = I.size(getattr(obj, "size"), f"{name} size")
    if sz not in sizes:
        raise I.AssemblerError(f"{name} size must be one of "
                               f"{', '.join(s.name for s in sizes)}, got {sz.name}")
    I.setattr_frozen(obj, "size", sz)


def _ptr(size: Size, signed: bool = False) -> str:
    return f"{'s' if signed else 'u'}{size.bits} *"


@dataclasses.dataclass(frozen=True)
class Load(Instruction):
    """``dst = *(size *)(src + off)``, zero-extended (BPF_LDX | BPF_MEM)."""

    dst: Register
    src: Register
    off: int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src")

    def fields(self) -> tuple[Fields, ...]:
        code = Class.LDX | Mode.MEM | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off),)

    def _text(self, f: Fmt) -> str:
        return f"{f.val(self.dst, self.size)} = *({_ptr(self.size)})({f.mem(self.src, self.off)})"


@dataclasses.dataclass(frozen=True)
class LoadSX(Instruction):
    """``dst = *(s8 *)(src + off)``: sign-extending load of 1, 2 or 4 bytes (BPF_MEMSX).

    ISA v4, Linux 6.6.
    """

    dst: Register
    src: Register
    off: int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src", sizes=(Size.U8, Size.U16, Size.U32))

    def fields(self) -> tuple[Fields, ...]:
        code = Class.LDX | Mode.MEMSX | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off),)

    def _text(self, f: Fmt) -> str:
        return f"{self.dst} = *({_ptr(self.size, True)})({f.mem(self.src, self.off)})"


@dataclasses.dataclass(frozen=True)
class Store(Instruction):
    """``*(size *)(dst + off) = src``: store a register (BPF_STX) or an immediate (BPF_ST)."""

    dst: Register
    off: int
    src: Register | int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst")
        if isinstance(self.src, Register):
            I.setattr_frozen(self, "src", self.src.r)
        else:
            I.setattr_frozen(self, "src", I.s32(self.src, "Store immediate"))

    def fields(self) -> tuple[Fields, ...]:
        if isinstance(self.src, Register):
            code = Class.STX | Mode.MEM | self.size.code
            return (Fields(code, self.dst.num, self.src.num, self.off),)
        code = Class.ST | Mode.MEM | self.size.code
        return (Fields(code, self.dst.num, 0, self.off, self.src),)

    def _text(self, f: Fmt) -> str:
        val = f.val(self.src, self.size) if isinstance(self.src, Register) else f.num(self.src)
        return f"*({_ptr(self.size)})({f.mem(self.dst, self.off)}) = {val}"


@dataclasses.dataclass(frozen=True)
class LoadAbs(Instruction):
    """``r0 = *(size *)skb[off]``: legacy packet load, network to host order (BPF_ABS).

    Socket filter and tc programs only; sizes U8, U16, U32. The context must be in r6.
    """

    off: int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, sizes=(Size.U8, Size.U16, Size.U32), imm_offset=True)

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.LD | Mode.ABS | self.size.code, 0, 0, 0, self.off),)

    def _text(self, f: Fmt) -> str:
        return f"r0 = *({_ptr(self.size)})skb[{f.num(self.off)}]"


@dataclasses.dataclass(frozen=True)
class LoadInd(Instruction):
    """``r0 = *(size *)skb[src + off]``: legacy packet load at a register offset (BPF_IND)."""

    src: Register
    off: int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "src", sizes=(Size.U8, Size.U16, Size.U32), imm_offset=True)

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.LD | Mode.IND | self.size.code, 0, self.src.num, 0, self.off),)

    def _text(self, f: Fmt) -> str:
        if f.kernel or self.off:
            return f"r0 = *({_ptr(self.size)})skb[{self.src} + {f.num(self.off)}]"
        return f"r0 = *({_ptr(self.size)})skb[{self.src}]"


_ATOMIC_WORD = {AtomicOp.ADD: "+=", AtomicOp.OR: "|=", AtomicOp.AND: "&=", AtomicOp.XOR: "^="}


@dataclasses.dataclass(frozen=True)
class Atomic(Instruction):
    """``lock *(size *)(dst + off) op= src``, with ``fetch=True`` returning the old value in src.

    Use a subclass: AtomicAdd (Linux 5.12 for 32-bit and fetch; 64-bit add since 3.18),
    AtomicOr, AtomicAnd, AtomicXor (5.12). BPF_STX | BPF_ATOMIC, the operation in imm.
    """

    dst: Register
    off: int
    src: Register
    size: Size
    fetch: bool = False
    op: ClassVar[AtomicOp] = AtomicOp.ADD

    def __post_init__(self) -> None:
        if type(self) is Atomic:
            raise TypeError("Atomic is abstract: use AtomicAdd, AtomicOr, AtomicAnd, AtomicXor")
        _init_mem(self, "dst", "src", sizes=_WORDS)
        if not isinstance(self.fetch, bool):
            raise TypeError(f"{type(self).__name__} fetch must be a bool, got {self.fetch!r}")

    def fields(self) -> tuple[Fields, ...]:
        code = Class.STX | Mode.ATOMIC | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off, self.op | self.fetch),)

    def _text(self, f: Fmt) -> str:
        mem = f.mem(self.dst, self.off)
        wide = self.size is Size.U64
        if not self.fetch:
            src = self.src if f.kernel else self._src(f)
            return f"lock *({_ptr(self.size)})({mem}) {_ATOMIC_WORD[self.op]} {src}"
        op = self.op.name.lower()
        if f.kernel:
            return (f"{self.src} = atomic{'64' if wide else ''}_fetch_{op}(({_ptr(self.size)})"
                    f"({mem}), {self.src})")
        src = self.src if wide else self.src.w
        return f"{src} = atomic_fetch_{op}(({_ptr(self.size)})({mem}), {src})"

    def _src(self, f: Fmt) -> Register:
        # llvm-objdump without alu32 knows only the 32-bit add, spelt with an r register.
        narrow = self.size is Size.U32 and (f.alu32 or self.op != AtomicOp.ADD)
        return self.src.w if narrow else self.src


class AtomicAdd(Atomic):
    """``lock *(size *)(dst + off) += src`` (BPF_ADD; ``fetch``: ``atomic_fetch_add``)."""

    op = AtomicOp.ADD


class AtomicOr(Atomic):
    """``lock *(size *)(dst + off) |= src`` (BPF_OR; ``fetch``: ``atomic_fetch_or``)."""

    op = AtomicOp.OR


class AtomicAnd(Atomic):
    """``lock *(size *)(dst + off) &= src`` (BPF_AND; ``fetch``: ``atomic_fetch_and``)."""

    op = AtomicOp.AND


class AtomicXor(Atomic):
    """``lock *(size *)(dst + off) ^= src`` (BPF_XOR; ``fetch``: ``atomic_fetch_xor``)."""

    op = AtomicOp.XOR


@dataclasses.dataclass(frozen=True)
class AtomicXchg(Instruction):
    """``src = xchg(dst + off, src)``: swap a register with memory (BPF_XCHG; Linux 5.12)."""

    dst: Register
    off: int
    src: Register
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src", sizes=_WORDS)

    def fields(self) -> tuple[Fields, ...]:
        code = Class.STX | Mode.ATOMIC | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off, AtomicOp.XCHG),)

    def _text(self, f: Fmt) -> str:
        mem, wide = f.mem(self.dst, self.off), self.size is Size.U64
        if f.kernel:
            return (f"{self.src} = atomic{'64' if wide else ''}_xchg(({_ptr(self.size)})({mem}),"
                    f" {self.src})")
        if wide:
            return f"{self.src} = xchg_64({mem}, {self.src})"
        return f"{self.src.w} = xchg32_32({mem}, {self.src.w})"


@dataclasses.dataclass(frozen=True)
class AtomicCmpXchg(Instruction):
    """``r0 = cmpxchg(dst + off, r0, src)``: store src if memory equals r0; r0 gets the old value.

    BPF_CMPXCHG; Linux 5.12.
    """

    dst: Register
    off: int
    src: Register
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src", sizes=_WORDS)

    def fields(self) -> tuple[Fields, ...]:
        code = Class.STX | Mode.ATOMIC | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off, AtomicOp.CMPXCHG),)

    def _text(self, f: Fmt) -> str:
        mem, wide = f.mem(self.dst, self.off), self.size is Size.U64
        if f.kernel:
            return (f"r0 = atomic{'64' if wide else ''}_cmpxchg(({_ptr(self.size)})({mem}), r0, "
                    f"{self.src})")
        if wide:
            return f"r0 = cmpxchg_64({mem}, r0, {self.src})"
        return f"w0 = cmpxchg32_32({mem}, w0, {self.src.w})"


@dataclasses.dataclass(frozen=True)
class LoadAcquire(Instruction):
    """``dst = load_acquire((size *)(src + off))`` (BPF_LOAD_ACQ; Linux 6.15)."""

    dst: Register
    src: Register
    off: int
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src")

    def fields(self) -> tuple[Fields, ...]:
        code = Class.STX | Mode.ATOMIC | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off, AtomicOp.LOAD_ACQ),)

    def _text(self, f: Fmt) -> str:
        return (f"{f.val(self.dst, self.size)} = load_acquire(({_ptr(self.size)})"
                f"({f.mem(self.src, self.off)}))")


@dataclasses.dataclass(frozen=True)
class StoreRelease(Instruction):
    """``store_release((size *)(dst + off), src)`` (BPF_STORE_REL; Linux 6.15)."""

    dst: Register
    off: int
    src: Register
    size: Size

    def __post_init__(self) -> None:
        _init_mem(self, "dst", "src")

    def fields(self) -> tuple[Fields, ...]:
        code = Class.STX | Mode.ATOMIC | self.size.code
        return (Fields(code, self.dst.num, self.src.num, self.off, AtomicOp.STORE_REL),)

    def _text(self, f: Fmt) -> str:
        return (f"store_release(({_ptr(self.size)})({f.mem(self.dst, self.off)}), "
                f"{f.val(self.src, self.size)})")


_RMW: dict[int, type[Atomic]] = {c.op: c for c in (AtomicAdd, AtomicOr, AtomicAnd, AtomicXor)}


def decode(f: Fields) -> Instruction | None:
    """The instruction for an LD (not ld_imm64), LDX, ST or STX slot, or None."""
    cls, mode, sz = f.code & 0x07, f.code & 0xE0, Size.from_code(f.code)
    if f.dst > 10 or f.src > 10:
        return None
    dst, src = Register(f.dst), Register(f.src)
    if cls == Class.LD:
        if f.dst or f.off or sz is Size.U64:
            return None
        if mode == Mode.ABS:
            return LoadAbs(f.imm, sz) if not f.src else None
        return LoadInd(src, f.imm, sz) if mode == Mode.IND else None
    if cls == Class.LDX:
        if f.imm or mode not in (Mode.MEM, Mode.MEMSX):
            return None
        if mode == Mode.MEM:
            return Load(dst, src, f.off, sz)
        return LoadSX(dst, src, f.off, sz) if sz is not Size.U64 else None
    if cls == Class.ST:
        return Store(dst, f.off, f.imm, sz) if mode == Mode.MEM and not f.src else None
    if mode == Mode.MEM:
        return Store(dst, f.off, src, sz) if not f.imm else None
    if mode != Mode.ATOMIC:
        return None
    if f.imm == AtomicOp.LOAD_ACQ:
        return LoadAcquire(dst, src, f.off, sz)
    if f.imm == AtomicOp.STORE_REL:
        return StoreRelease(dst, f.off, src, sz)
    if sz not in _WORDS:
        return None
    if f.imm == AtomicOp.XCHG:
        return AtomicXchg(dst, f.off, src, sz)
    if f.imm == AtomicOp.CMPXCHG:
        return AtomicCmpXchg(dst, f.off, src, sz)
    rmw = _RMW.get(f.imm & ~1)
    return rmw(dst, f.off, src, sz, bool(f.imm & 1)) if rmw is not None else None
