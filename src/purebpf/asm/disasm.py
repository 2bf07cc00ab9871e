"""Program listings in llvm-objdump's or bpftool's spelling. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .assembler import Assembly, Instructions, flatten
from .decode import decode
from .instruction import NATIVE, Branch, ByteOrder, Instruction, Label, Style


def disasm(program: bytes | bytearray | memoryview | Assembly | Instructions, *,
           style: Style = "llvm", hex: bool = False, alu32: bool = False,
           byteorder: ByteOrder = NATIVE, labels: Mapping[str, int] | None = None) -> str:
    """A listing, one instruction a line, numbered by 8-byte slot.

    ``program`` is bytecode (decoded in ``byteorder``), an :class:`Assembly` or a sequence of
    instructions. ``style="llvm"`` spells instructions as ``llvm-objdump -d`` does
    (``r0 = 0``, ``if r1 > r2 goto +33``, ``r2 = 24 ll``; ``hex=True`` for its default
    ``--print-imm-hex``, ``alu32=True`` for ``--mcpu=v3``), ``style="bpftool"`` as
    ``bpftool prog dump xlated`` and the verifier log do (``(b7) r0 = 0``,
    ``call bpf_map_lookup_elem#1``, ``r1 = map[id:5]``). Jumps to a label get the label's
    name (``goto -3 <loop>``); ``labels`` maps extra names to slot indexes.
    """
    insns: list[Instruction]
    names: dict[str, int] = {}
    if isinstance(program, Assembly):
        insns = list(program.instructions)
        names.update(program.labels)
    elif isinstance(program, bytes | bytearray | memoryview):
        insns = decode(program, byteorder)
    else:
        insns = list(flatten(program))
    names.update(labels or {})
    at: dict[int, list[str]] = {}
    for name, slot in names.items():
        at.setdefault(slot, []).append(name)
    lines: list[str] = []
    slot = 0
    for insn in insns:
        if isinstance(insn, Label):
            lines.append(f"{insn.name}:")
            continue
        lines.extend(f"{n}:" for n in at.get(slot, ()))
        text = insn.text(style, hex=hex, alu32=alu32)
        dest = _destination(insn, slot)
        if dest is not None and dest in at:
            text += f" <{at[dest][0]}>"
        lines.append(f"{slot:4d}: {text}")
        slot += insn.slots
    lines.extend(f"{n}:" for n in at.get(slot, ()))
    return "\n".join(lines) + "\n" if lines else ""


def _destination(insn: Instruction, slot: int) -> int | None:
    target: Any = getattr(insn, "target", None)
    if isinstance(insn, Branch) and isinstance(target, int):
        return slot + 1 + target
    return None
