"""Programs built with purebpf.asm, loaded into the kernel and run with BPF_PROG_TEST_RUN."""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from purebpf import (InvalidArgumentError, Map, MapSpec, MapType, Program, ProgramType,
                     VerifierError, features)
from purebpf.asm import (R0, R1, R2, R3, R4, R6, R7, R10, U8, U16, U32, U64, W0, W1, Add,
                         AddrSpaceCast, And, Arsh, AtomicAdd, AtomicAnd, AtomicCmpXchg, AtomicOr,
                         AtomicXchg, AtomicXor, BSwap, Call, CallKfunc, CallSubprog, Div, Exit,
                         Gotol, Helper, Instruction, Ja, JEq, JGe, JGt, JLt, JNe, JSet, JSGt,
                         JSLt, Label, Load, LoadAbs, LoadAcquire, LoadFunc, LoadImm64, LoadInd,
                         LoadMap, LoadMapValue, LoadSX, Lsh, MayGoto, Mod, Mov, MovSX, Mul, Neg,
                         Or, Rsh, SDiv, SMod, Store, StoreRelease, Sub, ToBE, ToLE, Xor, assemble,
                         decode, disasm)

PACKET = bytes(64)  # XDP test runs need at least an Ethernet header


def run(program: list[Any], maps: dict[str, Map] | None = None, *,
        type: ProgramType = ProgramType.XDP, data: bytes = PACKET) -> int:
    """Assemble, load (XDP by default), run once on ``data``; the return value."""
    code = assemble(program)
    with Program.load(code.spec("asm_test", type), maps={**code.maps, **(maps or {})}) as prog:
        return int(prog.test_run(data).retval)


@pytest.fixture
def array() -> Iterator[Map]:
    with Map.create(MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=4,
                            name="asm_array")) as m:
        yield m


def test_xdp_returns_a_constant() -> None:
    assert run([Mov(R0, 2), Exit()]) == 2  # XDP_PASS


def test_loop_sums_one_to_ten() -> None:
    prog = [
        Mov(R0, 0), Mov(R1, 0),
        Label("loop"),
        Add(R1, 1),
        Add(R0, R1),
        JLt(R1, 10, "loop"),
        Exit(),
    ]
    assert run(prog) == 55


@pytest.mark.skipif(not features.has_may_goto(),
                    reason="this kernel's verifier lacks may_goto (features.has_may_goto)")
def test_may_goto_bounds_an_open_loop() -> None:
    # The verifier accepts a loop it cannot bound when may_goto offers a way out.
    prog = [
        Mov(R0, 0),
        Label("top"),
        MayGoto("out"),
        Add(R0, 1),
        JLt(R0, 1000, "top"),
        Label("out"),
        Exit(),
    ]
    assert run(prog) == 1000


def test_helper_call_by_name() -> None:
    prog = [Call("get_smp_processor_id"), Mov(R6, R0), Call(Helper.get_numa_node_id),
            Mov(R0, R6), Add(R0, 1), Exit()]
    assert run(prog) >= 1


def test_subprogram_calls() -> None:
    prog = [
        Mov(R1, 14),
        CallSubprog("triple_plus_one"),   # r0 = 43
        Mov(R6, R0),
        Mov(R1, 2),
        CallSubprog("triple_plus_one"),   # r0 = 7
        Add(R0, R6),
        Exit(),
        Label("triple_plus_one"),
        Mov(R0, R1), Mul(R0, 3), Add(R0, 1),
        Exit(),
    ]
    assert run(prog) == 50


@pytest.mark.skipif(not features.has_kfunc("bpf_rcu_read_lock"),
                    reason="this kernel has no kfunc bpf_rcu_read_lock "
                           "(features.has_kfunc; 6.2+, and needs kernel BTF)")
def test_kfunc_calls_by_btf_id() -> None:
    from purebpf import btf
    from purebpf.btf.attach import vmlinux

    kernel = vmlinux()
    lock = kernel.find_id("bpf_rcu_read_lock", btf.Func)
    unlock = kernel.find_id("bpf_rcu_read_unlock", btf.Func)
    assert run([CallKfunc(lock), CallKfunc(unlock), Mov(R0, 3), Exit()]) == 3


