"""Feature probes against the running kernel.

Each probe's answer is compared with what the kernel does when this test asks it directly:
create the map type (with BTF where the type needs it), load the program type, run the batch
command on a filled map, mmap the array. Where a type cannot be made without objects this
test does not build (STRUCT_OPS maps, TRACING/EXT/LSM/STRUCT_OPS programs need a kernel
function or struct to attach to), the kernel's own BTF is asked whether it knows the type.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import pathlib
import re
import struct
from collections.abc import Iterator

import pytest

from purebpf import (
    AttachType, BPFError, BTFHandle, Map, MapFlags, MapSpec, MapType, ProgramType, features,
)
from purebpf._sys import ops, progs
from purebpf._sys.attrs import MapElemAttr
from purebpf._sys.constants import Cmd
from purebpf._sys.syscall import bpf, close_fd
from purebpf.btf import Enum, parse
from purebpf.errors import ENOTSUPP

VMLINUX = pathlib.Path("/sys/kernel/btf/vmlinux")
# How a kernel says "no such type / feature" to BPF_MAP_CREATE, BPF_PROG_LOAD and batches.
REFUSED = (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP)


def kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert m, os.uname().release
    return int(m.group(1)), int(m.group(2))


KV = kernel_version()


@pytest.fixture(autouse=True)
def fresh_probes() -> None:
    """Forget cached answers so the probe itself runs inside the test."""
    for f in (features.has_map_type, features.highest_map_type, features.has_inner_map_flag,
              features.has_batch, features._has_flagged_array, features.has_program_type):
        f.cache_clear()


@pytest.fixture(scope="module")
def int_btf() -> Iterator[BTFHandle]:
    """A BTF object holding one type, ``int`` (id 1): enough for the local storages."""
    types = struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", 1 << 24 | 32)
    strings = b"\0int\0"
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    with BTFHandle.load(header + types + strings) as h:
        yield h


def update(fd: int, key: bytes, value: bytes) -> None:
    """A bare BPF_MAP_UPDATE_ELEM."""
    k, v = ctypes.create_string_buffer(key), ctypes.create_string_buffer(value)
    bpf(Cmd.BPF_MAP_UPDATE_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(k),
                                             value=ctypes.addressof(v)))


def kernel_enum(name: str) -> set[str]:
    """The members of ``enum name`` in the running kernel's BTF."""
    if not VMLINUX.exists():
        pytest.skip(f"no {VMLINUX} to ask which {name} members this kernel knows")
    e = parse(VMLINUX.read_bytes()).find(name, Enum)
    assert isinstance(e, Enum)
    return {v.name for v in e.values}


# The smallest map the kernel accepts for each type, written down from the kernel's
# *_map_alloc_check functions: (key_size, value_size, max_entries, flags, needs int BTF).
SIMPLE = (4, 4, 1, 0, False)
STORAGE = (4, 4, 0, int(MapFlags.NO_PREALLOC), True)  # local storages: BTF key/value
MAP_DEFS: dict[MapType, tuple[int, int, int, int, bool]] = {
    MapType.STACK_TRACE: (4, 16, 1, 0, False),  # value: an array of u64 instruction pointers
    MapType.LPM_TRIE: (8, 4, 1, int(MapFlags.NO_PREALLOC), False),
    MapType.CGROUP_STORAGE: (16, 4, 0, 0, False),  # key: struct bpf_cgroup_storage_key
    MapType.PERCPU_CGROUP_STORAGE: (16, 4, 0, 0, False),
    MapType.QUEUE: (0, 4, 1, 0, False), MapType.STACK: (0, 4, 1, 0, False),
    MapType.BLOOM_FILTER: (0, 4, 1, 0, False),
    MapType.RINGBUF: (0, 0, mmap.PAGESIZE, 0, False),
    MapType.USER_RINGBUF: (0, 0, mmap.PAGESIZE, 0, False),
    MapType.ARENA: (0, 0, 1, int(MapFlags.MMAPABLE), False),  # max_entries: pages
    MapType.SK_STORAGE: STORAGE, MapType.INODE_STORAGE: STORAGE,
    MapType.TASK_STORAGE: STORAGE, MapType.CGRP_STORAGE: STORAGE,
    MapType.SOCKMAP: SIMPLE, MapType.SOCKHASH: SIMPLE,
}


