"""``purebpf events SOURCE [MAP]``: print ring-buffer or perf-buffer records as they come.

SOURCE is a map (id, pinned path or name) of type RINGBUF or PERF_EVENT_ARRAY, or a BPF
object file: then the object is loaded, every program whose section names its hook is
attached, and the records of its map MAP are printed until Ctrl-C (or --count/--timeout),
when everything is detached and unloaded again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from typing import Any

import purebpf
from purebpf import Map, MapType

from ._common import CLIError, open_map, wants_json


def _consumer(m: Map, record: str | None, btf: Any) -> Any:
    from purebpf.events import PerfEventArray, RingBuffer

    rec: Any = record
    if m.type == MapType.RINGBUF:
        return RingBuffer(m, record=rec, btf=btf)
    if m.type == MapType.PERF_EVENT_ARRAY:
        return PerfEventArray(m, record=rec, btf=btf)
    tname = getattr(m.type, "name", str(m.type))
    article = "an" if tname[:1] in "AEIOU" else "a"
    raise CLIError(f"map {m.name!r} (id {m.id}) is {article} {tname} map; events come from "
                   "RINGBUF and PERF_EVENT_ARRAY maps")


def _show(rec: Any, as_json: bool) -> str:
    if isinstance(rec, (bytes, bytearray)):
        return json.dumps({"data": rec.hex()}) if as_json else rec.hex()
    if as_json:
        return json.dumps(rec, default=lambda o: o.hex() if isinstance(o, bytes) else str(o))
    if isinstance(rec, dict):
        return "  ".join(f"{k} {v}" for k, v in rec.items())
    return str(rec)


def cmd_events(args: argparse.Namespace) -> int:
    as_json = wants_json(args)
    with contextlib.ExitStack() as stack:
        btf = None
        if os.path.isfile(args.source) and not args.source.startswith("/sys/fs/bpf"):
            if not args.map:
                raise CLIError(f"{args.source} is an object file: name the map whose events "
                               "to print (purebpf events OBJ MAP)")
            coll = stack.enter_context(purebpf.load(args.source))
            if args.map not in coll.maps:
                raise CLIError(f"{args.source} has no map {args.map!r} (maps: "
                               f"{', '.join(sorted(coll.maps))})")
            m = coll.maps[args.map]
            btf = coll.spec.btf
            links = coll.attach_all()
            if not as_json:
                names = ", ".join(sorted(links)) or "none"
                print(f"loaded {os.path.basename(args.source)}; attached: {names}",
                      flush=True)
        else:
            if args.map:
                raise CLIError(f"{args.source} is a map; give only the map (or an object "
                               "file and a map name)")
            m = stack.enter_context(open_map(args.source))
        cons = stack.enter_context(_consumer(m, args.record, btf))
        seen = 0
        end = time.monotonic() + args.timeout if args.timeout is not None else None
        try:
            while args.count is None or seen < args.count:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    break
                cons.poll(timeout=left if left is not None else 1.0)
                for rec in cons.drain():
                    print(_show(rec, as_json), flush=True)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        break
        except KeyboardInterrupt:
            pass
        lost = getattr(cons, "lost", 0)
        if lost and not as_json:
            print(f"({lost} records lost: the consumer fell behind)")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    c = sub.add_parser("events", parents=[common], help="print ring-buffer/perf records as "
                       "they come", description=__doc__.split("\n\n", 1)[1] if __doc__
                       else None, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("source", metavar="MAP|OBJ", help="a RINGBUF or PERF_EVENT_ARRAY map (id, "
                   "pin, name), or a BPF object file")
    c.add_argument("map", nargs="?", metavar="MAP", help="with an object file: the map name")
    c.add_argument("--record", metavar="TYPE", help="decode records as this BTF struct "
                   "(e.g. 'struct event'); default: hex bytes")
    c.add_argument("--count", type=int, metavar="N", help="stop after N records")
    c.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after SECONDS")
    c.set_defaults(func=cmd_events)


__all__ = ["add_parser"]
