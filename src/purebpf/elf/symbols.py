"""Symbols of executables and shared libraries, for uprobes: a function's file offset.

Pure: reads the file, no syscalls. A uprobe is placed at a file offset (the uprobe PMU's
config2): the symbol's address (``st_value``) translated through the PT_LOAD segment that
contains it (``offset = addr - p_vaddr + p_offset``). Symbols come from ``.symtab`` first
(static functions too, unless stripped), then ``.dynsym``. ELF32 and ELF64, both byte orders.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import os
import stat
import struct

from ..errors import BPFError, InvalidArgumentError, error_for
from .reader import Symbol

PT_LOAD = 1
SHT_SYMTAB = 2
SHT_DYNSYM = 11
SHN_UNDEF = 0
STT_FUNC = 2
STT_GNU_IFUNC = 10
_TYPES = {0: "STT_NOTYPE", 1: "STT_OBJECT", 2: "STT_FUNC", 3: "STT_SECTION", 4: "STT_FILE",
          10: "STT_GNU_IFUNC"}
_BINDS = {0: "STB_LOCAL", 1: "STB_GLOBAL", 2: "STB_WEAK", 10: "STB_GNU_UNIQUE"}


@dataclasses.dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: where its bytes sit in the file and in memory."""

    offset: int
    vaddr: int
    filesz: int
    memsz: int
    flags: int


@dataclasses.dataclass
class Binary:
    """What uprobes need from an executable or shared library."""

    path: str
    type: int  # ET_EXEC 2, ET_DYN 3
    segments: list[Segment]
    symtab: list[Symbol]
    dynsym: list[Symbol]

    def lookup(self, name: str) -> tuple[Symbol, str] | None:
        """The defined symbol ``name`` and the table it was found in ('.symtab' first)."""
        undefined: tuple[Symbol, str] | None = None
        for table, syms in ((".symtab", self.symtab), (".dynsym", self.dynsym)):
            for s in syms:
                if s.name == name or s.name.split("@", 1)[0] == name:
                    if s.section != SHN_UNDEF:
                        return s, table
                    undefined = undefined or (s, table)
        return undefined

    def file_offset(self, vaddr: int) -> int | None:
        """The file offset of virtual address ``vaddr`` (None outside every PT_LOAD)."""
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + max(seg.filesz, 1):
                return vaddr - seg.vaddr + seg.offset
        return None


