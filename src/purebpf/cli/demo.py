"""``purebpf demo``: a per-service load balancer built on a map-in-map, on the real kernel.

The BPF program (examples/lb.c, shipped compiled as purebpf/data/lb.bpf.o) looks up the
packet's service in a HASH_OF_MAPS and hashes its flow to one backend of that service's
table (an inner ARRAY). The demo fills the tables, runs generated packets through the
program with BPF_PROG_TEST_RUN, grows one table with ``staged()`` while another thread keeps
sending packets, and prints the tree of maps.
"""

from __future__ import annotations

import argparse
import collections
import importlib.resources
import os
import random
import struct
import threading
import time

import purebpf
from purebpf import Collection, MapOfMaps

from ._common import CLIError

SERVICES = {53: [101, 102], 80: [201, 202, 203], 443: [301, 302, 303, 304]}
GROW_SERVICE, GROWN = 80, [201, 202, 203, 204, 205, 206]


def packet(rng: random.Random, dport: int, proto: int = 17) -> bytes:
    """An Ethernet/IPv4/UDP (or TCP) frame from a random client to ``dport``."""
    saddr = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
    daddr = bytes([192, 0, 2, 1])
    eth = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + struct.pack("!H", 0x0800)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, proto, 0, saddr, daddr)
    l4 = struct.pack("!HHHH", rng.randrange(1024, 65536), dport, 8, 0)
    frame = eth + ip + l4
    return frame + bytes(64 - len(frame))


def table(backends: list[int]) -> list[int]:
    """Inner-table contents: slot 0 holds the count, then the backend ids."""
    return [len(backends), *backends]


def fill_tables(services: MapOfMaps) -> None:
    """One table per service, sized to its backends (BPF_F_INNER_MAP allows that), all
    stored with one batch update: one RCU grace period instead of one per service."""
    tables = []
    try:
        for backends in SERVICES.values():
            t = services.new_inner(max_entries=len(backends) + 1)
            t.update_batch(range(len(backends) + 1), table(backends))
            tables.append(t)
        start = time.perf_counter()
        services.update_batch(list(SERVICES), tables)
        took = (time.perf_counter() - start) * 1000
    finally:
        for t in tables:
            t.close()
    print(f"stored {len(SERVICES)} backend tables in one batch update ({took:.1f} ms)\n")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``purebpf demo``."""
    if args.packets < 0:
        raise CLIError(f"--packets {args.packets}: the number of packets cannot be negative")
    if os.geteuid() != 0:
        print("purebpf demo talks to the kernel's bpf() syscall, which needs privileges:\n"
              "  run it as root (sudo purebpf demo), or grant CAP_BPF and CAP_NET_ADMIN.")
        return 1
    if getattr(args, "live", False):
        from .demo_live import run_live

        return run_live(args)
    rng = random.Random(args.seed)
    obj = importlib.resources.files("purebpf") / "data" / "lb.bpf.o"
    with importlib.resources.as_file(obj) as path, purebpf.load(path) as coll:
        rc = _demo(coll, rng, args.packets)
        if args.pin:
            _pin(coll, args.pin)
        return rc


def _pin(coll: Collection, root: str) -> None:
    """Pin the demo's maps in ``root`` so they outlive the command."""
    os.makedirs(root, exist_ok=True)
    for name in ("services", "packets"):
        coll.maps[name].pin(os.path.join(root, name))
    print(f"\npinned in {root}: services, packets. Look again with:\n"
          f"  purebpf map tree {root}/services --values\n"
          f"remove with: rm -r {root}")


def _demo(coll: Collection, rng: random.Random, n_packets: int) -> int:
    services = coll.maps["services"]
    assert isinstance(services, MapOfMaps)
    prog = coll.programs["pick_backend"]
    print(f"loaded lb.bpf.o: {services!r} -> per-service backend tables, program "
          f"{prog.name!r}")

    # 1. The tables.
    fill_tables(services)

    # 2. Send packets and show how each service spreads over its backends.
    counts: dict[int, collections.Counter[int]] = {s: collections.Counter() for s in SERVICES}
    for _ in range(n_packets):
        svc = rng.choice(list(SERVICES))
        counts[svc][prog.test_run(packet(rng, svc)).retval] += 1
    print(f"{n_packets} packets through the program (BPF_PROG_TEST_RUN):")
    for svc, c in counts.items():
        total = sum(c.values())
        spread = "  ".join(f"{b}:{c[b] * 100 // max(total, 1):>2}%" for b in SERVICES[svc])
        print(f"  service {svc:>3}  {total:>4} packets  {spread}")
    print(f"  unknown service -> backend {prog.test_run(packet(rng, 9999)).retval} (none)")
    seen = {k: sum(v) for k, v in coll.maps["packets"].items()}
    print(f"  per-CPU packet counters, summed: {dict(sorted(seen.items()))}\n")

    # 3. Grow a table while another thread keeps sending packets to that service.
    ok = set(SERVICES[GROW_SERVICE]) | set(GROWN)
    results: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        trng = random.Random(7)
        while not stop.is_set():
            results.append(prog.test_run(packet(trng, GROW_SERVICE)).retval)

    sender = threading.Thread(target=traffic, name="traffic")
    sender.start()
    try:
        time.sleep(0.05)
        before = len(results)
        with services.staged(GROW_SERVICE, max_entries=len(GROWN) + 1) as bigger:
            # Built aside: the program cannot see this table until the swap.
            bigger.update_batch(range(len(GROWN) + 1), table(GROWN))
        swapped_at = len(results)
        time.sleep(0.05)
    finally:
        stop.set()
        sender.join()
    bad = [r for r in results if r not in ok]
    after = collections.Counter(results[swapped_at:])
    print(f"grew service {GROW_SERVICE} from {len(SERVICES[GROW_SERVICE])} to {len(GROWN)} "
          f"backends with staged() while {len(results)} packets ran in another thread:")
    print(f"  {before} packets before the build, {swapped_at - before} during it, "
          f"{len(results) - swapped_at} after the swap")
    print(f"  runs that saw a half-built or missing table: {len(bad)}")
    print(f"  backends used after the swap: {sorted(after)}\n")

    print(services.tree(limit=8))
    return 1 if bad else 0
