"""Reading clang-compiled objects into CollectionSpecs: pure, no kernel."""

from __future__ import annotations

import errno
import filecmp
import pathlib
import shutil
import struct
import subprocess

import pytest

from purebpf import (CollectionSpec, InvalidArgumentError, MapFlags, MapType, NotSupportedError,
                     ProgramType)
from purebpf.elf import read_elf
from purebpf.elf.link import lower_indirect_helper_calls
from purebpf.elf.maps import data_map_name
from purebpf.elf.sections import section_def
from purebpf.types import AttachType

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
ENOTSUPP = 524


def spec(name: str) -> CollectionSpec:
    return CollectionSpec.from_file(DATA / f"{name}.o")


def test_seed_example_array_of_devmaps() -> None:
    s = spec("map_in_map")
    outer = s.maps["outer_map"]
    assert outer.type == MapType.ARRAY_OF_MAPS
    assert (outer.key_size, outer.value_size, outer.max_entries) == (4, 4, 2)
    assert outer.inner is not None and outer.inner.type == MapType.DEVMAP
    assert outer.inner.max_entries == 10
    assert outer.contents == [(0, "inner_map1"), (1, "inner_map2")]
    assert s.maps["inner_map1"].type == MapType.DEVMAP


def test_anonymous_inner_struct_and_inner_map_flag() -> None:
    t = spec("map_in_map").maps["tables"]
    assert t.inner is not None
    assert t.inner.type == MapType.ARRAY and t.inner.flags == MapFlags.INNER_MAP
    assert (t.inner.key_size, t.inner.value_size, t.inner.max_entries) == (4, 8, 1)
    assert t.inner.name == "tables.inner"
    assert t.contents == [(0, "small"), (3, "big")]  # [1] and [2] stay empty


def test_hash_of_maps_with_8_byte_keys_keeps_its_slots() -> None:
    h = spec("map_in_map").maps["by_cookie"]
    assert h.type == MapType.HASH_OF_MAPS and h.key_size == 8
    assert h.contents == [(1, "small"), (5, "big")]


def test_integer_btf_types_decode_to_ints() -> None:
    m = spec("map_in_map").maps["small"]
    assert m.key_type == "=I" and m.value_type == "=Q"


def test_programs_sections_and_subprograms() -> None:
    s = spec("globals")
    p = s.programs["compute"]
    assert p.type == ProgramType.XDP and p.expected_attach_type == AttachType.XDP
    assert p.section == "xdp" and p.license == "GPL"
    # compute + the callback and two subprograms it calls, each once
    funcs = struct.unpack(f"<{len(p.func_info) // 4}I", p.func_info)[0::2]
    assert len(funcs) == 4 and funcs[0] == 0
    kinds = sorted({(r.kind, r.target) for r in p.references})
    assert ("map", "results") in kinds
    assert ("map_value", "globals.rodata") in kinds and ("map_value", "globals.bss") in kinds
    assert p.line_info and len(p.line_info) % 16 == 0


def test_global_data_becomes_array_maps_and_variables() -> None:
    s = spec("globals")
    ro = s.maps["globals.rodata"]
    assert ro.type == MapType.ARRAY and ro.max_entries == 1
    assert ro.flags & MapFlags.RDONLY_PROG
    assert s.maps[".data.tuning"].name == ".data.tuning"  # a custom section: its own name
    v = s.variables
    assert v["multiplier"].get() == 3 and v["multiplier"].readonly
    assert v["tuned"].get() == 11 and v["last_result"].get() == 7
    assert v["calls"].get() == 0 and v["greeting"].value == b"hello\0"
    v["multiplier"].set(5)
    assert v["multiplier"].value == (5).to_bytes(4, "little")
    with pytest.raises(InvalidArgumentError, match="4 bytes, got 2"):
        v["multiplier"].set(b"ab")


@pytest.mark.parametrize("variant", ["globals.O0", "globals.v1", "globals.v2", "globals.v3",
                                     "globals.v4", "map_in_map.O0", "map_in_map.v1",
                                     "map_in_map.v4"])