def _bad(path: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(errno.EINVAL, f"read symbols of {path}: {why}")


def _cstr(table: bytes, off: int) -> str:
    end = table.find(b"\0", off)
    return table[off:end if end >= 0 else len(table)].decode(errors="replace")


def read_binary(source: str | os.PathLike[str] | bytes, name: str = "") -> Binary:
    """Parse an ELF executable or shared library (any machine) into segments and symbols.

    Raises BPFError ENOENT for a missing file, InvalidArgumentError for anything that is
    not a readable ELF file."""
    if isinstance(source, bytes | bytearray):
        data, path = bytes(source), name or "<bytes>"
    else:
        if not isinstance(source, str | os.PathLike):
            raise TypeError(f"read symbols of {source!r}: expected a path (str or "
                            f"os.PathLike) or bytes, not {type(source).__name__}")
        path = os.fspath(source)
        if not isinstance(path, str):
            raise TypeError(f"read symbols of {path!r}: the path must be a str")
        data = _read_file(path)
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise _bad(path, "not an ELF file (no ELF magic)")
    cls, order = data[4], data[5]
    if cls not in (1, 2) or order not in (1, 2):
        raise _bad(path, f"unknown ELF class {cls} or byte order {order}")
    e = "<" if order == 1 else ">"
    try:
        return _parse(data, path, cls == 2, e)
    except (struct.error, OverflowError, IndexError, ValueError) as exc:
        # An offset or count in a header that points outside the file.
        raise _bad(path, f"truncated or corrupt ELF file ({exc})") from None


def _read_file(path: str) -> bytes:
    """The bytes of the regular file at ``path``. Anything else is refused before it is
    read: a FIFO would block the open or the read forever, /dev/zero would never end."""
    if "\0" in path:
        raise _bad(path, "the path contains a NUL byte")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise error_for(exc.errno or errno.EIO, f"read symbols of {path}: "
                        f"{exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _bad(path, "not a regular file (an executable or shared library is one)")
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        except OSError as exc:
            raise error_for(exc.errno or errno.EIO, f"read symbols of {path}: "
                            f"{exc.strerror}") from None
    finally:
        os.close(fd)


def _parse(data: bytes, path: str, is64: bool, e: str) -> Binary:
    if is64:
        e_type, = struct.unpack_from(e + "H", data, 16)
        e_phoff, e_shoff = struct.unpack_from(e + "QQ", data, 32)
        e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = \
            struct.unpack_from(e + "HHHHH", data, 54)
        ph_fmt, sh_fmt, sym_fmt = e + "IIQQQQQQ", e + "IIQQQQIIQQ", e + "IBBHQQ"
    else:
        e_type, = struct.unpack_from(e + "H", data, 16)
        e_phoff, e_shoff = struct.unpack_from(e + "II", data, 28)
        e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = \
            struct.unpack_from(e + "HHHHH", data, 42)
        ph_fmt, sh_fmt, sym_fmt = e + "IIIIIIII", e + "IIIIIIIIII", e + "IIIBBH"
    segments = []
    for i in range(e_phnum):
        ph = struct.unpack_from(ph_fmt, data, e_phoff + i * e_phentsize)
        if is64:
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = ph
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, p_memsz, p_flags, _ = ph
        if p_type == PT_LOAD:
            segments.append(Segment(p_offset, p_vaddr, p_filesz, p_memsz, p_flags))
    if e_shoff + e_shnum * e_shentsize > len(data):
        raise _bad(path, "section header table past the end of the file")
    headers = [struct.unpack_from(sh_fmt, data, e_shoff + i * e_shentsize)
               for i in range(e_shnum)]

    def body(h: tuple[int, ...]) -> bytes:
        off, size = h[4], h[5]
        if off + size > len(data):
            raise _bad(path, f"section data at {off}+{size} runs past the end of the file")
        return data[off:off + size]

    tables: dict[int, list[Symbol]] = {SHT_SYMTAB: [], SHT_DYNSYM: []}
    entsize = 24 if is64 else 16
    for h in headers:
        if h[1] not in tables or h[6] >= e_shnum:
            continue
        raw, names = body(h), body(headers[h[6]])
        out = tables[h[1]]
        for j, ent in enumerate(struct.iter_unpack(sym_fmt, raw[:len(raw) // entsize *
                                                                   entsize])):
            if is64:
                st_name, info, _other, shndx, value, size = ent
            else:
                st_name, value, size, info, _other, shndx = ent
            out.append(Symbol(j, _cstr(names, st_name), value, size, shndx,
                              _TYPES.get(info & 0xF, str(info & 0xF)),
                              _BINDS.get(info >> 4, str(info >> 4))))
    return Binary(path, e_type, segments, tables[SHT_SYMTAB], tables[SHT_DYNSYM])


def symbol_offset(source: str | os.PathLike[str] | Binary, symbol: str) -> int:
    """The file offset of function ``symbol`` in an executable or shared library: what a
    uprobe on it needs.

    Raises BPFError ENOENT naming the symbol and the file when it is not there (with close
    names as a hint), or when it is only an import (undefined: it lives in a library)."""
    if not isinstance(symbol, str):
        raise TypeError(f"resolve symbol {symbol!r}: the symbol must be a str, not "
                        f"{type(symbol).__name__}")
    binary = source if isinstance(source, Binary) else read_binary(source)
    what = f"resolve symbol {symbol!r} in {binary.path}"
    if not symbol or "\0" in symbol:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: not a symbol name (empty, or "
                                   "with a NUL byte)")
    found = binary.lookup(symbol)
    if found is None:
        names = sorted({s.name for s in binary.symtab + binary.dynsym
                        if s.type in ("STT_FUNC", "STT_GNU_IFUNC") and s.section})
        close = difflib.get_close_matches(symbol, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else ""
        if not binary.symtab and not binary.dynsym:
            hint = "the file has no symbol tables (stripped?): pass a file offset instead"
        elif not binary.symtab:
            hint = "; ".join(filter(None, [hint, "the file is stripped (.dynsym only): "
                                           "static functions are not visible"]))
        raise BPFError(errno.ENOENT, f"{what}: no such symbol in .symtab or .dynsym",
                       hint=hint)
    sym, table = found
    if sym.section == SHN_UNDEF:
        raise BPFError(errno.ENOENT, f"{what}: the symbol is undefined there (imported from "
                       "a shared library)", hint="attach to the library that defines it "
                       "(ldd shows which)")
    if sym.type not in ("STT_FUNC", "STT_GNU_IFUNC", "STT_NOTYPE"):
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {table} says it is "
                                   f"{sym.type}, not a function")
    off = binary.file_offset(sym.value)
    if off is None:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: its address {sym.value:#x} is in "
                                   "no PT_LOAD segment")
    return off
