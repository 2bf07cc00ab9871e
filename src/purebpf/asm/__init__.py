"""eBPF assembler, disassembler and instruction codec (ISA v1-v4). Pure: no syscalls.

A program is a list of instructions that reads like the assembly it makes::

    from purebpf.asm import *

    count_to_ten = [
        Mov(R0, 0),              # r0 = 0
        Mov(R1, 0),              # r1 = 0
        Label("loop"),
        Add(R1, 1),              # r1 += 1
        Add(R0, R1),             # r0 += r1
        JLt(R1, 10, "loop"),     # if r1 < 10 goto loop
        Exit(),                  # exit
    ]

Conventions
    * Registers are ``R0``..``R10``; ``W0``..``W10`` name their low 32 bits and select the
      32-bit instruction: ``Add(W1, 5)`` is ``w1 += 5`` (BPF_ALU), ``JEq(W1, W2, "x")`` is
      ``if w1 == w2 goto x`` (BPF_JMP32).
    * The second operand of arithmetic, compares and stores is a register or an int
      immediate: ``Add(R1, R2)``, ``Add(R1, 2)``, ``Store(R10, -8, R1, U64)``,
      ``Store(R10, -8, 0, U64)``.
    * Memory operands keep the order of the text: ``Load(R1, R2, 4, U32)`` is
      ``r1 = *(u32 *)(r2 + 4)``; ``Store(R1, 4, R2, U32)`` is ``*(u32 *)(r1 + 4) = r2``.
    * Jumps and calls take a label name or a relative offset: ``Ja("out")``, ``Ja(+3)``.
      :func:`assemble` resolves the names and reports unknown or duplicate labels and
      offsets out of range.

Instructions (``str(insn)`` is the llvm-objdump text)
    ALU: Add Sub Mul Div SDiv Mod SMod Or And Lsh Rsh Arsh Xor Mov, Neg, MovSX (sign-extending
    move), ToLE ToBE BSwap (byte order), AddrSpaceCast (arena pointers).
    Jumps: JEq JNe JGt JGe JLt JLe JSet JSGt JSGe JSLt JSLe, Ja (goto), Gotol (32-bit goto),
    MayGoto, Call (helper by name, number or :class:`Helper`), CallSubprog (to a label),
    CallKfunc (by BTF id), CallX, Exit.
    Memory: Load, LoadSX (sign-extending), Store, LoadAbs/LoadInd (legacy packet loads),
    AtomicAdd/Or/And/Xor (``fetch=True`` for the fetching forms), AtomicXchg,
    AtomicCmpXchg, LoadAcquire, StoreRelease.
    ld_imm64: LoadImm64 (constant), LoadMap / LoadMapValue (a map by name, object or fd),
    LoadMapIndex / LoadMapIndexValue (fd_array), LoadKsym (BTF id), LoadFunc (callback).
    Label (a position), Raw (any slot, as decoded when unknown).

Maps and loading
    ``LoadMap(R1, "counters")`` leaves a reference the loader resolves against the maps
    given to :meth:`purebpf.Program.load`; ``LoadMap(R1, live_map)`` names the object
    itself::

        code = assemble([LoadMap(R1, outer), ..., Exit()])
        prog = Program.load(code.spec("lookup", ProgramType.XDP), maps=code.maps)

Encoding and listings
    ``insn.encode(byteorder)``, :func:`decode` (bytes -> instructions, round-trips any
    input), :func:`disasm` (``style="llvm"`` or ``"bpftool"``).
"""

from __future__ import annotations

from .alu import (ALU, Add, AddrSpaceCast, And, Arsh, BSwap, Div, Lsh, Mod, Mov, MovSX, Mul,
                  Neg, Or, Rsh, SDiv, SMod, Sub, ToBE, ToLE, Xor)
from .assembler import Assembly, assemble, flatten
from .decode import decode
from .disasm import disasm
from .helpers import Helper
from .instruction import (R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, W0, W1, W2, W3, W4, W5,
                          W6, W7, W8, W9, W10, AssemblerError, Branch, Instruction, Label, Raw,
                          Register)
from .jump import (Call, CallKfunc, CallSubprog, CallX, Exit, Gotol, Ja, JEq, JGe, JGt, JLe,
                   JLt, JNe, JSet, JSGe, JSGt, JSLe, JSLt, Jump, MayGoto)
from .ldimm64 import (LoadFunc, LoadImm64, LoadKsym, LoadMap, LoadMapIndex, LoadMapIndexValue,
                      LoadMapValue)
from .memory import (Atomic, AtomicAdd, AtomicAnd, AtomicCmpXchg, AtomicOr, AtomicXchg,
                     AtomicXor, Load, LoadAbs, LoadAcquire, LoadInd, LoadSX, Store,
                     StoreRelease)
from .opcodes import Pseudo, Size

U8, U16, U32, U64 = Size.U8, Size.U16, Size.U32, Size.U64

__all__ = [
    # registers and sizes
    "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10",
    "W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10",
    "Register", "Size", "U8", "U16", "U32", "U64",
    # ALU
    "Add", "Sub", "Mul", "Div", "SDiv", "Mod", "SMod", "Or", "And", "Lsh", "Rsh", "Arsh",
    "Xor", "Mov", "Neg", "MovSX", "ToLE", "ToBE", "BSwap", "AddrSpaceCast",
    # jumps and calls
    "JEq", "JNe", "JGt", "JGe", "JLt", "JLe", "JSet", "JSGt", "JSGe", "JSLt", "JSLe",
    "Ja", "Gotol", "MayGoto", "Call", "CallSubprog", "CallKfunc", "CallX", "Exit", "Helper",
    # memory
    "Load", "LoadSX", "Store", "LoadAbs", "LoadInd", "AtomicAdd", "AtomicOr", "AtomicAnd",
    "AtomicXor", "AtomicXchg", "AtomicCmpXchg", "LoadAcquire", "StoreRelease",
    # ld_imm64
    "LoadImm64", "LoadMap", "LoadMapValue", "LoadMapIndex", "LoadMapIndexValue", "LoadKsym",
    "LoadFunc", "Pseudo",
    # structure, tools
    "Label", "Raw", "Instruction", "ALU", "Jump", "Atomic", "Branch",
    "assemble", "Assembly", "flatten", "decode", "disasm", "AssemblerError",
]