def kernel_creates(t: MapType, btf: BTFHandle) -> bool:
    """Does BPF_MAP_CREATE make a ``t`` map when asked directly?"""
    key, value, max_entries, flags, with_btf = MAP_DEFS.get(t, SIMPLE)
    inner = ops.map_create(int(MapType.ARRAY), 4, 4, 1) if t.is_map_in_map else 0
    try:
        fd = ops.map_create(int(t), key, value, max_entries, flags, inner_map_fd=inner,
                            btf_fd=btf.fd if with_btf else 0,
                            btf_key_type_id=1 if with_btf else 0,
                            btf_value_type_id=1 if with_btf else 0)
    except BPFError as exc:
        assert exc.errno in REFUSED, f"creating a {t.name} map: unexpected {exc}"
        return False
    finally:
        if inner:
            close_fd(inner)
    close_fd(fd)
    return True


@pytest.mark.parametrize("t", [t for t in MapType if t != MapType.STRUCT_OPS],
                         ids=lambda t: t.name)
def test_map_type_probe_matches_the_kernel(int_btf: BTFHandle, t: MapType) -> None:
    assert features.has_map_type(t) is kernel_creates(t, int_btf)


def test_struct_ops_map_probe_matches_the_kernels_btf() -> None:
    # A STRUCT_OPS map needs a kernel struct_ops type to implement; ask the kernel's BTF.
    known = "BPF_MAP_TYPE_STRUCT_OPS" in kernel_enum("bpf_map_type")
    assert features.has_map_type(MapType.STRUCT_OPS) is known


def test_storage_maps_need_btf() -> None:
    """The local storages are refused without BTF whether or not the kernel has them: the
    reason the probe cannot simply try to create one."""
    for t in (MapType.SK_STORAGE, MapType.TASK_STORAGE):
        with pytest.raises(BPFError) as info:
            ops.map_create(int(t), 4, 4, 0, int(MapFlags.NO_PREALLOC))
        assert info.value.errno == errno.EINVAL


# Map types built whenever CONFIG_BPF_SYSCALL is (no other config option), with the release
# that added them: a second, independent expectation.
CORE_TYPES = {
    MapType.HASH: (3, 19), MapType.ARRAY: (3, 19), MapType.PROG_ARRAY: (4, 2),
    MapType.PERF_EVENT_ARRAY: (4, 3), MapType.PERCPU_HASH: (4, 6),
    MapType.PERCPU_ARRAY: (4, 6), MapType.LRU_HASH: (4, 10), MapType.LRU_PERCPU_HASH: (4, 10),
    MapType.LPM_TRIE: (4, 11), MapType.ARRAY_OF_MAPS: (4, 12), MapType.HASH_OF_MAPS: (4, 12),
    MapType.QUEUE: (4, 20), MapType.STACK: (4, 20), MapType.RINGBUF: (5, 8),
    MapType.BLOOM_FILTER: (5, 16), MapType.USER_RINGBUF: (6, 1),
}


@pytest.mark.parametrize("t,since", sorted(CORE_TYPES.items()),
                         ids=[t.name for t in sorted(CORE_TYPES)])
def test_core_map_types_by_kernel_version(t: MapType, since: tuple[int, int]) -> None:
    assert features.has_map_type(t) is (KV >= since)


def test_unspec_is_no_map_type() -> None:
    assert features.has_map_type(MapType.UNSPEC) is False


def test_highest_map_type_is_one_the_kernel_creates(int_btf: BTFHandle) -> None:
    top = features.highest_map_type()
    assert kernel_creates(top, int_btf)
    assert not any(kernel_creates(t, int_btf) for t in MapType
                   if t > top and t not in MAP_DEFS and not t.is_map_in_map)


# --- programs --------------------------------------------------------------------------------

RET0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
# Program types the kernel loads only with a matching expected_attach_type (or flags).
PROG_DEFS: dict[ProgramType, tuple[AttachType, int]] = {
    ProgramType.CGROUP_SOCK_ADDR: (AttachType.CGROUP_INET6_BIND, 0),
    ProgramType.CGROUP_SOCKOPT: (AttachType.CGROUP_SETSOCKOPT, 0),
    ProgramType.SK_LOOKUP: (AttachType.SK_LOOKUP, 0),
    ProgramType.NETFILTER: (AttachType.NETFILTER, 0),
    ProgramType.SYSCALL: (AttachType.CGROUP_INET_INGRESS, 1 << 4),  # BPF_F_SLEEPABLE
}
# Program types that load only against a kernel function, struct or program to attach to.
NEEDS_TARGET = (ProgramType.TRACING, ProgramType.EXT, ProgramType.LSM,
                ProgramType.STRUCT_OPS)


