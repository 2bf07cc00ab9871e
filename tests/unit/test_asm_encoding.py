"""purebpf.asm: every instruction kind's bytes, text in both styles, and decode round trips.

The expected bytes are written out from the ISA (Documentation/bpf/standardization/
instruction-set.rst), the llvm texts are llvm-objdump's (test_asm_objects.py checks the
same spellings against clang-built objects), the bpftool texts the kernel's disasm.c.
"""

from __future__ import annotations

import struct

import pytest

from purebpf.asm import (R0, R1, R2, R3, R4, R10, U8, U16, U32, U64, W0, W1, W2, W3, Add,
                         AddrSpaceCast, And, Arsh, AtomicAdd, AtomicAnd, AtomicCmpXchg, AtomicOr,
                         AtomicXchg, AtomicXor, BSwap, Call, CallKfunc, CallSubprog, CallX, Div,
                         Exit, Gotol, Helper, Instruction, Ja, JEq, JGe, JGt, JLe, JLt, JNe,
                         JSet, JSGe, JSGt, JSLe, JSLt, Label, Load, LoadAbs, LoadAcquire,
                         LoadFunc, LoadImm64, LoadInd, LoadKsym, LoadMap, LoadMapIndex,
                         LoadMapIndexValue, LoadMapValue, LoadSX, Lsh, MayGoto, Mod, Mov, MovSX,
                         Mul, Neg, Or, Raw, Rsh, SDiv, SMod, Store, StoreRelease, Sub, ToBE, ToLE,
                         Xor, decode)

