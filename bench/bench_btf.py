"""Cold lookups in kernel BTF: how long until a first type or function is found by name.

Each run is a fresh interpreter, so "cold" includes importing purebpf.btf, reading
/sys/kernel/btf/vmlinux, parsing it and building the name index on first use.

    PYTHONPATH=src python3 bench/bench_btf.py [--runs N] [--path FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import child_env

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from purebpf.btf import Func, Struct, parse
t1 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    data = f.read()
spec = parse(data)
t2 = time.perf_counter()
task = spec.find("task_struct", Struct)
t3 = time.perf_counter()
func = spec.find("bpf_map_lookup_elem", Func)
t4 = time.perf_counter()
spec.field(spec.find_id("bpf_map", Struct), "max_entries")
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "read+parse": t2 - t1, "find struct (cold)": t3 - t2,
                  "find func": t4 - t3, "member lookup": t5 - t4,
                  "parse+first lookup": t3 - t1, "total incl. import": t5 - t0,
                  "types": len(spec.types)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--path", default="/sys/kernel/btf/vmlinux")
    args = ap.parse_args()
    if not os.path.exists(args.path):
        print(f"no BTF at {args.path}", file=sys.stderr)
        return 1
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    env = child_env(src)
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", _CHILD, args.path], env=env, check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out))
    print(f"{args.path}: {runs[0]['types']} types, {os.path.getsize(args.path)} bytes, "
          f"{args.runs} cold runs (seconds)")
    for key in runs[0]:
        if key == "types":
            continue
        vals = [r[key] for r in runs]
        print(f"  {key:22} min {min(vals):.3f}  median {statistics.median(vals):.3f}  "
              f"max {max(vals):.3f}")
    # Warm comparison: a full decode of every type, for scale.
    t0 = time.perf_counter()
    sys.path.insert(0, src)
    from purebpf.btf import parse
    with open(args.path, "rb") as f:
        spec = parse(f.read())
    for _ in spec.types:
        pass
    print(f"  {'full decode (all)':22} {time.perf_counter() - t0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