def test_callback_address_reaches_the_verifier() -> None:
    """bpf_loop(5, callback, ctx=&stack, 0): LoadFunc passes a subprogram's address.

    The kernel wants BTF func_info for programs with callbacks, which the assembler does not
    generate: the refusal shows it took the ld_imm64 as BPF_PSEUDO_FUNC (``r2 = 0x7`` is the
    resolved offset of ``step``).
    """
    prog = [
        Store(R10, -8, 0, U64),
        Mov(R1, 5), LoadFunc(R2, "step"), Mov(R3, R10), Add(R3, -8), Mov(R4, 0),
        Call(Helper.loop),
        Load(R0, R10, -8, U64),
        Exit(),
        Label("step"),                 # long step(u64 index, void *ctx)
        Load(R3, R2, 0, U64), Add(R3, R1), Add(R3, 10), Store(R2, 0, R3, U64),
        Mov(R0, 0),
        Exit(),
    ]
    with pytest.raises(VerifierError) as info:
        run(prog)
    assert "missing btf func_info" in info.value.log
    assert "(18) r2 = 0x7" in info.value.log


def lookup(map_ref: Any, key: int, miss: str) -> list[Instruction]:
    """r0 = bpf_map_lookup_elem(map, &key), jumping to ``miss`` on NULL."""
    return [
        Store(R10, -4, key, U32),
        Mov(R2, R10), Add(R2, -4),
        map_ref if isinstance(map_ref, Instruction) else LoadMap(R1, map_ref),
        Call(Helper.map_lookup_elem),
        JEq(R0, 0, miss),
    ]


def test_map_lookup_by_name_object_and_fd(array: Map) -> None:
    array[2] = 1234
    for ref in ("asm_array", array, array.fd):
        prog = [lookup(ref, 2, "miss"), Load(R0, R0, 0, U64), Exit(),
                Label("miss"), Mov(R0, 0), Exit()]
        assert run(prog, maps={"asm_array": array}) == 1234, ref


def test_map_value_address_for_global_data() -> None:
    with Map.create(MapSpec(MapType.ARRAY, key_size=4, value_size=16, max_entries=1)) as g:
        g[0] = bytes(range(16))
        prog = [
            LoadMapValue(R1, g, 8),            # r1 = &value[8]
            Load(R0, R1, 0, U32),              # 0x0b0a0908 on little-endian
            Store(R1, 4, 0x77, U8),            # value[12] = 0x77
            Exit(),
        ]
        assert run(prog) == int.from_bytes(bytes([8, 9, 10, 11]), "little")
        assert g[0][12] == 0x77


def test_outer_inner_map_in_map_lookup() -> None:
    spec = MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1,
                   inner=MapSpec(MapType.ARRAY, value_size=4, max_entries=1))
    with Map.create(spec) as outer, Map.create(spec.inner) as inner:  # type: ignore[arg-type]
        inner[0] = 42
        outer[0] = inner
        prog = [
            lookup(outer, 0, "miss"),          # r0 = outer[0]: the inner map
            Mov(R1, R0),
            Store(R10, -8, 0, U32),
            Mov(R2, R10), Add(R2, -8),
            Call(Helper.map_lookup_elem),      # r0 = &inner[0]
            JEq(R0, 0, "miss"),
            Load(R0, R0, 0, U32),
            Exit(),
            Label("miss"),
            Mov(R0, 0xFFFF),
            Exit(),
        ]
        assert run(prog) == 42
        inner[0] = 7
        assert run(prog) == 7


def test_verifier_refuses_updating_an_outer_map() -> None:
    spec = MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1,
                   inner=MapSpec(MapType.ARRAY, value_size=4, max_entries=1))
    with Map.create(spec) as outer:
        prog = [
            Store(R10, -4, 0, U32), Store(R10, -8, 0, U32),
            LoadMap(R1, outer),
            Mov(R2, R10), Add(R2, -4),
            Mov(R3, R10), Add(R3, -8),
            Mov(R4, 0),
            Call(Helper.map_update_elem),
            Mov(R0, 0),
            Exit(),
        ]
        with pytest.raises(VerifierError) as info:
            run(prog)
    assert info.value.errno == errno.EINVAL
    assert "cannot pass map_type 12 into func bpf_map_update_elem" in info.value.log
    assert "cannot pass map_type 12 into func bpf_map_update_elem" in str(info.value)