def test_variants_parse(variant: str) -> None:
    s = spec(variant)
    assert s.programs
    for p in s.programs.values():
        insns = p.insn_bytes()
        assert insns and len(insns) % 8 == 0
        # no indirect calls survive: -O0 helper calls were lowered to direct calls
        assert all(insns[i] != 0x8D for i in range(0, len(insns), 8))


def test_data_map_name_fits_the_kernel_limit() -> None:
    assert data_map_name("globals", ".rodata") == "globals.rodata"
    assert len(data_map_name("a_very_long_object_name", ".data.tuning")) <= 15
    assert data_map_name("x-y", ".bss") == "x_y.bss"


@pytest.mark.parametrize("section,ptype,attach,target", [
    ("xdp", ProgramType.XDP, AttachType.XDP, ""),
    ("xdp.frags", ProgramType.XDP, AttachType.XDP, ""),
    ("socket", ProgramType.SOCKET_FILTER, 0, ""),
    ("tc", ProgramType.SCHED_CLS, 0, ""),
    ("tcx/ingress", ProgramType.SCHED_CLS, AttachType.TCX_INGRESS, ""),
    ("classifier", ProgramType.SCHED_CLS, 0, ""),
    ("cgroup_skb/egress", ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS, ""),
    ("cgroup/connect4", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT, ""),
    ("kprobe/do_sys_open", ProgramType.KPROBE, 0, ""),
    ("kretprobe/do_sys_open", ProgramType.KPROBE, 0, ""),
    ("uprobe/bin:func", ProgramType.KPROBE, 0, ""),
    ("tracepoint/syscalls/sys_enter_open", ProgramType.TRACEPOINT, 0, ""),
    ("tp/sched/sched_switch", ProgramType.TRACEPOINT, 0, ""),
    ("raw_tp/sys_enter", ProgramType.RAW_TRACEPOINT, 0, ""),
    ("tp_btf/sched_switch", ProgramType.TRACING, AttachType.TRACE_RAW_TP,
     "btf_trace_sched_switch"),
    ("fentry/do_unlinkat", ProgramType.TRACING, AttachType.TRACE_FENTRY, "do_unlinkat"),
    ("fexit/do_unlinkat", ProgramType.TRACING, AttachType.TRACE_FEXIT, "do_unlinkat"),
    ("fmod_ret/bpf_modify_return_test", ProgramType.TRACING, AttachType.MODIFY_RETURN,
     "bpf_modify_return_test"),
    ("lsm/file_open", ProgramType.LSM, AttachType.LSM_MAC, "bpf_lsm_file_open"),
    ("iter/bpf_map", ProgramType.TRACING, AttachType.TRACE_ITER, "bpf_iter_bpf_map"),
    ("syscall", ProgramType.SYSCALL, 0, ""),
    ("sk_msg", ProgramType.SK_MSG, AttachType.SK_MSG_VERDICT, ""),
    ("sk_skb/stream_parser", ProgramType.SK_SKB, AttachType.SK_SKB_STREAM_PARSER, ""),
    ("flow_dissector", ProgramType.FLOW_DISSECTOR, AttachType.FLOW_DISSECTOR, ""),
    ("perf_event", ProgramType.PERF_EVENT, 0, ""),
], ids=lambda v: v if isinstance(v, str) else None)
def test_section_names(section: str, ptype: ProgramType, attach: int, target: str) -> None:
    found = section_def(section)
    assert found is not None
    d, rest = found
    assert d.type == ptype and d.attach == attach
    assert (d.target.format(rest) if d.target else "") == target


@pytest.mark.parametrize("section", ["kprobe/", "xdpfoo", "", "fentry"])
def test_section_names_that_match_nothing(section: str) -> None:
    assert section_def(section) is None


