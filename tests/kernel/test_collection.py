"""Loading clang-compiled objects into the kernel and running their programs."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import struct
import subprocess
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import (Collection, CollectionSpec, InnerMapMismatchError, Map, MapOfMaps,
                     VerifierError)

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
XDP_DROP, XDP_PASS = 1, 2


def packet(*words: int, fmt: str = "I") -> bytes:
    """A test_run input: the request words, padded to a minimal Ethernet frame."""
    body = struct.pack(f"<{len(words)}{fmt}", *words)
    return body + bytes(max(0, 64 - len(body)))


@pytest.fixture
def mim() -> Iterator[Collection]:
    with purebpf.load(DATA / "map_in_map.o") as coll:
        yield coll


def test_seed_example_devmaps_are_in_their_slots(mim: Collection) -> None:
    outer = mim.maps["outer_map"]
    assert isinstance(outer, MapOfMaps)
    assert outer.inner_id(0) == mim.maps["inner_map1"].id
    assert outer.inner_id(1) == mim.maps["inner_map2"].id
    prog = mim.programs["has_devmap"]
    assert prog.test_run(packet(0)).retval == XDP_PASS
    del outer[0]
    assert prog.test_run(packet(0)).retval == XDP_DROP


def test_program_reads_through_outer_and_inner_and_sees_swaps(mim: Collection) -> None:
    tables, small, big = mim.maps["tables"], mim.maps["small"], mim.maps["big"]
    assert isinstance(tables, MapOfMaps)
    read = mim.programs["read_table"]
    small[0] = 41
    big[2] = 99
    assert read.test_run(packet(0, 0)).retval == 42       # tables[0] -> small
    assert read.test_run(packet(3, 2)).retval == 100      # tables[3] -> big (8 entries)
    assert read.test_run(packet(1, 0)).retval == 0        # empty slot
    old = tables.swap(0, big)                            # one update from Python
    assert old == small
    assert read.test_run(packet(0, 2)).retval == 100      # the program now sees big
    with tables.staged(1, max_entries=4) as new:          # BPF_F_INNER_MAP: any size
        new[3] = 6
    assert read.test_run(packet(1, 3)).retval == 7


def test_hash_of_maps_with_8_byte_keys_initialised_in_c(mim: Collection) -> None:
    by_cookie = mim.maps["by_cookie"]
    assert isinstance(by_cookie, MapOfMaps)
    assert sorted(by_cookie.keys()) == [1, 5]
    assert by_cookie.inner_id(5) == mim.maps["big"].id
    mim.maps["big"][1] = 10
    read = mim.programs["read_cookie"]
    assert read.test_run(packet(5, 1, fmt="Q")).retval == 11
    assert read.test_run(packet(2, 1, fmt="Q")).retval == 0


def test_inner_maps_of_different_sizes_share_one_outer_map(mim: Collection) -> None:
    tables = mim.maps["tables"]
    assert isinstance(tables, MapOfMaps)
    sizes = sorted(inner.max_entries for _, inner in tables.items())
    assert sizes == [1, 8]
    assert tables.inner_spec is not None and tables.inner_spec.max_entries == 1


def test_global_data_before_and_after_load() -> None:
    spec = CollectionSpec.from_file(DATA / "globals.o")
    with purebpf.load(DATA / "globals.o") as coll:
        # r = in * multiplier + tuned + (0+1+2+3), returned + 1
        assert coll.programs["compute"].test_run(packet(5)).retval == 5 * 3 + 11 + 6 + 1
        assert coll.variables["calls"].get() == 1
        assert coll.variables["last_result"].get() == 32
        assert coll.maps["results"][0] == 32
        coll.variables["tuned"].set(100)                   # .data: writable after load
        assert coll.programs["compute"].test_run(packet(5)).retval == 15 + 100 + 6 + 1
        assert coll.variables["calls"].get() == 2
        with pytest.raises(purebpf.BPFPermissionError, match="frozen at load"):
            coll.variables["multiplier"].set(9)
    spec.variables["multiplier"].set(10)                  # .rodata: configure before load
    with Collection.load(spec) as coll:
        assert coll.programs["compute"].test_run(packet(5)).retval == 50 + 11 + 6 + 1


@pytest.mark.parametrize("variant", ["globals.O0", "globals.v1", "globals.v2", "globals.v3",
                                     "globals.v4"])
def test_optimisation_levels_and_isa_versions(variant: str) -> None:
    with purebpf.load(DATA / f"{variant}.o") as coll:
        assert coll.programs["compute"].test_run(packet(5)).retval == 33


@pytest.mark.parametrize("variant", ["map_in_map.O0", "map_in_map.v1", "map_in_map.v4"])
def test_map_in_map_variants(variant: str) -> None:
    with purebpf.load(DATA / f"{variant}.o") as coll:
        coll.maps["small"][0] = 1
        assert coll.programs["read_table"].test_run(packet(0, 0)).retval == 2


def test_outer_map_update_in_a_program_is_refused(map_leak_check: None) -> None:
    with pytest.raises(VerifierError) as info:
        purebpf.load(DATA / "reject_outer_update.o")
    e = info.value
    assert e.errno == errno.EINVAL
    assert "cannot pass map_type 13 into func bpf_map_update_elem" in str(e)
    assert "reject_outer_update.c:24" in str(e)                 # the C source line
    assert "bpf_map_update_elem(&outer" in e.source_line
    assert "programs may only look up in an outer map" in str(e)
    assert "processed" in e.log or "cannot pass" in e.log       # the whole log is kept


def test_failed_load_leaves_nothing_behind(map_leak_check: None) -> None:
    spec = CollectionSpec.from_file(DATA / "map_in_map.o")
    spec.programs["read_table"] = CollectionSpec.from_file(
        DATA / "reject_outer_update.o").programs["replace_slot"]
    spec.maps.update({k: v for k, v in CollectionSpec.from_file(
        DATA / "reject_outer_update.o").maps.items()})
    with pytest.raises(VerifierError):
        Collection.load(spec)


# -- pinning ---------------------------------------------------------------------------------

@pytest.fixture
def pin_root() -> Iterator[pathlib.Path]:
    base = pathlib.Path("/sys/fs/bpf")
    if not os.path.ismount(base):
        subprocess.run(["mount", "-t", "bpf", "bpf", str(base)], check=True)
    root = base / f"purebpf-test-{os.getpid()}"
    root.mkdir(exist_ok=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_pinned_maps_are_reused(pin_root: pathlib.Path) -> None:
    with purebpf.load(DATA / "pinned.o", pin_root=pin_root) as first:
        counts_id = first.maps["pinned_counts"].id
        outer_id = first.maps["pinned_outer"].id
        first.maps["pinned_counts"][0] = 5
    assert (pin_root / "pinned_counts").exists() and (pin_root / "pinned_outer").exists()
    with purebpf.load(DATA / "pinned.o", pin_root=pin_root) as second:
        assert second.maps["pinned_counts"].id == counts_id
        assert second.maps["pinned_outer"].id == outer_id
        second.programs["touch"].test_run(packet(0))
        assert second.maps["pinned_counts"][0] == 6


def test_incompatible_pinned_map_is_refused_naming_the_field(pin_root: pathlib.Path) -> None:
    purebpf.load(DATA / "pinned.o", pin_root=pin_root).close()
    spec = CollectionSpec.from_file(DATA / "pinned.o")
    spec.maps["pinned_counts"].max_entries = 32
    with pytest.raises(purebpf.MapMismatchError) as info:
        Collection.load(spec, pin_root=pin_root)
    assert not isinstance(info.value, InnerMapMismatchError)
    assert info.value.field == "max_entries"
    assert (info.value.expected, info.value.actual) == (32, 16)
    assert "rm " in str(info.value)


def test_pinned_outer_map_with_another_inner_template_is_refused(
        pin_root: pathlib.Path) -> None:
    purebpf.load(DATA / "pinned.o", pin_root=pin_root).close()
    spec = CollectionSpec.from_file(DATA / "pinned.o")
    inner = spec.maps["pinned_outer"].inner
    assert inner is not None
    spec.maps["pinned_outer"].inner = inner.replace(value_size=8, value_type=None)
    spec.maps["first_leaf"].value_size = 8
    spec.maps["first_leaf"].value_type = None
    with pytest.raises(InnerMapMismatchError) as info:
        Collection.load(spec, pin_root=pin_root)
    assert info.value.field == "inner.value_size"
    assert "inner maps do not match the declared inner template" in str(info.value)


def test_collection_maps_are_ordinary_maps(mim: Collection) -> None:
    assert all(isinstance(m, Map) for m in mim.maps.values())
    assert repr(mim).startswith("<Collection 'map_in_map'")


def test_clone_gives_an_independent_object_for_the_same_map(mim: Collection) -> None:
    small = mim.maps["small"]
    with small.clone() as other:
        assert other == small and other.fd != small.fd
        other[0] = 7
        assert small[0] == 7
    tables = mim.maps["tables"]
    assert isinstance(tables, MapOfMaps)
    with tables.clone() as t2:
        assert isinstance(t2, MapOfMaps) and t2.template == tables.template
    assert not small.closed


def test_core_relocations_are_applied_by_the_kernel() -> None:
    spec = CollectionSpec.from_file(DATA / "core.o")
    assert len(spec.programs["read_tgid"].core_relos) // 16 == 2
    with purebpf.load(DATA / "core.o") as coll:
        # tgid read from task_struct at the offset this kernel has; the made-up field
        # is reported missing, so nothing is added.
        assert coll.programs["read_tgid"].test_run(ctx=bytes(16)).retval == os.getpid()


def test_btf_attach_target_is_resolved_in_vmlinux() -> None:
    spec = CollectionSpec.from_file(DATA / "core.o")
    p = spec.programs["on_sys_enter"]
    assert p.type == purebpf.ProgramType.TRACING and p.attach_to == "btf_trace_sys_enter"
    with purebpf.load(DATA / "core.o") as coll:
        assert coll.programs["on_sys_enter"].type == purebpf.ProgramType.TRACING


def test_unknown_attach_target_is_named() -> None:
    spec = CollectionSpec.from_file(DATA / "core.o")
    spec.programs["on_sys_enter"].attach_to = "btf_trace_no_such_tracepoint"
    del spec.programs["read_tgid"]
    with pytest.raises(purebpf.NotSupportedError, match="btf_trace_no_such_tracepoint"):
        Collection.load(spec)


def test_program_info_and_reopen_by_id(mim: Collection) -> None:
    prog = mim.programs["read_table"]
    info = prog.info()
    assert info.name == "read_table" and info.type == purebpf.ProgramType.XDP
    assert mim.maps["tables"].id in info.map_ids
    with purebpf.Program.from_id(prog.id) as again:
        assert again.id == prog.id
        assert again.test_run(packet(1, 0)).retval == 0


def test_program_array_initialised_in_c_and_tail_calls() -> None:
    spec = CollectionSpec.from_file(DATA / "tailcall.o")
    assert spec.maps["jump_table"].contents == [(1, "answer_a"), (3, "answer_b")]
    assert spec.maps["seen"].map_extra == 3
    with purebpf.load(DATA / "tailcall.o") as coll:
        dispatch = coll.programs["dispatch"]
        assert [dispatch.test_run(bytes([i]) + bytes(63)).retval for i in range(4)] == \
            [99, 10, 99, 30]
        assert coll.maps["seen"].info().map_extra == 3


def test_programs_pin_and_reopen(mim: Collection, pin_root: pathlib.Path) -> None:
    prog = mim.programs["read_table"]
    prog.pin(pin_root / "read_table")
    try:
        with purebpf.Program.from_pin(pin_root / "read_table") as again:
            assert again.id == prog.id
    finally:
        prog.unpin()
    assert not (pin_root / "read_table").exists()


def test_loader_defaults_libbpf_objects_rely_on() -> None:
    spec = CollectionSpec.from_file(DATA / "defaults.o")
    assert spec.programs["optional_prog"].autoload is False      # SEC("?xdp")
    assert spec.programs["probe_anything"].type == purebpf.ProgramType.KPROBE
    assert {".data.counters_ingress", ".data.counters_egress"} <= set(spec.maps)
    with purebpf.load(DATA / "defaults.o") as coll:
        assert coll.maps["events"].max_entries == purebpf.possible_cpus()
        assert coll.maps["ring"].max_entries == 16384            # 10000 rounded up
        assert "optional_prog" not in coll.programs
        count = coll.programs["count_ingress"]
        assert count.test_run(packet(0)).retval == 2 + 2 + 3
        coll.variables["cache"].set(10)                          # not frozen: not .rodata
        assert count.test_run(packet(0)).retval == 3 + 2 + 10


def test_reused_program_array_gets_this_loads_programs(pin_root: pathlib.Path) -> None:
    def spec() -> CollectionSpec:
        s = CollectionSpec.from_file(DATA / "tailcall.o")
        s.maps["jump_table"].pinning = 1
        return s

    with Collection.load(spec(), pin_root=pin_root) as first:
        assert first.programs["dispatch"].test_run(bytes([1]) + bytes(63)).retval == 10
    second = spec()
    second.programs["answer_a"] = second.programs["answer_b"].replace(name="answer_a")
    with Collection.load(second, pin_root=pin_root) as coll:
        # slot 1 now holds this load's answer_a (which returns 30), not the old program
        assert coll.programs["dispatch"].test_run(bytes([1]) + bytes(63)).retval == 30


def test_pinned_map_extra_mismatch_is_refused(pin_root: pathlib.Path) -> None:
    s = CollectionSpec.from_file(DATA / "tailcall.o")
    s.maps["seen"].pinning = 1
    Collection.load(s, pin_root=pin_root).close()
    s.maps["seen"].map_extra = 5
    with pytest.raises(purebpf.MapMismatchError) as info:
        Collection.load(s, pin_root=pin_root)
    assert info.value.field == "map_extra" and (info.value.expected, info.value.actual) == (5, 3)


def test_declared_slot_that_does_not_fit_names_the_slot() -> None:
    spec = CollectionSpec.from_file(DATA / "map_in_map.o")
    spec.maps["tables"].inner = spec.maps["tables"].inner.replace(  # type: ignore[union-attr]
        flags=purebpf.MapFlags(0), max_entries=8)
    spec.maps["small"].flags = spec.maps["big"].flags = purebpf.MapFlags(0)
    spec.maps["by_cookie"].contents.clear()
    with pytest.raises(InnerMapMismatchError, match=r"declared slot \[0\] = 'small'"):
        Collection.load(spec)


def test_verifier_hints_for_common_causes() -> None:
    from purebpf._program import _diagnose

    assert "compile with -O1" in _diagnose("30: (8d) callx r3\nunknown opcode 8d")
    assert "compile with -g" in _diagnose("missing btf func_info")
    assert "CO-RE relocation" in _diagnose(
        "relo #0: no matching targets found\n5: (85) call unknown#195896080")


def test_variables_decode_by_their_btf_types() -> None:
    spec = CollectionSpec.from_file(DATA / "globals.o")
    assert spec.variables["greeting"].decoded(spec.btf) == "hello"
    assert spec.variables["multiplier"].decoded(spec.btf) == 3
    with purebpf.load(DATA / "globals.o") as coll:
        coll.programs["compute"].test_run(packet(5))
        assert {n: v.value for n, v in coll.variables.items()} == {
            "multiplier": 3, "greeting": "hello", "calls": 1, "last_result": 32, "tuned": 11}


def test_struct_keys_and_values_are_dicts_both_ways() -> None:
    from purebpf.btf import BTFError

    with purebpf.load(DATA / "structs.o") as coll:
        flows = coll.maps["flows"]
        key = {"addr": 7, "port": 80, "proto": 17}
        flows[key] = {"packets": 10, "label": "web", "hist": [1, 2], "small": 3, "big": 1000,
                      "last": "DROP"}
        assert coll.programs["count_flow"].test_run(packet(7)).retval == 11
        assert list(flows.items()) == [(
            {"addr": 7, "port": 80, "proto": 17, "pad": 0},
            {"packets": 11, "bytes": 64, "last": "PASS", "label": "web", "hist": [1, 2, 0, 0],
             "small": 3, "big": 1000})]
        with pytest.raises(BTFError, match=r"value of map 'flows' .*no member 'packetz'"):
            flows[key] = {"packetz": 1}
        with pytest.raises(BTFError, match=r"value\.small: 99 does not fit in 5 bits"):
            flows[key] = {"small": 99}
        flows[key] = bytes(40)  # raw bytes of the exact size always work
        assert flows[key]["packets"] == 0


def test_source_location_is_computed_where_the_kernel_log_lacks_it() -> None:
    """6.1 prints '; <source line>' without ' @ file:line' (6.18 appends it): purebpf computes
    file:line from the line info it submitted, so the error reads the same on both."""
    from purebpf._program import _source_location

    with pytest.raises(VerifierError) as info:
        purebpf.load(DATA / "reject_outer_update.o")
    log = info.value.log
    as_on_61 = "\n".join(ln.split(" @ ")[0] if ln.startswith("; ") else ln
                         for ln in log.splitlines())
    spec = CollectionSpec.from_file(DATA / "reject_outer_update.o").programs["replace_slot"]
    if " @ " in log:
        assert info.value.location == ""  # the kernel said it: nothing added
    e = VerifierError(errno.EINVAL, "load", log=as_on_61,
                      location=_source_location(spec, as_on_61))
    assert e.location == "reject_outer_update.c:24"
    assert e.source_line == "bpf_map_update_elem(&outer, &key, &fd, BPF_ANY); @ " \
                            "reject_outer_update.c:24"
    assert "at: bpf_map_update_elem(&outer, &key, &fd, BPF_ANY); @ reject_outer_update.c:24" \
        in str(e)
