"""The ``purebpf`` command. Uses only the public API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import purebpf

from . import btfcmd as _btf
from . import demo as _demo
from . import featurescmd as _features
from . import eventscmd as _events
from . import links as _links
from . import netcmd as _net
from . import maps as _maps
from . import progs as _progs
from ._common import CLIError

_EPILOG = """\
examples:
  purebpf map list
  purebpf map tree services --values       an outer map and every inner map under it
  purebpf map insert 12 7 /sys/fs/bpf/t7   put a map into slot 7 (checked against the template)
  purebpf prog load lb.bpf.o --pin-root /sys/fs/bpf/lb
  purebpf obj inspect lb.bpf.o             what an object declares, loading nothing
  purebpf btf dump vmlinux --format c > vmlinux.h
  purebpf --json features

Maps and programs are named by id, pinned path (anything with a '/') or kernel name.
"""


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after its name."""
    c = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the subcommand they override, absent they leave the top level's.
    c.add_argument("-j", "--json", action="store_true", default=argparse.SUPPRESS,
                   help="JSON output (bpftool's field names where bpftool has one)")
    c.add_argument("-p", "--pretty", action="store_true", default=argparse.SUPPRESS,
                   help="indented JSON (implies --json)")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks on errors")
    return c


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purebpf", description="eBPF maps, map-in-map first, "
                                "from pure Python.", epilog=_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("-j", "--json", action="store_true",
                   help="JSON output (bpftool's field names where bpftool has one)")
    p.add_argument("-p", "--pretty", action="store_true", help="indented JSON (implies --json)")
    p.add_argument("--version", action="version", version=f"purebpf {purebpf.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = _common()
    _maps.add_parser(sub, common)
    _progs.add_parser(sub, common)
    _links.add_parser(sub, common)
    _net.add_parser(sub, common)
    _events.add_parser(sub, common)
    _btf.add_parser(sub, common)
    _features.add_parser(sub, common)
    d = sub.add_parser("demo", help="a per-service load balancer on a map-in-map, run on this kernel")
    d.add_argument("--packets", type=int, default=600,
                   help="packets to send through the program (default 600)")
    d.add_argument("--seed", type=int, default=1, help="random seed for the packets")
    d.add_argument("--pin", metavar="DIR",
                   help="leave the demo's maps pinned in DIR (in a bpffs) afterwards, to "
                        "inspect them with 'purebpf map tree DIR/services'")
    d.add_argument("--live", action="store_true",
                   help="on real packets: a network namespace and a veth pair, the program "
                        "attached with XDP, events through a ring buffer (needs root and "
                        "iproute2; removes everything it made)")
    d.set_defaults(func=_demo.run)
    return p


def _one_line(exc: BaseException) -> str:
    """The error as one line: a verifier error keeps its last verdict, not the whole log."""
    if isinstance(exc, purebpf.VerifierError):
        reason = exc.reason.splitlines()[-1] if exc.reason else ""
        at = f" at {exc.source_line}" if exc.source_line else ""
        text = purebpf.BPFError.__str__(exc)
        return f"{text}: {reason}{at} (--debug shows the whole log)" if reason else text
    if isinstance(exc, OSError) and not isinstance(exc, purebpf.BPFError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``purebpf COMMAND ...``; errors print one line and exit non-zero."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc: int = args.func(args)
        return rc
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
        return 141
    except purebpf.BPFPermissionError as exc:
        if args.debug:
            raise
        print(f"purebpf: {_one_line(exc)}", file=sys.stderr)
        if os.geteuid() != 0:
            print("purebpf: this needs the bpf() syscall: run as root (sudo purebpf ...) or "
                  "with CAP_BPF", file=sys.stderr)
        return 1
    except (CLIError, OSError, ValueError, TypeError, KeyError) as exc:
        # BPFError is an OSError; BTF parse errors are ValueErrors.
        if args.debug:
            raise
        print(f"purebpf: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
