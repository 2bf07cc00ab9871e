"""Public enums: map types, map flags, update flags.

Members drop the kernel prefix (``MapType.HASH`` is ``BPF_MAP_TYPE_HASH``); values come
from :mod:`purebpf._sys.constants`, the one copy of the uapi numbers.
"""

from __future__ import annotations

import enum

from ._sys import constants as C


class MapType(enum.IntEnum):
    """``enum bpf_map_type``: ``MapType.ARRAY_OF_MAPS`` is ``BPF_MAP_TYPE_ARRAY_OF_MAPS``."""

    UNSPEC = C.BPF_MAP_TYPE_UNSPEC
    HASH = C.BPF_MAP_TYPE_HASH
    ARRAY = C.BPF_MAP_TYPE_ARRAY
    PROG_ARRAY = C.BPF_MAP_TYPE_PROG_ARRAY
    PERF_EVENT_ARRAY = C.BPF_MAP_TYPE_PERF_EVENT_ARRAY
    PERCPU_HASH = C.BPF_MAP_TYPE_PERCPU_HASH
    PERCPU_ARRAY = C.BPF_MAP_TYPE_PERCPU_ARRAY
    STACK_TRACE = C.BPF_MAP_TYPE_STACK_TRACE
    CGROUP_ARRAY = C.BPF_MAP_TYPE_CGROUP_ARRAY
    LRU_HASH = C.BPF_MAP_TYPE_LRU_HASH
    LRU_PERCPU_HASH = C.BPF_MAP_TYPE_LRU_PERCPU_HASH
    LPM_TRIE = C.BPF_MAP_TYPE_LPM_TRIE
    ARRAY_OF_MAPS = C.BPF_MAP_TYPE_ARRAY_OF_MAPS
    HASH_OF_MAPS = C.BPF_MAP_TYPE_HASH_OF_MAPS
    DEVMAP = C.BPF_MAP_TYPE_DEVMAP
    SOCKMAP = C.BPF_MAP_TYPE_SOCKMAP
    CPUMAP = C.BPF_MAP_TYPE_CPUMAP
    XSKMAP = C.BPF_MAP_TYPE_XSKMAP
    SOCKHASH = C.BPF_MAP_TYPE_SOCKHASH
    CGROUP_STORAGE = C.BPF_MAP_TYPE_CGROUP_STORAGE
    REUSEPORT_SOCKARRAY = C.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
    PERCPU_CGROUP_STORAGE = C.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
    QUEUE = C.BPF_MAP_TYPE_QUEUE
    STACK = C.BPF_MAP_TYPE_STACK
    SK_STORAGE = C.BPF_MAP_TYPE_SK_STORAGE
    DEVMAP_HASH = C.BPF_MAP_TYPE_DEVMAP_HASH
    STRUCT_OPS = C.BPF_MAP_TYPE_STRUCT_OPS
    RINGBUF = C.BPF_MAP_TYPE_RINGBUF
    INODE_STORAGE = C.BPF_MAP_TYPE_INODE_STORAGE
    TASK_STORAGE = C.BPF_MAP_TYPE_TASK_STORAGE
    BLOOM_FILTER = C.BPF_MAP_TYPE_BLOOM_FILTER
    USER_RINGBUF = C.BPF_MAP_TYPE_USER_RINGBUF
    CGRP_STORAGE = C.BPF_MAP_TYPE_CGRP_STORAGE
    ARENA = C.BPF_MAP_TYPE_ARENA

    @property
    def is_map_in_map(self) -> bool:
        """True for ARRAY_OF_MAPS and HASH_OF_MAPS (outer maps)."""
        return self in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)

    @property
    def is_percpu(self) -> bool:
        """True for types whose values are stored once per possible CPU."""
        return self in (MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                        MapType.PERCPU_CGROUP_STORAGE)

    @property
    def is_indexed(self) -> bool:
        """True for types whose keys are u32 indexes below max_entries (an index past the
        end is E2BIG): the arrays, and DEVMAP, CPUMAP, XSKMAP, SOCKMAP and
        REUSEPORT_SOCKARRAY, whose slots may also be empty."""
        return self.is_array or self in (MapType.DEVMAP, MapType.CPUMAP, MapType.XSKMAP,
                                         MapType.SOCKMAP, MapType.REUSEPORT_SOCKARRAY)

    @property
    def is_array(self) -> bool:
        """True for array-like types whose keys are the indices 0..max_entries-1."""
        return self in (MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.ARRAY_OF_MAPS,
                        MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY)


