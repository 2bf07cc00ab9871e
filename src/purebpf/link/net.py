"""The per-interface view of network hooks (like ``bpftool net``), and interface lookup.

:func:`net_show` lists, for each interface of this network namespace, the XDP programs (with
their mode) and the tc programs on ingress and egress: tcx links (6.6+, BPF_PROG_QUERY) and
direct-action cls_bpf filters under a clsact qdisc (rtnetlink), with their mechanism.
"""

from __future__ import annotations

import errno
import functools
from dataclasses import dataclass, field
from typing import Any

from .._sys import links as L
from .._sys import netlink as nl
from ..errors import BPFError, error_for
from ..types import AttachType
from ._link import program_name

DIRECTIONS = {"ingress": (AttachType.TCX_INGRESS, nl.PARENT_INGRESS),
              "egress": (AttachType.TCX_EGRESS, nl.PARENT_EGRESS)}


def resolve_iface(iface: str | int, what: str) -> tuple[int, str]:
    """(ifindex, name) for an interface name or index in this network namespace; ENODEV
    (naming the interface) when there is none."""
    if isinstance(iface, bool) or not isinstance(iface, (str, int)):
        raise TypeError(f"{what}: the interface must be a name or an ifindex, not "
                        f"{type(iface).__name__}")
    try:
        index = nl.ifindex(iface) if isinstance(iface, str) else iface
        if not 0 < index <= 0x7FFFFFFF:  # ifindex is an s32 in the kernel
            raise nl.NetlinkError(errno.ENODEV, "")
        return index, nl.interface(index).name
    except nl.NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            label = f"{iface!r}" if isinstance(iface, str) else f"with ifindex {iface}"
            raise error_for(errno.ENODEV, f"{what}: no interface {label} in this network "
                            "namespace", hint="see 'ip link' for the interfaces") from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}") from None


@functools.cache
def has_tcx() -> bool:
    """Does this kernel have tcx (BPF_TCX_INGRESS/EGRESS links, 6.6+)? Probed with a
    read-only BPF_PROG_QUERY on the loopback device; cached."""
    try:
        L.prog_query(1, AttachType.TCX_INGRESS)
    except BPFError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        if exc.errno == errno.ENODEV:  # no lo here: tcx is known, the device is not
            return True
        raise
    return True


@dataclass
class XdpHook:
    """One XDP program on an interface: its id, name and mode (native/generic/offload)."""

    prog_id: int
    name: str
    mode: str


@dataclass
class TcHook:
    """One tc program on an interface's ingress or egress: ``mechanism`` is "tcx" (with
    ``link_id``, 0 for a program attached without a link) or "tc_filter" (with the
    filter's ``priority`` and ``handle``)."""

    prog_id: int
    name: str
    mechanism: str
    link_id: int = 0
    priority: int = 0
    handle: int = 0
    direct_action: bool = True


@dataclass
class InterfaceHooks:
    """What runs on one interface: XDP programs and tc programs per direction."""

    ifname: str
    ifindex: int
    xdp: list[XdpHook] = field(default_factory=list)
    tc_ingress: list[TcHook] = field(default_factory=list)
    tc_egress: list[TcHook] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """bpftool-like field names: devname, ifindex, xdp [{mode, id, name}], tc [{kind,
        id, name, ...}]."""
        tc = []
        for direction, hooks in (("ingress", self.tc_ingress), ("egress", self.tc_egress)):
            for h in hooks:
                entry: dict[str, Any] = {"kind": f"{'tcx' if h.mechanism == 'tcx' else 'clsact'}"
                                         f"/{direction}", "id": h.prog_id, "name": h.name,
                                         "mechanism": h.mechanism}
                if h.mechanism == "tcx":
                    entry["link_id"] = h.link_id
                else:
                    entry.update(prio=h.priority, handle=h.handle, da=h.direct_action)
                tc.append(entry)
        return {"devname": self.ifname, "ifindex": self.ifindex,
                "xdp": [{"mode": x.mode, "id": x.prog_id, "name": x.name} for x in self.xdp],
                "tc": tc}

    @property
    def empty(self) -> bool:
        return not (self.xdp or self.tc_ingress or self.tc_egress)


def tc_hooks(index: int, direction: str) -> list[TcHook]:
    """tcx programs (in run order) then cls_bpf filters on one hook of interface ``index``."""
    attach, parent = DIRECTIONS[direction]
    out = []
    if has_tcx():
        try:
            q = L.prog_query(index, attach)
        except BPFError as exc:
            if exc.errno != errno.ENODEV:
                raise
        else:
            out += [TcHook(p, program_name(p), "tcx", link_id=lk)
                    for p, lk in zip(q.prog_ids, q.link_ids)]
    for f in nl.filters(index, parent):
        if f.kind == "bpf":
            out.append(TcHook(f.prog_id, f.name or program_name(f.prog_id), "tc_filter",
                              priority=f.priority, handle=f.handle,
                              direct_action=f.direct_action))
    return out


def net_show(iface: str | int | None = None, *, only_attached: bool = False
             ) -> list[InterfaceHooks]:
    """Per-interface records of the XDP and tc programs in this network namespace, like
    ``bpftool net``. ``iface`` (a name or index) keeps one interface; ``only_attached``
    leaves out interfaces with nothing attached. Raises BPFError (ENODEV) for a missing ``iface``."""
    if iface is not None:
        index, _ = resolve_iface(iface, "show network hooks")
        ifaces = [nl.interface(index)]
    else:
        ifaces = nl.interfaces()
    out = []
    for i in ifaces:
        rec = InterfaceHooks(i.name, i.index,
                             [XdpHook(pid, program_name(pid), mode)
                              for mode, pid in i.xdp.by_mode().items()],
                             tc_hooks(i.index, "ingress"), tc_hooks(i.index, "egress"))
        if not (only_attached and rec.empty):
            out.append(rec)
    return out