# (id, instruction, little-endian hex, llvm-objdump text, bpftool/kernel text)
CASES: list[tuple[str, Instruction, str, str, str]] = [
    # -- ALU64 / ALU -------------------------------------------------------------------------
    ("mov64_imm", Mov(R0, 0), "b700000000000000", "r0 = 0", "(b7) r0 = 0"),
    ("mov64_reg", Mov(R1, R2), "bf21000000000000", "r1 = r2", "(bf) r1 = r2"),
    ("mov64_fp", Mov(R2, R10), "bfa2000000000000", "r2 = r10", "(bf) r2 = r10"),
    ("mov32_reg", Mov(W1, W2), "bc21000000000000", "w1 = w2", "(bc) w1 = w2"),
    ("mov32_neg", Mov(W0, -1), "b4000000ffffffff", "w0 = -1", "(b4) w0 = -1"),
    ("add64_imm", Add(R1, 1), "0701000001000000", "r1 += 1", "(07) r1 += 1"),
    ("add64_reg", Add(R1, R2), "0f21000000000000", "r1 += r2", "(0f) r1 += r2"),
    ("add32_imm", Add(W1, -4), "04010000fcffffff", "w1 += -4", "(04) w1 += -4"),
    ("add32_reg", Add(W1, W2), "0c21000000000000", "w1 += w2", "(0c) w1 += w2"),
    ("sub64_imm", Sub(R1, 2), "1701000002000000", "r1 -= 2", "(17) r1 -= 2"),
    ("sub64_reg", Sub(R1, R2), "1f21000000000000", "r1 -= r2", "(1f) r1 -= r2"),
    ("mul64_imm", Mul(R1, 3), "2701000003000000", "r1 *= 3", "(27) r1 *= 3"),
    ("mul32_reg", Mul(W1, W2), "2c21000000000000", "w1 *= w2", "(2c) w1 *= w2"),
    ("div64_imm", Div(R1, 4), "3701000004000000", "r1 /= 4", "(37) r1 /= 4"),
    ("div64_reg", Div(R1, R2), "3f21000000000000", "r1 /= r2", "(3f) r1 /= r2"),
    ("sdiv64_imm", SDiv(R1, -5), "37010100fbffffff", "r1 s/= -5", "(37) r1 s/= -5"),
    ("sdiv32_reg", SDiv(W1, W2), "3c21010000000000", "w1 s/= w2", "(3c) w1 s/= w2"),
    ("or64_imm", Or(R1, 8), "4701000008000000", "r1 |= 8", "(47) r1 |= 8"),
    ("or64_reg", Or(R1, R2), "4f21000000000000", "r1 |= r2", "(4f) r1 |= r2"),
    ("and64_imm", And(R1, 9), "5701000009000000", "r1 &= 9", "(57) r1 &= 9"),
    ("and32_reg", And(W1, W2), "5c21000000000000", "w1 &= w2", "(5c) w1 &= w2"),
    ("lsh64_imm", Lsh(R1, 10), "670100000a000000", "r1 <<= 10", "(67) r1 <<= 10"),
    ("lsh64_reg", Lsh(R1, R2), "6f21000000000000", "r1 <<= r2", "(6f) r1 <<= r2"),
    ("rsh64_imm", Rsh(R1, 11), "770100000b000000", "r1 >>= 11", "(77) r1 >>= 11"),
    ("rsh32_reg", Rsh(W1, W2), "7c21000000000000", "w1 >>= w2", "(7c) w1 >>= w2"),
    ("neg64", Neg(R1), "8701000000000000", "r1 = -r1", "(87) r1 = -r1"),
    ("neg32", Neg(W1), "8401000000000000", "w1 = -w1", "(84) w1 = -w1"),
    ("mod64_imm", Mod(R1, 6), "9701000006000000", "r1 %= 6", "(97) r1 %= 6"),
    ("mod64_reg", Mod(R1, R2), "9f21000000000000", "r1 %= r2", "(9f) r1 %= r2"),
    ("smod64_imm", SMod(R1, 7), "9701010007000000", "r1 s%= 7", "(97) r1 s%= 7"),
    ("smod32_reg", SMod(W1, W2), "9c21010000000000", "w1 s%= w2", "(9c) w1 s%= w2"),
    ("xor64_imm", Xor(R1, 13), "a70100000d000000", "r1 ^= 13", "(a7) r1 ^= 13"),
    ("xor32_reg", Xor(W1, W2), "ac21000000000000", "w1 ^= w2", "(ac) w1 ^= w2"),
    ("arsh64_imm", Arsh(R1, 12), "c70100000c000000", "r1 s>>= 12", "(c7) r1 s>>= 12"),
    ("arsh32_reg", Arsh(W1, W2), "cc21000000000000", "w1 s>>= w2", "(cc) w1 s>>= w2"),
    ("movsx64_8", MovSX(R1, R2, 8), "bf21080000000000", "r1 = (s8)r2", "(bf) r1 = (s8)r2"),
    ("movsx64_16", MovSX(R1, R2, 16), "bf21100000000000", "r1 = (s16)r2",
     "(bf) r1 = (s16)r2"),
    ("movsx64_32", MovSX(R1, R2, 32), "bf21200000000000", "r1 = (s32)r2",
     "(bf) r1 = (s32)r2"),
    ("movsx32_8", MovSX(W1, W2, 8), "bc21080000000000", "w1 = (s8)w2", "(bc) w1 = (s8)w2"),
    ("movsx32_16", MovSX(W1, W2, 16), "bc21100000000000", "w1 = (s16)w2",
     "(bc) w1 = (s16)w2"),
    ("le16", ToLE(R1, 16), "d401000010000000", "r1 = le16 r1", "(d4) r1 = le16 r1"),
    ("le64", ToLE(R1, 64), "d401000040000000", "r1 = le64 r1", "(d4) r1 = le64 r1"),
    ("be32", ToBE(R1, 32), "dc01000020000000", "r1 = be32 r1", "(dc) r1 = be32 r1"),
    ("bswap16", BSwap(R1, 16), "d701000010000000", "r1 = bswap16 r1",
     "(d7) r1 = bswap16 r1"),
    ("bswap64", BSwap(R1, 64), "d701000040000000", "r1 = bswap64 r1",
     "(d7) r1 = bswap64 r1"),
    ("as_cast_to_user", AddrSpaceCast(R1, R2, 1, 0), "bf21010000000100",
     "r1 = addr_space_cast(r2, 1, 0)", "(bf) r1 = addr_space_cast(r2, 1, 0)"),
    ("as_cast_to_kern", AddrSpaceCast(R1, R2, 0, 1), "bf21010001000000",
     "r1 = addr_space_cast(r2, 0, 1)", "(bf) r1 = addr_space_cast(r2, 0, 1)"),
    # -- JMP / JMP32 -------------------------------------------------------------------------
    ("ja", Ja(3), "0500030000000000", "goto +3", "(05) goto pc+3"),
    ("ja_back", Ja(-1), "0500ffff00000000", "goto -1", "(05) goto pc-1"),
    ("gotol", Gotol(70000), "0600000070110100", "gotol +70000", "(06) gotol pc+70000"),
    ("may_goto", MayGoto(2), "e500020000000000", "may_goto +2", "(e5) may_goto pc+2"),
    ("jeq_imm", JEq(R1, 0, 3), "1501030000000000", "if r1 == 0 goto +3",
     "(15) if r1 == 0x0 goto pc+3"),
    ("jeq_reg", JEq(R1, R2, 3), "1d21030000000000", "if r1 == r2 goto +3",
     "(1d) if r1 == r2 goto pc+3"),
    ("jeq32_imm", JEq(W1, 5, -2), "1601feff05000000", "if w1 == 5 goto -2",
     "(16) if w1 == 0x5 goto pc-2"),
    ("jgt_reg", JGt(R1, R2, 33), "2d21210000000000", "if r1 > r2 goto +33",
     "(2d) if r1 > r2 goto pc+33"),
    ("jge_imm", JGe(R1, 4, 1), "3501010004000000", "if r1 >= 4 goto +1",
     "(35) if r1 >= 0x4 goto pc+1"),
    ("jset_imm", JSet(R1, 7, 1), "4501010007000000", "if r1 & 7 goto +1",
     "(45) if r1 & 0x7 goto pc+1"),
    ("jne_reg", JNe(R1, R2, 1), "5d21010000000000", "if r1 != r2 goto +1",
     "(5d) if r1 != r2 goto pc+1"),
    ("jsgt_imm", JSGt(R1, -8, 1), "65010100f8ffffff", "if r1 s> -8 goto +1",
     "(65) if r1 s> 0xfffffff8 goto pc+1"),
    ("jsge_reg", JSGe(R1, R2, 1), "7d21010000000000", "if r1 s>= r2 goto +1",
     "(7d) if r1 s>= r2 goto pc+1"),
    ("jlt_imm", JLt(R1, 10, -3), "a501fdff0a000000", "if r1 < 10 goto -3",
     "(a5) if r1 < 0xa goto pc-3"),
    ("jle32_reg", JLe(W1, W2, 0), "be21000000000000", "if w1 <= w2 goto +0",
     "(be) if w1 <= w2 goto pc+0"),
    ("jslt_imm", JSLt(R1, -10, 1), "c5010100f6ffffff", "if r1 s< -10 goto +1",
     "(c5) if r1 s< 0xfffffff6 goto pc+1"),
    ("jsle32_imm", JSLe(W1, 11, 1), "d60101000b000000", "if w1 s<= 11 goto +1",
     "(d6) if w1 s<= 0xb goto pc+1"),
    ("call_helper", Call(Helper.map_lookup_elem), "8500000001000000", "call 1",
     "(85) call bpf_map_lookup_elem#1"),
    ("call_by_name", Call("ktime_get_ns"), "8500000005000000", "call 5",
     "(85) call bpf_ktime_get_ns#5"),
    ("call_last_helper", Call(Helper.cgrp_storage_delete), "85000000d3000000", "call 211",
     "(85) call bpf_cgrp_storage_delete#211"),
    ("call_unknown", Call(300), "850000002c010000", "call 300", "(85) call unknown#300"),
    ("call_xlated_address", Call(-12345), "85000000c7cfffff", "call -12345",
     "(85) call unknown#-12345"),
    ("call_subprog", CallSubprog(5), "8510000005000000", "call 5", "(85) call pc+5"),
    ("call_kfunc", CallKfunc(1234), "85200000d2040000", "call 1234",
     "(85) call kernel-function#1234"),
    ("call_kfunc_module", CallKfunc(1234, 1), "85200100d2040000", "call 1234",
     "(85) call kernel-function#1234"),
    ("callx", CallX(R3), "8d03000000000000", "callx r3", "(8d) callx r3"),
    ("exit", Exit(), "9500000000000000", "exit", "(95) exit"),
    # -- LDX / ST / STX ----------------------------------------------------------------------
    ("ldxw", Load(R1, R2, 4, U32), "6121040000000000", "r1 = *(u32 *)(r2 + 4)",
     "(61) r1 = *(u32 *)(r2 +4)"),
    ("ldxdw_fp", Load(R0, R10, -8, U64), "79a0f8ff00000000", "r0 = *(u64 *)(r10 - 8)",
     "(79) r0 = *(u64 *)(r10 -8)"),
    ("ldxb", Load(R1, R2, 0, U8), "7121000000000000", "r1 = *(u8 *)(r2 + 0)",
     "(71) r1 = *(u8 *)(r2 +0)"),
    ("ldxh", Load(R1, R2, 2, U16), "6921020000000000", "r1 = *(u16 *)(r2 + 2)",
     "(69) r1 = *(u16 *)(r2 +2)"),
    ("ldsxb", LoadSX(R1, R2, 5, U8), "9121050000000000", "r1 = *(s8 *)(r2 + 5)",
     "(91) r1 = *(s8 *)(r2 +5)"),
    ("ldsxh", LoadSX(R1, R2, -2, U16), "8921feff00000000", "r1 = *(s16 *)(r2 - 2)",
     "(89) r1 = *(s16 *)(r2 -2)"),
    ("ldsxw", LoadSX(R1, R2, 0, U32), "8121000000000000", "r1 = *(s32 *)(r2 + 0)",
     "(81) r1 = *(s32 *)(r2 +0)"),
    ("stxdw", Store(R10, -8, R1, U64), "7b1af8ff00000000", "*(u64 *)(r10 - 8) = r1",
     "(7b) *(u64 *)(r10 -8) = r1"),
    ("stxw", Store(R10, -4, R1, U32), "631afcff00000000", "*(u32 *)(r10 - 4) = r1",
     "(63) *(u32 *)(r10 -4) = r1"),
    ("stxh", Store(R10, -2, R1, U16), "6b1afeff00000000", "*(u16 *)(r10 - 2) = r1",
     "(6b) *(u16 *)(r10 -2) = r1"),
    ("stxb", Store(R10, -1, R1, U8), "731affff00000000", "*(u8 *)(r10 - 1) = r1",
     "(73) *(u8 *)(r10 -1) = r1"),
    ("stdw", Store(R10, -8, 0, U64), "7a0af8ff00000000", "*(u64 *)(r10 - 8) = 0",
     "(7a) *(u64 *)(r10 -8) = 0"),
    ("sth", Store(R1, 2, -2, U16), "6a010200feffffff", "*(u16 *)(r1 + 2) = -2",
     "(6a) *(u16 *)(r1 +2) = -2"),
    ("stb", Store(R1, 0, 5, U8), "7201000005000000", "*(u8 *)(r1 + 0) = 5",
     "(72) *(u8 *)(r1 +0) = 5"),
    ("stw", Store(R1, 4, 7, U32), "6201040007000000", "*(u32 *)(r1 + 4) = 7",
     "(62) *(u32 *)(r1 +4) = 7"),
    ("ld_abs_b", LoadAbs(4, U8), "3000000004000000", "r0 = *(u8 *)skb[4]",
     "(30) r0 = *(u8 *)skb[4]"),
    ("ld_abs_h", LoadAbs(12, U16), "280000000c000000", "r0 = *(u16 *)skb[12]",
     "(28) r0 = *(u16 *)skb[12]"),
    ("ld_abs_w", LoadAbs(-4, U32), "20000000fcffffff", "r0 = *(u32 *)skb[-4]",
     "(20) r0 = *(u32 *)skb[-4]"),
    ("ld_abs_far", LoadAbs(70000, U8), "3000000070110100", "r0 = *(u8 *)skb[70000]",
     "(30) r0 = *(u8 *)skb[70000]"),
    ("ld_ind_h", LoadInd(R1, 0, U16), "4810000000000000", "r0 = *(u16 *)skb[r1]",
     "(48) r0 = *(u16 *)skb[r1 + 0]"),
    ("ld_ind_w_off", LoadInd(R3, 2, U32), "4030000002000000", "r0 = *(u32 *)skb[r3 + 2]",
     "(40) r0 = *(u32 *)skb[r3 + 2]"),
    # -- atomics -----------------------------------------------------------------------------
    ("atomic_add64", AtomicAdd(R1, 0, R2, U64), "db21000000000000",
     "lock *(u64 *)(r1 + 0) += r2", "(db) lock *(u64 *)(r1 +0) += r2"),
    ("atomic_add32", AtomicAdd(R1, 8, R2, U32), "c321080000000000",
     "lock *(u32 *)(r1 + 8) += r2", "(c3) lock *(u32 *)(r1 +8) += r2"),
    ("atomic_or64", AtomicOr(R1, 0, R2, U64), "db21000040000000",
     "lock *(u64 *)(r1 + 0) |= r2", "(db) lock *(u64 *)(r1 +0) |= r2"),
    ("atomic_and32", AtomicAnd(R1, 0, R2, U32), "c321000050000000",
     "lock *(u32 *)(r1 + 0) &= w2", "(c3) lock *(u32 *)(r1 +0) &= r2"),
    ("atomic_xor64", AtomicXor(R1, -4, R2, U64), "db21fcffa0000000",
     "lock *(u64 *)(r1 - 4) ^= r2", "(db) lock *(u64 *)(r1 -4) ^= r2"),
    ("fetch_add64", AtomicAdd(R1, 0, R2, U64, fetch=True), "db21000001000000",
     "r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)",
     "(db) r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)"),
    ("fetch_or32", AtomicOr(R1, 0, R2, U32, fetch=True), "c321000041000000",
     "w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)",
     "(c3) r2 = atomic_fetch_or((u32 *)(r1 +0), r2)"),
    ("fetch_and64", AtomicAnd(R1, 0, R2, U64, fetch=True), "db21000051000000",
     "r2 = atomic_fetch_and((u64 *)(r1 + 0), r2)",
     "(db) r2 = atomic64_fetch_and((u64 *)(r1 +0), r2)"),
    ("fetch_xor32", AtomicXor(R1, 0, R2, U32, fetch=True), "c3210000a1000000",
     "w2 = atomic_fetch_xor((u32 *)(r1 + 0), w2)",
     "(c3) r2 = atomic_fetch_xor((u32 *)(r1 +0), r2)"),
    ("xchg64", AtomicXchg(R1, 16, R3, U64), "db311000e1000000", "r3 = xchg_64(r1 + 16, r3)",
     "(db) r3 = atomic64_xchg((u64 *)(r1 +16), r3)"),
    ("xchg32", AtomicXchg(R1, 16, R3, U32), "c3311000e1000000",
     "w3 = xchg32_32(r1 + 16, w3)", "(c3) r3 = atomic_xchg((u32 *)(r1 +16), r3)"),
    ("cmpxchg64", AtomicCmpXchg(R1, 24, R4, U64), "db411800f1000000",
     "r0 = cmpxchg_64(r1 + 24, r0, r4)", "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +24), r0, r4)"),
    ("cmpxchg32", AtomicCmpXchg(R1, 24, R4, U32), "c3411800f1000000",
     "w0 = cmpxchg32_32(r1 + 24, w0, w4)", "(c3) r0 = atomic_cmpxchg((u32 *)(r1 +24), r0, r4)"),
    ("load_acquire64", LoadAcquire(R0, R1, 0, U64), "db10000000010000",
     "r0 = load_acquire((u64 *)(r1 + 0))", "(db) r0 = load_acquire((u64 *)(r1 +0))"),
    ("load_acquire8", LoadAcquire(R2, R10, -8, U8), "d3a2f8ff00010000",
     "r2 = load_acquire((u8 *)(r10 - 8))", "(d3) r2 = load_acquire((u8 *)(r10 -8))"),
    ("store_release64", StoreRelease(R1, 0, R2, U64), "db21000010010000",
     "store_release((u64 *)(r1 + 0), r2)", "(db) store_release((u64 *)(r1 +0), r2)"),
    ("store_release32", StoreRelease(R1, 4, R2, U32), "c321040010010000",
     "store_release((u32 *)(r1 + 4), r2)", "(c3) store_release((u32 *)(r1 +4), r2)"),
    # -- ld_imm64 ----------------------------------------------------------------------------
    ("ld_imm64", LoadImm64(R1, 24), "1801000018000000" "0000000000000000", "r1 = 24 ll",
     "(18) r1 = 0x18"),
    ("ld_imm64_neg", LoadImm64(R2, -1), "18020000ffffffff" "00000000ffffffff", "r2 = -1 ll",
     "(18) r2 = 0xffffffffffffffff"),
    ("ld_imm64_wide", LoadImm64(R3, 0x123456789ABCDEF0), "18030000f0debc9a" "0000000078563412",
     "r3 = 1311768467463790320 ll", "(18) r3 = 0x123456789abcdef0"),
    ("ld_map_fd", LoadMap(R1, 5), "1811000005000000" "0000000000000000",
     "ld_pseudo r1, 1, 5", "(18) r1 = map[id:5]"),
    ("ld_map_value", LoadMapValue(R1, 5, 8), "1821000005000000" "0000000008000000",
     "ld_pseudo r1, 2, 5", "(18) r1 = map[id:5][0]+8"),
    ("ld_btf_id", LoadKsym(R1, 77, 3), "183100004d000000" "0000000003000000",
     "ld_pseudo r1, 3, 77", "(18) r1 = 0x30000004d"),
    ("ld_func", LoadFunc(R1, 2), "1841000002000000" "0000000000000000", "ld_pseudo r1, 4, 2",
     "(18) r1 = 0x2"),
    ("ld_map_idx", LoadMapIndex(R1, 1), "1851000001000000" "0000000000000000",
     "ld_pseudo r1, 5, 1", "(18) r1 = 0x1"),
    ("ld_map_idx_value", LoadMapIndexValue(R1, 1, 16), "1861000001000000" "0000000010000000",
     "ld_pseudo r1, 6, 1", "(18) r1 = 0x1000000001"),
    # -- anything else -----------------------------------------------------------------------
    ("raw", Raw(0xFF, 1, 2, 3, 4), "ff21030004000000", "<unknown>", "(ff) unknown"),
]
IDS = [c[0] for c in CASES]