class MapFlags(enum.IntFlag):
    """``map_flags`` of BPF_MAP_CREATE: ``MapFlags.INNER_MAP`` is ``BPF_F_INNER_MAP``."""

    NO_PREALLOC = C.BPF_F_NO_PREALLOC
    NO_COMMON_LRU = C.BPF_F_NO_COMMON_LRU
    NUMA_NODE = C.BPF_F_NUMA_NODE
    RDONLY = C.BPF_F_RDONLY
    WRONLY = C.BPF_F_WRONLY
    STACK_BUILD_ID = C.BPF_F_STACK_BUILD_ID
    ZERO_SEED = C.BPF_F_ZERO_SEED
    RDONLY_PROG = C.BPF_F_RDONLY_PROG
    WRONLY_PROG = C.BPF_F_WRONLY_PROG
    CLONE = C.BPF_F_CLONE
    MMAPABLE = C.BPF_F_MMAPABLE
    PRESERVE_ELEMS = C.BPF_F_PRESERVE_ELEMS
    INNER_MAP = C.BPF_F_INNER_MAP
    LINK = C.BPF_F_LINK
    PATH_FD = C.BPF_F_PATH_FD
    VTYPE_BTF_OBJ_FD = C.BPF_F_VTYPE_BTF_OBJ_FD
    TOKEN_FD = C.BPF_F_TOKEN_FD
    SEGV_ON_FAULT = C.BPF_F_SEGV_ON_FAULT
    NO_USER_CONV = C.BPF_F_NO_USER_CONV


def flag_names(v: int) -> str:
    """``"NO_PREALLOC|INNER_MAP"`` for a map_flags value, ``"0"`` for none (unknown bits
    in hex)."""
    if not v:
        return "0"
    names = [f.name for f in MapFlags if f.name and v & f.value]
    rest = v & ~sum(f.value for f in MapFlags)
    if rest:
        names.append(hex(rest))
    return "|".join(str(n) for n in names)


class UpdateFlags(enum.IntFlag):
    """Flags of BPF_MAP_UPDATE_ELEM: ``ANY`` (create or replace), ``NOEXIST``, ``EXIST``, ``LOCK``."""

    ANY = C.BPF_ANY
    NOEXIST = C.BPF_NOEXIST
    EXIST = C.BPF_EXIST
    LOCK = C.BPF_F_LOCK


class ProgramType(enum.IntEnum):
    """``enum bpf_prog_type`` (the one copy of these numbers): ``XDP`` is ``BPF_PROG_TYPE_XDP``."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32


class AttachType(enum.IntEnum):
    """``enum bpf_attach_type`` (the one copy of these numbers): ``XDP`` is ``BPF_XDP``."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56
    TRACE_UPROBE_SESSION = 57


class LinkType(enum.IntEnum):
    """``enum bpf_link_type``: what kind of hook a bpf_link holds (``XDP`` is
    ``BPF_LINK_TYPE_XDP``)."""

    UNSPEC = 0
    RAW_TRACEPOINT = 1
    TRACING = 2
    CGROUP = 3
    ITER = 4
    NETNS = 5
    XDP = 6
    PERF_EVENT = 7
    KPROBE_MULTI = 8
    STRUCT_OPS = 9
    NETFILTER = 10
    TCX = 11
    UPROBE_MULTI = 12
    NETKIT = 13
    SOCKMAP = 14
