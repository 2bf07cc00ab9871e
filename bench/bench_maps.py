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

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
C_DIR = HERE / "c"
BUILD_DIR = HERE / ".build"
C_PROGRAMS = ("elem", "batch", "outer")

try:
    import purebpf
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(HERE.parent / "src"))
    import purebpf

from purebpf import Map, MapFlags, MapSpec, MapType

now = time.perf_counter_ns
NKEYS = 1024           # distinct keys cycled through by the single-element rows
INNER_ENTRIES = 16     # inner ARRAY maps of the outer-map rows (as in bench/c/outer.c)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


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
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        header = C_DIR / "bench_common.h"
        for prog in C_PROGRAMS:
            src, out = C_DIR / f"{prog}.c", BUILD_DIR / prog
            deps = [src, header]
            if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
                self.available[prog] = True
                continue
            cmd = [self.cc, "-O2", "-Wall", "-o", str(out), str(src)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                log(f"warning: compiling {src.name} failed; its C column is n/a\n{res.stderr}")
                self.note = f"compiling {src.name} failed"
                continue
            self.available[prog] = True

    def run(self, prog: str, *args: Any) -> dict[str, list[float]] | None:
        """Run one baseline; its output lines are ``name value [value...]``."""
        if not self.available[prog]:
            return None
        cmd = [str(BUILD_DIR / prog), *map(str, args)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            log(f"warning: {' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()}; "
                "C column is n/a")
            self.available[prog] = False
            return None
        out: dict[str, list[float]] = {}
        for line in res.stdout.splitlines():
            name, *vals = line.split()
            out[name] = [float(v) for v in vals]
        return out


# -- timing helpers ---------------------------------------------------------------------------
@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        return {"hash_lookup": [(t1 - t0) / n], "hash_update": [(t2 - t1) / n]}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("elem", "hash", self.n, NKEYS)
        return None if r is None else {"hash_lookup": r["lookup_ns"],
                                       "hash_update": r["update_ns"]}


class MmapElem(HashElem):
    name = "ARRAY element"

    def setup(self, stack: contextlib.ExitStack) -> None:
        spec = MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=NKEYS,
                       flags=MapFlags.MMAPABLE, value_type=int, name="bench_mmap")
        self.m = stack.enter_context(Map.create(spec))
        if not isinstance(self.m, purebpf.MmapArray):
            raise RuntimeError(f"expected an MmapArray, got {type(self.m).__name__}")

    def py(self) -> dict[str, list[float]]:
        a, keys, n = self.m, self.keys, len(self.keys)
        with no_gc():
            for i in self.warm:
                a[i]
                a[i] = i
            t0 = now()
            for i in keys:
                a[i]
            t1 = now()
            for i in keys:
                a[i] = i
            t2 = now()
        return {"mmap_read": [(t1 - t0) / n], "mmap_write": [(t2 - t1) / n]}

    def c(self) -> dict[str, list[float]] | None:
        r = self.cb.run("elem", "array", self.n, NKEYS)
        return None if r is None else {"mmap_read": r["lookup_ns"],
                                       "mmap_write": r["update_ns"]}


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
        self.outer = stack.enter_context(Map.create(outer_spec(64)))
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


def _ratio(p: float | None, c: float | None) -> float | None:
    return p / c if p is not None and c else None


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
        ratio = _ratio(pv, cv)
        row: dict[str, Any] = {
            "id": rid, "label": label, "unit": unit, "stat": row_stat,
            "purebpf_ns": pv, "c_ns": cv, "ratio": ratio,
            "purebpf_median_ns": statistics.median(p) if p else None,
            "c_median_ns": statistics.median(c) if c else None,
            "purebpf_min_ns": min(p) if p else None, "c_min_ns": min(c) if c else None,
            "purebpf_samples": p, "c_samples": c}
        row["median_ratio"] = _ratio(row["purebpf_median_ns"], row["c_median_ns"])
        if kind == "ratio":
            row["target"] = f"<= {target:g}"
            row["result"] = "n/a" if ratio is None else ("PASS" if ratio <= target else "FAIL")
        elif kind == "gp":
            gps = pv / gp if pv is not None and gp else None
            row["grace_periods"] = gps
            row["grace_period_ns"] = gp
            row["grace_period_from"] = gp_src
            row["target"] = f"<= {target:g} GP"
            row["result"] = "n/a" if gps is None else (
                f"{'PASS' if gps <= target else 'FAIL'} ({gps:.2f} GP)")
        else:
            row["target"] = "reported"
            row["result"] = "-"
        rows.append(row)
    return rows


def fmt_time(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f} ms" if unit == "ms" else f"{v:.1f} ns"


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    stat = "fastest round" if meta["stat"] == "min" else "median of rounds"
    lines = [
        f"purebpf {meta['purebpf']} map benchmarks, {meta['date']}: Python {meta['python']}, "
        f"Linux {meta['kernel']}, {meta['cpus']} CPUs, "
        + (f"pinned to CPU {meta['cpu']}" if meta["cpu"] is not None else "not pinned"),
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
    header = (f"{'benchmark':<42} {'purebpf':>11} {'C':>11} {'ratio':>6} {'med':>5}  "
              f"{'target':<9} result")
    lines += ["", header, "-" * len(header)]
    for r in rows:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        med = "" if r["stat"] == "median" or r["median_ratio"] is None else \
            f"{r['median_ratio']:.2f}"
        lines.append(f"{r['label']:<42} {fmt_time(r['purebpf_ns'], r['unit']):>11} "
                     f"{fmt_time(r['c_ns'], r['unit']):>11} {ratio:>6} {med:>5}  "
                     f"{r['target']:<9} {r['result']}")
    gp_row = next(r for r in rows if r["id"] == "store_batch")
    if gp_row.get("grace_period_ns"):
        lines.append(f"(1 grace period = median single outer-map update in "
                     f"{gp_row['grace_period_from']} = "
                     f"{gp_row['grace_period_ns'] / 1e6:.2f} ms)")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------
def run(cfg: Config, cb: CBench) -> dict[str, dict[str, list[float]]]:
    groups: list[Group] = [HashElem(cfg, cb), MmapElem(cfg, cb), Batch(cfg, cb),
                           OuterSwap(cfg, cb), OuterStore(cfg, cb)]
    samples: dict[str, dict[str, list[float]]] = {"py": {}, "c": {}}

    def add(side: str, res: dict[str, list[float]] | None) -> None:
        for k, v in (res or {}).items():
            samples[side].setdefault(k, []).extend(v)

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
                acc: dict[str, dict[str, list[float]]] = {"py": {}, "c": {}}
                for sl in range(g.slices):
                    order: list[tuple[str, Callable[[], Any]]] = [("py", g.py), ("c", g.c)]
                    if (r + sl) % 2:
                        order.reverse()
                    for side, fn in order:
                        for k, v in (fn() or {}).items():
                            acc[side].setdefault(k, []).extend(v)
                for side, res in acc.items():
                    add(side, {k: [statistics.fmean(v)] if g.slices > 1 else v
                               for k, v in res.items()})
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (20k ops, 3 rounds)")
    ap.add_argument("--json", action="store_true",
                    help="print results as JSON on stdout (the table goes to stderr)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    ap.add_argument("--rounds", type=int, help="override the number of rounds")
    ap.add_argument("--iters", type=int, help="override single-element ops per round")
    ap.add_argument("--no-c", action="store_true", help="skip the C baselines")
    ap.add_argument("--stat", choices=("min", "median"), default="min",
                    help="statistic for rows 1-3 (default: min, the fastest round of each "
                    "side; noise on a shared machine only ever adds time)")
    ap.add_argument("--cpu", type=int,
                    help="CPU to pin this process and the C runs to (default: the highest "
                    "allowed CPU; pinning both sides to one CPU cuts the noise a lot)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to a CPU")
    args = ap.parse_args(argv)

    cfg = Config(args.quick)
    if args.rounds:
        cfg.rounds = args.rounds
        cfg.store_rounds = min(cfg.store_rounds, cfg.rounds)
    if args.iters:
        cfg.iters = args.iters
    cpu: int | None = None
    if not args.no_pin:
        cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})  # inherited by the C baselines

    try:
        with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=1)):
            pass
    except (purebpf.BPFError, OSError) as exc:
        log(f"bench_maps: bpf() is not usable here: {exc}")
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
    table = render(rows, meta)
    if args.json:
        log(table)
        json.dump({"meta": meta, "rows": rows}, sys.stdout, indent=1)
        print()
    else:
        print(table)
    failed = [r["id"] for r in rows if str(r["result"]).startswith("FAIL")]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