@pytest.mark.parametrize("name,exc,code,words", [
    ("inner_pinned", InvalidArgumentError, errno.EINVAL, "inner map definition cannot be pinned"),
    ("nested", NotSupportedError, errno.EOPNOTSUPP, "multi-level nesting"),
    ("prog_array_inner", NotSupportedError, ENOTSUPP, "PROG_ARRAY cannot be an inner map"),
    ("unknown_section", NotSupportedError, errno.EOPNOTSUPP,
     "unknown section name 'not_a_program_type'"),
    ("slot_past_end", InvalidArgumentError, errno.EINVAL, "slot [3] is past max_entries 2"),
])
def test_invalid_objects_fail_at_parse_time(name: str, exc: type, code: int, words: str) -> None:
    with pytest.raises(exc) as info:
        CollectionSpec.from_file(DATA / "invalid" / f"{name}.o")
    assert info.value.errno == code
    assert words in str(info.value)


def test_not_an_elf_file(tmp_path: pathlib.Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"this is not ELF at all")
    with pytest.raises(InvalidArgumentError, match="not an ELF object"):
        CollectionSpec.from_file(junk)


def test_wrong_machine() -> None:
    with pytest.raises(InvalidArgumentError, match="not EM_BPF") as info:
        read_elf(shutil.which("true") or "/bin/true")
    assert "clang -target bpf" in str(info.value)


def test_lowering_rewrites_callx_through_a_constant_helper_pointer() -> None:
    from purebpf import Reference

    insns = bytearray()
    insns += struct.pack("<BBhi", 0x18, 0x01, 0, 0) + struct.pack("<BBhi", 0, 0, 0, 0)
    insns += struct.pack("<BBhi", 0x79, 0x13, 0, 0)        # r3 = *(u64 *)(r1 + 0)
    insns += struct.pack("<BBhi", 0x8D, 0x03, 0, 0)        # callx r3
    insns += struct.pack("<BBhi", 0x95, 0, 0, 0)           # exit
    refs = [Reference(0, "obj.data", "map_value", 8)]
    data = {"obj.data": bytes(8) + (1).to_bytes(8, "little")}
    assert lower_indirect_helper_calls(insns, refs, data) == 1
    assert struct.unpack_from("<BBhi", insns, 24) == (0x85, 0, 0, 1)


def test_lowering_leaves_unknown_targets_alone() -> None:
    insns = bytearray(struct.pack("<BBhi", 0x8D, 0x03, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0))
    assert lower_indirect_helper_calls(insns, [], {}) == 0
    assert insns[0] == 0x8D


@pytest.mark.skipif(shutil.which("clang-19") is None, reason="clang-19 is not installed")
@pytest.mark.parametrize("folder", ["", "invalid"])
def test_committed_objects_match_their_sources(tmp_path: pathlib.Path, folder: str) -> None:
    src = DATA / folder
    for f in list(src.glob("*.c")) + [src / "Makefile"]:
        shutil.copy(f, tmp_path)
    subprocess.run(["make", "-s", "-C", str(tmp_path)], check=True, capture_output=True)
    built = sorted(p.name for p in tmp_path.glob("*.o"))
    committed = sorted(p.name for p in src.glob("*.o"))
    assert built == committed
    stale = [n for n in built if not filecmp.cmp(tmp_path / n, src / n, shallow=False)]
    assert not stale, f"rebuild with make -C tests/testdata/{folder}: {stale} are stale"


def _objects() -> list[pathlib.Path]:
    return sorted(DATA.glob("*.o")) + sorted((DATA / "invalid").glob("*.o"))


@pytest.mark.parametrize("path", _objects(), ids=lambda p: p.name)
def test_reader_agrees_with_pyelftools(path: pathlib.Path) -> None:
    """Our ELF reader against pyelftools (a test dependency) on every test object."""
    import io

    from elftools.elf.elffile import ELFFile

    ours = read_elf(path)
    elf = ELFFile(io.BytesIO(path.read_bytes()))
    theirs = list(elf.iter_sections())
    assert [s.name for s in ours.sections] == [s.name for s in theirs]
    for s, t in zip(ours.sections, theirs):
        assert (s.size, s.flags, s.info) == (t["sh_size"], t["sh_flags"], t["sh_info"])
        if s.type not in ("SHT_NOBITS", "SHT_SYMTAB", "SHT_REL"):
            assert s.data == t.data()
    symtab = elf.get_section_by_name(".symtab")
    syms = list(symtab.iter_symbols())  # type: ignore[union-attr]
    assert [(s.name, s.value, s.size) for s in ours.symbols] == \
        [(s.name, s["st_value"], s["st_size"]) for s in syms]
    for target, rels in ours.relocations.items():
        rel_sec = next(t for t in theirs if t["sh_type"] == "SHT_REL" and
                       t["sh_info"] == target)
        assert [(r.offset, r.symbol.index, r.type) for r in rels] == [
            (r["r_offset"], r["r_info_sym"], r["r_info_type"])
            for r in rel_sec.iter_relocations()]  # type: ignore[attr-defined]


