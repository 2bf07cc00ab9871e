"""Instructions -> a loadable program: labels become offsets, maps become references. Pure."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

from .._spec import ProgramSpec, Reference
from ..types import ProgramType
from .instruction import NATIVE, AssemblerError, Branch, ByteOrder, Instruction, Label
from .jump import Ja, Jump
from .ldimm64 import LoadMap, LoadMapValue

# A program: instructions, possibly in nested lists (a reusable prologue, a subprogram).
Instructions = Iterable[Union[Instruction, "Instructions"]]


def flatten(program: Instructions) -> Iterator[Instruction]:
    """The instructions of a program given as nested lists, in order."""
    for n, item in enumerate(program):
        if isinstance(item, Instruction):
            yield item
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes | bytearray):
            yield from flatten(item)
        else:
            raise TypeError(f"program item {n} is a {type(item).__name__} ({item!r}), not an "
                            "instruction")


@dataclasses.dataclass(frozen=True)
class Assembly:
    """An assembled program: instructions with offsets resolved, plus what the loader needs.

    ``references`` name the maps that ``LoadMap``/``LoadMapValue`` instructions point at;
    ``maps`` holds the map objects that were given directly, under the names the
    references use (``"<map name>#<n>"``). ``labels`` gives each label's slot index.
    Load it with ``Program.load(code.spec(name, type), maps={**code.maps, **named_maps})``.
    """

    instructions: tuple[Instruction, ...]
    references: tuple[Reference, ...] = ()
    maps: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def encode(self, byteorder: ByteOrder = NATIVE) -> bytes:
        """The program's bytes; map references are left 0 for the loader to fill."""
        return b"".join(i.encode(byteorder) for i in self.instructions)

    @property
    def code(self) -> bytes:
        """The program's bytes in host byte order, as the kernel loads them."""
        return self.encode()

    def __len__(self) -> int:
        """The number of 8-byte slots (ld_imm64 counts two)."""
        return sum(i.slots for i in self.instructions)

    def spec(self, name: str, type: ProgramType | int, **fields: Any) -> ProgramSpec:
        """A :class:`purebpf.ProgramSpec` for this program (other fields as keywords).

        Pass ``self.maps`` (and any maps referenced by name) to ``Program.load``.
        """
        return ProgramSpec(name=name, type=ProgramType(type), instructions=self.code,
                           references=list(self.references), **fields)

    def disasm(self, **options: Any) -> str:
        """The listing of :func:`purebpf.asm.disasm`, with label names on jump targets."""
        from .disasm import disasm

        return disasm(self, **options)


def assemble(program: Instructions) -> Assembly:
    """Resolve labels into offsets and collect map references.

    ``program`` is a sequence of instructions (nested lists are flattened). Raises
    AssemblerError naming the instruction for an unknown or duplicate label and for an
    offset that does not fit its field (16 bits for jumps, 32 for calls and ``Gotol``);
    TypeError for an item that is not an instruction.
    """
    insns = list(flatten(program))
    labels = _labels(insns)
    out: list[Instruction] = []
    refs: list[Reference] = []
    objects: dict[int, str] = {}
    maps: dict[str, Any] = {}
    slot = 0
    for insn in insns:
        if isinstance(insn, Label):
            continue
        if isinstance(insn, Branch) and isinstance(getattr(insn, "target"), str):
            insn = _resolve(insn, slot, labels)
        if isinstance(insn, LoadMap | LoadMapValue) and not insn.resolved:
            target = insn.map
            if not isinstance(target, str):
                if id(target) not in objects:
                    base = getattr(target, "name", "") or "map"
                    objects[id(target)] = f"{base}#{len(objects)}"
                    maps[objects[id(target)]] = target
                target = objects[id(target)]
            if isinstance(insn, LoadMapValue):
                refs.append(Reference(slot, target, "map_value", insn.offset))
            else:
                refs.append(Reference(slot, target, "map"))
        out.append(insn)
        slot += insn.slots
    return Assembly(tuple(out), tuple(refs), maps, labels)


def _labels(insns: list[Instruction]) -> dict[str, int]:
    labels: dict[str, int] = {}
    slot = 0
    for insn in insns:
        if isinstance(insn, Label):
            if insn.name in labels:
                raise AssemblerError(f"duplicate label {insn.name!r}: at instructions "
                                     f"{labels[insn.name]} and {slot}")
            labels[insn.name] = slot
        slot += insn.slots
    return labels


def _resolve(insn: Branch, slot: int, labels: Mapping[str, int]) -> Instruction:
    name: str = getattr(insn, "target")
    where = f"instruction {slot} ({insn.text()})"
    if name not in labels:
        close = difflib.get_close_matches(name, list(labels), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = "" if close else f"; labels: {', '.join(sorted(labels)) or 'none'}"
        raise AssemblerError(f"{where}: unknown label {name!r}{hint}{known}")
    off = labels[name] - (slot + 1)
    bits = insn.offset_bits
    if not -(1 << (bits - 1)) <= off < (1 << (bits - 1)):
        hint = ""
        if isinstance(insn, Ja):
            hint = "; use Gotol for a long jump"
        elif isinstance(insn, Jump):
            hint = "; invert the condition to jump over a Gotol"
        raise AssemblerError(f"{where}: offset {off} to label {name!r} is out of range for "
                             f"a {bits}-bit field{hint}")
    return insn.retarget(off)
