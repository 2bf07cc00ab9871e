"""Control flow: conditional jumps, goto, calls and exit.

``JGt(R1, R2, "out")`` is ``if r1 > r2 goto out`` (BPF_JMP | BPF_JGT | BPF_X); with W
registers it compares the low 32 bits (BPF_JMP32, ISA v3). A target is a label name,
resolved by :func:`purebpf.asm.assemble`, or an offset relative to the next instruction.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from . import instruction as I
from .helpers import Helper
from .instruction import Branch, Fields, Fmt, Instruction, Register
from .opcodes import BPF_K, BPF_MAY_GOTO, BPF_X, CallKind, Class, JumpOp


@dataclasses.dataclass(frozen=True)
class Jump(Branch):
    """``if dst op src goto target`` (use a subclass: JEq, JGt, ...)."""

    dst: Register
    src: Register | int
    target: str | int
    op: ClassVar[JumpOp] = JumpOp.JEQ
    symbol: ClassVar[str] = "=="

    def __post_init__(self) -> None:
        name = type(self).__name__
        if type(self) is Jump:
            raise TypeError("Jump is abstract: use JEq, JGt, ...")
        dst = I.reg(self.dst, f"{name} dst")
        if isinstance(self.src, Register):
            if self.src.wide != dst.wide:
                raise I.AssemblerError(f"{name}({dst!r}, {self.src!r}, ...): both registers "
                                       "must be 64-bit (R) or both 32-bit (W)")
        else:
            I.setattr_frozen(self, "src", I.s32(self.src, f"{name} immediate"))
        I.setattr_frozen(self, "target", I.target(self.target, name, 16))

    def fields(self) -> tuple[Fields, ...]:
        cls = Class.JMP if self.dst.wide else Class.JMP32
        if isinstance(self.src, Register):
            return (Fields(cls | BPF_X | self.op, self.dst.num, self.src.num, self.offset),)
        return (Fields(cls | BPF_K | self.op, self.dst.num, 0, self.offset, self.src),)

    def _text(self, f: Fmt) -> str:
        if isinstance(self.src, Register):
            src = str(self.src)
        else:
            src = f"0x{self.src & 0xFFFFFFFF:x}" if f.kernel else f.num(self.src)
        return f"if {self.dst} {self.symbol} {src} goto {f.pc(self.target)}"


class JEq(Jump):
    """``if dst == src goto target`` (BPF_JEQ)."""

    op, symbol = JumpOp.JEQ, "=="


class JNe(Jump):
    """``if dst != src goto target`` (BPF_JNE)."""

    op, symbol = JumpOp.JNE, "!="


class JGt(Jump):
    """``if dst > src goto target``, unsigned (BPF_JGT)."""

    op, symbol = JumpOp.JGT, ">"


class JGe(Jump):
    """``if dst >= src goto target``, unsigned (BPF_JGE)."""

    op, symbol = JumpOp.JGE, ">="


class JLt(Jump):
    """``if dst < src goto target``, unsigned (BPF_JLT; ISA v2)."""

    op, symbol = JumpOp.JLT, "<"


class JLe(Jump):
    """``if dst <= src goto target``, unsigned (BPF_JLE; ISA v2)."""

    op, symbol = JumpOp.JLE, "<="


class JSet(Jump):
    """``if dst & src goto target`` (BPF_JSET)."""

    op, symbol = JumpOp.JSET, "&"


class JSGt(Jump):
    """``if dst s> src goto target``, signed (BPF_JSGT)."""

    op, symbol = JumpOp.JSGT, "s>"


class JSGe(Jump):
    """``if dst s>= src goto target``, signed (BPF_JSGE)."""

    op, symbol = JumpOp.JSGE, "s>="


class JSLt(Jump):
    """``if dst s< src goto target``, signed (BPF_JSLT; ISA v2)."""

    op, symbol = JumpOp.JSLT, "s<"


class JSLe(Jump):
    """``if dst s<= src goto target``, signed (BPF_JSLE; ISA v2)."""

    op, symbol = JumpOp.JSLE, "s<="


@dataclasses.dataclass(frozen=True)
class Ja(Branch):
    """``goto target``: unconditional jump with a 16-bit offset (BPF_JMP | BPF_JA)."""

    target: str | int

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "target", I.target(self.target, type(self).__name__, 16))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.JMP | JumpOp.JA, 0, 0, self.offset),)

    def _text(self, f: Fmt) -> str:
        return f"goto {f.pc(self.target)}"


@dataclasses.dataclass(frozen=True)
class Gotol(Branch):
    """``gotol target``: unconditional jump with a 32-bit offset in imm (BPF_JMP32 | BPF_JA).

    ISA v4, Linux 6.6.
    """

    target: str | int
    offset_bits: ClassVar[int] = 32

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "target", I.target(self.target, "Gotol", 32))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.JMP32 | JumpOp.JA, 0, 0, 0, self.offset),)

    def _text(self, f: Fmt) -> str:
        return f"gotol {f.pc(self.target)}"


@dataclasses.dataclass(frozen=True)
class MayGoto(Branch):
    """``may_goto target``: jump once the kernel's loop budget runs out (BPF_JMP | BPF_JCOND).

    The verifier treats it as a bounded-loop escape hatch. Linux 6.9.
    """

    target: str | int

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "target", I.target(self.target, "MayGoto", 16))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.JMP | JumpOp.JCOND, 0, BPF_MAY_GOTO, self.offset),)

    def _text(self, f: Fmt) -> str:
        return f"may_goto {f.pc(self.target)}"


_CALL = Class.JMP | JumpOp.CALL


@dataclasses.dataclass(frozen=True, init=False)
class Call(Instruction):
    """``call helper``: call a helper function by number, name or :class:`Helper`.

    ``Call("map_lookup_elem")``, ``Call(Helper.map_lookup_elem)`` and ``Call(1)`` are the
    same instruction (``helper`` is then ``Helper.map_lookup_elem``; numbers this list does
    not know stay ints). Arguments go in r1-r5, the result comes back in r0.
    """

    helper: Helper | int

    def __init__(self, helper: Helper | int | str) -> None:
        if isinstance(helper, str):
            try:
                helper = Helper.lookup(helper)
            except KeyError as exc:
                raise I.AssemblerError(exc.args[0]) from None
        # Any imm decodes: in a translated program the kernel has replaced helper numbers
        # with offsets from __bpf_call_base, which may be negative.
        n = I.s32(helper, "Call helper")
        I.setattr_frozen(self, "helper", Helper(n) if n in Helper._value2member_map_ else n)

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_CALL, 0, CallKind.HELPER, 0, int(self.helper)),)

    def _text(self, f: Fmt) -> str:
        if f.kernel:
            name = self.helper.c_name if isinstance(self.helper, Helper) else "unknown"
            return f"call {name}#{int(self.helper)}"
        return f"call {f.num(int(self.helper))}"


@dataclasses.dataclass(frozen=True)
class CallSubprog(Branch):
    """``call target``: a BPF-to-BPF call of the subprogram at a label (BPF_PSEUDO_CALL).

    The offset is in imm, relative to the next instruction. Linux 4.16.
    """

    target: str | int
    offset_bits: ClassVar[int] = 32

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "target", I.target(self.target, "CallSubprog", 32))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_CALL, 0, CallKind.LOCAL, 0, self.offset),)

    def _text(self, f: Fmt) -> str:
        if isinstance(self.target, str):
            return f"call {self.target}"
        return f"call pc{self.target:+d}" if f.kernel else f"call {f.num(self.target)}"


@dataclasses.dataclass(frozen=True)
class CallKfunc(Instruction):
    """``call btf_id``: call a kernel function by its BTF id (BPF_PSEUDO_KFUNC_CALL).

    ``module`` is the index in the load's fd_array of the module BTF that defines the
    function (0: vmlinux). Linux 5.13.
    """

    btf_id: int
    module: int = 0

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "btf_id", I.s32(self.btf_id, "CallKfunc btf_id"))
        I.setattr_frozen(self, "module", I.s16(self.module, "CallKfunc module"))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_CALL, 0, CallKind.KFUNC, self.module, self.btf_id),)

    def _text(self, f: Fmt) -> str:
        if f.kernel:
            return f"call kernel-function#{self.btf_id}"
        return f"call {f.num(self.btf_id)}"


@dataclasses.dataclass(frozen=True)
class CallX(Instruction):
    """``callx reg``: indirect call through a register (BPF_JMP | BPF_CALL | BPF_X).

    clang emits it for calls through function pointers at ``-mcpu=v4``; the kernel does
    not accept it (purebpf's ELF loader lowers known helper addresses to ``call``).
    """

    dst: Register

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, "CallX register").r)

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(_CALL | BPF_X, self.dst.num),)

    def _text(self, f: Fmt) -> str:
        return f"callx {self.dst}"


@dataclasses.dataclass(frozen=True)
class Exit(Instruction):
    """``exit``: return r0 to the caller (BPF_JMP | BPF_EXIT)."""

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(Class.JMP | JumpOp.EXIT),)

    def _text(self, f: Fmt) -> str:
        return "exit"


_BY_OP: dict[int, type[Jump]] = {c.op: c for c in (JEq, JNe, JGt, JGe, JLt, JLe, JSet, JSGt,
                                                      JSGe, JSLt, JSLe)}


def decode(f: Fields) -> Instruction | None:
    """The instruction for a JMP/JMP32 slot, or None if it is not a valid encoding."""
    wide = f.code & 0x07 == Class.JMP
    op, x = f.code & 0xF0, f.code & BPF_X
    if f.dst > 10 or f.src > 10:
        return None
    if op == JumpOp.JA:
        if x or f.dst or f.src:
            return None
        if wide:
            return Ja(f.off) if not f.imm else None
        return Gotol(f.imm) if not f.off else None
    if not wide and op in (JumpOp.CALL, JumpOp.EXIT, JumpOp.JCOND):
        return None
    if op == JumpOp.CALL:
        return _decode_call(f, x)
    if op == JumpOp.EXIT:
        return Exit() if not (x or f.dst or f.src or f.off or f.imm) else None
    if op == JumpOp.JCOND:
        ok = not (x or f.dst or f.imm) and f.src == BPF_MAY_GOTO
        return MayGoto(f.off) if ok else None
    cls = _BY_OP.get(op)
    if cls is None:
        return None
    dst = Register(f.dst, wide)
    if x:
        return cls(dst, Register(f.src, wide), f.off) if not f.imm else None
    return cls(dst, f.imm, f.off) if not f.src else None


def _decode_call(f: Fields, x: int) -> Instruction | None:
    if x:
        return CallX(Register(f.dst)) if not (f.src or f.off or f.imm) else None
    if f.dst:
        return None
    if f.src == CallKind.HELPER and not f.off:
        return Call(f.imm)
    if f.src == CallKind.LOCAL and not f.off:
        return CallSubprog(f.imm)
    if f.src == CallKind.KFUNC:
        return CallKfunc(f.imm, f.off)
    return None
