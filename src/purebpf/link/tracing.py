"""Tracing hooks: tracepoints (perf events), raw tracepoints, BTF-typed hooks (tp_btf,
fentry/fexit/fmod_ret) and LSM hooks.

A tracepoint, kprobe or uprobe is a perf event: the program goes on it through a
BPF_PERF_EVENT link (5.15+), else PERF_EVENT_IOC_SET_BPF on the perf event fd (a
:class:`PerfEventAttachment`). Raw tracepoints and BTF-typed hooks are always links.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._sys import links as L
from .._sys import perf
from ..errors import BPFError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType, LinkType, ProgramType
from . import _tracefs
from ._link import Attachment, BaseLink, Link, LinkInfo, check_program

if TYPE_CHECKING:
    from .._program import Program

_PERF_KIND_TYPES = {
    "tracepoint": (ProgramType.TRACEPOINT,),
    "kprobe": (ProgramType.KPROBE,),
    "uprobe": (ProgramType.KPROBE,),
}
_BTF_HOOKS: dict[int, tuple[str, str, str]] = {
    AttachType.TRACE_RAW_TP: ("tp_btf", "tracepoint", "btf_trace_"),
    AttachType.TRACE_FENTRY: ("fentry", "func", ""),
    AttachType.TRACE_FEXIT: ("fexit", "func", ""),
    AttachType.MODIFY_RETURN: ("fmod_ret", "func", ""),
    AttachType.LSM_MAC: ("lsm", "hook", "bpf_lsm_"),
}


class PerfEventAttachment(Attachment):
    """A program on a perf event (tracepoint, kprobe, uprobe) through
    PERF_EVENT_IOC_SET_BPF, for kernels without BPF_PERF_EVENT links (before 5.15). It
    owns the perf event fd: closing it disables the event and closes the fd, which
    detaches the program."""

    mechanism = "perf_event_ioctl"
    persistent = False  # the event, and the program on it, end with the perf fd


_U64_MAX = (1 << 64) - 1


def check_u64(value: Any, name: str, what: str) -> None:
    """Refuse a cookie/offset that is not an int in 0..2^64-1 (the kernel's u64 field),
    before anything is opened: ctypes/struct would truncate it or raise their own error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: {name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {name}={value} does not fit the "
                                   f"kernel's u64 field (0..{_U64_MAX})")


def check_name(value: Any, name: str, what: str) -> None:
    """Refuse a hook name that is not a str, or holds a NUL byte (the kernel would read it
    only up to the NUL and attach to a hook that was not named)."""
    if not isinstance(value, str):
        raise TypeError(f"{what}: the {name} must be a str, not {type(value).__name__}")
    if not value or "\0" in value:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {value!r} is not a {name} (empty, "
                                   "or with a NUL byte)")


def _close_perf(fd: int) -> Callable[[], None]:
    def undo() -> None:
        try:
            perf.ioctl(fd, perf.PERF_EVENT_IOC_DISABLE, 0)
        finally:
            os.close(fd)
    return undo


_PERF_LINK: list[bool] = []  # the probe's answer, once known


def has_perf_link(program: Program) -> bool:
    """Whether BPF_LINK_CREATE knows BPF_PERF_EVENT (5.15+), probed once with ``program``
    (any program) and a bad target fd: EBADF where it does, EINVAL where the attach type
    is unknown."""
    if not _PERF_LINK:
        try:
            os.close(L.link_create(program.fd, 0xFFFFFFFF, AttachType.PERF_EVENT,
                                   kind="perf_event"))
            answer = True
        except BPFError as exc:
            answer = exc.errno != errno.EINVAL
        # EINVAL also comes from a program loaded for another attach type (kprobe.multi):
        # only a plain program's "no" is the kernel's answer.
        plain = program.spec is None or not program.spec.expected_attach_type
        if answer or plain:
            _PERF_LINK.append(answer)
        return answer
    return _PERF_LINK[0]


def attach_perf_event(program: Program, pfd: int, what: str, target: dict[str, Any], *,
                      cookie: int = 0, use_link: bool | None = None) -> BaseLink:
    """Put ``program`` on the (disabled) perf event ``pfd``, taking ownership of ``pfd``:
    a BPF_PERF_EVENT link where the kernel has one, else PERF_EVENT_IOC_SET_BPF.
    ``use_link`` forces the choice (tests use it to cover the ioctl path)."""
    try:
        check_u64(cookie, "cookie", what)
        if use_link is None:
            use_link = has_perf_link(program)
        if use_link:
            try:
                fd = L.link_create(program.fd, pfd, AttachType.PERF_EVENT, kind="perf_event",
                                   cookie=cookie)
            except BPFError as exc:
                raise _perf_error(exc, what, program) from None
            link = adopt(fd, what, program, target)
            try:
                perf.ioctl(pfd, perf.PERF_EVENT_IOC_ENABLE, 0, what=what)
            except BaseException:
                link.close()
                raise
            # The link holds the perf event file: the link fd is the one thing to own.
            os.close(pfd)
            return link
        if cookie:
            raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: a cookie needs a BPF_PERF_EVENT"
                                    " link (5.15+); this kernel attaches through the perf "
                                    "ioctl", feature="bpf_cookie")
        try:
            perf.ioctl(pfd, perf.PERF_EVENT_IOC_SET_BPF, program.fd, what=what)
        except BPFError as exc:
            raise _perf_error(exc, what, program) from None
        perf.ioctl(pfd, perf.PERF_EVENT_IOC_ENABLE, 0, what=what)
    except BaseException:
        os.close(pfd)
        raise
    info = LinkInfo(0, LinkType.PERF_EVENT, program.id, AttachType.PERF_EVENT, dict(target))
    return PerfEventAttachment(info, program, what.replace("attach ", "", 1), _close_perf(pfd))


