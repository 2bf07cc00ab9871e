"""BPF iterators (5.8+): a program the kernel runs once per object (map, task, map
element ...) whose bpf_seq_printf() output is read from a file descriptor.

:func:`attach_iter` makes the iterator link; :meth:`Iterator.read` runs one pass
(BPF_ITER_CREATE, then read(2) until end of file) and returns the program's output.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator as _Iter
from typing import TYPE_CHECKING

from .._sys import links as L
from ..errors import BPFError, NotSupportedError, error_for
from ..types import AttachType, ProgramType
from . import _tracefs
from ._link import Link, check_program

if TYPE_CHECKING:
    from .._map import Map
    from .._program import Program

_CHUNK = 64 * 1024
_NEEDS_MAP = ("bpf_map_elem", "bpf_sk_storage_map", "sockmap")


class Iterator(Link):
    """An iterator link. Each :meth:`read` (or iteration over the object, chunk by chunk)
    runs the program over every object anew; closing the link ends it."""

    def read(self) -> bytes:
        """Run the iterator once and return everything the program printed."""
        return b"".join(self.chunks())

    def text(self) -> str:
        """:meth:`read`, decoded as UTF-8."""
        return self.read().decode(errors="replace")

    def chunks(self) -> _Iter[bytes]:
        """One pass of the iterator, as the kernel hands it out (read(2) by read(2))."""
        what = f"read {self._desc}"
        try:
            fd = L.iter_create(self.fd)
        except BPFError as exc:
            raise error_for(exc.errno, f"{what}: BPF_ITER_CREATE: {exc.strerror}") from None
        try:
            while True:
                try:
                    chunk = os.read(fd, _CHUNK)
                except InterruptedError:
                    continue
                except OSError as exc:
                    hint = ""
                    if exc.errno == errno.E2BIG:
                        hint = "the program printed more than one page for a single object"
                    raise error_for(exc.errno, f"{what}: {exc.strerror}", hint=hint) \
                        from None
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    def __iter__(self) -> _Iter[bytes]:
        return self.chunks()

    def __repr__(self) -> str:
        if self.closed:
            return "<Iterator closed>"
        return f"<Iterator {self._info.target.get('iter', '?')} id={self._info.id} " \
               f"fd={self._fd}>"


def attach_iter(program: Program, *, map: Map | None = None) -> Iterator:
    """Make an iterator link for a TRACING program loaded from an ``iter/<target>`` section
    (BPF_LINK_CREATE with BPF_TRACE_ITER, 5.8+). ``map`` is the map an ``iter/bpf_map_elem``
    (or sockmap, sk_storage) iterator walks.

    Raises InvalidArgumentError for another kind of program, or a map the program does not
    fit (the verifier checks its key/value accesses against the map here)."""
    name = program.spec.attach_to.removeprefix("bpf_iter_") if program.spec is not None \
        and program.spec.attach_to else ""
    what = f"attach iterator {name or program.name!r}"
    check_program(program, what, (ProgramType.TRACING,))
    if program.spec is not None and program.spec.expected_attach_type != \
            AttachType.TRACE_ITER:
        raise error_for(errno.EINVAL, f"{what}: program {program.name!r} is not an "
                        "iterator", hint="iterators are loaded from an 'iter/<target>' "
                        "section")
    info = struct.pack("=I", map.fd) if map is not None else b""
    try:
        fd = L.link_create(program.fd, 0, AttachType.TRACE_ITER, kind="iter", iter_info=info)
    except BPFError as exc:
        hint = ""
        if exc.errno == errno.EACCES and map is not None:
            hint = "the program reads past the map's key or value size"
        elif exc.errno in (errno.EINVAL, errno.EBADF) and map is None and \
                name in _NEEDS_MAP:
            hint = f"a {name} iterator walks one map: pass map="
        elif exc.errno == errno.EPERM:
            raise _tracefs.raise_eperm(exc, what, "iterators") from None
        elif exc.errno in (errno.EOPNOTSUPP, 524):
            raise NotSupportedError(exc.errno, f"{what}: not supported by this kernel",
                                    feature="bpf_iter") from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}", hint=hint) from None
    it = Iterator._adopt(fd, what, program=program)
    assert isinstance(it, Iterator)
    return it
