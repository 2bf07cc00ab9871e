#!/usr/bin/env python3
"""purebpf map benchmarks against raw-bpf() C baselines.

Run from the repository root::

    PYTHONPATH=src python3 bench/bench_maps.py            # full run (about 30 s)
    PYTHONPATH=src python3 bench/bench_maps.py --quick    # short run
    PYTHONPATH=src python3 bench/bench_maps.py --json     # JSON on stdout, table on stderr
    PYTHONPATH=src python3 bench/bench_maps.py --strict   # exit 1 if a target fails

Needs root (or CAP_BPF) and a kernel with bpf(). The C baselines in bench/c/ are compiled
with ``cc`` into bench/.build/; without a compiler the C column reads "n/a".

The process (and so the C runs it starts) is pinned to one CPU. Each round runs every
benchmark for purebpf and for C, alternating which goes first (the single-element rows in
slices of iters/10 ops, alternating py/C slice by slice). Rows 1-3 report the
fastest round of each side (--stat median for the median), rows 4-5 the median single
update; the ratio is purebpf / C. See bench/README.md for what each row measures.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import sys
import time
from typing import Any

import _common as common
from _common import BUILD_DIR, C_DIR, Samples, fmt_time, log, no_gc

import purebpf
from purebpf import Map, MapFlags, MapOfMaps, MapSpec, MapType

C_PROGRAMS = ("elem", "batch", "outer")
now = time.perf_counter_ns
NKEYS = 1024           # distinct keys cycled through by the single-element rows
INNER_ENTRIES = 16     # inner ARRAY maps of the outer-map rows (as in bench/c/outer.c)


# -- configuration ----------------------------------------------------------------------------
class Config:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 3 if quick else 5
        self.iters = 20_000 if quick else 200_000      # single-element ops per round
        self.slices = 4 if quick else 10               # ... run as this many py/C slices
        self.batch_n = 100_000                         # entries of the batch rows
        self.lookup_chunk = 1024                       # lookup_batch(chunk=...)
        # update_batch's own chunk size; the C baseline uses the same.
        self.update_chunk = int(getattr(sys.modules["purebpf._map"], "_BATCH_CHUNK", 4096))
        self.swap_iters = 6 if quick else 20           # outer updates per round (row 4)
        self.n_inner = 64                              # inner maps stored in row 5
        self.store_rounds = 1 if quick else 3          # rounds of row 5 (each ~65 grace periods)


# -- C baselines ------------------------------------------------------------------------------
class CBench:
    """Compiles bench/c/*.c with ``cc`` and runs the binaries; ``available`` per program."""

    def __init__(self, enabled: bool = True) -> None:
        self.cc = shutil.which("cc") if enabled else None
        self.available: dict[str, bool] = {p: False for p in C_PROGRAMS}
        self.note = ""
        if self.cc is None:
            self.note = "no C compiler (cc) found" if enabled else "C baselines disabled"
            return
        header = C_DIR / "bench_common.h"
        for prog in C_PROGRAMS:
            if common.compile_c(self.cc, prog, [header], hint="; its C column is n/a") is None:
                self.note = f"compiling {prog}.c failed"
                continue
            self.available[prog] = True

    def run(self, prog: str, *args: Any) -> Samples | None:
        """Run one baseline; its output lines are ``name value [value...]``."""
        if not self.available[prog]:
            return None
        out = common.run_c(BUILD_DIR / prog, *args)
        if out is None:
            self.available[prog] = False
        return out


# -- helpers ----------------------------------------------------------------------------------
def hash_spec(max_entries: int) -> MapSpec:
    # u32 -> u64, declared as such: keys and values decode to ints
    return MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=max_entries,
                   key_type=int, value_type=int, name="bench_hash")


def inner_spec() -> MapSpec:
    return MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=INNER_ENTRIES,
                   value_type=int)


def outer_spec(max_entries: int) -> MapSpec:
    return MapSpec(MapType.ARRAY_OF_MAPS, max_entries=max_entries, inner=inner_spec(),
                   name="bench_outer")


# -- the benchmarks: each group has a purebpf side and a C side, returning samples ------------
class Group:
    """One benchmark group: ``py()`` and ``c()`` return {measurement: [samples]}."""

    name = ""
    rounds: int | None = None  # None: every round
    slices = 1                 # >1: a round alternates py/C this many times; samples averaged

    def setup(self, stack: contextlib.ExitStack) -> None: ...

    def py(self) -> dict[str, list[float]]:
        raise NotImplementedError

    def c(self) -> dict[str, list[float]] | None:
        raise NotImplementedError


class HashElem(Group):
    name = "HASH element"
    kind = "hash"                                  # bench/c/elem.c's map type
    measures = ("hash_lookup", "hash_update")      # m[k], m[k] = k

    def __init__(self, cfg: Config, cb: CBench) -> None:
        self.cfg, self.cb = cfg, cb
        self.slices = max(1, cfg.slices)
        self.n = max(1, cfg.iters // self.slices)  # ops per slice
        self.keys = [i % NKEYS for i in range(self.n)]
        self.warm = self.keys[: self.n // 10 + 1]

    def setup(self, stack: contextlib.ExitStack) -> None:
        self.m = stack.enter_context(Map.create(hash_spec(4 * NKEYS)))
        for k in range(NKEYS):
            self.m[k] = k

    def py(self) -> dict[str, list[float]]:
        m, keys, n = self.m, self.keys, len(self.keys)
        with no_gc():
            for k in self.warm:
                m[k]
                m[k] = k
            t0 = now()
            for k in keys:
                m[k]
            t1 = now()
            for k in keys:
                m[k] = k
            t2 = now()
        lookup, update = self.measures
        return {lookup: [(t1 - t0) / n], update: [(t2 - t1) / n]}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("elem", self.kind, self.n, NKEYS)
        lookup, update = self.measures
        return None if r is None else {lookup: r["lookup_ns"], update: r["update_ns"]}


class MmapElem(HashElem):
    name = "ARRAY element"
    kind = "array"
    measures = ("mmap_read", "mmap_write")         # a[i], a[i] = i

    def setup(self, stack: contextlib.ExitStack) -> None:
        spec = MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=NKEYS,
                       flags=MapFlags.MMAPABLE, value_type=int, name="bench_mmap")
        self.m = stack.enter_context(Map.create(spec))
        if not isinstance(self.m, purebpf.MmapArray):
            raise RuntimeError(f"expected an MmapArray, got {type(self.m).__name__}")


class Batch(Group):
    name = "HASH batch"

    def __init__(self, cfg: Config, cb: CBench) -> None:
        self.cfg, self.cb = cfg, cb
        self.keys = list(range(cfg.batch_n))
        self.values = list(range(cfg.batch_n))

    def py(self) -> dict[str, list[float]]:
        # A fresh map each round, with the same history as the C side's: one insert pass
        # and one lookup pass untimed, then a timed replace pass and a timed lookup pass.
        n, chunk = self.cfg.batch_n, self.cfg.lookup_chunk
        with Map.create(hash_spec(n)) as m:
            m.update_batch(self.keys, self.values)
            m.lookup_batch(chunk=chunk)
            with no_gc():
                t0 = now()
                m.update_batch(self.keys, self.values)
                t1 = now()
                out = m.lookup_batch(chunk=chunk)
                t2 = now()
        if len(out) != n:
            raise RuntimeError(f"lookup_batch returned {len(out)} of {n} entries")
        del out
        return {"batch_update": [(t1 - t0) / n], "batch_lookup": [(t2 - t1) / n]}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("batch", self.cfg.batch_n, self.cfg.update_chunk, self.cfg.lookup_chunk)
        return None if r is None else {"batch_update": r["update_ns"],
                                       "batch_lookup": r["lookup_ns"]}


class OuterSwap(Group):
    name = "outer-map swap"

    def __init__(self, cfg: Config, cb: CBench) -> None:
        self.cfg, self.cb = cfg, cb

    def setup(self, stack: contextlib.ExitStack) -> None:
        outer = stack.enter_context(Map.create(outer_spec(64)))
        assert isinstance(outer, MapOfMaps)
        self.outer = outer
        self.inner = [stack.enter_context(self.outer.new_inner()) for _ in range(2)]
        self.outer[0] = self.inner[1]  # warm-up

    def py(self) -> dict[str, list[float]]:
        outer, inner, n = self.outer, self.inner, self.cfg.swap_iters
        swap: list[float] = []
        sets: list[float] = []
        with no_gc():
            for i in range(n):
                t0 = now()
                old = outer.swap(0, inner[i & 1])
                t1 = now()
                swap.append(t1 - t0)
                if old is not None:
                    old.close()  # the Map the lookup opened for the previous inner map
            for i in range(n):
                t0 = now()
                outer[0] = inner[i & 1]
                t1 = now()
                sets.append(t1 - t0)
        return {"outer_swap": swap, "outer_set": sets}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("outer", "single", self.cfg.swap_iters)
        return None if r is None else {"outer_swap": r["update_ns"], "outer_set": r["update_ns"]}


class OuterStore(Group):
    name = "64 inner maps"

    def __init__(self, cfg: Config, cb: CBench) -> None:
        self.cfg, self.cb = cfg, cb
        self.rounds = cfg.store_rounds

    def setup(self, stack: contextlib.ExitStack) -> None:
        self.maps = [stack.enter_context(Map.create(inner_spec()))
                     for _ in range(self.cfg.n_inner)]
        self.keys = list(range(self.cfg.n_inner))

    def py(self) -> dict[str, list[float]]:
        maps, keys = self.maps, self.keys
        with no_gc():
            with Map.create(outer_spec(len(keys))) as o1:
                t0 = now()
                for k, m in zip(keys, maps):
                    o1[k] = m
                t1 = now()
            with Map.create(outer_spec(len(keys))) as o2:
                t2 = now()
                o2.update_batch(keys, maps)
                t3 = now()
        return {"store_seq": [t1 - t0], "store_batch": [t3 - t2]}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("outer", "store", self.cfg.n_inner)
        return None if r is None else {"store_seq": r["seq_ns"], "store_batch": r["batch_ns"]}


# -- rows of the table ------------------------------------------------------------------------
# id, label, unit ("ns" per op or "ms" total), target kind, target value.
# Rows 1-3 (CPU-bound, one sample per round) use the fastest round of each side by default
# (--stat median to change); rows 4-5 (dominated by the kernel's RCU wait) use the median.
ROWS: list[tuple[str, str, str, str | None, float | None]] = [
    ("hash_lookup", "1  HASH u32->u64   m[k]", "ns", "ratio", 1.7),
    ("hash_update", "1  HASH u32->u64   m[k] = v", "ns", "ratio", 1.7),
    ("mmap_read", "2  mmap ARRAY      a[i]      (C: syscall)", "ns", "ratio", 0.5),
    ("mmap_write", "2  mmap ARRAY      a[i] = v  (C: syscall)", "ns", "ratio", 0.5),
    ("batch_update", "3  HASH update_batch, per elem", "ns", "ratio", 1.2),
    ("batch_lookup", "3  HASH lookup_batch, per elem", "ns", "ratio", 1.2),
    ("outer_swap", "4  ARRAY_OF_MAPS outer.swap(k, m)", "ms", None, None),
    ("outer_set", "4  ARRAY_OF_MAPS outer[k] = m", "ms", None, None),
    ("store_seq", "5  64 inner maps, outer[k] = m each", "ms", None, None),
    ("store_batch", "5  64 inner maps, one update_batch", "ms", "gp", 2.0),
]


def summarize(samples: dict[str, dict[str, list[float]]], stat: str) -> list[dict[str, Any]]:
    py_s, c_s = samples["py"], samples["c"]
    # One RCU grace period: the median C outer-map update (purebpf's if there is no C).
    gp_src = "C" if c_s.get("outer_set") else "purebpf"
    gp_samples = c_s.get("outer_set") or py_s.get("outer_set") or []
    gp = statistics.median(gp_samples) if gp_samples else None
    rows = []
    for rid, label, unit, kind, target in ROWS:
        p, c = py_s.get(rid, []), c_s.get(rid, [])
        row_stat = stat if unit == "ns" else "median"
        pick = min if row_stat == "min" else statistics.median
        pv, cv = (pick(p) if p else None), (pick(c) if c else None)
        ratio = common.ratio(pv, cv)
        row: dict[str, Any] = {
            "id": rid, "label": label, "unit": unit, "stat": row_stat,
            "purebpf_ns": pv, "c_ns": cv, "ratio": ratio,
            "purebpf_median_ns": common.median_or_none(p),
            "c_median_ns": common.median_or_none(c),
            "purebpf_min_ns": common.min_or_none(p), "c_min_ns": common.min_or_none(c),
            "purebpf_samples": p, "c_samples": c}
        row["median_ratio"] = common.ratio(row["purebpf_median_ns"], row["c_median_ns"])
        if kind == "ratio" and target is not None:
            row["target"], row["result"] = common.judge_ratio(ratio, target)
        elif kind == "gp" and target is not None:
            gps = pv / gp if pv is not None and gp else None
            row["grace_periods"] = gps
            row["grace_period_ns"] = gp
            row["grace_period_from"] = gp_src
            row["target"] = f"<= {target:g} GP"
            row["result"] = "n/a" if gps is None else (
                f"{'PASS' if gps <= target else 'FAIL'} ({gps:.2f} GP)")
        else:
            row["target"], row["result"] = common.REPORTED
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    stat = "fastest round" if meta["stat"] == "min" else "median of rounds"
    lines = [
        f"purebpf {meta['purebpf']} map benchmarks, {meta['date']}: Python {meta['python']}, "
        f"Linux {meta['kernel']}, {meta['cpus']} CPUs, {common.pinning(meta['cpu'])}",
        f"mode {meta['mode']}: {meta['rounds']} rounds x {meta['iters']} single-element ops "
        f"(in {meta['slices']} py/C slices), "
        f"batch {meta['batch_n']} entries (update chunk {meta['update_chunk']}, lookup chunk "
        f"{meta['lookup_chunk']}), {meta['swap_iters']} outer updates/round, "
        f"{meta['store_rounds']} round(s) of {meta['n_inner']} inner maps",
        f"rows 1-3: {stat} of each side; rows 4-5: median; ratio = purebpf / C (judged); "
        "med = ratio of the medians",
    ]
    if meta.get("c_note"):
        lines.append(f"C baselines: {meta['c_note']}")
    cells = []
    for r in rows:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        med = "" if r["stat"] == "median" or r["median_ratio"] is None else \
            f"{r['median_ratio']:.2f}"
        cells.append((r["label"], fmt_time(r["purebpf_ns"], r["unit"]),
                      fmt_time(r["c_ns"], r["unit"]), ratio, med, r["target"], r["result"]))
    lines += common.table(42, "C", "med", cells)
    gp_row = next(r for r in rows if r["id"] == "store_batch")
    if gp_row.get("grace_period_ns"):
        lines.append(f"(1 grace period = median single outer-map update in "
                     f"{gp_row['grace_period_from']} = "
                     f"{gp_row['grace_period_ns'] / 1e6:.2f} ms)")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------
def run(cfg: Config, cb: CBench) -> dict[str, Samples]:
    groups: list[Group] = [HashElem(cfg, cb), MmapElem(cfg, cb), Batch(cfg, cb),
                           OuterSwap(cfg, cb), OuterStore(cfg, cb)]
    samples: dict[str, Samples] = {"py": {}, "c": {}}
    with contextlib.ExitStack() as stack:  # every map the benchmark creates is closed here
        for g in groups:
            g.setup(stack)
        log("warming up ...")
        for g in groups[:3]:
            g.py()
            g.c()
        for r in range(cfg.rounds):
            log(f"round {r + 1}/{cfg.rounds}")
            for g in groups:
                if g.rounds is not None and r >= g.rounds:
                    continue
                # Slices alternate py/C so that both sides of a round see the same
                # machine; a sliced round's sample is the mean over its slices.
                acc: dict[str, Samples] = {"py": {}, "c": {}}
                for sl in range(g.slices):
                    for side, fn in common.in_turn(r + sl, g.py, g.c):
                        common.add_samples(acc[side], fn())
                for side, res in acc.items():
                    common.add_samples(samples[side], {
                        k: [statistics.fmean(v)] if g.slices > 1 else v for k, v in res.items()})
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = common.parser(__doc__, quick_help="short run (20k ops, 3 rounds)")
    ap.add_argument("--iters", type=int, help="override single-element ops per round")
    ap.add_argument("--no-c", action="store_true", help="skip the C baselines")
    ap.add_argument("--stat", choices=("min", "median"), default="min",
                    help="statistic for rows 1-3 (default: min, the fastest round of each "
                    "side; noise on a shared machine only ever adds time)")
    common.add_pin_args(ap, "CPU to pin this process and the C runs to (default: the highest "
                        "allowed CPU; pinning both sides to one CPU cuts the noise a lot)")
    args = ap.parse_args(argv)

    cfg = Config(args.quick)
    if args.rounds:
        cfg.rounds = args.rounds
        cfg.store_rounds = min(cfg.store_rounds, cfg.rounds)
    if args.iters:
        cfg.iters = args.iters
    cpu = common.pin(args)  # inherited by the C baselines
    if not common.bpf_usable("bench_maps"):
        return 2

    cb = CBench(enabled=not args.no_c)
    if cb.note:
        log(f"C baselines: {cb.note}")
    t0 = time.monotonic()
    samples = run(cfg, cb)
    rows = summarize(samples, args.stat)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "purebpf": purebpf.__version__,
        "python": platform.python_version(), "kernel": platform.release(),
        "cpus": os.cpu_count(), "mode": "quick" if cfg.quick else "full",
        "rounds": cfg.rounds, "iters": cfg.iters, "slices": cfg.slices, "batch_n": cfg.batch_n,
        "update_chunk": cfg.update_chunk, "lookup_chunk": cfg.lookup_chunk,
        "swap_iters": cfg.swap_iters, "store_rounds": cfg.store_rounds,
        "n_inner": cfg.n_inner, "c_note": cb.note, "cpu": cpu, "stat": args.stat,
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    common.output(render(rows, meta), meta, rows, args.json)
    return common.exit_code(rows, args.strict)


if __name__ == "__main__":
    sys.exit(main())