def _perf_error(exc: BPFError, what: str, program: Program) -> BPFError:
    if exc.errno == errno.EPERM:
        return _tracefs.raise_eperm(exc, what, "attaching BPF programs to perf events")
    if exc.errno == errno.EEXIST:
        return error_for(exc.errno, f"{what}: program {program.name!r} is already attached "
                         "to this hook", hint="the kernel runs a program once per tracepoint "
                         "or probe: close the other link first")
    if exc.errno == errno.EINVAL:
        return error_for(exc.errno, f"{what}: the kernel refused program {program.name!r} "
                         f"({getattr(program.type, 'name', program.type)}) on this event",
                         hint="a tracepoint takes a TRACEPOINT program, a kprobe or uprobe a "
                         "KPROBE program loaded for it (not kprobe.multi)")
    return error_for(exc.errno, f"{what}: {exc.strerror}")


def adopt(fd: int, what: str, program: Program, defaults: dict[str, Any]) -> Link:
    """Wrap a new link fd; ``defaults`` fill the target fields this kernel's link info
    leaves out (6.1 reports no perf event target, for one)."""
    link = Link._adopt(fd, what, program=program)
    extra = {k: v for k, v in defaults.items() if k not in link._info.target}
    if extra:
        link._extra = extra
        link._info.target.update(extra)
    return link


def attach_tracepoint(program: Program, category: str, name: str, *,
                      cookie: int = 0) -> BaseLink:
    """Attach a TRACEPOINT program to tracepoint ``category/name`` (``"sched",
    "sched_switch"``): perf_event_open on the tracefs id, then a BPF_PERF_EVENT link (5.15+)
    or PERF_EVENT_IOC_SET_BPF. ``cookie`` (5.15+) is what bpf_get_attach_cookie() returns.

    Raises BPFError ENOENT for a missing tracepoint (naming where it looked),
    NotSupportedError when tracefs is missing and cannot be mounted, InvalidArgumentError
    for a program of another type."""
    what = f"attach tracepoint {category}/{name}"
    check_name(category, "tracepoint category", what)
    check_name(name, "tracepoint name", what)
    check_u64(cookie, "cookie", what)
    check_program(program, what, _PERF_KIND_TYPES["tracepoint"])
    tp_id = _tracefs.tracepoint_id(category, name)
    pfd = perf.perf_event_open(type=perf.PERF_TYPE_TRACEPOINT, config=tp_id, pid=-1, cpu=0,
                               flags=perf.ATTR_DISABLED, what=what)
    target = {"perf_event_type": "tracepoint", "tracepoint": name, "category": category}
    return attach_perf_event(program, pfd, what, target, cookie=cookie)


