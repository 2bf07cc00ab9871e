"""Kernel feature probes: "does this kernel support X?", answered by trying, and cached.

Each probe creates the smallest object that shows the feature and closes it again. Nothing
here parses kernel version strings.
"""

from __future__ import annotations

import errno
import functools

from ._sys import ops, progs
from ._sys.constants import Cmd
from ._sys.syscall import close_fd
from .errors import ENOTSUPP, BPFError, error_for
from .types import AttachType, MapFlags, MapType, ProgramType

_UNSUPPORTED = (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP)


def _try_create(map_type: int, key_size: int, value_size: int, max_entries: int,
                flags: int = 0, inner_map_fd: int = 0, map_extra: int = 0) -> int | None:
    try:
        return ops.map_create(map_type, key_size, value_size, max_entries, flags,
                              inner_map_fd=inner_map_fd, map_extra=map_extra)
    except BPFError as exc:
        if exc.errno in _UNSUPPORTED:
            return None
        raise


# Smallest creatable definition per type: (key_size, value_size, max_entries, flags, extra).
_PROBE_DEFS: dict[MapType, tuple[int, int, int, int, int]] = {
    MapType.LPM_TRIE: (8, 4, 1, int(MapFlags.NO_PREALLOC), 0),
    MapType.STACK_TRACE: (4, 8, 1, 0, 0),
    MapType.QUEUE: (0, 4, 1, 0, 0),
    MapType.STACK: (0, 4, 1, 0, 0),
    MapType.RINGBUF: (0, 0, 4096, 0, 0),
    MapType.USER_RINGBUF: (0, 0, 4096, 0, 0),
    MapType.BLOOM_FILTER: (0, 4, 1, 0, 0),
    MapType.SK_STORAGE: (4, 4, 0, int(MapFlags.NO_PREALLOC), 0),
    MapType.INODE_STORAGE: (4, 4, 0, int(MapFlags.NO_PREALLOC), 0),
    MapType.TASK_STORAGE: (4, 4, 0, int(MapFlags.NO_PREALLOC), 0),
    MapType.CGRP_STORAGE: (4, 4, 0, int(MapFlags.NO_PREALLOC), 0),
    MapType.CGROUP_STORAGE: (16, 4, 0, 0, 0),
    MapType.PERCPU_CGROUP_STORAGE: (16, 4, 0, 0, 0),
    MapType.ARENA: (0, 0, 1, int(MapFlags.MMAPABLE), 0),
}


# Types that cannot be created without BTF or a kernel object behind them: the kernel's
# answer without those is EINVAL whether or not it knows the type. Map types are numbered in
# the order they were added, so such a type exists if a later, simply creatable one does.
_NEEDS_BTF = frozenset({MapType.STRUCT_OPS, MapType.SK_STORAGE, MapType.INODE_STORAGE,
                        MapType.TASK_STORAGE, MapType.CGRP_STORAGE})


@functools.cache
def has_map_type(map_type: MapType) -> bool:
    """Can this kernel create maps of ``map_type``? (Probed by creating one.)"""
    map_type = MapType(map_type)
    if map_type.is_map_in_map:
        return _has_map_in_map(map_type)
    if map_type in _NEEDS_BTF:
        return highest_map_type() > map_type
    return _probe(map_type)


def _probe(map_type: MapType) -> bool:
    key, value, max_entries, flags, extra = _PROBE_DEFS.get(map_type, (4, 4, 1, 0, 0))
    fd = _try_create(int(map_type), key, value, max_entries, flags, map_extra=extra)
    if fd is None:
        return False
    close_fd(fd)
    return True


@functools.cache
def highest_map_type() -> MapType:
    """The highest-numbered map type this kernel creates without BTF."""
    for t in sorted(MapType, reverse=True):
        if t not in _NEEDS_BTF and not t.is_map_in_map and t != MapType.UNSPEC and _probe(t):
            return t
    return MapType.UNSPEC


def _has_map_in_map(outer_type: MapType, inner_flags: int = 0) -> bool:
    inner = _try_create(int(MapType.ARRAY), 4, 4, 1, inner_flags)
    if inner is None:
        return False
    try:
        fd = _try_create(int(outer_type), 4, 4, 1, 0, inner_map_fd=inner)
        if fd is None:
            return False
        close_fd(fd)
        return True
    finally:
        close_fd(inner)


@functools.cache
def has_inner_map_flag() -> bool:
    """BPF_F_INNER_MAP (5.10+): inner ARRAY maps of different max_entries in one outer map."""
    return _has_map_in_map(MapType.ARRAY_OF_MAPS, int(MapFlags.INNER_MAP))


