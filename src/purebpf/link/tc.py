"""tc: run a SCHED_CLS program on every packet an interface receives (ingress) or sends
(egress), after the skb is built.

:func:`attach_tc` makes a tcx link (BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS, 6.6+) where
the kernel has tcx, else adds a clsact qdisc (if the interface has none) and a direct-action
cls_bpf filter over rtnetlink, returned as a :class:`TcFilter` whose ``close()`` deletes the
filter, and the qdisc too when this filter created it and no other filter is left under it.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._sys import links as L
from .._sys import netlink as nl
from ..errors import BPFError, InvalidArgumentError, NotSupportedError, error_for
from ..types import LinkType, ProgramType
from ._link import Attachment, Link, LinkInfo, check_program
from .net import DIRECTIONS, has_tcx, resolve_iface

if TYPE_CHECKING:
    from .._program import Program

MECHANISMS = (None, "tcx", "tc_filter")


def attach_tc(prog: Program, iface: str | int, direction: str = "ingress", *,
              priority: int | None = None, before: Program | Link | None = None,
              after: Program | Link | None = None, handle: int | None = None,
              mechanism: str | None = None) -> Link | TcFilter:
    """Attach the SCHED_CLS program ``prog`` to ``iface`` (a name or ifindex) on
    ``direction`` "ingress" or "egress". The program's return value is the verdict
    (TC_ACT_OK, TC_ACT_SHOT, ...: direct action).

    With tcx (Linux 6.6+) this returns a :class:`Link` (BPF_LINK_CREATE with
    BPF_TCX_INGRESS/EGRESS); ``before``/``after`` (a Program or Link already on the hook)
    place it in the hook's run order (BPF_F_BEFORE/BPF_F_AFTER), else it runs last. Without
    tcx, or when ``priority``/``handle`` are given, or with ``mechanism="tc_filter"``, it
    returns a :class:`TcFilter`: a clsact qdisc plus a cls_bpf filter (``priority`` and
    ``handle`` chosen by the kernel when not given; ``info().target`` has them).

    Raises BPFError ENODEV for a missing interface, EEXIST when the program (tcx) or the
    priority/handle (filter) is already taken, NotSupportedError for ``before``/``after``
    on a kernel without tcx, InvalidArgumentError for a program that is not SCHED_CLS."""
    what = f"attach tc program {getattr(prog, 'name', '?')!r} to {iface!r} {direction}"
    if getattr(prog, "type", None) == ProgramType.SCHED_ACT:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: program {prog.name!r} is "
                                   "SCHED_ACT, this hook runs SCHED_CLS programs",
                                   hint="SCHED_ACT programs run as tc actions (act_bpf), "
                                        "which attach_tc does not add; SCHED_CLS programs "
                                        "return the verdict themselves (direct action)")
    check_program(prog, what, (ProgramType.SCHED_CLS,))
    if not isinstance(direction, str):
        raise TypeError(f"{what}: direction must be a str, not {type(direction).__name__}")
    if direction not in DIRECTIONS:
        raise ValueError(f"{what}: direction must be 'ingress' or 'egress', not {direction!r}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"{what}: mechanism must be None, 'tcx' or 'tc_filter', "
                         f"not {mechanism!r}")
    if before is not None and after is not None:
        raise ValueError(f"{what}: give before or after, not both")
    filter_args = priority is not None or handle is not None
    if mechanism == "tc_filter" and (before is not None or after is not None):
        raise ValueError(f"{what}: before/after order tcx links; tc filters are ordered by "
                         "priority")
    if filter_args and (before is not None or after is not None or mechanism == "tcx"):
        raise ValueError(f"{what}: priority/handle belong to tc filters, before/after to "
                         "tcx links: give one kind")
    for name, v, hi in (("priority", priority, 0xFFFF), ("handle", handle, 0xFFFFFFFF)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or
                              not 0 < v <= hi):
            raise ValueError(f"{what}: {name} must be 1..{hi}, not {v!r}")
    index, ifname = resolve_iface(iface, what)
    what = f"attach tc program {prog.name!r} to {ifname} (ifindex {index}) {direction}"
    if mechanism is None:
        ordered = before is not None or after is not None
        mechanism = "tcx" if ordered or (has_tcx() and not filter_args) else "tc_filter"
    if mechanism == "tcx":
        if not has_tcx():
            raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: this kernel has no tcx "
                                    "links (Linux 6.6+)", hint="before/after need tcx; "
                                    "without them attach_tc() adds a tc filter",
                                    feature="tcx")
        return _attach_tcx(prog, index, ifname, direction, before or after,
                           L.BPF_F_BEFORE if before is not None else
                           L.BPF_F_AFTER if after is not None else 0, what)
    return _attach_filter(prog, index, ifname, direction, priority or 0, handle or 0, what)


def _attach_tcx(prog: Program, index: int, ifname: str, direction: str,
                relative: Program | Link | None, flags: int, what: str) -> Link:
    attach, _ = DIRECTIONS[direction]
    from .._program import Program as _Program

    rel_fd = 0
    if relative is not None:
        if isinstance(relative, Link):
            flags |= L.BPF_F_LINK_MP
        elif not isinstance(relative, _Program):
            raise TypeError(f"{what}: before/after must be a Program or a Link, not "
                            f"{type(relative).__name__}")
        rel_fd = relative.fd
    try:
        fd = L.link_create(prog.fd, index, attach, flags, kind="mprog", relative=rel_fd)
    except BPFError as exc:
        hint = ""
        if exc.errno == errno.EEXIST:
            reason = "the program is already attached to this hook"
        elif exc.errno == errno.ENOENT and relative is not None:
            reason = f"{relative!r} is not attached to this hook"
            hint = "before/after must name a program or link already on the same hook"
        elif exc.errno == errno.ENODEV:
            reason = "the interface is gone"
        else:
            reason = str(exc.strerror)
        raise error_for(exc.errno, f"{what}: {reason}", hint=hint) from None
    return Link._adopt(fd, what, program=prog, extra={"ifname": ifname, "direction": direction})


def _attach_filter(prog: Program, index: int, ifname: str, direction: str, priority: int,
                   handle: int, what: str) -> TcFilter:
    attach, parent = DIRECTIONS[direction]
    try:
        created = nl.clsact_add(index)
    except BPFError as exc:
        raise error_for(exc.errno, f"{what}: add clsact qdisc: {exc.strerror}",
                        hint=getattr(exc, "extack", "")) from None
    try:
        f = nl.bpf_filter_set(index, parent, priority, handle, prog.fd, prog.name, what=what)
    except BPFError as exc:
        if created:
            _del_clsact_if_empty(index)
        reason = str(exc.strerror)
        if exc.errno == errno.EEXIST:
            reason = f"a filter with priority {priority} handle {handle:#x} is already there"
        elif getattr(exc, "extack", ""):
            reason += f" ({getattr(exc, 'extack')})"
        raise error_for(exc.errno, f"{what}: {reason}") from None
    target = {"ifindex": index, "ifname": ifname, "direction": direction,
              "priority": f.priority, "handle": f.handle, "clsact_created": created}
    info = LinkInfo(0, LinkType.UNSPEC, prog.id, attach, target)
    return TcFilter(info, prog, f"tc filter {prog.name!r} on {ifname} {direction} "
                    f"(priority {f.priority}, handle {f.handle:#x})",
                    functools.partial(_filter_detach, index, parent, f.priority, f.handle,
                                      prog.id, created))


def _del_clsact_if_empty(index: int) -> None:
    if nl.filters(index, nl.PARENT_INGRESS) or nl.filters(index, nl.PARENT_EGRESS):
        return
    try:
        nl.clsact_del(index)
    except BPFError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise


def _filter_detach(index: int, parent: int, priority: int, handle: int, prog_id: int,
                   created: bool) -> None:
    """Delete the filter at (priority, handle) if it still runs ``prog_id``; then the
    clsact qdisc if we created it and it holds no filter any more."""
    try:
        mine = any(f.priority == priority and f.handle == handle and f.prog_id == prog_id
                   for f in nl.filters(index, parent))
        if mine:
            nl.filter_del(index, parent, priority, handle,
                          what=f"delete tc filter priority {priority} handle {handle:#x}")
        if created:
            _del_clsact_if_empty(index)
    except BPFError as exc:
        if exc.errno != errno.ENODEV:  # the interface is gone, and its filters with it
            raise


class TcFilter(Attachment):
    """A SCHED_CLS program in a direct-action cls_bpf filter under a clsact qdisc (tc's
    pre-6.6 way, or on request with ``mechanism="tc_filter"``). ``update()`` replaces the
    filter's program in place (NLM_F_REPLACE); ``close()`` deletes the filter."""

    mechanism = "tc_filter"

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        t = self._info.target
        index, priority, handle = int(t["ifindex"]), int(t["priority"]), int(t["handle"])
        parent = DIRECTIONS[str(t["direction"])][1]
        what = f"update {self._desc}"
        check_program(program, what, (ProgramType.SCHED_CLS,))
        want = expected.id if expected is not None else self._info.program_id
        now = [f.prog_id for f in nl.filters(index, parent)
               if f.priority == priority and f.handle == handle]
        if now != [want]:
            runs = f"program id {now[0]}" if now else "nothing (the filter is gone)"
            raise error_for(errno.EPERM, f"{what}: the filter no longer runs the expected "
                            f"program id {want}; it runs {runs}",
                            hint="see net_show() for what is attached now")
        try:
            nl.bpf_filter_set(index, parent, priority, handle, program.fd, program.name,
                              replace=True, what=what)
        except BPFError as exc:
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
        return functools.partial(_filter_detach, index, parent, priority, handle, program.id,
                                 bool(t["clsact_created"]))