def attach_raw_tracepoint(program: Program, name: str, *, cookie: int = 0) -> Link:
    """Attach a RAW_TRACEPOINT program to raw tracepoint ``name`` ("sys_enter",
    "sched_switch") with BPF_RAW_TRACEPOINT_OPEN; ``cookie`` needs 6.10+."""
    what = f"attach raw tracepoint {name!r}"
    check_name(name, "raw tracepoint name", what)
    check_u64(cookie, "cookie", what)
    check_program(program, what, (ProgramType.RAW_TRACEPOINT,
                                  ProgramType.RAW_TRACEPOINT_WRITABLE))
    try:
        fd = L.raw_tracepoint_open(program.fd, name, cookie)
    except BPFError as exc:
        if exc.errno == errno.ENOENT:
            raise error_for(exc.errno, f"{what}: no such tracepoint in this kernel",
                            hint="raw tracepoints are named without a category "
                            "('sched_switch', not 'sched/sched_switch')") from None
        if exc.errno == errno.EPERM:
            raise _tracefs.raise_eperm(exc, what, "raw tracepoints") from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
    return adopt(fd, what, program, {"tracepoint": name})


def attach_tracing(program: Program, *, cookie: int = 0) -> Link:
    """Attach a BTF-typed program where it was loaded for: tp_btf, fentry, fexit, fmod_ret
    (TRACING) or an LSM hook. BPF_LINK_CREATE (5.19+ for these), else
    BPF_RAW_TRACEPOINT_OPEN with no name (5.5+). ``cookie`` needs the link (6.0+).

    Raises BPFPermissionError (EPERM) explaining kernel lockdown where that is the cause."""
    what = f"attach {_hook_desc(program)}"
    check_u64(cookie, "cookie", what)
    check_program(program, what, (ProgramType.TRACING, ProgramType.LSM))
    attach = _attach_type(program)
    if attach == AttachType.TRACE_ITER:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {program.name!r} is an iterator",
                                   hint="use purebpf.link.attach_iter(prog)")
    if attach not in _BTF_HOOKS:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: program {program.name!r} was "
                                   f"loaded for attach type {attach}, not a tracing hook")
    kind, key, prefix = _BTF_HOOKS[attach]
    target: dict[str, Any] = {}
    if program.spec is not None and program.spec.attach_to:
        target[key] = program.spec.attach_to.removeprefix(prefix)
    try:
        fd = L.link_create(program.fd, 0, int(attach), kind="tracing", cookie=cookie)
    except BPFError as exc:
        if exc.errno != errno.EINVAL or cookie:
            raise _tracing_error(exc, what, kind) from None
        try:  # kernels before 5.19: no BPF_LINK_CREATE for tracing programs
            fd = L.raw_tracepoint_open(program.fd, None)
        except BPFError as exc2:
            raise _tracing_error(exc2, what, kind) from None
    return adopt(fd, what, program, target)


def attach_lsm(program: Program, *, cookie: int = 0) -> Link:
    """Attach an LSM program to the hook it was loaded for (``lsm/file_open``), 5.7+ with
    the BPF LSM active (``bpf`` in the ``lsm=`` boot list).

    Raises NotSupportedError when the BPF LSM is not active (the program would never run)."""
    what = f"attach {_hook_desc(program)}"
    check_program(program, what, (ProgramType.LSM,))
    lsms = _tracefs.active_lsms()
    if lsms is not None and "bpf" not in lsms:
        raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: the BPF LSM is not active "
                                f"(active LSMs: {','.join(lsms)})", feature="BPF LSM",
                                hint="boot with lsm=" + ",".join([*lsms, "bpf"]) +
                                " (CONFIG_BPF_LSM=y)")
    return attach_tracing(program, cookie=cookie)


def _attach_type(program: Program) -> AttachType | int:
    if program.spec is not None:
        return program.spec.expected_attach_type
    return AttachType.LSM_MAC if program.type == ProgramType.LSM else 0


def _hook_desc(program: Any) -> str:
    spec = getattr(program, "spec", None)
    if spec is not None and spec.section:
        return f"{spec.section!r} ({program.name!r})"
    return f"program {getattr(program, 'name', '?')!r}"


def _tracing_error(exc: BPFError, what: str, kind: str) -> BPFError:
    if exc.errno == errno.EPERM:
        return _tracefs.raise_eperm(exc, what, f"{kind} programs")
    if exc.errno == errno.EBUSY:
        return error_for(exc.errno, f"{what}: the program is already attached",
                         hint="a tracing program attaches once; load it again for a second "
                         "link")
    if exc.errno in (errno.EOPNOTSUPP, 524):
        return NotSupportedError(exc.errno, f"{what}: this kernel cannot attach {kind} "
                                 "programs (no BPF trampoline for this architecture or "
                                 "function?)", feature=f"{kind} attach")
    return error_for(exc.errno, f"{what}: {exc.strerror}")