@functools.cache
def has_batch(map_type: MapType) -> bool:
    """Does BPF_MAP_LOOKUP_BATCH work on ``map_type`` (5.6+; outer maps 5.19+)?"""
    map_type = MapType(map_type)
    inner = None
    if map_type.is_map_in_map:
        inner = _try_create(int(MapType.ARRAY), 4, 4, 1)
        if inner is None:
            return False
    try:
        key, value, max_entries, flags, extra = _PROBE_DEFS.get(map_type, (4, 4, 1, 0, 0))
        fd = _try_create(int(map_type), key, value, max_entries, flags,
                         inner_map_fd=inner or 0, map_extra=extra)
        if fd is None:
            return False
        try:
            batch = ops.Batch(fd, key, value, 1, max(key, 4))
            ret = batch.run(Cmd.BPF_MAP_LOOKUP_BATCH, 1, first=True)
            return ret == 0 or ret == -errno.ENOENT
        finally:
            close_fd(fd)
    finally:
        if inner is not None:
            close_fd(inner)


def has_map_in_map_batch() -> bool:
    """Batch commands on ARRAY_OF_MAPS / HASH_OF_MAPS (5.19+)."""
    return has_batch(MapType.HASH_OF_MAPS)


def has_mmapable_array() -> bool:
    """BPF_F_MMAPABLE arrays (5.5+)."""
    return _has_flagged_array(int(MapFlags.MMAPABLE))


@functools.cache
def _has_flagged_array(flags: int) -> bool:
    fd = _try_create(int(MapType.ARRAY), 4, 8, 1, flags)
    if fd is None:
        return False
    close_fd(fd)
    return True


_RET0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
# Program types that cannot load without an attach target (BTF id or program fd).
_NEEDS_TARGET = frozenset({ProgramType.TRACING, ProgramType.EXT, ProgramType.LSM,
                           ProgramType.STRUCT_OPS})


# Program types that need an expected attach type (or flags) to load at all.
_PROG_PROBE: dict[ProgramType, tuple[AttachType, int]] = {
    ProgramType.CGROUP_SOCK_ADDR: (AttachType.CGROUP_INET4_CONNECT, 0),
    ProgramType.CGROUP_SOCKOPT: (AttachType.CGROUP_GETSOCKOPT, 0),
    ProgramType.SK_LOOKUP: (AttachType.SK_LOOKUP, 0),
    ProgramType.NETFILTER: (AttachType.NETFILTER, 0),
    ProgramType.SYSCALL: (AttachType.CGROUP_INET_INGRESS, 1 << 4),  # BPF_F_SLEEPABLE
}


@functools.cache
def has_program_type(prog_type: ProgramType) -> bool:
    """Can this kernel load programs of ``prog_type``? (Probed with ``r0 = 0; exit``.)"""
    prog_type = ProgramType(prog_type)
    if prog_type in _NEEDS_TARGET:
        return any(has_program_type(t) for t in ProgramType
                   if t > prog_type and t not in _NEEDS_TARGET)
    attach, flags = _PROG_PROBE.get(prog_type, (0, 0))
    res = progs.prog_load(int(prog_type), _RET0, "GPL", expected_attach_type=int(attach),
                          prog_flags=flags)
    if res.fd >= 0:
        close_fd(res.fd)
        return True
    if prog_type in (ProgramType.XDP, ProgramType.SOCKET_FILTER):
        # Types any kernel with bpf() loads: EPERM here is privileges, not support.
        _no_privilege(res.fd, f"load a {prog_type.name} program")
    return False


# -- instructions: does the verifier accept them? ---------------------------------------------
def _loads(insns: list[object], prog_type: ProgramType = ProgramType.XDP) -> bool:
    """Whether a program of these assembler instructions loads."""
    from .asm import assemble

    res = progs.prog_load(int(prog_type), assemble(insns).encode(), "GPL")  # type: ignore
    if res.fd >= 0:
        close_fd(res.fd)
        return True
    _no_privilege(res.fd, "load a probe program")
    return False


def _no_privilege(ret: int, what: str) -> None:
    """Raise BPFPermissionError for -EPERM/-EACCES: without privileges a probe cannot tell
    "unsupported" from "not allowed", and must not answer (and cache) "unsupported"."""
    if ret in (-errno.EPERM, -errno.EACCES):
        raise error_for(-ret, f"feature probe: {what}: not permitted")


