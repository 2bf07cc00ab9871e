"""Thin wrappers around the bpf() commands that are not per-element hot paths.

Each function fills one attr structure and calls :func:`syscall.bpf`; errors propagate as
:class:`~purebpf.errors.BPFError` naming the command, and callers add the object's name.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
import mmap
import os
from typing import Any

from . import constants as C
from .attrs import (BpfMapInfo, GetIdAttr, InfoAttr, MapBatchAttr, MapCreateAttr, MapFdAttr,
                    ObjAttr)
from ..errors import InvalidArgumentError
from .syscall import bpf, bpf_errno


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0,
               *, inner_map_fd: int = 0, numa_node: int | None = None, name: str = "",
               btf_fd: int = 0, btf_key_type_id: int = 0, btf_value_type_id: int = 0,
               map_extra: int = 0) -> int:
    """BPF_MAP_CREATE; returns the new map's fd."""
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                         map_name=name.encode(), btf_fd=btf_fd, btf_key_type_id=btf_key_type_id,
                         btf_value_type_id=btf_value_type_id, map_extra=map_extra)
    if numa_node is not None:
        attr.numa_node = numa_node
        attr.map_flags |= C.BPF_F_NUMA_NODE
    return bpf(C.Cmd.BPF_MAP_CREATE, attr)


def map_info(fd: int) -> BpfMapInfo:
    """BPF_OBJ_GET_INFO_BY_FD for a map fd."""
    info = BpfMapInfo()
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return info


def _path_buffer(path: str, what: str) -> Any:
    """``path`` as a NUL-terminated C string; a path with a NUL byte in it is refused (the
    kernel would see only the part before it)."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise InvalidArgumentError(_errno.EINVAL, f"{what} {path!r}: the path contains a NUL "
                                   "byte")
    return ctypes.create_string_buffer(raw)


def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: pin the object behind ``fd`` at ``path`` (in a bpffs)."""
    p = _path_buffer(path, "pin at")
    bpf(C.Cmd.BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(p), bpf_fd=fd))


def obj_get(path: str, flags: int = 0) -> int:
    """BPF_OBJ_GET: open the object pinned at ``path``; returns a new fd."""
    p = _path_buffer(path, "open pinned")
    return bpf(C.Cmd.BPF_OBJ_GET, ObjAttr(pathname=ctypes.addressof(p), file_flags=flags))


def map_next_id(start: int) -> int | None:
    """BPF_MAP_GET_NEXT_ID: the next map id after ``start``, or None at the end."""
    attr = GetIdAttr(id=start)
    ret = bpf_errno(C.Cmd.BPF_MAP_GET_NEXT_ID, attr, 8)
    if ret == -_errno.ENOENT:
        return None
    if ret < 0:
        bpf(C.Cmd.BPF_MAP_GET_NEXT_ID, attr, 8)  # raises the error with its errno
    return int(attr.next_id)


def map_fd_by_id(map_id: int, flags: int = 0) -> int:
    """BPF_MAP_GET_FD_BY_ID; returns a new fd (ENOENT when no such map)."""
    return bpf(C.Cmd.BPF_MAP_GET_FD_BY_ID, GetIdAttr(id=map_id, open_flags=flags), 12)


def map_fd_by_id_errno(map_id: int, flags: int = 0) -> int:
    """BPF_MAP_GET_FD_BY_ID returning ``-errno`` instead of raising."""
    return bpf_errno(C.Cmd.BPF_MAP_GET_FD_BY_ID, GetIdAttr(id=map_id, open_flags=flags), 12)


def map_freeze(fd: int) -> None:
    """BPF_MAP_FREEZE: no more writes from user space."""
    bpf(C.Cmd.BPF_MAP_FREEZE, MapFdAttr(map_fd=fd))


class Batch:
    """One batch command's attr with its key/value buffers for up to ``capacity`` elements."""

    def __init__(self, fd: int, key_size: int, value_size: int, capacity: int,
                 token_size: int) -> None:
        self.capacity = capacity
        self.keys: Any = ctypes.create_string_buffer(max(key_size * capacity, 1))
        self.values: Any = ctypes.create_string_buffer(max(value_size * capacity, 1))
        self.in_token: Any = ctypes.create_string_buffer(max(token_size, 1))
        self.out_token: Any = ctypes.create_string_buffer(max(token_size, 1))
        self.attr = MapBatchAttr(keys=ctypes.addressof(self.keys),
                                 values=ctypes.addressof(self.values), map_fd=fd)

    def run(self, cmd: int, count: int, *, first: bool = False, elem_flags: int = 0) -> int:
        """Run ``cmd`` for ``count`` elements; return ``-errno`` or 0. ``.count`` is updated."""
        a = self.attr
        a.count = count
        a.elem_flags = elem_flags
        a.in_batch = 0 if first else ctypes.addressof(self.in_token)
        a.out_batch = ctypes.addressof(self.out_token)
        return bpf_errno(cmd, a)

    @property
    def count(self) -> int:
        return int(self.attr.count)

    def advance(self) -> None:
        """Copy the kernel's out_batch token into in_batch for the next call."""
        ctypes.memmove(self.in_token, self.out_token, ctypes.sizeof(self.in_token))


@functools.cache
def possible_cpus() -> int:
    """Number of possible CPUs (per-CPU map values have one slot for each)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        return os.cpu_count() or 1
    # The kernel lays per-CPU values out for each possible CPU (num_possible_cpus()):
    # count the CPUs in the mask ("0-3,8-11" is 8), not the highest number.
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return max(n, 1)


def mmap_map(fd: int, length: int, writable: bool) -> mmap.mmap:
    """mmap a BPF_F_MMAPABLE array's values (shared with the kernel and its programs)."""
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    return mmap.mmap(fd, length, mmap.MAP_SHARED, prot)


def dup(fd: int) -> int:
    """A new fd for the same object, close-on-exec."""
    return os.dup(fd)
