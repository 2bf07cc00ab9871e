"""The ``purebpf`` command. Uses only the public API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import purebpf

from . import demo as _demo


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purebpf", description="eBPF maps, map-in-map first, "
                                "from pure Python.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"purebpf {purebpf.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="a per-service load balancer on a map-in-map, run on this kernel")
    d.add_argument("--packets", type=int, default=600,
                   help="packets to send through the program (default 600)")
    d.add_argument("--seed", type=int, default=1, help="random seed for the packets")
    d.set_defaults(func=_demo.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``purebpf COMMAND ...``; errors print one line and exit non-zero."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc: int = args.func(args)
        return rc
    except purebpf.BPFPermissionError as exc:
        if args.debug:
            raise
        print(f"purebpf: {exc}", file=sys.stderr)
        print("purebpf: this needs the bpf() syscall: run as root (sudo purebpf ...) or with "
              "CAP_BPF", file=sys.stderr)
        return 1
    except (purebpf.BPFError, ValueError, TypeError) as exc:
        if args.debug:
            raise
        print(f"purebpf: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
        return 141


if __name__ == "__main__":
    sys.exit(main())