def test_missing_named_map_is_an_error_before_loading() -> None:
    with pytest.raises(InvalidArgumentError, match="uses map 'nowhere', which was not given"):
        run([LoadMap(R1, "nowhere"), Mov(R0, 0), Exit()])


def test_verifier_error_for_a_bad_program() -> None:
    with pytest.raises(VerifierError) as info:
        run([Exit()])  # r0 was never set
    assert info.value.errno == errno.EACCES
    assert "R0 !read_ok" in info.value.log


# What each instruction computes in the kernel: (id, program body leaving a value in r0,
# the XDP return value, i.e. r0's low 32 bits).
SEMANTICS: list[tuple[str, list[Instruction], int]] = [
    ("add_sub_mul", [Mov(R0, 7), Add(R0, 5), Sub(R0, 2), Mul(R0, 3)], 30),
    ("div_mod", [Mov(R0, 47), Mov(R1, 5), Div(R0, R1), Mov(R2, 47), Mod(R2, 5), Mul(R0, 10),
                 Add(R0, R2)], 92),
    ("sdiv", [Mov(R0, -9), SDiv(R0, -3)], 3),
    ("smod", [Mov(R0, -7), SMod(R0, 3)], 0xFFFFFFFF),
    ("div_by_zero_is_zero", [Mov(R0, 9), Mov(R1, 0), Div(R0, R1)], 0),
    ("bitwise", [Mov(R0, 0b1100), Or(R0, 0b0011), And(R0, 0b0110), Xor(R0, 0b1111)], 0b1001),
    ("shifts", [Mov(R0, 1), Lsh(R0, 40), Rsh(R0, 36)], 16),
    ("arsh", [Mov(R0, -64), Arsh(R0, 4)], 0xFFFFFFFC),
    ("neg", [Mov(R0, 5), Neg(R0)], 0xFFFFFFFB),
    ("alu32_zero_extends", [LoadImm64(R0, -1), Add(W0, 1), Rsh(R0, 1)], 0),
    ("mov32_sign", [Mov(W0, -1), Rsh(R0, 16)], 0xFFFF),
    ("movsx8", [Mov(R1, 0x80), MovSX(R0, R1, 8)], 0xFFFFFF80),
    ("movsx32_then_shift", [Mov(W1, -2), MovSX(R0, R1, 32), Arsh(R0, 33)], 0xFFFFFFFF),
    ("bswap16", [Mov(R0, 0x1234), BSwap(R0, 16)], 0x3412),
    ("bswap32", [Mov(R0, 0x11223344), BSwap(R0, 32)], 0x44332211),
    ("to_be16", [Mov(R0, 0x1234), ToBE(R0, 16)], 0x3412),  # little-endian host
    ("to_le32_truncates", [LoadImm64(R0, 0x1_2345_6789), ToLE(R0, 32), Rsh(R0, 16)], 0x2345),
    ("ld_imm64_high_half", [LoadImm64(R0, 0x7_0000_0000), Rsh(R0, 32)], 7),
    ("jumps", [Mov(R0, 0), Mov(R1, 5),
               JGt(R1, 4, +1), Exit(),            # taken
               Add(R0, 1), JSet(R1, 2, +1),       # 5 & 2 == 0: not taken
               Add(R0, 10), JNe(R1, R1, +1),      # not taken
               Add(R0, 100), JSGt(R1, -1, +1),    # taken
               Add(R0, 1000),
               Mov(W1, -1), JSLt(W1, 0, +1),      # 32-bit signed: taken
               Add(R0, 10000),
               JGe(R1, 0xFFFFFFFF, +1),           # r1 = 0xffffffff vs -1 sign-extended: no
               Add(R0, 100000)], 100111),
    ("gotol_and_ja", [Mov(R0, 1), JEq(R0, 2, +1), Gotol(+2), Mov(R0, 2), Ja(+1),
                      Add(R0, 10)], 11),
    ("stack_sizes", [Store(R10, -8, -1, U64), Store(R10, -8, 0x1234, U16),
                     Load(R0, R10, -8, U16), Load(R1, R10, -7, U8), Add(R0, R1)], 0x1246),
    ("ldsx", [Store(R10, -8, 0xF0, U8), LoadSX(R0, R10, -8, U8)], 0xFFFFFFF0),
    ("atomics", [Store(R10, -8, 10, U64), Mov(R1, 5),
                 AtomicAdd(R10, -8, R1, U64),                      # 15
                 Mov(R2, 3), AtomicOr(R10, -8, R2, U64, fetch=True),  # r2 = 15, mem 15
                 Mov(R3, 12), AtomicAnd(R10, -8, R3, U64),          # 12
                 Mov(R4, 1), AtomicXor(R10, -8, R4, U32),           # 13
                 Load(R0, R10, -8, U64), Mul(R0, 100), Add(R0, R2)], 1315),
    ("xchg_cmpxchg", [Store(R10, -8, 1, U64), Mov(R1, 2), AtomicXchg(R10, -8, R1, U64),
                      Mov(R0, 2), Mov(R2, 9), AtomicCmpXchg(R10, -8, R2, U64),  # swaps: 9
                      Load(R3, R10, -8, U64), Mul(R1, 100), Mul(R0, 10), Add(R0, R1),
                      Add(R0, R3)], 129),
    ("acquire_release", [Mov(R1, 77), StoreRelease(R10, -8, R1, U64),
                         LoadAcquire(R0, R10, -8, U64)], 77),
]


