"""A relocatable BPF ELF object as plain data: sections, symbols, relocations.

pyelftools reads the container; this module turns it into small records the loader works
with, so nothing else depends on pyelftools' API. Pure: no syscalls.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Any

from ..errors import InvalidArgumentError

SHT_PROGBITS = "SHT_PROGBITS"
SHT_NOBITS = "SHT_NOBITS"
SHF_EXECINSTR = 0x4
SHF_WRITE = 0x1
SHF_ALLOC = 0x2


@dataclasses.dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str
    flags: int
    size: int
    data: bytes  # empty for SHT_NOBITS (.bss): size tells how big it is
    info: int    # for REL sections: the index of the section they apply to

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclasses.dataclass(frozen=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    section: int  # st_shndx (0 = undefined)
    type: str     # STT_FUNC, STT_OBJECT, STT_SECTION, STT_NOTYPE
    bind: str     # STB_LOCAL, STB_GLOBAL, STB_WEAK


@dataclasses.dataclass(frozen=True)
class Relocation:
    offset: int
    symbol: Symbol
    type: int


@dataclasses.dataclass
class ElfObject:
    """What the loader needs from one object file."""

    name: str
    little_endian: bool
    sections: list[Section]
    symbols: list[Symbol]
    relocations: dict[int, list[Relocation]]  # target section index -> relocations

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def symbols_in(self, index: int) -> list[Symbol]:
        """Symbols defined in section ``index``, by address."""
        return sorted((s for s in self.symbols if s.section == index),
                      key=lambda s: (s.value, s.name))


def _shndx(v: Any) -> int:
    # pyelftools gives special indices as strings ('SHN_UNDEF', 'SHN_ABS', ...).
    return v if isinstance(v, int) else 0


def read_elf(source: str | os.PathLike[str] | bytes, name: str | None = None) -> ElfObject:
    """Parse a relocatable BPF object (EM_BPF, either byte order)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = name or "object"
    else:
        path = os.fspath(source)
        with open(path, "rb") as f:
            data = f.read()
        name = name or os.path.basename(path).split(".")[0]
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf["e_machine"]
        etype = elf["e_type"]
    except (ELFError, Exception) as exc:  # pyelftools raises assorted errors on junk
        raise InvalidArgumentError(22, f"read {name}: not an ELF object ({exc})") from None
    if machine not in ("EM_BPF", 247):
        raise InvalidArgumentError(22, f"read {name}: ELF machine is {machine}, not EM_BPF",
                                   hint="compile with clang -target bpf")
    if etype != "ET_REL":
        raise InvalidArgumentError(22, f"read {name}: ELF type {etype}, expected a "
                                   "relocatable object (ET_REL, clang -c)")
    sections: list[Section] = []
    for i, sec in enumerate(elf.iter_sections()):
        stype = sec["sh_type"]
        body = b"" if stype == SHT_NOBITS else sec.data()
        sections.append(Section(i, sec.name, str(stype), int(sec["sh_flags"]),
                                int(sec["sh_size"]), body, int(sec["sh_info"])))
    symbols: list[Symbol] = []
    symtab = elf.get_section_by_name(".symtab")
    if symtab is not None:
        for i, sym in enumerate(symtab.iter_symbols()):  # type: ignore[attr-defined]
            symbols.append(Symbol(i, sym.name, int(sym["st_value"]), int(sym["st_size"]),
                                  _shndx(sym["st_shndx"]), str(sym["st_info"]["type"]),
                                  str(sym["st_info"]["bind"])))
    relocations: dict[int, list[Relocation]] = {}
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_REL":
            continue
        target = int(sec["sh_info"])
        rels = relocations.setdefault(target, [])
        for rel in sec.iter_relocations():  # type: ignore[attr-defined]
            idx = int(rel["r_info_sym"])
            if idx >= len(symbols):
                raise InvalidArgumentError(22, f"read {name}: relocation in {sec.name} names "
                                           f"symbol {idx}, past the symbol table")
            rels.append(Relocation(int(rel["r_offset"]), symbols[idx], int(rel["r_info_type"])))
    return ElfObject(name, bool(elf.little_endian), sections, symbols, relocations)