def big_endian(le: bytes) -> bytes:
    """The same instructions as a bpfeb target encodes them: nibbles and fields swapped."""
    out = bytearray()
    for code, regs, off, imm in struct.iter_unpack("<BBhi", le):
        out += struct.pack(">BBhi", code, (regs & 0xF) << 4 | regs >> 4, off, imm)
    return bytes(out)


@pytest.mark.parametrize(("insn", "hexbytes", "llvm", "kernel"), [c[1:] for c in CASES],
                         ids=IDS)
def test_instruction(insn: Instruction, hexbytes: str, llvm: str, kernel: str) -> None:
    """Bytes in both byte orders, decode round trips, and the text in both styles."""
    le = bytes.fromhex(hexbytes)
    assert insn.encode("little").hex() == hexbytes
    assert len(le) == 8 * insn.slots
    be = insn.encode("big")
    assert be == big_endian(le)
    strict = not isinstance(insn, Raw)
    for order, data in (("little", le), ("big", be)):
        decoded = decode(data, order, strict=strict)  # type: ignore[arg-type]
        assert decoded == [insn], order
        assert type(decoded[0]) is type(insn)
        assert decoded[0].encode(order) == data  # type: ignore[arg-type]
    assert insn.text() == llvm
    assert str(insn) == llvm
    assert insn.text("bpftool") == kernel