# Cases whose instructions an older verifier refuses, and the probe that says so.
NEEDS = {
    **dict.fromkeys(("sdiv", "smod", "movsx8", "movsx32_then_shift", "bswap16", "bswap32",
                     "ldsx"), ("BPF ISA v4 instructions", features.has_isa_v4)),
    "acquire_release": ("load-acquire/store-release", features.has_load_acquire),
}


def _semantics_case(name: str, body: list[Instruction], expected: int) -> Any:
    if name not in NEEDS:
        return pytest.param(body, expected, id=name)
    what, probe = NEEDS[name]
    return pytest.param(body, expected, id=name, marks=pytest.mark.skipif(
        not probe(), reason=f"this kernel's verifier lacks {what} (features.{probe.__name__})"))


@pytest.mark.parametrize(("body", "expected"), [_semantics_case(*c) for c in SEMANTICS])
def test_instruction_semantics(body: list[Instruction], expected: int) -> None:
    assert run([*body, Exit()]) == expected


def test_legacy_packet_loads_in_a_socket_filter() -> None:
    """LD_ABS/LD_IND read the packet in network byte order; the context must be in r6.

    A socket filter's test run sees the packet from the network header on (the kernel
    pulls the 14-byte Ethernet header), so offsets count from byte 14 of the frame.
    """
    frame = bytes(14) + bytes(12) + b"\x08\x00" + bytes(6) + b"\x0a\x0b\x0c\x0d" + bytes(40)
    prog = [Mov(R6, R1), LoadAbs(12, U16), Mov(R7, R0), Mov(R1, 18), LoadInd(R1, 2, U32),
            Rsh(R0, 16), Add(R0, R7), Exit()]
    assert run(prog, type=ProgramType.SOCKET_FILTER, data=frame) == 0x0800 + 0x0A0B


@pytest.mark.skipif(not features.has_arena(),
                    reason="this kernel has no BPF arenas (features.has_arena)")
def test_arena_address_space_cast_needs_an_arena() -> None:
    # The encoding reaches the verifier, which wants an arena map for the cast.
    with pytest.raises(VerifierError) as info:
        run([Mov(R1, 0), AddrSpaceCast(R0, R1, 1, 0), Exit()])
    assert "addr_space_cast insn can only be used in a program that has an associated arena" \
        in info.value.log


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
def test_xlated_listing_matches_bpftool(array: Map) -> None:
    """Our bpftool-style listing of the kernel's rewritten program is bpftool's own."""
    prog_insns: list[Any] = [lookup(array, 1, "miss"), Load(R0, R0, 0, U32), Exit(),
                  Label("miss"), Mov(W0, -1), JSGt(W0, 3, "miss"), Exit()]
    code = assemble(prog_insns)
    with Program.load(code.spec("asm_xlated", ProgramType.XDP), maps=code.maps) as prog:
        xlated = prog.xlated()
        out = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog.id)],
                             check=True, capture_output=True, text=True).stdout
    theirs = [ln for ln in out.splitlines() if re.match(r"\s*\d+: \(", ln)]
    ours = disasm(xlated, style="bpftool").splitlines()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if " call " not in b:  # the kernel rewrites helper numbers into addresses
            assert a == b
    assert any("map[id:" in ln for ln in ours)
    assert all(not type(i).__name__ == "Raw" for i in decode(xlated))
