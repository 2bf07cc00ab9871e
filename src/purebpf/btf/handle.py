"""BTF loaded into the kernel (BPF_BTF_LOAD): the one live object in the btf package."""

from __future__ import annotations


from .._object import KernelObject
from .._sys import progs
from ..errors import error_for
from .encode import encode
from .spec import Spec

_LOG_SIZE = 1 << 20


class BTFHandle(KernelObject):
    """A BTF object in the kernel; maps and programs refer to it by fd when created."""

    def __init__(self, fd: int, *, quiet: bool = False) -> None:
        self._own(fd, "BTF object", quiet)

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

    def __repr__(self) -> str:
        return f"<BTFHandle fd={self._fd}>" if self._fd >= 0 else "<BTFHandle closed>"


__all__ = ["BTFHandle"]