# llvm-objdump's other spellings: --print-imm-hex (its default) and alu32 decoding (--mcpu=v3+)
HEX_AND_ALU32 = [
    ("mov_neg", Mov(R1, -5), {"hex": True}, "r1 = -0x5"),
    ("add_hex", Add(W1, 255), {"hex": True}, "w1 += 0xff"),
    ("jump_hex", JLt(R1, 10, -18), {"hex": True}, "if r1 < 0xa goto -0x12"),
    ("ja_zero_hex", Ja(0), {"hex": True}, "goto +0x0"),
    ("load_hex", Load(R1, R10, -16, U64), {"hex": True}, "r1 = *(u64 *)(r10 - 0x10)"),
    ("ld_imm64_hex", LoadImm64(R1, -0x12345677EDCBA988), {"hex": True},
     "r1 = -0x12345677edcba988 ll"),
    ("call_hex", Call(Helper.map_lookup_elem), {"hex": True}, "call 0x1"),
    ("as_cast_hex", AddrSpaceCast(R0, R1, 1, 0), {"hex": True},
     "r0 = addr_space_cast(r1, 0x1, 0x0)"),
    ("ldxw_alu32", Load(R1, R2, 4, U32), {"alu32": True}, "w1 = *(u32 *)(r2 + 4)"),
    ("ldxdw_alu32", Load(R1, R2, 4, U64), {"alu32": True}, "r1 = *(u64 *)(r2 + 4)"),
    ("stxb_alu32", Store(R10, -1, R1, U8), {"alu32": True}, "*(u8 *)(r10 - 1) = w1"),
    ("st_imm_alu32", Store(R10, -1, 3, U8), {"alu32": True}, "*(u8 *)(r10 - 1) = 3"),
    ("xadd32_alu32", AtomicAdd(R1, 8, R2, U32), {"alu32": True},
     "lock *(u32 *)(r1 + 8) += w2"),
    ("xadd64_alu32", AtomicAdd(R1, 8, R2, U64), {"alu32": True},
     "lock *(u64 *)(r1 + 8) += r2"),
    ("ldsx_alu32", LoadSX(R1, R2, 0, U8), {"alu32": True}, "r1 = *(s8 *)(r2 + 0)"),
    ("load_acquire_alu32", LoadAcquire(R0, R1, 0, U16), {"alu32": True},
     "w0 = load_acquire((u16 *)(r1 + 0))"),
    ("store_release_alu32", StoreRelease(R1, 0, R2, U32), {"alu32": True},
     "store_release((u32 *)(r1 + 0), w2)"),
]


