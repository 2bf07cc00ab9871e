"""The building blocks every instruction shares: registers, encoding, text formatting.

An :class:`Instruction` is a small frozen dataclass. It knows its raw fields
(:meth:`Instruction.fields`), its bytes (:meth:`Instruction.encode`) and its text
(:meth:`Instruction.text`, in llvm-objdump's or bpftool's spelling). Pure: no syscalls.
"""

from __future__ import annotations

import dataclasses
import struct
import sys
from typing import Any, ClassVar, Literal, NamedTuple, cast

from .opcodes import Size

ByteOrder = Literal["little", "big"]
Style = Literal["llvm", "bpftool"]
NATIVE: ByteOrder = "little" if sys.byteorder == "little" else "big"

_S16 = (-(1 << 15), (1 << 15) - 1)
_S32 = (-(1 << 31), (1 << 31) - 1)


class AssemblerError(ValueError):
    """An instruction or program the assembler cannot encode or decode.

    Raised for operands out of range, unknown or duplicate labels, jumps that do not fit
    their offset field and malformed instruction bytes. Wrong operand *types* (a string
    where a register belongs) raise :class:`TypeError`.
    """


@dataclasses.dataclass(frozen=True, repr=False)
class Register:
    """An eBPF register: ``R0``..``R10`` (64-bit) or ``W0``..``W10`` (their low 32 bits).

    ``R0`` holds return values, ``R1``-``R5`` arguments (clobbered by calls), ``R6``-``R9``
    are callee-saved and ``R10`` is the read-only frame pointer. Using a ``W`` register in
    arithmetic or a compare selects the 32-bit form (``BPF_ALU``/``BPF_JMP32``).
    """

    num: int
    wide: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.num, int) or not 0 <= self.num <= 10:
            raise AssemblerError(f"register number must be 0..10, got {self.num!r}")

    @property
    def r(self) -> Register:
        """The 64-bit register (``W3.r`` is ``R3``)."""
        return self if self.wide else Register(self.num, True)

    @property
    def w(self) -> Register:
        """The 32-bit subregister (``R3.w`` is ``W3``)."""
        return Register(self.num, False) if self.wide else self

    def __str__(self) -> str:
        return f"{'r' if self.wide else 'w'}{self.num}"

    def __repr__(self) -> str:
        return f"{'R' if self.wide else 'W'}{self.num}"


R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = (Register(n) for n in range(11))
W0, W1, W2, W3, W4, W5, W6, W7, W8, W9, W10 = (Register(n, False) for n in range(11))


class Fields(NamedTuple):
    """One 8-byte slot: ``opcode``, ``dst_reg``, ``src_reg``, ``off``, ``imm`` (both signed)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def pack(self, byteorder: ByteOrder) -> bytes:
        if byteorder == "little":
            return struct.pack("<BBhi", self.code, self.dst | self.src << 4, self.off, self.imm)
        return struct.pack(">BBhi", self.code, self.dst << 4 | self.src, self.off, self.imm)


@dataclasses.dataclass(frozen=True)
class Fmt:
    """How to spell an instruction: llvm-objdump's syntax or the kernel's/bpftool's."""

    kernel: bool = False
    hex: bool = False
    alu32: bool = False

    def num(self, v: int) -> str:
        """An immediate: llvm-objdump prints it signed, in hex with ``--print-imm-hex``."""
        if self.hex and not self.kernel:
            return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"
        return str(v)

    def mem(self, reg: Register, off: int) -> str:
        """A memory operand without parentheses: ``r1 + 4`` (llvm), ``r1 +4`` (kernel)."""
        if self.kernel:
            return f"{reg} {off:+d}"
        return f"{reg} - {self.num(-off)}" if off < 0 else f"{reg} + {self.num(off)}"

    def pc(self, target: str | int) -> str:
        """A jump target: ``+3`` (llvm), ``pc+3`` (kernel), or a label's name."""
        if isinstance(target, str):
            return target
        if self.kernel:
            return f"pc{target:+d}"
        return f"-{self.num(-target)}" if target < 0 else f"+{self.num(target)}"

    def val(self, reg: Register, size: Size) -> str:
        """The register a B/H/W load or store moves: ``w`` under llvm's alu32 decoding."""
        if self.alu32 and not self.kernel and size is not Size.U64:
            return str(reg.w)
        return str(reg.r)


@dataclasses.dataclass(frozen=True)
class Instruction:
    """Base of all instructions. Subclasses are frozen dataclasses with named operands."""

    slots: ClassVar[int] = 1  # 8-byte slots: 2 for ld_imm64, 0 for a Label

    def fields(self) -> tuple[Fields, ...]:
        """The raw fields of each slot (a symbolic target counts as offset 0)."""
        raise NotImplementedError

    def encode(self, byteorder: ByteOrder = NATIVE) -> bytes:
        """The instruction's bytes (8, or 16 for ld_imm64), host byte order by default.

        Raises AssemblerError for a jump or call whose target is still a label name:
        :func:`purebpf.asm.assemble` resolves those.
        """
        target = getattr(self, "target", None)
        if isinstance(target, str):
            raise AssemblerError(f"{self.text()}: label {target!r} is not resolved; "
                                 "assemble() the program to turn labels into offsets")
        return b"".join(f.pack(byteorder) for f in self.fields())

    def text(self, style: Style = "llvm", *, hex: bool = False, alu32: bool = False) -> str:
        """The instruction as a disassembler prints it.

        ``style="llvm"`` follows ``llvm-objdump -d`` (``r1 = *(u32 *)(r1 + 4)``): immediates
        in decimal as with ``--no-print-imm-hex`` unless ``hex=True``, and B/H/W loads,
        stores and 32-bit atomics on ``r`` registers unless ``alu32=True`` (llvm-objdump's
        ``--mcpu=v3``/``v4`` decoding). ``style="bpftool"`` follows the kernel's verifier
        log and ``bpftool prog dump xlated`` (``(61) r1 = *(u32 *)(r1 +4)``).
        """
        if style not in ("llvm", "bpftool"):
            raise ValueError(f"style must be 'llvm' or 'bpftool', got {style!r}")
        f = Fmt(kernel=style == "bpftool", hex=hex, alu32=alu32)
        body = self._text(f)
        if f.kernel and self.slots:
            return f"({self.fields()[0].code:02x}) {body}"
        return body

    def _text(self, f: Fmt) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text()