def kernel_loads(t: ProgramType) -> bool:
    attach, flags = PROG_DEFS.get(t, (0, 0))
    res = progs.prog_load(int(t), RET0, "GPL", expected_attach_type=int(attach),
                          prog_flags=flags)
    if res.fd < 0:
        assert -res.fd in REFUSED, f"loading a {t.name} program: errno {-res.fd}"
        return False
    close_fd(res.fd)
    return True


@pytest.mark.parametrize("t", [t for t in ProgramType if t not in NEEDS_TARGET],
                         ids=lambda t: t.name)
def test_program_type_probe_matches_the_kernel(t: ProgramType) -> None:
    assert features.has_program_type(t) is kernel_loads(t)


@pytest.mark.parametrize("t", NEEDS_TARGET, ids=lambda t: t.name)
def test_targeted_program_type_probe_matches_the_kernels_btf(t: ProgramType) -> None:
    assert features.has_program_type(t) is (f"BPF_PROG_TYPE_{t.name}"
                                            in kernel_enum("bpf_prog_type"))


# --- map features ----------------------------------------------------------------------------

def test_probes_are_cached() -> None:
    features.has_map_type(MapType.HASH)
    hits = features.has_map_type.cache_info().hits
    assert features.has_map_type(MapType.HASH) is True
    assert features.has_map_type.cache_info().hits == hits + 1


def test_probes_leave_nothing_behind() -> None:
    # The suite-wide checks fail this test if a probe leaks an fd or a kernel object.
    for t in MapType:
        features.has_map_type(t)
    for p in ProgramType:
        features.has_program_type(p)
    features.has_inner_map_flag()
    features.has_batch(MapType.HASH)
    features.has_map_in_map_batch()
    features.has_mmapable_array()


def test_inner_map_flag_probe_matches_the_kernel() -> None:
    """With BPF_F_INNER_MAP the kernel lets an inner array of another size in."""
    inner = MapSpec(MapType.ARRAY, value_size=4, max_entries=1, flags=MapFlags.INNER_MAP)
    try:
        template = Map.create(inner)
    except BPFError as exc:
        assert exc.errno == errno.EINVAL  # an unknown map flag
        assert features.has_inner_map_flag() is False
        return
    with template, Map.create(inner.replace(max_entries=7)) as bigger:
        outer_fd = ops.map_create(int(MapType.ARRAY_OF_MAPS), 4, 4, 1,
                                  inner_map_fd=template.fd)
        try:
            update(outer_fd, struct.pack("<I", 0), struct.pack("<I", bigger.fd))
            works = True
        except BPFError as exc:
            assert exc.errno == errno.EINVAL
            works = False
        finally:
            close_fd(outer_fd)
    assert features.has_inner_map_flag() is works


BATCH_TYPES = [MapType.HASH, MapType.ARRAY, MapType.PERCPU_HASH, MapType.LRU_HASH,
               MapType.HASH_OF_MAPS, MapType.ARRAY_OF_MAPS]


