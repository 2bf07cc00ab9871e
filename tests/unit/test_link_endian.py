"""The linker and the reference patcher work in the object's byte order: a bpfeb object links
to exactly the byte-swapped program of its bpfel twin (register nibbles swapped too)."""

from __future__ import annotations

import dataclasses
import pathlib
import struct

import pytest

from purebpf import ProgramSpec, ProgramType, Reference
from purebpf._program import patch_references
from purebpf.asm import R0, R1, R2, R3, Exit, LoadMap, LoadMapValue, Mov, assemble, decode
from purebpf.elf import ElfObject, _read, read_elf
from purebpf.elf.link import insn_at, lower_indirect_helper_calls

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"


def swapped(le: bytes) -> bytes:
    """The instructions as a bpfeb target encodes them: nibbles and fields swapped."""
    out = bytearray()
    for code, regs, off, imm in struct.iter_unpack("<BBhi", le):
        out += struct.pack(">BBhi", code, (regs & 0xF) << 4 | regs >> 4, off, imm)
    return bytes(out)


def records(blob: bytes, size: int, order: str) -> list[tuple[int, ...]]:
    fmt = order + "I" * (size // 4)
    return [struct.unpack_from(fmt, blob, i) for i in range(0, len(blob), size)] if size else []


def assert_twins(le: dict[str, ProgramSpec], be: dict[str, ProgramSpec]) -> None:
    assert sorted(le) == sorted(be)
    for name, p in le.items():
        q = be[name]
        assert q.insn_bytes() == swapped(p.insn_bytes()), name
        assert q.references == p.references, name
        for field in ("func_info", "line_info", "core_relos"):
            size = getattr(p, f"{field}_rec_size" if field != "core_relos"
                           else "core_relo_rec_size")
            assert records(getattr(q, field), size, ">") == \
                records(getattr(p, field), size, "<"), (name, field)


@pytest.mark.parametrize("name", ["asm/alu", "asm/memory"])
def test_clang_bpfeb_objects_link_to_the_swapped_program(name: str) -> None:
    # clang -target bpfeb and -target bpfel builds of one source.
    le = _read(read_elf(DATA / f"{name}.o"))
    be = _read(read_elf(DATA / f"{name}.bpfeb.o"))
    assert le.programs and any(p.line_info for p in le.programs.values())
    assert_twins(le.programs, be.programs)


def big_endian_twin(obj: ElfObject) -> ElfObject:
    """``obj`` with its instructions re-encoded for bpfeb (nothing else in it changes)."""
    sections = [dataclasses.replace(s, data=swapped(s.data)) if s.executable else s
                for s in obj.sections]
    return dataclasses.replace(obj, little_endian=False, sections=sections)


@pytest.mark.parametrize("name", ["globals.o", "globals.v4.o", "map_in_map.o", "tailcall.o"])
def test_calls_and_callbacks_link_in_the_objects_order(name: str) -> None:
    # globals.c has subprogram calls and a bpf_loop callback (ld_imm64 of a function), whose
    # offsets and src nibbles the linker rewrites.
    obj = read_elf(DATA / name)
    le = _read(obj)
    be = _read(big_endian_twin(obj))
    assert_twins(le.programs, be.programs)


def test_the_callback_address_gets_pseudo_func_in_the_right_nibble() -> None:
    be = _read(big_endian_twin(read_elf(DATA / "globals.o")))
    found = 0
    for p in be.programs.values():
        code = p.insn_bytes()
        for slot in range(len(code) // 8):
            f = insn_at(code, slot, "big")
            if f.code == 0x18 and f.src == 4:  # ld_imm64 BPF_PSEUDO_FUNC
                found += 1
                assert code[slot * 8 + 1] & 0x0F == 4  # bpfeb: src is the low nibble
    assert found


@pytest.mark.parametrize("order", ["little", "big"])
def test_lowering_reads_insns_and_data_in_the_objects_order(order: str) -> None:
    code = bytearray()
    code += LoadMapValue(R1, 0, 8).encode(order)  # type: ignore[arg-type]
    code += bytes.fromhex("7913000000000000" if order == "little" else "7931000000000000")
    code += bytes.fromhex("8d03000000000000" if order == "little" else "8d30000000000000")
    code += Exit().encode(order)  # type: ignore[arg-type]
    refs = [Reference(0, "obj.data", "map_value", 8)]
    data = {"obj.data": bytes(8) + (14).to_bytes(8, order)}  # type: ignore[arg-type]
    assert lower_indirect_helper_calls(code, refs, data, order) == 1  # type: ignore[arg-type]
    f = insn_at(code, 3, order)  # type: ignore[arg-type]
    assert (f.code, f.dst, f.src, f.off, f.imm) == (0x85, 0, 0, 0, 14)


class FakeMap:
    """What patch_references reads of a map: its fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd


@pytest.mark.parametrize("order", ["little", "big"])
def test_patch_references_in_either_order(order: str) -> None:
    a = assemble([LoadMap(R1, "hits"), LoadMapValue(R2, "data", 4), Mov(R3, 0), Mov(R0, 0),
                  Exit()])
    spec = ProgramSpec("p", ProgramType.XDP, a.encode(order),  # type: ignore[arg-type]
                       references=list(a.references))
    patched = patch_references(spec, {"hits": FakeMap(33), "data": FakeMap(44)},  # type: ignore
                               byteorder=order)  # type: ignore[arg-type]
    assert decode(patched, order)[:2] == [LoadMap(R1, 33),  # type: ignore[arg-type]
                                          LoadMapValue(R2, 44, 4)]
