"""``purebpf prog attach PROG HOOK ...``: attach a loaded program to a hook."""

from __future__ import annotations

import argparse
from typing import Any

from purebpf import NotSupportedError, Program

from ._common import CLIError, emit_json, open_program, wants_json

_HOOKS = """\
hooks:
  xdp IFACE [--mode auto|generic|native|offload]
  tc IFACE ingress|egress
  cgroup CGROUP [ATTACH_TYPE]          e.g. cgroup /sys/fs/cgroup/app inet4_connect
  tracepoint CATEGORY NAME             e.g. tracepoint sched sched_switch
  raw_tracepoint NAME
  kprobe FUNC / kretprobe FUNC
  uprobe BINARY SYMBOL / uretprobe BINARY SYMBOL
  netns [PATH]                         sk_lookup and flow_dissector programs

A bpf_link lives while an fd or a pin holds it, so links are pinned at --pin PATH (in a
bpffs); 'purebpf link detach PATH' and 'rm PATH' undo it. On kernels without a link for the
hook (netlink XDP, tc filters, BPF_PROG_ATTACH cgroups) the program stays attached after
purebpf exits without a pin.
"""


def _attach(prog: Program, hook: str, rest: list[str], args: argparse.Namespace) -> Any:
    import purebpf.link as plink

    def need(n: int, usage: str) -> None:
        if len(rest) != n:
            raise CLIError(f"prog attach ... {hook}: expected {usage}")

    if hook == "xdp":
        need(1, "xdp IFACE")
        return plink.attach_xdp(prog, rest[0], mode=args.mode)
    if hook == "tc":
        need(2, "tc IFACE ingress|egress")
        return plink.attach_tc(prog, rest[0], rest[1])
    if hook == "cgroup":
        if len(rest) not in (1, 2):
            raise CLIError("prog attach ... cgroup: expected cgroup CGROUP [ATTACH_TYPE]")
        return plink.attach_cgroup(prog, rest[0], rest[1] if len(rest) == 2 else None)
    if hook in ("tracepoint", "tp"):
        need(2, "tracepoint CATEGORY NAME")
        return plink.attach_tracepoint(prog, rest[0], rest[1])
    if hook in ("raw_tracepoint", "raw_tp"):
        need(1, "raw_tracepoint NAME")
        return plink.attach_raw_tracepoint(prog, rest[0])
    if hook in ("kprobe", "kretprobe"):
        need(1, f"{hook} FUNC")
        return plink.attach_kprobe(prog, rest[0], retprobe=hook == "kretprobe")
    if hook in ("uprobe", "uretprobe"):
        need(2, f"{hook} BINARY SYMBOL")
        return plink.attach_uprobe(prog, rest[0], rest[1], retprobe=hook == "uretprobe")
    if hook == "netns":
        if len(rest) > 1:
            raise CLIError("prog attach ... netns: expected netns [PATH]")
        return plink.attach_netns(prog, rest[0] if rest else None)
    raise CLIError(f"unknown hook {hook!r}; see 'purebpf prog attach --help'")


def cmd_attach(args: argparse.Namespace) -> int:
    with open_program(args.prog) as prog:
        link = _attach(prog, args.hook, args.rest, args)
        with link:
            info = link.info()
            if info.mechanism == "bpf_link":
                if not args.pin:
                    raise CLIError(f"attached {prog.name!r} with a bpf_link, which ends with "
                                   "this command: give --pin PATH (in a bpffs) to keep it")
                link.pin(args.pin)
            else:
                try:
                    link.disconnect()
                except NotSupportedError as exc:
                    raise CLIError(f"{exc}") from None
                if args.pin:
                    raise CLIError(f"attached by {info.mechanism}, which has no link to pin; "
                                   "it stays attached without one")
            out = info.to_json()
    if wants_json(args):
        emit_json(args, out)
    else:
        where = "  ".join(f"{k} {v}" for k, v in out.items()
                          if k not in ("id", "type", "prog_id", "mechanism"))
        link_id = f" link {out['id']}" if out["id"] else ""
        pinned = f", pinned at {args.pin}" if args.pin else ""
        print(f"attached program {prog.name!r} (id {out['prog_id']}) to {args.hook}: {where}"
              f" via {out['mechanism']}{link_id}{pinned}")
    return 0


def add_parser(psub: Any, common: argparse.ArgumentParser) -> None:
    c = psub.add_parser("attach", parents=[common], help="attach a loaded program to a hook",
                        description="Attach a loaded program (by id, pin or name) to a hook.",
                        epilog=_HOOKS, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("prog", metavar="ID|PIN|NAME")
    c.add_argument("hook", metavar="HOOK")
    c.add_argument("rest", nargs="*", metavar="ARG")
    c.add_argument("--pin", metavar="PATH", help="pin the link here (needed for bpf_links)")
    c.add_argument("--mode", default="auto", choices=["auto", "generic", "native", "offload"],
                   help="XDP mode (default auto: native, else generic)")
    c.set_defaults(func=cmd_attach)


__all__ = ["add_parser"]
