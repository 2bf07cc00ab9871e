"""XDP: run a program on every frame an interface receives, before the kernel's stack.

:func:`attach_xdp` makes a bpf_link (BPF_LINK_CREATE with BPF_XDP, 5.9+) where the kernel has
one, else attaches over rtnetlink (IFLA_XDP) and returns an :class:`XdpAttachment` whose
``close()`` removes exactly its own program (IFLA_XDP_EXPECTED_FD, 5.7+), never another.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._sys import links as L
from .._sys import netlink as nl
from .._sys import progs
from .._sys.syscall import close_fd
from ..errors import BPFError, NotSupportedError, error_for
from ..types import AttachType, LinkType, ProgramType
from ._link import Attachment, Link, LinkInfo, check_program, program_name
from .net import resolve_iface

if TYPE_CHECKING:
    from .._program import Program

MODES = {"native": nl.XDP_FLAGS_DRV_MODE, "generic": nl.XDP_FLAGS_SKB_MODE,
         "offload": nl.XDP_FLAGS_HW_MODE}
MECHANISMS = (None, "bpf_link", "netlink")
_link_works = [True]  # set to False the first time the kernel shows it has no XDP links


def attach_xdp(prog: Program, iface: str | int, mode: str = "auto", *, replace: bool = False,
               mechanism: str | None = None) -> Link | XdpAttachment:
    """Attach the XDP program ``prog`` to interface ``iface`` (a name or an ifindex).

    ``mode``: "native" (the driver runs it: XDP_FLAGS_DRV_MODE), "generic" (the kernel runs
    it on the skb: XDP_FLAGS_SKB_MODE), "offload" (the NIC runs it: XDP_FLAGS_HW_MODE) or
    "auto" (native, then generic if the driver has no native XDP). ``info().target`` says
    which mode was used.

    Returns a :class:`Link` (BPF_LINK_CREATE with BPF_XDP, Linux 5.9+), or on older kernels
    (or with ``mechanism="netlink"``) an :class:`XdpAttachment` made through rtnetlink
    (IFLA_XDP). ``replace=True`` replaces a program attached without a link (netlink);
    a program held by a bpf_link can only be replaced through that link's ``update()``.

    Raises BPFError EBUSY (naming the attached program's id) when the interface already
    runs an XDP program, ENODEV for a missing interface, NotSupportedError (EOPNOTSUPP) for
    native/offload mode on a driver without it, InvalidArgumentError for a program that is
    not XDP."""
    what = f"attach XDP program {getattr(prog, 'name', '?')!r} to {iface!r}"
    check_program(prog, what, (ProgramType.XDP,))
    if not isinstance(mode, str):
        raise TypeError(f"{what}: mode must be a str, not {type(mode).__name__}")
    if mode != "auto" and mode not in MODES:
        raise ValueError(f"{what}: mode must be 'auto', 'native', 'generic' or 'offload', "
                         f"not {mode!r}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"{what}: mechanism must be None, 'bpf_link' or 'netlink', "
                         f"not {mechanism!r}")
    index, name = resolve_iface(iface, what)
    what = f"attach XDP program {prog.name!r} to {name} (ifindex {index})"
    modes = ["native", "generic"] if mode == "auto" else [mode]
    use_link = mechanism == "bpf_link" or (mechanism is None and _link_works[0]
                                           and not replace)
    for i, m in enumerate(modes):
        try:
            if use_link:
                return _attach_link(prog, index, name, m, what, mechanism is None)
            return _attach_netlink(prog, index, name, m, replace, what)
        except BPFError as exc:
            if exc.errno == errno.EOPNOTSUPP and i + 1 < len(modes):
                continue  # auto: the driver has no native XDP; try generic
            raise _attach_error(exc, index, name, m, what) from None
    raise AssertionError("unreachable")


def _attach_link(prog: Program, index: int, name: str, mode: str, what: str,
                 may_fall_back: bool) -> Link | XdpAttachment:
    try:
        fd = L.link_create(prog.fd, index, AttachType.XDP, MODES[mode])
    except BPFError as exc:
        # Before 5.9 the kernel does not know BPF_XDP as a link attach type (EINVAL); the
        # same EINVAL from a newer kernel comes back from netlink too, with its reason.
        if exc.errno != errno.EINVAL or not may_fall_back or mode == "offload":
            raise
        res = _attach_netlink(prog, index, name, mode, False, what)
        _link_works[0] = False
        return res
    return Link._adopt(fd, what, program=prog, extra={"ifname": name, "mode": mode})


def _attach_netlink(prog: Program, index: int, name: str, mode: str, replace: bool,
                    what: str) -> XdpAttachment:
    flags = MODES[mode] | (0 if replace else nl.XDP_FLAGS_UPDATE_IF_NOEXIST)
    nl.xdp_set(index, prog.fd, flags, what=what)
    info = LinkInfo(0, LinkType.XDP, prog.id, AttachType.XDP,
                    {"ifindex": index, "ifname": name, "mode": mode})
    return XdpAttachment(info, prog, f"XDP program {prog.name!r} on {name} ({mode}, netlink)",
                         functools.partial(_netlink_detach, index, prog.id, MODES[mode]))


def _attach_error(exc: BPFError, index: int, name: str, mode: str, what: str) -> BPFError:
    extack = getattr(exc, "extack", "")
    reason = f"{exc.strerror} ({extack})" if extack else str(exc.strerror)
    if exc.errno in (errno.EBUSY, errno.EEXIST):
        held = _holders(index)
        if held:
            return error_for(errno.EBUSY, f"{what}: {name} already runs {held}",
                             hint="detach it first; replace=True replaces a program attached "
                                  "without a link, and a bpf_link's program is replaced with "
                                  "that link's update()")
    if mode == "offload" and exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
        return NotSupportedError(exc.errno, f"{what}: offload mode: {reason}",
                                 hint="offload needs a NIC that runs BPF itself (such as "
                                      "Netronome's nfp) and a program loaded for that device; "
                                      "use mode='native' or 'generic'",
                                 feature="XDP offload")
    if exc.errno == errno.EOPNOTSUPP:
        return NotSupportedError(exc.errno, f"{what}: the driver of {name} has no {mode} XDP "
                                 "support", hint="use mode='generic' (or 'auto', which "
                                 "falls back to it)", feature=f"XDP {mode} mode")
    if exc.errno == errno.ENODEV:
        return error_for(exc.errno, f"{what}: the interface is gone")
    return error_for(exc.errno, f"{what}: {reason}")


def _holders(index: int) -> str:
    """'XDP program id 42 ('name') in native mode' for what interface ``index`` runs."""
    try:
        by_mode = nl.interface(index).xdp.by_mode()
    except BPFError:
        return ""
    return ", ".join(f"XDP program id {pid} ({program_name(pid)!r}) in {m} mode"
                     for m, pid in by_mode.items())


def _netlink_detach(index: int, prog_id: int, mode_flag: int) -> None:
    """Remove program ``prog_id`` from interface ``index`` if it is still the one attached
    (IFLA_XDP_EXPECTED_FD): a program someone else attached since is left alone."""
    try:
        if prog_id not in nl.interface(index).xdp.by_mode().values():
            return
        fd = progs.fd_by_id("prog", prog_id)
    except BPFError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return  # the interface or the program is gone: nothing of ours is attached
        raise
    try:
        nl.xdp_set(index, -1, mode_flag | nl.XDP_FLAGS_REPLACE, expected_fd=fd,
                   what=f"detach XDP program id {prog_id} from ifindex {index}")
    except BPFError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENODEV):  # EEXIST: not ours any more
            raise
    finally:
        close_fd(fd)


class XdpAttachment(Attachment):
    """An XDP program attached through rtnetlink (IFLA_XDP), for kernels without XDP links
    (before 5.9) or on request (``mechanism="netlink"``). ``close()`` removes exactly this
    program; ``update()`` swaps it atomically (XDP_FLAGS_REPLACE with the expected fd)."""

    mechanism = "netlink"

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        index = int(self._info.target["ifindex"])
        mode_flag = MODES[str(self._info.target["mode"])]
        what = f"update {self._desc}"
        check_program(program, what, (ProgramType.XDP,))
        current = expected.id if expected is not None else self._info.program_id
        try:
            fd = progs.fd_by_id("prog", current)
        except BPFError:
            raise error_for(errno.EPERM, f"{what}: program id {current} is gone, so it is "
                            "no longer attached", hint="see net_show()") from None
        try:
            nl.xdp_set(index, program.fd, mode_flag | nl.XDP_FLAGS_REPLACE, expected_fd=fd,
                       what=what)
        except BPFError as exc:
            if exc.errno == errno.EEXIST:
                held = _holders(index) or "no XDP program"
                raise error_for(errno.EPERM, f"{what}: the interface no longer runs the "
                                f"expected program id {current}; it runs {held}",
                                hint="see net_show() for what is attached now") from None
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
        finally:
            close_fd(fd)
        return functools.partial(_netlink_detach, index, program.id, mode_flag)