@pytest.mark.parametrize(("insn", "options", "text"), [c[1:] for c in HEX_AND_ALU32],
                         ids=[c[0] for c in HEX_AND_ALU32])
def test_llvm_text_options(insn: Instruction, options: dict[str, bool], text: str) -> None:
    assert insn.text(**options) == text  # type: ignore[arg-type]


# Normalisation: the same instruction however it was spelt.
SAME = [
    ("imm_u32_wraps", Mov(R0, 0xFFFFFFFF), Mov(R0, -1)),
    ("load_w_register", Load(W1, R2, 0, U32), Load(R1, R2, 0, U32)),
    ("size_in_bytes", Load(R1, R2, 0, 4), Load(R1, R2, 0, U32)),  # type: ignore[arg-type]
    ("store_w_register", Store(R1, 0, W2, U32), Store(R1, 0, R2, U32)),
    ("call_bpf_prefix", Call("bpf_map_lookup_elem"), Call(Helper.map_lookup_elem)),
    ("call_number", Call(1), Call(Helper.map_lookup_elem)),
    ("ld_imm64_u64_wraps", LoadImm64(R1, 0xFFFFFFFFFFFFFFFF), LoadImm64(R1, -1)),
    ("endian_w_register", ToBE(W1, 16), ToBE(R1, 16)),
]