@functools.cache
def has_isa_v4() -> bool:
    """BPF ISA v4 instructions (6.6+): sign-extending moves and loads (MOVSX, LDSX), signed
    division and modulo (SDIV, SMOD), unconditional byte swaps (BSWAP) and 32-bit jumps
    (GOTOL), which clang emits for ``-mcpu=v4``. Probed by loading ``r0 = (s8)r0``."""
    from .asm import R0, Exit, Mov, MovSX

    return _loads([Mov(R0, 0), MovSX(R0, R0, 8), Exit()])


@functools.cache
def has_may_goto() -> bool:
    """The ``may_goto`` instruction (6.9+): a loop the verifier cannot bound is accepted when
    it offers a way out (``can_loop`` in C). Probed by loading one."""
    from .asm import R0, Exit, Label, MayGoto, Mov

    # Jump over one instruction: 6.12 refuses a may_goto whose offset is 0 (6.18 accepts).
    return _loads([Mov(R0, 0), MayGoto("out"), Mov(R0, 1), Label("out"), Exit()])


@functools.cache
def has_load_acquire() -> bool:
    """Load-acquire and store-release atomics (6.15+: ``smp_load_acquire`` and
    ``smp_store_release`` in C). Probed by loading a store-release and a load-acquire."""
    from .asm import R0, R1, R10, U64, Exit, LoadAcquire, Mov, StoreRelease

    return _loads([Mov(R1, 1), StoreRelease(R10, -8, R1, U64),
                   LoadAcquire(R0, R10, -8, U64), Exit()])


def has_arena() -> bool:
    """BPF arenas (6.9+): ARENA maps, memory shared by programs and user space, and the
    ``addr_space_cast`` instruction."""
    return has_map_type(MapType.ARENA)


@functools.cache
def has_kfunc(name: str) -> bool:
    """Does the kernel's BTF (vmlinux) have a function ``name``, such as a kfunc like
    ``bpf_rcu_read_lock`` (6.2+)? Whether a given program type may call it is the
    verifier's to say at load time. False without kernel BTF."""
    from .btf import Func
    from .btf.attach import vmlinux
    from .btf.errors import BTFError

    try:
        kernel = vmlinux()
    except (OSError, BTFError):
        return False
    try:
        kernel.find_id(name, Func)
    except (BTFError, KeyError, LookupError):
        return False
    return True


@functools.cache
def has_bpf_cookie() -> bool:
    """The bpf_get_attach_cookie() helper (5.15+): a value given at attach time that the
    program reads back (USDT and multi-attach programs use it). Probed as libbpf does, by
    loading a TRACEPOINT program that calls it."""
    from .asm import Call, Exit

    return _loads([Call("get_attach_cookie"), Exit()], ProgramType.TRACEPOINT)


# A BTF object for a map value that holds a bpf_spin_lock:
#   [1] int (4 bytes, signed)
#   [2] struct bpf_spin_lock { int val; }
#   [3] struct val { struct bpf_spin_lock lock; int x; }
def _spin_lock_btf() -> bytes:
    import struct

    strings = b"\0int\0bpf_spin_lock\0val\0lock\0x\0"
    s_int, s_lock_t, s_val, s_lock, s_x = 1, 5, 19, 23, 28
    types = (struct.pack("=III", s_int, 1 << 24, 4) + struct.pack("=I", 1 << 24 | 32)
             + struct.pack("=III", s_lock_t, 4 << 24 | 1, 4) + struct.pack("=III", s_val, 1, 0)
             + struct.pack("=III", s_val, 4 << 24 | 2, 8)
             + struct.pack("=III", s_lock, 2, 0) + struct.pack("=III", s_x, 1, 32))
    header = struct.pack("=HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    return header + types + strings


@functools.cache
def has_spin_lock_inner_map() -> bool:
    """Can an inner-map template's value hold a bpf_spin_lock? Linux 6.1 refuses such a
    template when the outer map is created (ENOTSUPP); newer kernels accept it (and then
    compare the special fields of every inner map with the template's)."""
    res = progs.btf_load(_spin_lock_btf())
    if res.fd < 0:
        _no_privilege(res.fd, "load BTF")
        return False
    try:
        try:
            inner = ops.map_create(int(MapType.ARRAY), 4, 8, 1, btf_fd=res.fd,
                                   btf_key_type_id=1, btf_value_type_id=3)
        except BPFError as exc:
            if exc.errno in _UNSUPPORTED:
                return False
            raise
        try:
            fd = _try_create(int(MapType.ARRAY_OF_MAPS), 4, 4, 1, inner_map_fd=inner)
        finally:
            close_fd(inner)
        if fd is None:
            return False
        close_fd(fd)
        return True
    finally:
        close_fd(res.fd)
