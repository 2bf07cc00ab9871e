"""purebpf.asm against LLVM: decode clang-built objects and compare with llvm-objdump.

tests/testdata/asm/*.c are written mostly in clang's BPF assembly, so the encodings come
from LLVM; the Makefile commits each object (little- and big-endian) with llvm-objdump-19's
listings of it. Every instruction of every code section must decode, encode back to the
same bytes, and print as llvm-objdump printed it.
"""

from __future__ import annotations

import filecmp
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest

from purebpf import asm
from purebpf.asm import (Atomic, AtomicCmpXchg, AtomicXchg, Instruction, Raw, Size, decode,
                         disasm)
from purebpf.elf import read_elf

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "asm"
OBJECTS = sorted(DATA.glob("*.o"))
OBJDUMP = shutil.which("llvm-objdump-19")
# Each stored listing: its suffix, llvm-objdump's flags, and the matching disasm options.
MODES = [
    ("dis", ["--no-print-imm-hex"], {}),
    ("v4.dis", ["--mcpu=v4"], {"hex": True, "alu32": True}),
]


def code_sections(path: pathlib.Path) -> list[tuple[str, bytes]]:
    return [(s.name, s.data) for s in read_elf(path).sections if s.executable and s.data]


def byteorder(path: pathlib.Path) -> Any:
    return "little" if read_elf(path).little_endian else "big"


def parse_objdump(text: str) -> dict[str, dict[int, str]]:
    """llvm-objdump -d --no-show-raw-insn output: section -> slot -> instruction text."""
    out: dict[str, dict[int, str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.match(r"Disassembly of section (.*):$", line):
            section = m.group(1)
            out[section] = {}
        elif m := re.match(r"\s+(\d+):\t(.*)$", line):
            # Jumps end with the target as symbol+offset: "goto +3 <f+0x20>".
            out[section][int(m.group(1))] = re.sub(r" <[^ <>]*>$", "", m.group(2))
    return out


def llvm19_cannot_decode(insn: Instruction, alu32: bool) -> bool:
    """llvm-objdump-19 without alu32 has no decoding for 32-bit atomics but the plain add.

    It prints ``<unknown>`` for them (and misreads a 32-bit fetch-add as the plain add);
    with ``--mcpu=v3``/``v4`` it decodes them all, and the v4 listings check those.
    """
    if alu32 or not isinstance(insn, Atomic | AtomicXchg | AtomicCmpXchg):
        return False
    plain_add = isinstance(insn, asm.AtomicAdd) and not insn.fetch
    return insn.size is Size.U32 and not plain_add


def mismatches(path: pathlib.Path, listing: dict[str, dict[int, str]],
               options: dict[str, bool]) -> list[str]:
    bad = []
    for name, data in code_sections(path):
        slot, slots = 0, set()
        for insn in decode(data, byteorder(path)):
            slots.add(slot)
            want = listing[name].get(slot)
            if not llvm19_cannot_decode(insn, options.get("alu32", False)):
                got = insn.text(**options)  # type: ignore[arg-type]
                if got != want:
                    bad.append(f"{path.name} {name} {slot}: {got!r} != llvm {want!r}")
            slot += insn.slots
        assert slot == len(data) // 8
        assert set(listing[name]) == slots, f"{path.name} {name}: instruction boundaries"
    return bad


CASES = [pytest.param(obj, suffix, flags, options, id=f"{obj.stem}.{suffix}")
         for obj in OBJECTS for suffix, flags, options in MODES]


def test_objects_are_there() -> None:
    names = {p.name for p in OBJECTS}
    assert {"alu.o", "jumps.o", "memory.o", "alu.bpfeb.o", "jumps.bpfeb.o",
            "memory.bpfeb.o"} <= names


@pytest.mark.parametrize(("obj", "suffix", "flags", "options"), CASES)
def test_disassembly_matches_stored_listing(obj: pathlib.Path, suffix: str, flags: list[str],
                                            options: dict[str, bool]) -> None:
    listing = parse_objdump(obj.with_name(f"{obj.stem}.{suffix}").read_text())
    assert not mismatches(obj, listing, options)


@pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 is not installed")
@pytest.mark.parametrize(("obj", "suffix", "flags", "options"), CASES)
def test_disassembly_matches_llvm_objdump(obj: pathlib.Path, suffix: str, flags: list[str],
                                          options: dict[str, bool]) -> None:
    assert OBJDUMP is not None
    out = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", *flags, str(obj)],
                         check=True, capture_output=True, text=True).stdout
    assert not mismatches(obj, parse_objdump(out), options)


@pytest.mark.parametrize("obj", OBJECTS, ids=[p.stem for p in OBJECTS])
def test_code_decodes_and_encodes_back(obj: pathlib.Path) -> None:
    order = byteorder(obj)
    for _, data in code_sections(obj):
        insns = decode(data, order, strict=True)
        assert not any(isinstance(i, Raw) for i in insns)
        assert b"".join(i.encode(order) for i in insns) == data
        # A listing of raw bytes is the listing of the decoded instructions.
        assert disasm(data, byteorder=order) == disasm(insns)


def test_objects_cover_the_instruction_set() -> None:
    """The clang-built objects exercise every instruction class the assembler has."""
    seen: set[type] = set()
    for obj in OBJECTS:
        for _, data in code_sections(obj):
            seen.update(type(i) for i in decode(data, byteorder(obj)))
    # Not in clang-19's assembler: load-acquire/store-release, ld_imm64 with a pseudo source,
    # kfunc calls (clang leaves them to relocations); the encoding tests cover those.
    expected = {
        asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Mod, asm.SMod, asm.Or, asm.And,
        asm.Lsh, asm.Rsh, asm.Arsh, asm.Xor, asm.Mov, asm.Neg, asm.MovSX, asm.ToLE, asm.ToBE,
        asm.BSwap, asm.AddrSpaceCast, asm.JEq, asm.JNe, asm.JGt, asm.JGe, asm.JLt, asm.JLe,
        asm.JSet, asm.JSGt, asm.JSGe, asm.JSLt, asm.JSLe, asm.Ja, asm.Gotol, asm.MayGoto,
        asm.Call, asm.CallSubprog, asm.CallX, asm.Exit, asm.Load, asm.LoadSX, asm.Store,
        asm.LoadAbs, asm.LoadInd, asm.AtomicAdd, asm.AtomicOr, asm.AtomicAnd, asm.AtomicXor,
        asm.AtomicXchg, asm.AtomicCmpXchg, asm.LoadImm64,
    }
    assert expected - seen == set()


@pytest.mark.skipif(shutil.which("clang-19") is None or OBJDUMP is None or
                    shutil.which("make") is None,
                    reason="clang-19, llvm-objdump-19 and make are needed to rebuild")
def test_committed_objects_match_their_sources(tmp_path: pathlib.Path) -> None:
    for f in [*DATA.glob("*.c"), DATA / "Makefile"]:
        shutil.copy(f, tmp_path)
    subprocess.run(["make", "-s", "-C", str(tmp_path)], check=True, capture_output=True)
    built = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".o", ".dis"))
    committed = sorted(p.name for p in DATA.iterdir() if p.suffix in (".o", ".dis"))
    assert built == committed
    stale = [n for n in built if not filecmp.cmp(tmp_path / n, DATA / n, shallow=False)]
    assert not stale, f"rebuild with make -C tests/testdata/asm: {stale} are stale"
