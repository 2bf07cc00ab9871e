"""Helpers shared by the BTF tests: a tiny ELF section reader and a raw-BTF assembler.

Both are written independently of purebpf.btf so the tests do not check the library
against itself. The tests at the bottom check the helpers.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "btf"
OBJECTS = ("kinds.o", "kinds.bpfeb.o", "core.o")
VMLINUX = Path("/sys/kernel/btf/vmlinux")
SHT_NOBITS = 8


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int
    data: bytes


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    shndx: int


class Elf:
    """Sections and symbols of a 64-bit ELF file, either byte order."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF", "not an ELF file"
        assert data[4] == 2, "only ELF64 is supported"
        self.order = "<" if data[5] == 1 else ">"
        o = self.order
        (shoff,) = struct.unpack_from(o + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", data, 0x3A)
        # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize
        heads = [struct.unpack_from(o + "IIQQQQIIQQ", data, shoff + i * shentsize)
                 for i in range(shnum)]
        names_at = heads[shstrndx][4]
        self.sections: list[Section] = []
        for h in heads:
            name = _cstr(data, names_at + h[0])
            body = b"" if h[1] == SHT_NOBITS else data[h[4]:h[4] + h[5]]
            self.sections.append(Section(name, h[1], h[4], h[5], body))
        self.symbols: list[Symbol] = []
        symtab = next((i for i, h in enumerate(heads) if h[1] == 2), None)  # SHT_SYMTAB
        if symtab is not None:
            h = heads[symtab]
            strtab = heads[h[6]][4]
            for off in range(h[4], h[4] + h[5], 24):
                # Elf64_Sym: name u32, info u8, other u8, shndx u16, value u64, size u64
                name, _, _, shndx, value, size = struct.unpack_from(o + "IBBHQQ", data, off)
                self.symbols.append(Symbol(_cstr(data, strtab + name), value, size, shndx))

    def section(self, name: str) -> bytes:
        for s in self.sections:
            if s.name == name:
                return s.data
        raise KeyError(name)

    def section_sizes(self) -> dict[str, int]:
        return {s.name: s.size for s in self.sections if s.name}

    def symbol_offsets(self) -> dict[str, int]:
        return {s.name: s.value for s in self.symbols if s.name and s.shndx}


def _cstr(data: bytes, off: int) -> str:
    return data[off:data.index(b"\0", off)].decode()


def load_object(name: str) -> Elf:
    return Elf((TESTDATA / name).read_bytes())


# -- raw BTF assembly -------------------------------------------------------------------

class Strings:
    """Builds a string section by hand; offset 0 is the empty string."""

    def __init__(self) -> None:
        self.raw = bytearray(b"\0")
        self.offs: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        if s not in self.offs:
            self.offs[s] = len(self.raw)
            self.raw += s.encode() + b"\0"
        return self.offs[s]


def rec(kind: int, name_off: int = 0, vlen: int = 0, kflag: int = 0, size_or_type: int = 0,
        *words: int, order: str = "<", signed_words: tuple[int, ...] = ()) -> bytes:
    """One btf_type record followed by extra u32 words (s32 at ``signed_words`` positions)."""
    info = kflag << 31 | kind << 24 | vlen
    out = struct.pack(order + "III", name_off, info, size_or_type)
    for i, w in enumerate(words):
        out += struct.pack(order + ("i" if i in signed_words else "I"), w)
    return out


def blob(types: bytes, strings: bytes, order: str = "<", *, magic: int = 0xEB9F,
         version: int = 1, flags: int = 0) -> bytes:
    """A .BTF image: 24-byte header, type section, string section."""
    head = struct.pack(order + "HBBIIIII", magic, version, flags, 24, 0, len(types),
                       len(types), len(strings))
    return head + types + strings


def have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists()


def tool_path(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


# -- tests of the helpers ---------------------------------------------------------------

@pytest.mark.parametrize("name", OBJECTS)
def test_elf_reader_finds_btf_sections(name: str) -> None:
    elf = load_object(name)
    names = {s.name for s in elf.sections}
    assert {".BTF", ".BTF.ext", ".symtab"} <= names
    assert elf.section(".BTF")[:2] in (b"\x9f\xeb", b"\xeb\x9f")


@pytest.mark.skipif(not have("llvm-objcopy"), reason="llvm-objcopy not installed")
@pytest.mark.parametrize("name", OBJECTS)
def test_elf_reader_matches_llvm_objcopy(name: str, tmp_path: Path) -> None:
    out = tmp_path / "btf"
    subprocess.run([tool_path("llvm-objcopy"), f"--dump-section=.BTF={out}",
                    str(TESTDATA / name), str(tmp_path / "copy.o")], check=True)
    assert load_object(name).section(".BTF") == out.read_bytes()


def test_strings_helper_dedups() -> None:
    s = Strings()
    assert s("a") == 1 and s("b") == 3 and s("a") == 1 and s("") == 0
    assert bytes(s.raw) == b"\0a\0b\0"
