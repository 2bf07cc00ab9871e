"""purebpf.asm: labels, map references, ProgramSpec integration, listings and error paths."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

import purebpf.asm
from purebpf import ProgramSpec, ProgramType, Reference
from purebpf._program import patch_references
from purebpf.asm import (ALU, R0, R1, R2, R3, R6, R10, U8, U32, U64, W1, W2, Add, AssemblerError,
                         Assembly, AtomicAdd, Call, CallSubprog, Exit, Gotol, Helper, Ja, JEq,
                         JLt, Label, Load, LoadFunc, LoadImm64, LoadMap, LoadMapValue, LoadSX,
                         Mov, MovSX, Raw, Register, Store, ToLE, assemble, decode, disasm)


def hexcode(a: Assembly) -> str:
    return str(a.encode("little").hex())


# -- labels -----------------------------------------------------------------------------------

def test_backward_loop() -> None:
    a = assemble([Mov(R0, 0), Label("loop"), Add(R0, 1), JLt(R0, 10, "loop"), Exit()])
    assert a.instructions[2] == JLt(R0, 10, -2)
    assert dict(a.labels) == {"loop": 1}
    assert len(a) == 4
    assert hexcode(a) == ("b700000000000000" "0700000001000000" "a500feff0a000000"
                          "9500000000000000")


def test_forward_jump_over_ld_imm64_counts_two_slots() -> None:
    a = assemble([JEq(R1, 0, "out"), LoadImm64(R0, 1 << 40), Label("out"), Exit()])
    assert a.instructions[0] == JEq(R1, 0, 2)
    assert a.labels["out"] == 3


def test_subprogram_call_and_callback_offsets() -> None:
    a = assemble([
        CallSubprog("double"), LoadFunc(R2, "double"), Exit(),
        Label("double"), Mov(R0, R1), Add(R0, R1), Exit(),
    ])
    assert a.instructions[0] == CallSubprog(3)
    # The kernel counts a BPF_PSEUDO_FUNC offset from the ld_imm64's first slot + 1
    # (add_subprog(env, i + insn->imm + 1)), like a call: slot 1 + 2 + 1 is "double".
    assert a.instructions[1] == LoadFunc(R2, 2)
    assert decode(a.encode("little"), "little") == list(a.instructions)


def test_nested_lists_are_flattened() -> None:
    prologue = [Mov(R6, R1)]
    epilogue = (Mov(R0, 0), Exit())
    a = assemble([prologue, [Label("x"), [Ja("x")]], epilogue])
    assert [type(i).__name__ for i in a.instructions] == ["Mov", "Ja", "Mov", "Exit"]
    assert a.instructions[1] == Ja(-1)


def test_label_at_end_and_several_labels_on_one_instruction() -> None:
    a = assemble([Ja("end"), Label("a"), Label("b"), Exit(), Label("end")])
    assert dict(a.labels) == {"a": 1, "b": 1, "end": 2}
    assert a.instructions[0] == Ja(1)


def test_long_jumps_need_gotol() -> None:
    body = [Mov(R0, 0)] * 40000
    a = assemble([Gotol("far"), *body, Label("far"), Exit()])
    assert a.instructions[0] == Gotol(40000)
    with pytest.raises(AssemblerError, match=r"instruction 0 \(goto far\): offset 40000 to "
                       r"label 'far' is out of range for a 16-bit field; use Gotol"):
        assemble([Ja("far"), *body, Label("far"), Exit()])
    with pytest.raises(AssemblerError, match="invert the condition to jump over a Gotol"):
        assemble([JEq(R1, 0, "far"), *body, Label("far"), Exit()])


LABEL_ERRORS = [
    ("unknown_with_hint", [Label("loop"), JLt(R1, 10, "lop"), Exit()],
     r"instruction 0 \(if r1 < 10 goto lop\): unknown label 'lop'; did you mean 'loop'\?"),
    ("unknown_lists_labels", [Label("start"), Ja("zzz")],
     r"unknown label 'zzz'; labels: start"),
    ("unknown_no_labels", [CallSubprog("fn"), Exit()], r"unknown label 'fn'; labels: none"),
    ("duplicate", [Label("x"), Exit(), Label("x"), Exit()],
     r"duplicate label 'x': at instructions 0 and 1"),
]


@pytest.mark.parametrize(("program", "message"), [c[1:] for c in LABEL_ERRORS],
                         ids=[c[0] for c in LABEL_ERRORS])
def test_label_errors(program: list[Any], message: str) -> None:
    with pytest.raises(AssemblerError, match=message):
        assemble(program)


def test_assembler_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        assemble([Ja("nowhere")])


def test_non_instruction_in_program() -> None:
    with pytest.raises(TypeError, match=r"program item 1 is a str \('exit'\), not an "
                       "instruction"):
        assemble([Mov(R0, 0), "exit"])


def test_encoding_an_unresolved_jump_says_to_assemble() -> None:
    with pytest.raises(AssemblerError, match=r"label 'out' is not resolved; assemble\(\)"):
        JEq(R1, 0, "out").encode()
    with pytest.raises(AssemblerError, match="not resolved"):
        ProgramSpec("p", ProgramType.XDP, [Ja("out"), Label("out"), Exit()]).insn_bytes()


# -- operands ---------------------------------------------------------------------------------

def bad(value: object) -> Any:
    """A wrongly typed operand, passed on to show the runtime check."""
    return value


OPERAND_ERRORS: list[tuple[str, Any, type[Exception], str]] = [
    ("imm_type", lambda: Add(R1, bad("1")), TypeError, r"Add immediate must be an int, got str"),
    ("imm_float", lambda: Mov(R1, bad(1.5)), TypeError, r"must be an int, got float"),
    ("imm_range", lambda: Add(R1, 1 << 32), AssemblerError, r"does not fit in 32 bits"),
    ("imm_range_neg", lambda: Mov(R1, -(1 << 31) - 1), AssemblerError, r"32 bits"),
    ("dst_type", lambda: Mov(bad(1), 2), TypeError, r"Mov dst must be a register"),
    ("mixed_width", lambda: Add(R1, W2), AssemblerError, r"Add\(R1, W2\): both registers"),
    ("mixed_width_jump", lambda: JEq(W1, R2, "x"), AssemblerError, r"both registers"),
    ("offset_range", lambda: Load(R1, R2, 40000, U32), AssemblerError,
     r"Load offset 40000 does not fit in 16 bits"),
    ("jump_offset_range", lambda: Ja(1 << 15), AssemblerError, r"Ja offset 32768 does not fit"),
    ("size_type", lambda: Load(R1, R2, 0, bad("u32")), TypeError, r"must be U8, U16, U32 or U64"),
    ("ldsx_u64", lambda: LoadSX(R1, R2, 0, U64), AssemblerError,
     r"LoadSX size must be one of U8, U16, U32, got U64"),
    ("atomic_u8", lambda: AtomicAdd(R1, 0, R2, U8), AssemblerError,
     r"AtomicAdd size must be one of U32, U64"),
    ("atomic_fetch_type", lambda: AtomicAdd(R1, 0, R2, U64, fetch=bad(1)), TypeError,
     r"fetch must be a bool"),
    ("movsx_bits", lambda: MovSX(W1, W2, 32), AssemblerError, r"takes bits \(8, 16\)"),
    ("endian_bits", lambda: ToLE(R1, 8), AssemblerError, r"bits must be 16, 32 or 64"),
    ("register_number", lambda: Register(11), AssemblerError, r"register number must be 0..10"),
    ("helper_name", lambda: Call("map_lookup"), AssemblerError,
     r"unknown helper 'map_lookup'; did you mean map_lookup_elem"),
    ("helper_range", lambda: Call(1 << 32), AssemblerError,
     r"Call helper 4294967296 does not fit in 32 bits"),
    ("map_none", lambda: LoadMap(R1, None), TypeError, r"LoadMap map must be a name"),
    ("map_object_without_fd", lambda: LoadMap(R1, object()), TypeError, r"got object"),
    ("map_value_offset", lambda: LoadMapValue(R1, "m", -1), AssemblerError,
     r"offset -1 must be 0..0xffffffff"),
    ("ld_imm64_range", lambda: LoadImm64(R1, 1 << 64), AssemblerError,
     r"does not fit in 64 bits"),
    ("empty_label", lambda: Label(""), TypeError, r"a label is a non-empty str"),
    ("abstract_alu", lambda: ALU(R1, 1), TypeError, r"ALU is abstract"),
    ("raw_register", lambda: Raw(0x07, 16), AssemblerError, r"Raw dst must be 0..15"),
    ("text_style", lambda: Exit().text(bad("gdb")), ValueError,
     r"style must be 'llvm' or 'bpftool'"),
]


@pytest.mark.parametrize(("make", "exc", "message"), [c[1:] for c in OPERAND_ERRORS],
                         ids=[c[0] for c in OPERAND_ERRORS])
def test_operand_errors(make: Any, exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message):
        make()


# -- decoding errors --------------------------------------------------------------------------

def test_decode_rejects_partial_instructions() -> None:
    with pytest.raises(AssemblerError, match="7 bytes is not a whole number of 8-byte"):
        decode(b"\x95" * 7)


DECODE_ODDITIES = [
    # (id, bytes, what strict decoding says)
    ("unknown_opcode", "9500000000000000" "ff00000000000000", r"instruction 1: an unknown or "
     r"invalid encoding \(opcode 0xff"),
    ("reserved_field_set", "0701000101000000", r"instruction 0: an unknown or invalid"),
    ("register_11", "b70b000000000000", r"invalid encoding \(opcode 0xb7, dst 11"),
    ("ld_imm64_cut_off", "1801000001000000", r"an ld_imm64 cut off by the end"),
    ("ld_imm64_bad_second_slot", "1801000001000000" "0700000000000000",
     r"instruction 0: a malformed ld_imm64"),
    ("ld_imm64_unknown_pseudo", "1871000001000000" "0000000000000000", r"malformed ld_imm64"),
]


@pytest.mark.parametrize(("hexbytes", "message"), [c[1:] for c in DECODE_ODDITIES],
                         ids=[c[0] for c in DECODE_ODDITIES])
def test_decode_oddities(hexbytes: str, message: str) -> None:
    data = bytes.fromhex(hexbytes)
    with pytest.raises(AssemblerError, match=message):
        decode(data, "little", strict=True)
    # Lenient decoding keeps them as Raw slots, so the bytes survive a round trip.
    insns = decode(data, "little")
    assert any(isinstance(i, Raw) for i in insns)
    assert b"".join(i.encode("little") for i in insns) == data


def test_decode_rejects_unknown_byteorder() -> None:
    with pytest.raises(ValueError, match="byteorder must be 'little' or 'big'"):
        decode(b"", bad("middle"))


# -- map references and ProgramSpec -----------------------------------------------------------

class FakeMap:
    """Stands in for purebpf.Map in pure tests: what the loader reads is ``fd``."""

    def __init__(self, name: str, fd: int) -> None:
        self.name, self.fd = name, fd


def test_references_by_name_object_and_fd() -> None:
    outer, other = FakeMap("outer", 7), FakeMap("outer", 9)
    a = assemble([
        LoadMap(R1, "counters"),           # slot 0: by name, resolved at load
        LoadMap(R1, outer),                # slot 2: by object
        LoadMapValue(R2, "globals", 16),   # slot 4
        LoadMap(R3, outer),                # slot 6: same object, same name
        LoadMap(R3, other),                # slot 8: another object with the same name
        LoadMap(R1, 42),                   # slot 10: an fd, nothing to patch
        Exit(),
    ])
    assert list(a.references) == [
        Reference(0, "counters", "map"), Reference(2, "outer#0", "map"),
        Reference(4, "globals", "map_value", 16), Reference(6, "outer#0", "map"),
        Reference(8, "outer#1", "map"),
    ]
    assert dict(a.maps) == {"outer#0": outer, "outer#1": other}
    assert a.encode("little")[80:88].hex() == "181100002a000000"


def test_spec_loads_through_patch_references() -> None:
    m = FakeMap("hits", 33)
    a = assemble([LoadMap(R1, m), LoadMapValue(R2, "data", 4), Mov(R0, 0), Exit()])
    spec = a.spec("prog", ProgramType.XDP, license="Dual MIT/GPL")
    assert isinstance(spec, ProgramSpec)
    assert (spec.name, spec.type, spec.license) == ("prog", ProgramType.XDP, "Dual MIT/GPL")
    assert spec.insn_bytes() == a.code
    patched = patch_references(spec, {**a.maps, "data": FakeMap("data", 44)})  # type: ignore
    insns = decode(patched)
    assert insns[:2] == [LoadMap(R1, 33), LoadMapValue(R2, 44, 4)]


def test_program_spec_accepts_instruction_objects() -> None:
    # ProgramSpec.insn_bytes() encodes any sequence of objects with encode(); labels emit
    # nothing, so a program without symbolic jumps works even unassembled.
    spec = ProgramSpec("p", ProgramType.XDP, [Label("start"), Mov(R0, 2), Exit()])
    assert spec.insn_bytes() == assemble(spec.instructions).code


# -- helpers ----------------------------------------------------------------------------------

def test_helper_numbers() -> None:
    assert len(Helper) == 212
    numbers = {"unspec": 0, "map_lookup_elem": 1, "tail_call": 12, "redirect_map": 51,
               "loop": 181, "user_ringbuf_drain": 209, "cgrp_storage_get": 210,
               "cgrp_storage_delete": 211}
    assert {name: Helper[name].value for name in numbers} == numbers
    assert Helper.lookup("bpf_ktime_get_ns") is Helper.ktime_get_ns
    assert Helper.ktime_get_ns.c_name == "bpf_ktime_get_ns"
    with pytest.raises(KeyError, match="unknown helper 'ktime'"):
        Helper.lookup("ktime")


UAPI = pathlib.Path("/usr/include/linux/bpf.h")


@pytest.mark.skipif(not UAPI.exists(), reason="no uapi bpf.h installed")
def test_helpers_match_installed_uapi_header() -> None:
    text = UAPI.read_text()
    mapper = re.search(r"#define ___?BPF_FUNC_MAPPER\(FN.*?\)(.*?)/\*", text, re.S)
    assert mapper is not None
    entries = re.findall(r"FN\((\w+)(?:,\s*(\d+))?", mapper.group(1))
    assert entries
    for n, (name, num) in enumerate(entries):
        assert Helper[name] == (int(num) if num else n), name


# -- listings ---------------------------------------------------------------------------------

def test_disasm_of_an_assembly_names_labels() -> None:
    a = assemble([Mov(R0, 0), Label("loop"), Add(R0, 1), JLt(R0, 10, "loop"), Exit(),
                  Label("unused")])
    assert disasm(a) == (
        "   0: r0 = 0\n"
        "loop:\n"
        "   1: r0 += 1\n"
        "   2: if r0 < 10 goto -2 <loop>\n"
        "   3: exit\n"
        "unused:\n")
    assert a.disasm(style="bpftool").splitlines()[3] == "   2: (a5) if r0 < 0xa goto pc-2 <loop>"


def test_disasm_of_bytes_and_of_unassembled_instructions() -> None:
    prog = [Store(R10, -4, 0, U32), Label("top"), Load(R1, R10, -4, U32), JEq(R1, 0, "top")]
    assert disasm(prog) == (
        "   0: *(u32 *)(r10 - 4) = 0\n"
        "top:\n"
        "   1: r1 = *(u32 *)(r10 - 4)\n"
        "   2: if r1 == 0 goto top\n")
    code = assemble([LoadImm64(R1, 5), Call(Helper.trace_printk), Exit()]).encode("big")
    assert disasm(code, byteorder="big", style="bpftool", labels={"end": 3}) == (
        "   0: (18) r1 = 0x5\n"
        "   2: (85) call bpf_trace_printk#6\n"
        "end:\n"
        "   3: (95) exit\n")
    assert disasm(b"") == ""


# -- layering ---------------------------------------------------------------------------------

ASM_DIR = pathlib.Path(purebpf.asm.__file__).parent
PURE_PARENT = {"_spec", "types"}  # the pure layer asm may use (ProgramSpec, Reference)
STDLIB = {"__future__", "collections", "dataclasses", "difflib", "enum", "struct", "sys",
          "typing"}


@pytest.mark.parametrize("path", sorted(ASM_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_asm_modules_stay_pure(path: pathlib.Path) -> None:
    """The style guide: asm uses no ctypes, makes no syscalls, never imports purebpf._sys."""
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in STDLIB, f"{path.name} imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert (node.module or "").split(".")[0] in STDLIB, \
                f"{path.name} imports {node.module}"
        elif isinstance(node, ast.ImportFrom) and node.level == 2:
            assert node.module in PURE_PARENT, f"{path.name} imports purebpf.{node.module}"
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 1, f"{path.name}: import from outside purebpf"