@pytest.mark.parametrize(("a", "b"), [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_equivalent_spellings(a: Instruction, b: Instruction) -> None:
    assert a == b
    assert a.encode("little") == b.encode("little")


def test_register_and_immediate_never_compare_equal() -> None:
    # R2 is not the immediate 2: an ALU with a register source differs from one with an int.
    assert Add(R1, R2) != Add(R1, 2)
    assert R1 != 1  # type: ignore[comparison-overlap]
    assert Add(R1, 2) != Sub(R1, 2)  # type: ignore[comparison-overlap]


def test_labels_and_references_encode_without_offsets() -> None:
    assert Label("x").encode() == b""
    assert Label("x").text() == "x:"
    assert LoadMap(R1, "counters").encode("little").hex() == "1811" + "00" * 14
    assert LoadMap(R1, "counters").text() == "ld_pseudo r1, 1, 0 ; map['counters']"
    assert LoadMapValue(R2, "data", 8).text("bpftool") == "(18) r2 = map['data']+8"


def test_unresolved_targets_print_their_label() -> None:
    assert JLt(R1, 10, "loop").text() == "if r1 < 10 goto loop"
    assert Ja("out").text("bpftool") == "(05) goto out"
    assert CallSubprog("fn").text() == "call fn"
    assert LoadFunc(R2, "cb").text() == "r2 = cb ll"


def test_registers() -> None:
    assert (str(R3), repr(R3), str(W3), repr(W3)) == ("r3", "R3", "w3", "W3")
    assert R3.w == W3 and W3.r == R3 and R3.r is R3
    assert repr(Add(W1, W2)) == "Add(dst=W1, src=W2)"
    assert repr(W0) == "W0" and W0 == R0.w
