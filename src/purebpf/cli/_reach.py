"""Which programs use a map, and which of them are attached: for ``map tree``.

Built on the public API: every program's map ids (``Program.info().map_ids``), every link's
program (``Link.ids()``) and the XDP/tc programs of this network namespace
(``purebpf.link.net_show``). Programs attached without a link by other means (a perf event
ioctl, ``BPF_PROG_ATTACH`` on a cgroup) are not seen here and show as not attached.
"""

from __future__ import annotations

from typing import Any

from purebpf import BPFError, Program
from purebpf.link import Link, net_show

from ._common import each_open


def _attachments() -> dict[int, list[str]]:
    """prog id -> how it is attached ("xdp link 7 (ifindex 2 ...)", "xdp generic on eth0",
    "tc ingress filter on eth0")."""
    out: dict[int, list[str]] = {}
    linked: set[tuple[int, int]] = set()  # (prog id, ifindex) held by an XDP link
    for link in each_open(Link.ids(), Link.from_id):
        with link:
            info = link.info()
        tname = getattr(info.type, "name", str(info.type)).lower()
        where = "  ".join(f"{k} {v}" for k, v in info.target.items())
        out.setdefault(info.program_id, []).append(
            f"{tname} link {info.id}" + (f" ({where})" if where else ""))
        if tname == "xdp":
            linked.add((info.program_id, int(info.target.get("ifindex", 0))))
    try:
        ifaces = net_show(only_attached=True)
    except BPFError:
        ifaces = []
    for rec in ifaces:
        for x in rec.xdp:
            if (x.prog_id, rec.ifindex) not in linked:
                out.setdefault(x.prog_id, []).append(f"xdp {x.mode} on {rec.ifname}")
        for direction, hooks in (("ingress", rec.tc_ingress), ("egress", rec.tc_egress)):
            for h in hooks:
                if h.mechanism != "tcx":  # tcx programs are listed by their links
                    out.setdefault(h.prog_id, []).append(f"tc {direction} filter on "
                                                         f"{rec.ifname}")
    return out


def users(map_ids: set[int]) -> list[dict[str, Any]]:
    """The programs whose map ids include any of ``map_ids``, each with where it is
    attached (an empty list: loaded but not attached, as far as can be seen)."""
    found = []
    for p in each_open(Program.ids(), Program.from_id):
        with p:
            info = p.info()
        prog_id = p.id
        used = map_ids & set(info.map_ids)
        if used:
            found.append({"id": prog_id, "name": info.name, "map_ids": sorted(used)})
    if found:
        attached = _attachments()
        for d in found:
            d["attached"] = attached.get(d["id"], [])
    return found


__all__ = ["users"]
