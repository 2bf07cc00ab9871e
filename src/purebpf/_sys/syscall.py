"""The bpf() syscall: the single place purebpf enters the kernel.

Two entry points share one libc ``syscall()``:

* :func:`bpf` releases the GIL (ctypes ``CDLL``) and raises :class:`~purebpf.errors.BPFError`.
  Used for everything that may block: map creation, outer-map writes (the kernel waits one
  RCU grace period, ~8 ms), program loads and test runs.
* :class:`ElemIO` binds the element commands of one map to preallocated key/value/attr
  buffers and calls through ``PyDLL`` (the GIL stays held: a plain map's element syscall
  takes about a microsecond and releasing the GIL would cost more than the call). The
  callables return the raw result (``-1`` on error) and :func:`last_errno` gives the errno,
  so the hot path allocates nothing and raises nothing itself.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
import os
from collections.abc import Callable
from typing import Any

from ..errors import NotSupportedError, error_for
from . import constants as C
from .attrs import MapElemAttr

_libc = ctypes.CDLL(None, use_errno=True)
_pylibc = ctypes.PyDLL(None, use_errno=True)
_syscall_nogil = _libc.syscall
_syscall_gil = _pylibc.syscall
_NR = C.NR_BPF

last_errno: Callable[[], int] = ctypes.get_errno

def cmd_name(cmd: int) -> str:
    """``BPF_MAP_CREATE`` for 0, and so on."""
    try:
        return C.Cmd(cmd).name
    except ValueError:
        return f"bpf cmd {cmd}"


def _no_syscall() -> NotSupportedError:
    import platform

    return NotSupportedError(
        _errno.ENOSYS,
        f"bpf(): no syscall number known for machine {platform.machine()!r}",
        feature="bpf syscall",
    )


def bpf(cmd: int, attr: ctypes.Structure, size: int | None = None) -> int:
    """Call bpf(cmd, &attr, size) with the GIL released; return the result or raise.

    Raises :class:`BPFError` (or the subclass its errno maps to) naming the command.
    """
    if _NR is None:
        raise _no_syscall()
    ret: int = _syscall_nogil(_NR, cmd, ctypes.byref(attr),
                              ctypes.sizeof(attr) if size is None else size)
    if ret < 0:
        code = ctypes.get_errno()
        if code == _errno.ENOSYS:
            raise NotSupportedError(code, f"{cmd_name(cmd)}: this kernel has no bpf() syscall",
                                    feature="bpf syscall")
        raise error_for(code, f"{cmd_name(cmd)} failed")
    return ret


def bpf_errno(cmd: int, attr: ctypes.Structure, size: int | None = None) -> int:
    """Like :func:`bpf` but return ``-errno`` instead of raising (for callers that branch)."""
    if _NR is None:
        raise _no_syscall()
    ret: int = _syscall_nogil(_NR, cmd, ctypes.byref(attr),
                              ctypes.sizeof(attr) if size is None else size)
    return -ctypes.get_errno() if ret < 0 else ret


class ElemIO:
    """Element commands of one map, bound to preallocated buffers.

    ``key``, ``value`` and ``next_key`` are writable ctypes buffers of the map's key and
    value size (per-CPU maps: value size rounded to 8, times the number of possible CPUs).
    ``lookup``, ``delete``, ``next_key_of``, ``first_key`` and ``lookup_and_delete`` are
    zero-argument callables; ``update_any`` stores with BPF_ANY and ``update(flags)`` with
    any flags. Each returns the syscall's result: 0 on success, -1 with :func:`last_errno`.
    ``gil=False`` makes them release the GIL (outer maps, where writes wait for RCU).
    """

    __slots__ = ("key", "value", "next_key", "lookup", "delete", "update_any", "next_key_of",
                 "first_key", "lookup_and_delete", "_upd", "_upd_call", "key_addr",
                 "value_addr", "_attrs", "__weakref__")

    def __init__(self, fd: int, key_size: int, value_size: int, *, gil: bool = True) -> None:
        if _NR is None:
            raise _no_syscall()
        call: Any = _syscall_gil if gil else _syscall_nogil
        # Typed Any: ctypes char arrays accept bytes slices, which typeshed does not know.
        self.key: Any = ctypes.create_string_buffer(max(key_size, 1))
        self.next_key: Any = ctypes.create_string_buffer(max(key_size, 1))
        self.value: Any = ctypes.create_string_buffer(max(value_size, 1))
        self.key_addr = ctypes.addressof(self.key)
        self.value_addr = ctypes.addressof(self.value)
        size = ctypes.sizeof(MapElemAttr)
        # QUEUE, STACK and BLOOM_FILTER have no key: the kernel wants a NULL key pointer.
        kaddr = self.key_addr if key_size else 0
        elem = MapElemAttr(map_fd=fd, key=kaddr, value=self.value_addr)
        upd = MapElemAttr(map_fd=fd, key=kaddr, value=self.value_addr)
        nxt = MapElemAttr(map_fd=fd, key=kaddr, value=ctypes.addressof(self.next_key))
        first = MapElemAttr(map_fd=fd, key=0, value=ctypes.addressof(self.next_key))
        # BPF_MAP_DELETE_ELEM's last field is key: a non-zero value pointer is EINVAL
        # (CHECK_ATTR), so delete gets an attr of its own with value left at 0.
        dele = MapElemAttr(map_fd=fd, key=kaddr)
        self._upd = upd
        self._attrs = (elem, upd, nxt, first, dele)  # the callables below point into these

        def p(cmd: int, attr: ctypes.Structure) -> Callable[[], int]:
            # A ctypes Structure passed without argtypes would be copied by value: pass
            # its address. int(cmd) keeps the IntEnum out of the per-call conversion.
            return functools.partial(call, _NR, int(cmd), ctypes.c_void_p(ctypes.addressof(attr)),
                                     size)

        self.lookup = p(C.Cmd.BPF_MAP_LOOKUP_ELEM, elem)
        self.delete = p(C.Cmd.BPF_MAP_DELETE_ELEM, dele)
        self.lookup_and_delete = p(C.Cmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM, elem)
        self.update_any = p(C.Cmd.BPF_MAP_UPDATE_ELEM, elem)
        self._upd_call = p(C.Cmd.BPF_MAP_UPDATE_ELEM, upd)
        self.next_key_of = p(C.Cmd.BPF_MAP_GET_NEXT_KEY, nxt)
        self.first_key = p(C.Cmd.BPF_MAP_GET_NEXT_KEY, first)

    def invalidate(self) -> None:
        """Point every bound call at fd -1 (EBADF), after the map's fd was closed.

        The fd number may be reused by an unrelated file at once; the bound attrs must
        never reach it.
        """
        for attr in self._attrs:
            attr.map_fd = 0xFFFFFFFF

    def update(self, flags: int) -> int:
        """BPF_MAP_UPDATE_ELEM with ``flags`` (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
        self._upd.flags = flags
        ret: int = self._upd_call()
        return ret


def close_fd(fd: int) -> None:
    """Close a file descriptor, ignoring EBADF (already closed elsewhere)."""
    try:
        os.close(fd)
    except OSError as exc:
        if exc.errno != _errno.EBADF:
            raise
