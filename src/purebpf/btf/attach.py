"""Attach targets of tracing, LSM and iterator programs, looked up in vmlinux BTF."""

from __future__ import annotations

import errno
import functools
import os

from ..errors import NotSupportedError
from ..types import AttachType, ProgramType
from .decode import parse
from .errors import BTFNotFoundError
from .spec import Spec
from .types import Func, Typedef

VMLINUX = "/sys/kernel/btf/vmlinux"


@functools.cache
def vmlinux() -> Spec:
    """The kernel's own BTF, parsed once per process (lazily: types decode on demand)."""
    try:
        with open(VMLINUX, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise NotSupportedError(exc.errno or errno.ENOENT, f"read {VMLINUX}: {exc.strerror}",
                                feature="kernel BTF",
                                hint="the kernel needs CONFIG_DEBUG_INFO_BTF=y") from None
    return parse(data)


def attach_btf_id(prog_type: ProgramType | int, target: str, attach_type: int) -> int:
    """The vmlinux BTF id a tracing, LSM or iterator program attaches to.

    ``target`` is the name the section implies: a function for fentry/fexit/fmod_ret,
    ``bpf_lsm_<hook>``, ``bpf_iter_<name>``, or the ``btf_trace_<tracepoint>`` typedef.
    """
    spec = vmlinux()
    kind = Typedef if attach_type == AttachType.TRACE_RAW_TP else Func
    try:
        return spec.find_id(target, kind)
    except BTFNotFoundError:
        if os.path.isdir("/sys/kernel/btf"):
            hint = "functions in kernel modules are not resolved yet; is the name right?"
        else:
            hint = "this kernel has no BTF"
        raise NotSupportedError(errno.ESRCH, f"attach target {target!r} "
                                f"({ProgramType(prog_type).name}) not found in vmlinux BTF",
                                feature="attach target", hint=hint) from None