class Branch(Instruction):
    """An instruction that names another instruction: a jump, a local call, a callback.

    ``target`` is a label name (resolved by :func:`purebpf.asm.assemble`) or an offset in
    slots relative to the next instruction. ``offset_bits`` is the width of the field the
    offset is encoded in (16 for ``off``, 32 for ``imm``).
    """

    offset_bits: ClassVar[int] = 16

    @property
    def offset(self) -> int:
        """The resolved offset; 0 while the target is a label."""
        target: str | int = getattr(self, "target")
        return target if isinstance(target, int) else 0

    def retarget(self, offset: int) -> Instruction:
        """A copy whose target is the resolved ``offset``."""
        copy: Instruction = dataclasses.replace(cast(Any, self), target=offset)
        return copy


@dataclasses.dataclass(frozen=True)
class Label(Instruction):
    """A position in the program that jumps and calls can name. Emits no bytes.

    A subprogram is a label followed by its code: ``Label("helper_fn")`` then
    ``CallSubprog("helper_fn")`` from the main program.
    """

    name: str
    slots: ClassVar[int] = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a label is a non-empty str, got {self.name!r}")

    def fields(self) -> tuple[Fields, ...]:
        return ()

    def _text(self, f: Fmt) -> str:
        return f"{self.name}:"


@dataclasses.dataclass(frozen=True)
class Raw(Instruction):
    """One slot as raw fields: what :func:`decode` returns for an encoding it does not know.

    Lets any byte string round-trip (kernel-internal opcodes in a translated program, future
    instructions). Registers are 0..15 here, as the encoding allows.
    """

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def __post_init__(self) -> None:
        for name, hi in (("code", 0xFF), ("dst", 15), ("src", 15)):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= hi:
                raise AssemblerError(f"Raw {name} must be 0..{hi}, got {v!r}")
        object.__setattr__(self, "off", s16(self.off, "Raw off"))
        object.__setattr__(self, "imm", s32(self.imm, "Raw imm"))

    def fields(self) -> tuple[Fields, ...]:
        return (Fields(self.code, self.dst, self.src, self.off, self.imm),)

    def _text(self, f: Fmt) -> str:
        return "unknown" if f.kernel else "<unknown>"


# --- operand checks --------------------------------------------------------------------------

def as_int(v: object, what: str) -> int:
    """``v`` if it is an int (not a bool), else TypeError naming the operand."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__} {v!r}")
    return v


def s16(v: object, what: str) -> int:
    """``v`` as a signed 16-bit offset; AssemblerError when it does not fit."""
    n = as_int(v, what)
    if not _S16[0] <= n <= _S16[1]:
        raise AssemblerError(f"{what} {n} does not fit in 16 bits (-32768..32767)")
    return n


def s32(v: object, what: str) -> int:
    """``v`` as the signed 32-bit ``imm``; values up to 2**32-1 wrap (0xffffffff is -1).

    The kernel sign-extends imm in 64-bit operations, so ``Mov(R0, 0xffffffff)`` sets r0 to
    -1, exactly as clang assembles ``r0 = 0xffffffff``.
    """
    n = as_int(v, what)
    if not _S32[0] <= n <= 0xFFFFFFFF:
        raise AssemblerError(f"{what} {n} does not fit in 32 bits")
    return n - (1 << 32) if n > _S32[1] else n


def u32(v: object, what: str) -> int:
    n = as_int(v, what)
    if not 0 <= n <= 0xFFFFFFFF:
        raise AssemblerError(f"{what} {n} must be 0..0xffffffff")
    return n


def reg(v: object, what: str) -> Register:
    """``v`` if it is a Register, else TypeError naming the operand."""
    if not isinstance(v, Register):
        raise TypeError(f"{what} must be a register (R0..R10, W0..W10), got "
                        f"{type(v).__name__} {v!r}")
    return v


def size(v: object, what: str = "size") -> Size:
    """A Size, also from its width in bytes (1, 2, 4, 8)."""
    if isinstance(v, Size):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return Size(v)
        except ValueError:
            pass
    raise TypeError(f"{what} must be U8, U16, U32 or U64, got {v!r}")


def target(v: object, what: str, bits: int) -> str | int:
    """A branch target: a non-empty label name or an offset that fits ``bits``."""
    if isinstance(v, str):
        if not v:
            raise AssemblerError(f"{what}: empty label name")
        return v
    n = as_int(v, f"{what} target")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= n <= hi:
        raise AssemblerError(f"{what} offset {n} does not fit in {bits} bits ({lo}..{hi})")
    return n


def setattr_frozen(obj: object, name: str, value: object) -> None:
    """Normalise a field of a frozen dataclass in ``__post_init__``."""
    object.__setattr__(obj, name, value)
