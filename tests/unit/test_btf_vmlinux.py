"""The running kernel's BTF: well-known types, bpftool agreement, re-encoding, split BTF."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from purebpf.btf import (
    Array, Datasec, Enum, Enum64, Func, FuncProto, Int, Kind, Member, Ptr, Spec, Struct,
    Typedef, encode, parse,
)

try:
    from . import test_btf_helpers as h
except ImportError:
    import test_btf_helpers as h  # type: ignore[no-redef]

pytestmark = pytest.mark.skipif(not h.VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")


@pytest.fixture(scope="module")
def raw() -> bytes:
    return h.VMLINUX.read_bytes()


@pytest.fixture(scope="module")
def vmlinux(raw: bytes) -> Spec:
    return parse(raw)


def test_task_struct(vmlinux: Spec) -> None:
    task = vmlinux.find("task_struct", Struct)
    assert isinstance(task, Struct) and task.size > 1000
    tid = vmlinux.find_id("task_struct", Struct)
    comm = vmlinux.field(tid, "comm")
    assert vmlinux.sizeof(comm.type) == 16
    assert isinstance(vmlinux.resolve(comm.type), Array)
    pid = vmlinux.field(tid, "pid")
    assert vmlinux.sizeof(pid.type) == 4 and pid.bit_offset % 32 == 0
    assert vmlinux.field(tid, "se.vruntime").bit_offset == (
        vmlinux.field(tid, "se").bit_offset
        + vmlinux.field(vmlinux.field(tid, "se").type, "vruntime").bit_offset)


def test_bpf_map_max_entries(vmlinux: Spec) -> None:
    m = vmlinux.field(vmlinux.find_id("bpf_map", Struct), "max_entries")
    assert m.name == "max_entries" and vmlinux.sizeof(m.type) == 4
    assert isinstance(vmlinux.resolve(m.type), Int)


def test_functions_and_prototypes(vmlinux: Spec) -> None:
    fn = vmlinux.find("bpf_map_lookup_elem", Func)
    assert isinstance(fn, Func)
    proto = vmlinux.types[fn.proto]
    assert isinstance(proto, FuncProto)
    assert [p.name for p in proto.params[:2]] == ["map", "key"]
    assert vmlinux.find_ids("bpf_map_lookup_elem", Struct) == []


def test_typedefs_enums_and_sections(vmlinux: Spec) -> None:
    u32 = vmlinux.resolve(vmlinux.find_id("u32", Typedef))
    assert isinstance(u32, Int) and u32.size == 4 and not u32.signed
    map_type = vmlinux.find("bpf_map_type", Enum)
    assert isinstance(map_type, Enum)
    values = {v.name: v.value for v in map_type.values}
    assert values["BPF_MAP_TYPE_HASH"] == 1 and values["BPF_MAP_TYPE_ARRAY"] == 2
    lh = vmlinux.find_id("list_head", Struct)
    nxt = vmlinux.types[vmlinux.field(lh, "next").type]
    assert isinstance(nxt, Ptr) and nxt.target == lh
    assert any(isinstance(t, Datasec) for _, t in vmlinux.items())


def test_every_type_decodes_and_re_encodes_byte_for_byte(vmlinux: Spec, raw: bytes) -> None:
    vmlinux.validate()
    assert encode(vmlinux) == raw
    kinds = {t.kind for t in vmlinux.types}
    assert {Kind.STRUCT, Kind.FUNC, Kind.ENUM, Kind.DATASEC} <= kinds
    if Kind.ENUM64 in kinds:
        e64 = next(t for t in vmlinux.types if isinstance(t, Enum64))
        assert e64.size == 8 and e64.values


@pytest.mark.skipif(not h.have("bpftool"), reason="bpftool not installed")
def test_ids_kinds_and_names_match_bpftool(vmlinux: Spec) -> None:
    out = subprocess.run([h.tool_path("bpftool"), "btf", "dump", "file", str(h.VMLINUX)],
                         check=True, capture_output=True, text=True).stdout
    theirs = [(int(m[1]), m[2], "" if m[3] == "(anon)" else m[3])
              for m in re.finditer(r"^\[(\d+)\] (\w+) '([^']*)'", out, re.M)]
    assert theirs == [(tid, t.kind.name, t.name) for tid, t in vmlinux.items()]


def test_split_btf_on_top_of_vmlinux(vmlinux: Spec) -> None:
    task = vmlinux.find_id("task_struct", Struct)
    u64 = vmlinux.find_id("u64", Typedef)
    mod = Spec(base=vmlinux)
    ptr = mod.add(Ptr(task))
    sid = mod.add(Struct("my_module_state", 16, (Member("owner", ptr, 0),
                                                  Member("hits", u64, 64))))
    assert ptr == len(vmlinux.types)
    parsed = parse(encode(mod), vmlinux, validate=True)
    assert parsed.find_id("my_module_state") == sid
    assert parsed.find_id("task_struct", Struct) == task  # base types are visible
    owner = parsed.field(sid, "owner")
    assert parsed.types[owner.type] == Ptr(task)
    assert parsed.sizeof(sid) == 16 and parsed.field(sid, "hits").bit_offset == 64


MODULES = sorted(n for n in os.listdir("/sys/kernel/btf") if n != "vmlinux") \
    if os.path.isdir("/sys/kernel/btf") else []


@pytest.mark.skipif(not MODULES, reason="no kernel modules with BTF loaded")
def test_real_module_btf(vmlinux: Spec, raw: bytes) -> None:
    for name in MODULES[:5]:
        data = (h.VMLINUX.parent / name).read_bytes()
        spec = parse(data, vmlinux, validate=True)
        assert spec.start_id == len(vmlinux.types)
        assert encode(spec) == data
