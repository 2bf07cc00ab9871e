"""``purebpf net show [IFACE]``: the XDP and tc programs on each interface (like
``bpftool net``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import emit_json, wants_json


def cmd_show(args: argparse.Namespace) -> int:
    from purebpf.link import net_show

    recs = net_show(args.iface, only_attached=args.iface is None and not args.all)
    if wants_json(args):
        emit_json(args, [r.to_json() for r in recs])
        return 0
    xdp = [f"{r.ifname}({r.ifindex}) {x.mode} id {x.prog_id}" + (f" name {x.name}"
                                                                 if x.name else "")
           for r in recs for x in r.xdp]
    tc = []
    for r in recs:
        for d in r.to_json()["tc"]:
            where = f"link_id {d['link_id']}" if d["mechanism"] == "tcx" else \
                f"prio {d['prio']} handle {d['handle']:#x}" + (" da" if d["da"] else "")
            tc.append(f"{r.ifname}({r.ifindex}) {d['kind']} {d['name'] or '-'} "
                      f"prog_id {d['id']} {where}")
    print("xdp:")
    print("\n".join(xdp) if xdp else "  (none)")
    print("\ntc:")
    print("\n".join(tc) if tc else "  (none)")
    if args.all:
        bare = [f"{r.ifname}({r.ifindex})" for r in recs if r.empty]
        if bare:
            print("\nnothing attached: " + " ".join(bare))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("net", help="XDP and tc programs per network interface",
                       description="Programs attached to network interfaces in this network "
                       "namespace: XDP (with its mode) and tc (tcx links and cls_bpf "
                       "filters), like 'bpftool net'.")
    nsub = p.add_subparsers(dest="net_command", metavar="COMMAND", required=True)
    c = nsub.add_parser("show", parents=[common], help="XDP and tc programs per interface",
                        description="XDP and tc programs per interface (interfaces with "
                        "nothing attached are left out unless --all or IFACE is given).")
    c.add_argument("iface", nargs="?", metavar="IFACE", help="one interface (name or index)")
    c.add_argument("--all", action="store_true", help="list every interface")
    c.set_defaults(func=cmd_show)


__all__ = ["add_parser"]
