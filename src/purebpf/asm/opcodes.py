"""The eBPF instruction encoding: opcode fields and pseudo values from uapi bpf.h.

This is the one copy of the numbers in ``include/uapi/linux/bpf_common.h`` and
``include/uapi/linux/bpf.h`` that the assembler needs. An instruction is 8 bytes::

    opcode:8  dst_reg:4  src_reg:4  off:16 (signed)  imm:32 (signed)

(on big-endian targets the register nibbles swap: dst is the high one). The opcode is
``class | size | mode`` for loads and stores and ``class | source | op`` for arithmetic and
jumps. Members drop the kernel's ``BPF_`` prefix; each docstring names the kernel constant.
"""

from __future__ import annotations

import enum


class Class(enum.IntEnum):
    """Instruction class, ``BPF_CLASS(code)`` (the low three bits)."""

    LD = 0x00      #: BPF_LD: ld_imm64 and the legacy packet loads
    LDX = 0x01     #: BPF_LDX: load from memory into a register
    ST = 0x02      #: BPF_ST: store an immediate
    STX = 0x03     #: BPF_STX: store a register; atomics
    ALU = 0x04     #: BPF_ALU: 32-bit arithmetic
    JMP = 0x05     #: BPF_JMP: 64-bit compares, call, exit
    JMP32 = 0x06   #: BPF_JMP32: 32-bit compares (v3), gotol (v4)
    ALU64 = 0x07   #: BPF_ALU64: 64-bit arithmetic


CLASS_MASK = 0x07
SIZE_MASK = 0x18
MODE_MASK = 0xE0
OP_MASK = 0xF0
SOURCE_MASK = 0x08

# BPF_K / BPF_X: the operand is the immediate or src_reg. For BPF_END in the ALU class the
# same bit selects the byte order: BPF_TO_LE (0) or BPF_TO_BE (8).
BPF_K = 0x00
BPF_X = 0x08
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08


class Mode(enum.IntEnum):
    """Load/store mode, ``BPF_MODE(code)``."""

    IMM = 0x00     #: BPF_IMM: ld_imm64
    ABS = 0x20     #: BPF_ABS: legacy packet load at a constant offset
    IND = 0x40     #: BPF_IND: legacy packet load at a register offset
    MEM = 0x60     #: BPF_MEM: regular load/store
    MEMSX = 0x80   #: BPF_MEMSX: sign-extending load (v4)
    ATOMIC = 0xC0  #: BPF_ATOMIC: atomic operation, the operation is in imm


class ALUOp(enum.IntEnum):
    """Arithmetic operation, ``BPF_OP(code)`` of the ALU and ALU64 classes."""

    ADD = 0x00   #: BPF_ADD
    SUB = 0x10   #: BPF_SUB
    MUL = 0x20   #: BPF_MUL
    DIV = 0x30   #: BPF_DIV (off=1: signed, v4)
    OR = 0x40    #: BPF_OR
    AND = 0x50   #: BPF_AND
    LSH = 0x60   #: BPF_LSH
    RSH = 0x70   #: BPF_RSH
    NEG = 0x80   #: BPF_NEG
    MOD = 0x90   #: BPF_MOD (off=1: signed, v4)
    XOR = 0xA0   #: BPF_XOR
    MOV = 0xB0   #: BPF_MOV (off=8/16/32: sign-extending, v4; off=1 on ALU64|X: addr_space_cast)
    ARSH = 0xC0  #: BPF_ARSH
    END = 0xD0   #: BPF_END: byte swap


class JumpOp(enum.IntEnum):
    """Jump operation, ``BPF_OP(code)`` of the JMP and JMP32 classes."""

    JA = 0x00     #: BPF_JA: goto (JMP: off; JMP32: imm, "gotol", v4)
    JEQ = 0x10    #: BPF_JEQ
    JGT = 0x20    #: BPF_JGT
    JGE = 0x30    #: BPF_JGE
    JSET = 0x40   #: BPF_JSET
    JNE = 0x50    #: BPF_JNE
    JSGT = 0x60   #: BPF_JSGT
    JSGE = 0x70   #: BPF_JSGE
    CALL = 0x80   #: BPF_CALL
    EXIT = 0x90   #: BPF_EXIT
    JLT = 0xA0    #: BPF_JLT (v2)
    JLE = 0xB0    #: BPF_JLE (v2)
    JSLT = 0xC0   #: BPF_JSLT (v2)
    JSLE = 0xD0   #: BPF_JSLE (v2)
    JCOND = 0xE0  #: BPF_JCOND: may_goto (src_reg BPF_MAY_GOTO)


