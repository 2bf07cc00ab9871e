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


class UpdateFlags(enum.IntFlag):
    """Flags of BPF_MAP_UPDATE_ELEM: ``ANY`` (create or replace), ``NOEXIST``, ``EXIST``, ``LOCK``."""

    ANY = C.BPF_ANY
    NOEXIST = C.BPF_NOEXIST
    EXIST = C.BPF_EXIST
    LOCK = C.BPF_F_LOCK