@pytest.mark.parametrize("t", BATCH_TYPES, ids=lambda t: t.name)
def test_batch_probe_matches_a_real_batch(t: MapType) -> None:
    """BPF_MAP_LOOKUP_BATCH on a map holding one element returns that element, or the
    kernel refuses the command for the type."""
    key, value = 4, 4
    vsize = value * ops.possible_cpus() if t.is_percpu else value
    inner = Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) \
        if t.is_map_in_map else None
    try:
        fd = ops.map_create(int(t), key, value, 4, inner_map_fd=inner.fd if inner else 0)
        try:
            stored = inner.fd if inner else 7
            update(fd, struct.pack("<I", 1), struct.pack("<I", stored) * (vsize // 4))
            b = ops.Batch(fd, key, vsize, 4, key)
            ret = b.run(Cmd.BPF_MAP_LOOKUP_BATCH, 4, first=True)
            if ret < 0 and -ret in REFUSED:
                works = False
            else:
                assert ret in (0, -errno.ENOENT), f"LOOKUP_BATCH on {t.name}: errno {-ret}"
                keys = [struct.unpack_from("<I", b.keys, i * key)[0] for i in range(b.count)]
                works = 1 in keys
                assert works, f"LOOKUP_BATCH on {t.name} did not return the key: {keys}"
        finally:
            close_fd(fd)
    finally:
        if inner is not None:
            inner.close()
    assert features.has_batch(t) is works
    if t == MapType.HASH_OF_MAPS:
        assert features.has_map_in_map_batch() is works


def test_mmapable_array_probe_matches_the_kernel() -> None:
    try:
        m = Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=1,
                               flags=MapFlags.MMAPABLE))
    except BPFError as exc:
        assert exc.errno == errno.EINVAL
        assert features.has_mmapable_array() is False
        return
    with m:
        mm = mmap.mmap(m.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        mm.close()
    assert features.has_mmapable_array() is True


# -- instruction and kfunc probes, checked with other programs than the probes load ----------
def loads(insns: list[object], prog_type: ProgramType = ProgramType.XDP) -> bool:
    from purebpf.asm import assemble

    res = progs.prog_load(int(prog_type), assemble(insns).encode(), "GPL")  # type: ignore
    if res.fd >= 0:
        close_fd(res.fd)
        return True
    assert res.fd in (-errno.EINVAL, -errno.EACCES), f"load: errno {-res.fd}"
    return False


def test_isa_v4_probe_matches_the_kernel() -> None:
    from purebpf.asm import R0, R1, BSwap, Exit, Mov, SDiv

    # the probe loads a MOVSX; here a signed division and a byte swap
    assert loads([Mov(R0, -9), SDiv(R0, -3), Exit()]) is features.has_isa_v4()
    assert loads([Mov(R1, 1), Mov(R0, 0x1234), BSwap(R0, 16), Exit()]) is \
        features.has_isa_v4()


def test_may_goto_probe_matches_the_kernel() -> None:
    from purebpf.asm import R0, Add, Exit, JLt, Label, MayGoto, Mov

    loop = [Mov(R0, 0), Label("top"), MayGoto("out"), Add(R0, 1), JLt(R0, 100, "top"),
            Label("out"), Exit()]
    assert loads(loop) is features.has_may_goto()


def test_load_acquire_probe_matches_the_kernel() -> None:
    from purebpf.asm import R0, R1, R10, U32, Exit, LoadAcquire, Mov, StoreRelease

    body = [Mov(R1, 5), StoreRelease(R10, -4, R1, U32), LoadAcquire(R0, R10, -4, U32), Exit()]
    assert loads(body) is features.has_load_acquire()


def test_kfunc_probe_matches_the_kernel() -> None:
    from purebpf.asm import R0, CallKfunc, Exit, Mov

    assert features.has_kfunc("no_such_kfunc_in_any_kernel") is False
    if not features.has_kfunc("bpf_rcu_read_lock"):  # then no kernel BTF names it
        vmlinux_btf = pathlib.Path("/sys/kernel/btf/vmlinux")
        assert not vmlinux_btf.exists() or b"bpf_rcu_read_lock\0" not in vmlinux_btf.read_bytes()
        return
    from purebpf.btf import Func
    from purebpf.btf.attach import vmlinux

    lock = vmlinux().find_id("bpf_rcu_read_lock", Func)
    unlock = vmlinux().find_id("bpf_rcu_read_unlock", Func)
    assert loads([CallKfunc(lock), CallKfunc(unlock), Mov(R0, 0), Exit()])


def test_spin_lock_template_probe_matches_the_kernel() -> None:
    """The probe builds its own BTF; the kernel's answer here is whether an object that
    declares such an outer map in C loads."""
    import purebpf

    data = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "spinlock_inner.o"
    try:
        with purebpf.load(data):
            loaded = True
    except purebpf.NotSupportedError as exc:
        assert exc.feature == "bpf_spin_lock in inner-map templates"
        loaded = False
    assert features.has_spin_lock_inner_map() is loaded


def test_arena_probe_is_the_map_type_probe() -> None:
    assert features.has_arena() is features.has_map_type(MapType.ARENA)
