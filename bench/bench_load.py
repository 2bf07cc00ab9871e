#!/usr/bin/env python3
"""purebpf object-loading benchmarks against libbpf.

Run from the repository root::

    PYTHONPATH=src python3 bench/bench_load.py            # full run (about 25 s)
    PYTHONPATH=src python3 bench/bench_load.py --quick    # short run
    PYTHONPATH=src python3 bench/bench_load.py --json     # JSON on stdout, table on stderr
    PYTHONPATH=src python3 bench/bench_load.py --strict   # exit 1 if a target fails
    PYTHONPATH=src python3 bench/bench_load.py --profile  # + where purebpf's load time goes

Needs root (or CAP_BPF + CAP_PERFMON), clang-19 for the BPF objects in bench/bpf/, and cc
with libbpf-dev for the C baselines in bench/c/ (all built into bench/.build/; without
them the affected columns read "n/a").

Rows: (1) open + load + close of one object, purebpf.load() vs libbpf's
bpf_object__open_file/bpf_object__load/bpf_object__close; (2) the same for an object whose
ARRAY_OF_MAPS declares 64 inner maps as its initial value; (3) a fresh process parsing
/sys/kernel/btf/vmlinux and finding a struct and a function by name. Each round runs
purebpf and C alternately (which goes first alternates). See bench/README.md.
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common as common
from _common import BUILD_DIR, HERE, REPO, Samples, fmt_time, log, no_gc

import purebpf
from purebpf import Collection, CollectionSpec, Map, Program

BPF_DIR = HERE / "bpf"
OBJ_DIR = BUILD_DIR / "bpf"
MAP_IN_MAP = REPO / "tests" / "testdata" / "map_in_map.o"
VMLINUX = "/sys/kernel/btf/vmlinux"
BTF_STRUCT, BTF_FUNC = "task_struct", "bpf_map_lookup_elem"
SRC_DIR = Path(purebpf.__file__).resolve().parents[1]  # for the fresh child processes
now = time.perf_counter_ns


# -- configuration ----------------------------------------------------------------------------
class Config:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 3 if quick else 5
        self.loads = 4 if quick else 10        # lb_like.o loads per side per round (row 1)
        self.mim_loads = 2 if quick else 5     # map_in_map.o loads per round (purebpf only)
        self.o64_rounds = 2 if quick else 5    # rounds of row 2 (one libbpf load each, ...
        self.o64_py_loads = 3                  # ... and this many purebpf loads)
        self.cold_rounds = 3 if quick else 5   # rounds with fresh processes (row 3, cold load)


# -- building the objects and the C baselines -------------------------------------------------
class Build:
    """Compiles bench/bpf/*.c with clang and bench/c/{load,btf}_libbpf.c with cc -lbpf."""

    C_PROGRAMS = ("load_libbpf", "btf_libbpf")

    def __init__(self, clang: str | None, c_enabled: bool) -> None:
        self.notes: list[str] = []
        self.objects: dict[str, Path] = {}
        self.c: dict[str, Path] = {}
        OBJ_DIR.mkdir(parents=True, exist_ok=True)
        want = clang or os.environ.get("CLANG")
        clang = shutil.which(want) if want else (shutil.which("clang-19") or
                                                 shutil.which("clang"))
        if clang is None:
            self.notes.append(f"no {want or 'clang-19'}: the lb_like.o/outer64.o rows are n/a")
        else:
            inc = f"-I/usr/include/{platform.machine()}-linux-gnu"
            for src in sorted(BPF_DIR.glob("*.c")):
                out = OBJ_DIR / f"{src.stem}.o"
                if common.stale(out, [src]):
                    cmd = [clang, "-O2", "-g", "-target", "bpf", inc, "-c", str(src),
                           "-o", str(out)]
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode != 0:
                        log(f"warning: {' '.join(cmd)} failed:\n{res.stderr}")
                        self.notes.append(f"building {src.name} failed")
                        continue
                self.objects[src.stem] = out
        cc = shutil.which("cc") if c_enabled else None
        if cc is None:
            self.notes.append("no C compiler (cc): C columns are n/a" if c_enabled
                              else "C baselines disabled")
            return
        for prog in self.C_PROGRAMS:
            binary = common.compile_c(cc, prog, libs=["-lbpf"], hint=" (libbpf-dev installed?)")
            if binary is None:
                self.notes.append(f"compiling {prog}.c failed")
                continue
            self.c[prog] = binary

    def run_c(self, prog: str, *args: Any) -> Samples | None:
        """Run a C baseline; its output lines are ``name value [value...]``."""
        if prog not in self.c:
            return None
        out = common.run_c(self.c[prog], *args)
        if out is None:
            del self.c[prog]
        return out


# -- helpers ----------------------------------------------------------------------------------
def run_child(code: str, *args: str) -> tuple[dict[str, Any] | None, float]:
    """Run ``code`` in a fresh interpreter; returns (its JSON output, wall time in ns)."""
    t0 = now()
    res = subprocess.run([sys.executable, "-c", code, *args], env=common.child_env(SRC_DIR),
                         capture_output=True, text=True)
    wall = now() - t0
    if res.returncode != 0:
        log(f"warning: child process failed: {res.stderr.strip()[-800:]}")
        return None, wall
    return (json.loads(res.stdout) if res.stdout.strip() else {}), wall


def kernel_objects() -> dict[str, int]:
    """How many maps, programs and BTF objects the kernel has (all of them, any owner)."""
    from purebpf._sys import progs  # BTF ids: no public iterator

    def count(it: Iterator[int]) -> int:
        return sum(1 for _ in it)

    def btf_ids() -> Iterator[int]:
        cur = 0
        while (nxt := progs.next_id("btf", cur)) is not None:
            yield nxt
            cur = nxt

    return {"maps": count(Map.ids()), "progs": count(Program.ids()), "btf": count(btf_ids())}


def settle(before: dict[str, int], timeout: float = 15.0) -> dict[str, int]:
    """Kernel objects after the run, once the kernel's deferred frees are done."""
    deadline = time.monotonic() + timeout
    while True:
        after = kernel_objects()
        if all(after[k] <= before[k] for k in before) or time.monotonic() > deadline:
            return after
        time.sleep(0.2)


# -- children (fresh interpreters: cold) ------------------------------------------------------
BTF_CHILD = r"""
import json, sys, time
t0 = time.perf_counter_ns()
from purebpf.btf import Func, Struct, parse
t1 = time.perf_counter_ns()
with open(sys.argv[1], "rb") as f:
    data = f.read()
spec = parse(data)
t2 = time.perf_counter_ns()
sid = spec.find_id(sys.argv[2], Struct)
fid = spec.find_id(sys.argv[3], Func)
t3 = time.perf_counter_ns()
print(json.dumps({"import_ns": t1 - t0, "parse_ns": t2 - t1, "find_ns": t3 - t2,
                  "types": len(spec.types) - 1, "struct_id": sid, "func_id": fid}))
"""

LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter_ns()
import purebpf
t1 = time.perf_counter_ns()
purebpf.load(sys.argv[1]).close()
t2 = time.perf_counter_ns()
purebpf.load(sys.argv[1]).close()
t3 = time.perf_counter_ns()
print(json.dumps({"import_ns": t1 - t0, "first_ns": t2 - t1, "second_ns": t3 - t2}))
"""


# -- the benchmarks ---------------------------------------------------------------------------

class Bench:
    def __init__(self, cfg: Config, build: Build) -> None:
        self.cfg, self.b = cfg, build
        self.lb = build.objects.get("lb_like")
        self.o64 = build.objects.get("outer64")
        self.mim = MAP_IN_MAP if MAP_IN_MAP.exists() else None
        self.btf_ids: dict[str, Any] = {}

    # row 1: lb_like.o ---------------------------------------------------------------------
    def py_load(self) -> Samples:
        out: Samples = {}
        if self.lb is None:
            return out
        path, n = str(self.lb), self.cfg.loads
        with no_gc():
            loads: list[float] = []
            for _ in range(n):
                t0 = now()
                purebpf.load(path).close()
                loads.append(now() - t0)
            parses: list[float] = []
            for _ in range(n):
                t0 = now()
                CollectionSpec.from_file(path)
                parses.append(now() - t0)
        out["lb_load"], out["lb_parse"] = loads, parses
        return out

    def c_load(self) -> Samples | None:
        if self.lb is None:
            return None
        r = self.b.run_c("load_libbpf", self.lb, self.cfg.loads, 1)
        return None if r is None else {"lb_load": r["load_ns"], "lb_parse": r["open_ns"]}

    def py_mim(self) -> Samples:
        if self.mim is None:
            return {}
        path = str(self.mim)
        loads: list[float] = []
        with no_gc():
            for _ in range(self.cfg.mim_loads):
                t0 = now()
                purebpf.load(path).close()
                loads.append(now() - t0)
        return {"mim_load": loads}

    # row 2: outer64.o ---------------------------------------------------------------------
    def py_o64(self) -> Samples:
        if self.o64 is None:
            return {}
        loads: list[float] = []
        with no_gc():
            for _ in range(self.cfg.o64_py_loads):  # cheap next to libbpf's one: take more
                t0 = now()
                purebpf.load(str(self.o64)).close()
                loads.append(now() - t0)
        return {"o64_load": loads}

    def c_o64(self) -> Samples | None:
        if self.o64 is None:
            return None
        # Warm libbpf's feature probes on the cheap object, then time one outer64 load.
        r = self.b.run_c("load_libbpf", self.o64, 1, 1, self.lb or self.o64)
        return None if r is None else {"o64_load": r["load_ns"]}

    # row 3 and the cold-load row: fresh processes ------------------------------------------
    def py_cold(self) -> Samples:
        out: Samples = {}
        res, wall = run_child(BTF_CHILD, VMLINUX, BTF_STRUCT, BTF_FUNC)
        if res is not None:
            out["btf_find"] = [res["parse_ns"] + res["find_ns"]]
            out["btf_parse"] = [res["parse_ns"]]
            out["btf_lookup"] = [res["find_ns"]]
            out["btf_import"] = [res["import_ns"]]
            out["btf_proc"] = [wall]
            self.btf_ids["purebpf"] = (res["struct_id"], res["func_id"], res["types"])
        _, wall = run_child("pass")
        out["py_start"] = [wall]
        if self.lb is not None:
            res, _ = run_child(LOAD_CHILD, str(self.lb))
            if res is not None:
                out["cold_import"] = [res["import_ns"]]
                out["cold_first"] = [res["first_ns"]]
        return out

    def c_cold(self) -> Samples | None:
        t0 = now()
        r = self.b.run_c("btf_libbpf", VMLINUX, BTF_STRUCT, BTF_FUNC)
        wall = now() - t0
        if r is None:
            return None
        self.btf_ids["libbpf"] = (int(r["struct_id"][0]), int(r["func_id"][0]),
                                  int(r["types"][0]))
        return {"btf_find": [r["parse_ns"][0] + r["find_ns"][0]], "btf_parse": r["parse_ns"],
                "btf_lookup": r["find_ns"], "btf_proc": [wall]}

    # -------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        for path in (self.lb, self.mim, self.o64):
            if path is not None:
                purebpf.load(str(path)).close()
        if self.lb is not None:
            purebpf.load(str(self.lb)).close()
            CollectionSpec.from_file(str(self.lb))

    def run(self) -> dict[str, Samples]:
        samples: dict[str, Samples] = {"py": {}, "c": {}}

        pairs: list[tuple[str, Callable[[], Samples], Callable[[], Samples | None], int]] = [
            ("lb_like.o", self.py_load, self.c_load, self.cfg.rounds),
            ("map_in_map.o", self.py_mim, lambda: None, self.cfg.rounds),
            ("outer64.o", self.py_o64, self.c_o64, self.cfg.o64_rounds),
            ("cold", self.py_cold, self.c_cold, self.cfg.cold_rounds),
        ]
        log("warming up ...")
        self.warm_up()
        for r in range(self.cfg.rounds):
            log(f"round {r + 1}/{self.cfg.rounds}")
            for _name, py, c, rounds in pairs:
                if r >= rounds:
                    continue
                for side, fn in common.in_turn(r, py, c):
                    common.add_samples(samples[side], fn())
        return samples


# -- rows of the table ------------------------------------------------------------------------
# id, label, unit, target kind ("ratio": purebpf/C; "abs": purebpf seconds), target.
ROWS: list[tuple[str, str, str, str | None, float | None]] = [
    ("lb_load", "1  lb_like.o   open+load+close", "ms", "ratio", 2.0),
    ("lb_parse", "1  lb_like.o   parse only (from_file / open)", "ms", None, None),
    ("mim_load", "1  map_in_map.o load+close (purebpf only)", "ms", None, None),
    ("cold_import", "1  fresh process: import purebpf", "ms", None, None),
    ("cold_first", "1  fresh process: first load of lb_like.o", "ms", None, None),
    ("o64_load", "2  outer64.o  64 declared slots, load+close", "ms", "ratio", 0.1),
    ("btf_find", "3  vmlinux BTF: read+parse+2 finds (cold)", "s", "abs", 0.5),
    ("btf_parse", "3    of which read+parse", "ms", None, None),
    ("btf_lookup", "3    of which find struct + find func", "ms", None, None),
    ("btf_import", "3  import purebpf.btf (fresh process)", "s", None, None),
    ("btf_proc", "3  whole process, wall (incl. interpreter)", "s", None, None),
    ("py_start", "3  bare interpreter: python -c pass, wall", "s", None, None),
]


def summarize(samples: dict[str, Samples]) -> list[dict[str, Any]]:
    py_s, c_s = samples["py"], samples["c"]
    rows = []
    for rid, label, unit, kind, target in ROWS:
        p, c = py_s.get(rid, []), c_s.get(rid, [])
        pv, cv = common.median_or_none(p), common.median_or_none(c)
        row: dict[str, Any] = {
            "id": rid, "label": label, "unit": unit, "purebpf_ns": pv, "c_ns": cv,
            "ratio": common.ratio(pv, cv), "purebpf_min_ns": common.min_or_none(p),
            "c_min_ns": common.min_or_none(c), "purebpf_samples": p, "c_samples": c}
        row["min_ratio"] = common.ratio(row["purebpf_min_ns"], row["c_min_ns"])
        if kind == "ratio" and target is not None:
            row["target"], row["result"] = common.judge_ratio(row["ratio"], target)
        elif kind == "abs" and target is not None:
            row["target"] = f"<= {target:g} s"
            row["result"] = "n/a" if pv is None else ("PASS" if pv / 1e9 <= target else "FAIL")
        else:
            row["target"], row["result"] = common.REPORTED
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"purebpf {meta['purebpf']} load benchmarks, {meta['date']}: Python {meta['python']}, "
        f"libbpf {meta['libbpf']}, Linux {meta['kernel']}, {meta['cpus']} CPUs, "
        f"{common.pinning(meta['cpu'])}",
        f"mode {meta['mode']}: {meta['rounds']} rounds; per round and side {meta['loads']} "
        f"loads of lb_like.o ({meta['lb_like']}), {meta['mim_loads']} of map_in_map.o (purebpf); "
        f"{meta['o64_rounds']} rounds of {meta['o64_py_loads']} (purebpf) / 1 (libbpf) loads of "
        f"outer64.o ({meta['outer64']}); "
        f"{meta['cold_rounds']} rounds of fresh processes",
        "value = median of all samples (one per load / process); ratio = purebpf / C "
        "(judged); min = ratio of the fastest samples",
    ]
    lines += [f"note: {n}" for n in meta["notes"]]
    cells = []
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        mn = "" if r["min_ratio"] is None else f"{r['min_ratio']:.2f}"
        cval = fmt_time(r["c_ns"], r["unit"]) if r["c_samples"] else "-"
        cells.append((r["label"], fmt_time(r["purebpf_ns"], r["unit"]), cval, ratio, mn,
                      r["target"], r["result"]))
    lines += common.table(45, "C (libbpf)", "min", cells)
    o64 = next(r for r in rows if r["id"] == "o64_load")
    if o64["c_ns"] and o64["purebpf_ns"]:
        per_slot = o64["c_ns"] / 64
        lines.append(f"(row 2: libbpf fills the 64 slots one update at a time, "
                     f"{per_slot / 1e6:.2f} ms per slot ~ one RCU grace period; purebpf's "
                     f"whole load = {o64['purebpf_ns'] / per_slot:.1f} of those)")
    ids = meta.get("btf_ids") or {}
    if ids:
        agree = len({tuple(v[:2]) for v in ids.values()}) == 1
        sid, fid, n = next(iter(ids.values()))
        lines.append(f"(row 3: {n} types; {BTF_STRUCT} = [{sid}], FUNC {BTF_FUNC} = [{fid}]"
                     + ("" if len(ids) < 2 else
                        (", same ids from libbpf" if agree else f" -- ids DIFFER: {ids}"))
                     + "; judged figure excludes interpreter start-up and the import)")
    ko = meta["kernel_objects"]
    lines.append(f"kernel objects (maps/progs/BTF) before {ko['before']['maps']}/"
                 f"{ko['before']['progs']}/{ko['before']['btf']}, after "
                 f"{ko['after']['maps']}/{ko['after']['progs']}/{ko['after']['btf']}: "
                 + ("all released" if ko["released"] else "NOT all released (other jobs?)"))
    return "\n".join(lines)


# -- --profile: where purebpf's load time goes ------------------------------------------------
def profile(bench: Bench, n: int) -> str:
    from purebpf.elf import read_elf

    out = []
    for label, path in (("lb_like.o", bench.lb), ("outer64.o", bench.o64)):
        if path is None:
            continue
        p = str(path)
        stages: dict[str, list[float]] = {}
        with no_gc():
            for _ in range(n):
                t0 = now()
                read_elf(p)
                t1 = now()
                spec = CollectionSpec.from_file(p)
                t2 = now()
                coll = Collection.load(spec)
                t3 = now()
                coll.close()
                t4 = now()
                for k, v in (("read_elf (pyelftools)", t1 - t0),
                             ("CollectionSpec.from_file (incl. read_elf)", t2 - t1),
                             ("Collection.load(spec)", t3 - t2), ("close", t4 - t3)):
                    stages.setdefault(k, []).append(v)
        out.append(f"purebpf load stages, {label}, median of {n}:")
        out += [f"  {k:<44} {statistics.median(v) / 1e6:8.2f} ms" for k, v in stages.items()]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            purebpf.load(p).close()
        prof.disable()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("tottime").print_stats(15)
        out.append(f"cProfile of {n} x purebpf.load({label}).close(), top 15 by own time "
                   "(cProfile inflates Python-heavy code):")
        site = str(Path(json.__file__).resolve().parent.parent) + "/"
        out += ["  " + ln.replace(str(SRC_DIR) + "/", "").replace(site + "site-packages/", "")
                .replace(site, "")
                for ln in buf.getvalue().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("Ordered", "List", "Random"))]
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------------
def libbpf_version() -> str:
    pc = shutil.which("pkg-config")
    if pc:
        res = subprocess.run([pc, "--modversion", "libbpf"], capture_output=True, text=True)
        if res.returncode == 0:
            return res.stdout.strip()
    return "?"


def describe(path: Path | None) -> str:
    if path is None:
        return "not built"
    spec = CollectionSpec.from_file(str(path))
    return f"{len(spec.maps)} maps, {len(spec.programs)} progs"


def main(argv: list[str] | None = None) -> int:
    ap = common.parser(__doc__, quick_help="short run (3 rounds, fewer loads)")
    ap.add_argument("--no-c", action="store_true", help="skip the C (libbpf) baselines")
    ap.add_argument("--clang", help="clang for the BPF objects (default: $CLANG or clang-19)")
    ap.add_argument("--profile", action="store_true",
                    help="after the table, time purebpf's load stages and cProfile it")
    common.add_pin_args(ap, "CPU to pin this process and its children to (default: the "
                        "highest allowed CPU)")
    args = ap.parse_args(argv)

    cfg = Config(args.quick)
    if args.rounds:
        cfg.rounds = args.rounds
        cfg.o64_rounds = min(cfg.o64_rounds, cfg.rounds)
        cfg.cold_rounds = min(cfg.cold_rounds, cfg.rounds)
    cpu = common.pin(args)  # inherited by the C baselines and the children
    if not common.bpf_usable("bench_load"):
        return 2

    build = Build(args.clang, not args.no_c)
    for n in build.notes:
        log(f"note: {n}")
    before = kernel_objects()
    t0 = time.monotonic()
    bench = Bench(cfg, build)
    samples = bench.run()
    elapsed = time.monotonic() - t0
    prof = profile(bench, 5 if cfg.quick else 20) if args.profile else ""
    gc.collect()
    after = settle(before)
    rows = summarize(samples)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "purebpf": purebpf.__version__,
        "python": platform.python_version(), "kernel": platform.release(),
        "libbpf": libbpf_version(), "cpus": os.cpu_count(), "cpu": cpu,
        "mode": "quick" if cfg.quick else "full", "rounds": cfg.rounds, "loads": cfg.loads,
        "mim_loads": cfg.mim_loads, "o64_rounds": cfg.o64_rounds, "o64_py_loads": cfg.o64_py_loads,
        "cold_rounds": cfg.cold_rounds, "lb_like": describe(bench.lb),
        "outer64": describe(bench.o64), "notes": build.notes,
        "btf_ids": bench.btf_ids, "elapsed_s": round(elapsed, 1),
        "kernel_objects": {"before": before, "after": after,
                           "released": all(after[k] <= before[k] for k in before)},
    }
    common.output(render(rows, meta), meta, rows, args.json, extra=prof)
    return common.exit_code(rows, args.strict)


if __name__ == "__main__":
    sys.exit(main())
