"""KernelObject: the fd-owning base of Map, Program and BTF handles."""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ._introspect import check_kind
from ._sys import ops
from ._sys.syscall import close_fd
from .errors import (BPFError, ClosedError, InvalidArgumentError, PinExistsError,
                     PinNotFoundError, error_for)


def _warn_unclosed(fd: int, desc: str) -> None:
    close_fd(fd)
    warnings.warn(f"unclosed {desc} (fd {fd}); close it or use 'with'", ResourceWarning,
                  stacklevel=2)


def iter_ids(next_id: Callable[[int], int | None]) -> Iterator[int]:
    """Walk a BPF_*_GET_NEXT_ID command from the start: every id, ascending."""
    cur = 0
    while (nxt := next_id(cur)) is not None:
        yield nxt
        cur = nxt


def _no_nul(path: str, what: str) -> None:
    """Refuse a path with a NUL byte: the kernel would see only the part before it."""
    if "\0" in path:
        raise InvalidArgumentError(errno.EINVAL, f"{what} {path!r}: the path contains a NUL "
                                   "byte")


def open_pinned(path: str, kind: str) -> int:
    """BPF_OBJ_GET on ``path``, checked to be a ``kind`` ("map", "program"); a new fd.

    The hints name the usual causes: no such pin, a path outside a bpffs, dots in names."""
    what = f"open pinned {kind} {path!r}"
    _no_nul(path, f"open pinned {kind}")
    try:
        fd = ops.obj_get(path)
    except BPFError as exc:
        hint = ""
        if exc.errno == errno.EPERM and "." in os.path.basename(path):
            hint = "bpffs refuses '.' in names, so nothing can be pinned there"
        elif exc.errno in (errno.EPERM, errno.EACCES, errno.EINVAL):
            hint = f"is {os.path.dirname(path) or '.'} in a mounted bpffs?"
        if exc.errno == errno.ENOENT:
            raise PinNotFoundError(exc.errno, f"{what}: nothing is pinned there",
                                   hint=hint) from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}", hint=hint) from None
    try:
        check_kind(fd, kind, what)
    except BPFError:
        close_fd(fd)
        raise
    return fd


class KernelObject:
    """Owns exactly one fd. ``close()`` is idempotent, ``with`` closes, and an object that is
    garbage-collected while open is closed with a ``ResourceWarning`` (unless ``quiet``:
    objects purebpf opened on the caller's behalf, such as inner maps from a lookup)."""

    _desc: str
    _info: Any  # the kernel's info for the object: at least .id and .name
    # Held while the fd number is in use by pin(); Map sets its own lock, which close()
    # takes too, so the number cannot be closed and reused in between.
    _lock: Any = contextlib.nullcontext()

    @property
    def id(self) -> int:
        """The kernel's id for the object."""
        return int(self._info.id)

    @property
    def name(self) -> str:
        """The object's name in the kernel (at most 15 characters)."""
        return str(self._info.name)

    def _own(self, fd: int, desc: str, quiet: bool) -> None:
        self._fd = fd
        self._desc = desc
        self._pin_path: str | None = None
        self._finalizer = (weakref.finalize(self, close_fd, fd) if quiet else
                           weakref.finalize(self, _warn_unclosed, fd, desc))

    @property
    def fd(self) -> int:
        """The file descriptor (raises ClosedError after close())."""
        if self._fd < 0:
            raise ClosedError(errno.EBADF, f"{self._desc} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _release(self) -> None:
        """Hook for subclasses: drop what points at the fd before it is closed."""

    def close(self) -> None:
        """Close the fd (idempotent). The kernel object lives on while pinned or referenced."""
        if self._fd < 0:
            return
        self._finalizer.detach()
        fd, self._fd = self._fd, -1
        try:
            self._release()
        finally:
            close_fd(fd)  # even if releasing what pointed at it failed

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin at ``path`` in a bpffs (BPF_OBJ_PIN); the object then outlives this process."""
        p = os.fspath(path)
        _no_nul(p, f"pin {self._desc} at")
        try:
            with self._lock:
                ops.obj_pin(self.fd, p)
        except ClosedError:
            raise
        except BPFError as exc:
            hint = ""
            if exc.errno == errno.EEXIST:
                hint = "the path already exists: unpin it (or rm it) first, or pick another"
            elif exc.errno == errno.EPERM and "." in os.path.basename(p):
                hint = "bpffs refuses '.' in names: pick a name without dots"
            elif exc.errno in (errno.EPERM, errno.EINVAL, errno.ENOENT):
                hint = (f"is {os.path.dirname(p) or '.'} in a mounted bpffs "
                        "(mount -t bpf bpf /sys/fs/bpf)?")
            what = f"pin {self._desc} at {p!r}: {exc.strerror}"
            if exc.errno == errno.EEXIST:
                raise PinExistsError(errno.EEXIST, what, hint=hint) from None
            raise error_for(exc.errno, what, hint=hint) from None
        self._pin_path = p

    def unpin(self, path: str | os.PathLike[str] | None = None) -> None:
        """Remove the pin made by :meth:`pin` (or the one at ``path``)."""
        p = os.fspath(path) if path is not None else self._pin_path
        if p is None:
            raise InvalidArgumentError(errno.EINVAL, f"unpin {self._desc}: it was not pinned "
                                       "by this object; pass the path")
        what = f"unpin {self._desc} at {p!r}"
        _no_nul(p, f"unpin {self._desc} at")
        try:
            os.unlink(p)
        except FileNotFoundError:
            raise PinNotFoundError(errno.ENOENT, f"{what}: nothing is pinned there") from None
        except OSError as exc:
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
        if p == self._pin_path:
            self._pin_path = None
