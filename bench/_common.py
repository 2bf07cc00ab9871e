"""What the bench/ scripts share: building and running the C baselines, timing helpers,
running rounds with alternating sides, judging rows, printing the table, common options.

Importing this module makes ``purebpf`` importable from the checkout's src/ when it is not
already (it does not import purebpf itself: bench_btf.py times that import).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
C_DIR = HERE / "c"
BUILD_DIR = HERE / ".build"

if importlib.util.find_spec("purebpf") is None:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(REPO / "src"))

Samples = dict[str, list[float]]


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# -- the C baselines --------------------------------------------------------------------------
def stale(out: Path, deps: list[Path]) -> bool:
    return not out.exists() or any(out.stat().st_mtime < d.stat().st_mtime for d in deps)


def compile_c(cc: str, prog: str, deps: Iterable[Path] = (), libs: Iterable[str] = (),
              hint: str = "") -> Path | None:
    """Build bench/c/<prog>.c into bench/.build/<prog> unless it is newer than its source and
    ``deps``; the binary, or None (with a warning ending in ``hint``) if compiling fails."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    src, out = C_DIR / f"{prog}.c", BUILD_DIR / prog
    if stale(out, [src, *deps]):
        cmd = [cc, "-O2", "-Wall", "-o", str(out), str(src), *libs]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            log(f"warning: compiling {src.name} failed{hint}\n{res.stderr}")
            return None
    return out


def run_c(binary: Path, *args: Any) -> Samples | None:
    """Run a C baseline; its output lines are ``name value [value...]``. None (with a
    warning) if it fails."""
    cmd = [str(binary), *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        log(f"warning: {' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()}; "
            "its C column is n/a")
        return None
    out: Samples = {}
    for line in res.stdout.splitlines():
        name, *vals = line.split()
        out[name] = [float(v) for v in vals]
    return out


# -- timing -----------------------------------------------------------------------------------
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


def child_env(src: str | Path) -> dict[str, str]:
    """The environment for a fresh interpreter that imports purebpf from ``src`` first."""
    pp = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), pp])))


def in_turn(i: int, py: Callable[[], Samples | None],
            c: Callable[[], Samples | None]) -> list[tuple[str, Callable[[], Samples | None]]]:
    """The two sides of a benchmark in the order to run them: C first when ``i`` is odd."""
    order = [("py", py), ("c", c)]
    if i % 2:
        order.reverse()
    return order


def add_samples(into: Samples, res: Samples | None) -> None:
    for k, v in (res or {}).items():
        into.setdefault(k, []).extend(v)


# -- rows of the table ------------------------------------------------------------------------
def ratio(p: float | None, c: float | None) -> float | None:
    return p / c if p is not None and c else None


def median_or_none(v: list[float]) -> float | None:
    return statistics.median(v) if v else None


def min_or_none(v: list[float]) -> float | None:
    return min(v) if v else None


def judge_ratio(r: float | None, target: float) -> tuple[str, str]:
    """(target, result) of a row whose purebpf / C ratio must be at most ``target``."""
    return f"<= {target:g}", "n/a" if r is None else ("PASS" if r <= target else "FAIL")


REPORTED = ("reported", "-")  # (target, result) of a row without a target


def fmt_time(v: float | None, unit: str) -> str:
    """A time in ns as the row's unit shows it: "s", "ms" or "ns"."""
    if v is None:
        return "n/a"
    if unit == "s":
        return f"{v / 1e9:.3f} s"
    return f"{v / 1e6:.2f} ms" if unit == "ms" else f"{v:.1f} ns"


def pinning(cpu: int | None) -> str:
    return f"pinned to CPU {cpu}" if cpu is not None else "not pinned"


def table(label_width: int, c_title: str, extra_title: str,
          cells: Iterable[tuple[str, str, str, str, str, str, str]]) -> list[str]:
    """A blank line, the header, a rule and one line per row of (label, purebpf, C, ratio,
    extra column, target, result)."""
    def line(label: str, py: str, c: str, r: str, extra: str, target: str, result: str) -> str:
        return (f"{label:<{label_width}} {py:>11} {c:>11} {r:>6} {extra:>5}  "
                f"{target:<9} {result}")

    header = line("benchmark", "purebpf", c_title, "ratio", extra_title, "target", "result")
    return ["", header, "-" * len(header), *(line(*cell) for cell in cells)]


def output(table_text: str, meta: dict[str, Any], rows: list[dict[str, Any]], as_json: bool,
           extra: str = "") -> None:
    """The table (and ``extra`` after it) on stdout, or with --json on stderr and the JSON
    on stdout."""
    if as_json:
        log(table_text)
        if extra:
            log(extra)
        json.dump({"meta": meta, "rows": rows}, sys.stdout, indent=1)
        print()
    else:
        print(table_text)
        if extra:
            print()
            print(extra)


def exit_code(rows: list[dict[str, Any]], strict: bool) -> int:
    failed = [r["id"] for r in rows if str(r["result"]).startswith("FAIL")]
    return 1 if strict and failed else 0


# -- options and setup ------------------------------------------------------------------------
def parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every table script takes first: --quick, --json, --strict, --rounds."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", action="store_true",
                    help="print results as JSON on stdout (the table goes to stderr)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    ap.add_argument("--rounds", type=int, help="override the number of rounds")
    return ap


def add_pin_args(ap: argparse.ArgumentParser, cpu_help: str) -> None:
    ap.add_argument("--cpu", type=int, help=cpu_help)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to a CPU")


def pin(args: argparse.Namespace) -> int | None:
    """Pin this process (and so everything it starts) to --cpu, by default the highest
    allowed CPU; the CPU, or None with --no-pin."""
    if args.no_pin:
        return None
    cpu: int = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def bpf_usable(script: str) -> bool:
    """Whether bpf() can create a map here (if not, says so on stderr)."""
    import purebpf
    from purebpf import Map, MapSpec, MapType

    try:
        with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=1)):
            pass
    except (purebpf.BPFError, OSError) as exc:
        log(f"{script}: bpf() is not usable here: {exc}")
        return False
    return True