def test_truncated_and_32_bit_objects_are_refused(tmp_path: pathlib.Path) -> None:
    data = (DATA / "globals.o").read_bytes()
    with pytest.raises(InvalidArgumentError, match="out of bounds"):
        read_elf(data[:200])
    with pytest.raises(InvalidArgumentError, match="not a 64-bit ELF"):
        read_elf(data[:4] + b"\x01" + data[5:])


@pytest.mark.parametrize("name,words", [
    ("struct_key_slots", "the key type is not an integer"),
    ("fwd_value", "can't determine the value size"),
])
def test_more_invalid_objects(name: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words):
        CollectionSpec.from_file(DATA / "invalid" / f"{name}.o")


def test_corrupt_objects_raise_clear_errors_only() -> None:
    import random

    data = (DATA / "globals.o").read_bytes()
    rng = random.Random(5)
    for _ in range(300):
        blob = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        if rng.random() < 0.2:
            blob = blob[:rng.randrange(64, len(blob))]
        try:
            CollectionSpec.from_file(bytes(blob))
        except (InvalidArgumentError, NotSupportedError):
            pass  # refused, with a message: fine; anything else fails the test
        except Exception as exc:  # the btf package raises BTFError (a ValueError)
            from purebpf.btf import BTFError

            assert isinstance(exc, BTFError), repr(exc)


def test_big_endian_objects_are_refused_for_loading() -> None:
    path = DATA / "asm" / "alu.bpfeb.o"  # clang -target bpfeb
    assert read_elf(path).little_endian is False  # readable ...
    with pytest.raises(NotSupportedError, match="built for big-endian BPF"):
        CollectionSpec.from_file(path)  # ... but not loadable on this machine


def test_overlapping_sections_are_refused() -> None:
    # Every section header pointing at the whole file: copying each would take the
    # file's size times the number of sections.
    data = bytearray((DATA / "globals.o").read_bytes())
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, = struct.unpack_from("<H", data, 60)
    for i in range(1, shnum):
        struct.pack_into("<QQ", data, shoff + i * 64 + 24, 0, len(data))
    with pytest.raises(InvalidArgumentError, match=rf"read object: section sizes add up to "
                       rf"\d+ bytes, more than the file's {len(data)} \(overlapping sections"):
        read_elf(bytes(data))


def test_huge_bss_variable_is_not_copied() -> None:
    # A .bss and its variable claiming 512 MiB: the initial value is fresh zeros, not a
    # copy of a zeroed section the size of the claim.
    import resource

    data = bytearray((DATA / "globals.o").read_bytes())
    obj = read_elf(bytes(data))
    bss = obj.section(".bss")
    assert bss is not None
    shoff, = struct.unpack_from("<Q", data, 40)
    struct.pack_into("<Q", data, shoff + bss.index * 64 + 32, 1 << 29)  # sh_size
    symtab = next(s for s in obj.sections if s.type == "SHT_SYMTAB")
    sym = next(s for s in obj.symbols if s.name == "calls")
    sym_at = struct.unpack_from("<Q", data, shoff + symtab.index * 64 + 24)[0] + 24 * sym.index
    struct.pack_into("<QQ", data, sym_at + 8, 1, (1 << 29) - 1)  # st_value, st_size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = CollectionSpec.from_file(bytes(data))
    assert len(spec.variables["calls"].value) == (1 << 29) - 1
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    assert grew_mb < 128, f"reading the object took {grew_mb} MB"
