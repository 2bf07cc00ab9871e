"""``purebpf link ...`` (list, show, pin, detach)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import CLIError, each_open, emit, emit_all, parse_int, wants_json

if TYPE_CHECKING:
    from purebpf.link import Link


def open_link(ref: str) -> Link:
    """The link named by ``ref``: a kernel id (``7`` or ``id:7``) or a pinned path."""
    from purebpf.link import Link

    if ref.startswith("pinned:"):
        return Link.from_pin(ref[len("pinned:"):])
    if ref.startswith("id:"):
        ref = ref[3:]
    if "/" in ref:
        return Link.from_pin(ref)
    if not ref.isdigit():
        raise CLIError(f"link {ref!r}: links have no names; give an id (see 'purebpf link "
                       "list') or a pinned path")
    return Link.from_id(parse_int(ref, "link id"))


def summary(link: Link) -> dict[str, Any]:
    """bpftool's JSON for a link: id, type, prog_id, then the type's own fields."""
    d = link.info().to_json()
    d.pop("mechanism", None)  # always bpf_link for a link found by id or pin
    return d


def summary_lines(d: dict[str, Any]) -> list[str]:
    head = f"{d['id']}: {d['type']}  prog {d['prog_id']}"
    rest = [f"{k} {v}" for k, v in d.items() if k not in ("id", "type", "prog_id")]
    return [head] + (["\t" + "  ".join(rest)] if rest else [])


def cmd_list(args: argparse.Namespace) -> int:
    from purebpf.link import Link

    out = []
    for link in each_open(Link.ids(), Link.from_id):
        with link:
            out.append(summary(link))
    emit_all(args, out, summary_lines)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_link(args.link) as link:
        emit(args, summary(link), summary_lines)
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    with open_link(args.link) as link:
        link.pin(args.path)
        if not wants_json(args):
            print(f"pinned link {link.id} at {args.path}")
    return 0


def cmd_detach(args: argparse.Namespace) -> int:
    with open_link(args.link) as link:
        link.detach()
        if not wants_json(args):
            print(f"detached link {link.id} (it stays listed while pinned or open; unpin "
                  "it to free it)")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("link", help="list, show, pin and detach links (attached programs)",
                       description="BPF links: programs attached to hooks. A link is named "
                       "by its id or a path where it is pinned. A link lives while an fd or "
                       "a pin holds it: pin the ones that must outlive their process.")
    lsub = p.add_subparsers(dest="link_command", metavar="COMMAND", required=True)

    def cmd(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = lsub.add_parser(name, help=help, parents=[common],
                                                     description=help)
        c.set_defaults(func=func)
        return c

    cmd("list", cmd_list, "every link in the system (like bpftool link show)")
    c = cmd("show", cmd_show, "one link: id, type, program and target")
    c.add_argument("link", metavar="ID|PIN")
    c = cmd("pin", cmd_pin, "pin a link in a bpffs so it outlives every fd")
    c.add_argument("link", metavar="ID|PIN")
    c.add_argument("path", metavar="PATH")
    c = cmd("detach", cmd_detach, "detach a link's program from its hook now "
            "(BPF_LINK_DETACH), even while pinned")
    c.add_argument("link", metavar="ID|PIN")


__all__ = ["add_parser", "open_link", "summary"]
