"""``purebpf btf dump``: a BTF type table as bpftool's raw listing or as vmlinux.h-style C."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from purebpf import BTFHandle
from purebpf.btf import BTFError, Spec, dump_c, parse
from purebpf.btf.attach import vmlinux
from purebpf.btf.raw import iter_raw, raw_types
from purebpf.elf import read_elf

from ._common import CLIError, emit_json, parse_int, wants_json

KERNEL_BTF_DIR = "/sys/kernel/btf"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None


def load_source(source: str, base_path: str | None = None) -> Spec:
    """The BTF named by ``source``: ``vmlinux``, a kernel BTF id, a BPF object file (its
    .BTF section) or a raw BTF file (/sys/kernel/btf/<module> is split BTF on vmlinux)."""
    base = parse(_read(base_path)) if base_path else None
    if source == "vmlinux":
        return vmlinux()  # raises NotSupportedError naming CONFIG_DEBUG_INFO_BTF
    if source.isdigit() or source.startswith("id:"):
        handle = BTFHandle.from_id(parse_int(source.removeprefix("id:"), "BTF id"))
        with handle:
            return handle.spec(base)
    data = _read(source)
    if data[:4] == b"\x7fELF":
        sec = read_elf(source).section(".BTF")
        if sec is None:
            raise CLIError(f"{source} has no .BTF section (compile with clang -g)")
        return parse(sec.data, base)
    real = os.path.realpath(source)
    if base is None and os.path.dirname(real) == KERNEL_BTF_DIR and \
            os.path.basename(real) != "vmlinux":
        base = vmlinux()  # a module's BTF continues vmlinux's type ids
    return parse(data, base)


def cmd_dump(args: argparse.Namespace) -> int:
    try:
        spec = load_source(args.source, args.base)
    except BTFError as exc:
        raise CLIError(f"{args.source}: not readable as BTF: {exc}") from None
    if args.format == "c" and wants_json(args):
        raise CLIError("--json is only for --format raw")
    # Types decode as they are dumped: a malformed one shows up only now.
    try:
        _dump(args, spec)
    except BTFError as exc:
        raise CLIError(f"{args.source}: malformed BTF: {exc}") from None
    return 0


def _dump(args: argparse.Namespace, spec: Spec) -> None:
    if args.format == "c":
        sys.stdout.write(dump_c(spec))
    elif wants_json(args):
        emit_json(args, {"types": raw_types(spec)})
    else:
        write = sys.stdout.write
        for line in iter_raw(spec):
            write(line + "\n")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("btf", help="dump BTF type information",
                       description="BPF Type Format: the type information of the kernel, "
                       "its modules, BPF objects and loaded maps and programs.")
    bsub = p.add_subparsers(dest="btf_command", metavar="COMMAND", required=True)
    c = bsub.add_parser("dump", parents=[common], help="every type, raw or as C",
                        description="Dump every type of a BTF table. SOURCE is 'vmlinux' "
                        "(the running kernel), a BTF object id (see the btf_id of 'map show' "
                        "and 'prog show'; module BTF is split BTF on top of vmlinux), a BPF "
                        "object file (its .BTF section) or a raw BTF file.")
    c.add_argument("source", metavar="FILE|ID|vmlinux")
    c.add_argument("--format", choices=("raw", "c"), default="raw",
                   help="raw: one line per type, as bpftool prints it (default); c: a "
                   "vmlinux.h-style header that compiles on its own")
    c.add_argument("--base", metavar="FILE", help="base BTF for a split BTF file (default "
                   f"for {KERNEL_BTF_DIR}/<module>: {KERNEL_BTF_DIR}/vmlinux)")
    c.set_defaults(func=cmd_dump)


__all__ = ["add_parser", "load_source"]
