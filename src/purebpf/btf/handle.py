"""BTF loaded into the kernel (BPF_BTF_LOAD): the one live object in the btf package."""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Iterator

from .._object import KernelObject, iter_ids
from .._sys import progs
from ..errors import BPFError, error_for
from .decode import parse
from .encode import encode
from .spec import Spec

_LOG_SIZE = 1 << 20


@dataclasses.dataclass(frozen=True)
class BTFInfo:
    """What the kernel reports about a BTF object (BPF_OBJ_GET_INFO_BY_FD).

    ``kernel_btf`` is true for the kernel's own BTF (``name`` ``"vmlinux"``) and for kernel
    modules' BTF (``name`` is the module; split BTF on top of vmlinux).
    """

    id: int
    name: str
    size: int
    kernel_btf: bool


class BTFHandle(KernelObject):
    """A BTF object in the kernel; maps and programs refer to it by fd when created."""

    def __init__(self, fd: int, *, quiet: bool = False) -> None:
        self._own(fd, "BTF object", quiet)
        self._info: BTFInfo | None = None
        self._data: bytes | None = None

    @classmethod
    def load(cls, spec: Spec | bytes) -> BTFHandle:
        """Load ``spec`` (or raw .BTF bytes) into the kernel; raises BPFError with the
        kernel's BTF log on refusal."""
        data = spec if isinstance(spec, bytes) else encode(spec)
        res = progs.btf_load(data)
        if res.fd < 0:
            res2 = progs.btf_load(data, log_level=1, log_size=_LOG_SIZE)
            log = res2.log.strip().splitlines()
            hint = f"kernel BTF log: {log[-1]}" if log else ""
            if res2.fd >= 0:
                return cls(res2.fd)
            raise error_for(-res.fd, "load BTF: the kernel refused it", hint=hint)
        return cls(res.fd)

    @classmethod
    def from_id(cls, btf_id: int) -> BTFHandle:
        """Open the BTF object with kernel id ``btf_id`` (BPF_BTF_GET_FD_BY_ID, 5.0+; needs
        CAP_SYS_ADMIN). Raises BPFError (ENOENT) when there is none."""
        try:
            fd = progs.fd_by_id("btf", btf_id)
        except BPFError as exc:
            why = "no such BTF object" if exc.errno == errno.ENOENT else str(exc.strerror)
            raise error_for(exc.errno, f"open BTF id {btf_id}: {why}") from None
        handle = cls(fd)
        try:
            handle._desc = f"BTF object id {handle.info().id}"
        except BaseException:
            handle.close()
            raise
        return handle

    @staticmethod
    def ids() -> Iterator[int]:
        """Every BTF object id in the system (BPF_BTF_GET_NEXT_ID), ascending."""
        return iter_ids(lambda cur: progs.next_id("btf", cur))

    def _fetch(self) -> None:
        try:
            raw, data, name = progs.btf_info(self.fd)
        except BPFError as exc:
            raise error_for(exc.errno, f"read {self._desc}: {exc.strerror}") from None
        self._info = BTFInfo(id=raw.id, name=name, size=raw.btf_size,
                             kernel_btf=bool(raw.kernel_btf))
        self._data = data

    @property
    def id(self) -> int:
        """Kernel id of this BTF object."""
        return self.info().id

    @property
    def name(self) -> str:
        """``"vmlinux"``, a module's name, or ``""`` for BTF that programs loaded."""
        return self.info().name

    def info(self) -> BTFInfo:
        """Id, name, size and kind of this BTF object (fetched once: BTF is immutable)."""
        if self._info is None:
            self._fetch()
        assert self._info is not None
        return self._info

    def data(self) -> bytes:
        """The raw BTF bytes as the kernel holds them (header, types, strings). For a module
        they are split BTF: type ids and string offsets continue vmlinux's."""
        if self._data is None:
            self._fetch()
        assert self._data is not None
        return self._data

    def spec(self, base: Spec | None = None) -> Spec:
        """The BTF parsed into a :class:`Spec`. Module BTF is parsed on top of ``base``
        (default: the kernel's vmlinux BTF)."""
        info = self.info()
        if base is None and info.kernel_btf and info.name != "vmlinux":
            from .attach import vmlinux

            base = vmlinux()
        return parse(self.data(), base)

    def __repr__(self) -> str:
        if self._fd < 0:
            return "<BTFHandle closed>"
        if self._info is not None:
            name = f" {self._info.name!r}" if self._info.name else ""
            return f"<BTFHandle{name} id={self._info.id} fd={self._fd}>"
        return f"<BTFHandle fd={self._fd}>"


__all__ = ["BTFHandle", "BTFInfo"]