class AtomicOp(enum.IntEnum):
    """The ``imm`` of a ``BPF_STX | BPF_ATOMIC`` instruction."""

    ADD = 0x00            #: BPF_ADD
    OR = 0x40             #: BPF_OR
    AND = 0x50            #: BPF_AND
    XOR = 0xA0            #: BPF_XOR
    FETCH_ADD = 0x01      #: BPF_ADD | BPF_FETCH
    FETCH_OR = 0x41       #: BPF_OR | BPF_FETCH
    FETCH_AND = 0x51      #: BPF_AND | BPF_FETCH
    FETCH_XOR = 0xA1      #: BPF_XOR | BPF_FETCH
    XCHG = 0xE1           #: BPF_XCHG (always fetches)
    CMPXCHG = 0xF1        #: BPF_CMPXCHG (compares with r0, always fetches)
    LOAD_ACQ = 0x100      #: BPF_LOAD_ACQ (Linux 6.15)
    STORE_REL = 0x110     #: BPF_STORE_REL (Linux 6.15)


BPF_FETCH = 0x01


class Pseudo(enum.IntEnum):
    """``src_reg`` of an ld_imm64: what the 64-bit immediate means to the kernel."""

    IMM = 0             #: a plain 64-bit constant
    MAP_FD = 1          #: BPF_PSEUDO_MAP_FD: imm is a map fd, the register gets the map
    MAP_VALUE = 2       #: BPF_PSEUDO_MAP_VALUE: map fd + offset into its value (globals)
    BTF_ID = 3          #: BPF_PSEUDO_BTF_ID: a kernel symbol by BTF id (+ module BTF fd)
    FUNC = 4            #: BPF_PSEUDO_FUNC: address of a subprogram (imm: relative offset)
    MAP_IDX = 5         #: BPF_PSEUDO_MAP_IDX: imm indexes fd_array (Linux 5.14)
    MAP_IDX_VALUE = 6   #: BPF_PSEUDO_MAP_IDX_VALUE: fd_array index + offset


class CallKind(enum.IntEnum):
    """``src_reg`` of a ``BPF_JMP | BPF_CALL``."""

    HELPER = 0          #: imm is a helper id (enum bpf_func_id)
    LOCAL = 1           #: BPF_PSEUDO_CALL: imm is the offset to a subprogram
    KFUNC = 2           #: BPF_PSEUDO_KFUNC_CALL: imm is a BTF id, off an fd_array index


LD_IMM64 = Class.LD | Mode.IMM | 0x18   # 0x18: the only two-slot instruction
BPF_MAY_GOTO = 0          # src_reg of JMP|JCOND
BPF_ADDR_SPACE_CAST = 1   # off of ALU64|MOV|X
BPF_SDIV_SMOD = 1         # off of DIV/MOD selecting the signed variant
MOVSX_BITS = (8, 16, 32)  # off of MOV|X selecting sign extension (ALU: 8 and 16 only)


class Size(enum.Enum):
    """Access size of a load or store; the value is the width in bytes.

    ``Size.U32`` is ``BPF_W``, ``U8`` ``BPF_B``, ``U16`` ``BPF_H``, ``U64`` ``BPF_DW``.
    """

    U8 = 1
    U16 = 2
    U32 = 4
    U64 = 8

    @property
    def code(self) -> int:
        """The ``BPF_SIZE`` bits for this width."""
        return _SIZE_CODE[self]

    @property
    def bits(self) -> int:
        return self.value * 8

    @classmethod
    def from_code(cls, code: int) -> Size:
        """The size in the ``BPF_SIZE`` bits of an opcode."""
        return _CODE_SIZE[code & SIZE_MASK]


_SIZE_CODE = {Size.U32: 0x00, Size.U16: 0x08, Size.U8: 0x10, Size.U64: 0x18}
_CODE_SIZE = {v: k for k, v in _SIZE_CODE.items()}
