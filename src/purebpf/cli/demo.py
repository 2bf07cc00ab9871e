"""``purebpf demo``: a per-service backend table as a map-in-map, on the real kernel."""

from __future__ import annotations

import argparse

from purebpf import Map, MapFlags, MapSpec, MapType


def run(args: argparse.Namespace) -> int:
    """Build services -> backends, fill it, grow one table atomically, print the tree."""
    n = max(1, min(args.services, 64))
    backends = MapSpec(MapType.ARRAY, key_type=int, value_type=int, value_size=4, max_entries=4,
                       flags=MapFlags.INNER_MAP, name="backends")
    spec = MapSpec(MapType.HASH_OF_MAPS, key_type=int, key_size=4, max_entries=64, name="services",
                   inner=backends)
    with Map.create(spec) as services:
        print(f"created {services!r}")
        print(f"  inner template: ARRAY u32 -> u32, BPF_F_INNER_MAP (tables may differ in size)")
        tables = []
        try:
            for svc in range(1, n + 1):
                t = services.new_inner(max_entries=2 + svc)
                for slot in range(t.max_entries):
                    t[slot] = 100 * svc + slot
                tables.append(t)
            # one BPF_MAP_UPDATE_BATCH: the kernel waits one RCU grace period, not n
            services.update_batch(range(1, n + 1), tables)
        finally:
            for t in tables:
                t.close()
        print(f"stored {n} backend tables with one batch update")
        first = services[1]
        print(f"services[1] -> {first!r}: {list(first.values())}")
        with services.staged(1, copy=True, max_entries=8) as bigger:
            for slot in range(first.max_entries, 8):
                bigger[slot] = 100 + slot
        print("grew service 1 to 8 backends with staged(): built aside, swapped in one update")
        print()
        print(services.tree())
    return 0
