#!/usr/bin/env python3
"""What thread safety costs in ``m[k]`` and ``m[k] = v``: the ways to make one Map object safe
to share between threads, against the unsafe path and the C syscall loop, in one run.

Variants (HASH u32 -> u64, declared int types, 1024 keys cycled):

* ``with RLock``  what purebpf ships: one RLock per object, taken with ``with``;
* ``no lock``    the same code without the lock (what purebpf did before: unsafe to share);
* ``acquire``    a plain Lock taken with acquire() and try/finally (not safe against Ctrl-C);
* ``per-thread`` buffers per thread, found through a ``threading.local``;
* ``C``          bench/c/elem.c: the raw bpf() syscall loop.

Every round runs each variant once, in a rotating order; the table shows medians over rounds
of per-round ratios. Run: ``python3 bench/bench_threads.py [--quick]``.
"""

from __future__ import annotations

import shutil
import statistics
import struct
import sys
import threading
from collections.abc import Callable
from time import perf_counter_ns as now
from typing import Any

import _common as common
from _common import BUILD_DIR, C_DIR, no_gc

from purebpf import Map, MapSpec, MapType
from purebpf._sys.syscall import ElemIO

NKEYS = 1024


class NoLock(Map):
    """purebpf's element path without the lock (the pre-lock code)."""

    def __getitem__(self, key: Any) -> Any:
        try:
            self._kset(key)
        except struct.error:
            self._kpack(self._kbuf, key)
        if self._lookup() < 0:
            raise self._elem_error("lookup", key)
        return self._vget()

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            self._kset(key)
        except struct.error:
            self._kpack(self._kbuf, key)
        try:
            self._vset(value)
        except struct.error:
            self._vpack(self._vbuf, value)
        if self._update_any() < 0:
            raise self._elem_error("update", key)


class AcquireRelease(NoLock):
    """A plain Lock taken with acquire() and try/finally: cheaper than ``with``, but a
    KeyboardInterrupt between acquire() and try leaves the lock held for good."""

    def __getitem__(self, key: Any) -> Any:
        lock = self._plain
        lock.acquire()
        try:
            return NoLock.__getitem__(self, key)
        finally:
            lock.release()

    def __setitem__(self, key: Any, value: Any) -> None:
        lock = self._plain
        lock.acquire()
        try:
            NoLock.__setitem__(self, key, value)
        finally:
            lock.release()


class PerThread(Map):
    """Each thread binds its own buffers (an ElemIO) on first use."""

    def _mine(self) -> tuple[Any, ...]:
        tls = self.__dict__.setdefault("_tls", threading.local())
        try:
            return tls.calls  # type: ignore[no-any-return]
        except AttributeError:
            io = ElemIO(self.fd, self.key_size, self._value.size)
            view = type(self._vget.args[0]).from_buffer(io.value)
            kset = struct.Struct("=I").pack_into
            tls.io = io
            tls.calls = (lambda k: kset(io.key, 0, k), io.lookup,
                         lambda: view.value, lambda v: struct.pack_into("=Q", io.value, 0, v),
                         io.update_any)
            return tls.calls  # type: ignore[no-any-return]

    def __getitem__(self, key: Any) -> Any:
        kset, lookup, vget, _, _ = self._mine()
        kset(key)
        if lookup() < 0:
            raise self._elem_error("lookup", key)
        return vget()

    def __setitem__(self, key: Any, value: Any) -> None:
        kset, _, _, vset, update = self._mine()
        kset(key)
        vset(value)
        if update() < 0:
            raise self._elem_error("update", key)


def timed(m: Map, keys: list[int]) -> tuple[float, float]:
    with no_gc():
        for k in keys[: len(keys) // 10]:
            m[k]
            m[k] = k
        t0 = now()
        for k in keys:
            m[k]
        t1 = now()
        for k in keys:
            m[k] = k
        t2 = now()
    return (t1 - t0) / len(keys), (t2 - t1) / len(keys)


def main(argv: list[str] | None = None) -> int:
    ap = common.parser(__doc__ or "", "fewer rounds and operations (a smoke run)")
    common.add_pin_args(ap, "CPU to pin to (default: the highest allowed)")
    args = ap.parse_args(argv)
    if not common.bpf_usable("bench_threads"):
        return 1
    cpu = common.pin(args)
    rounds = args.rounds or (3 if args.quick else 9)
    n = 20_000 if args.quick else 200_000
    keys = [i % NKEYS for i in range(n)]
    cc = shutil.which("cc")
    cbin = common.compile_c(cc, "elem", [C_DIR / "bench_common.h"]) if cc else None
    spec = MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=4 * NKEYS,
                   key_type=int, value_type=int, name="bench_threads")
    samples: dict[str, list[tuple[float, float]]] = {}
    with Map.create(spec) as shipped:
        for k in range(NKEYS):
            shipped[k] = k
        views: dict[str, Map] = {"with RLock": shipped}
        for name, cls in (("no lock", NoLock), ("acquire", AcquireRelease),
                          ("per-thread", PerThread)):
            other = shipped.clone()  # same spec, so the same key and value codecs
            other.__class__ = cls
            other._plain = threading.Lock()  # type: ignore[attr-defined]
            views[name] = other
        try:
            variants: list[tuple[str, Callable[[], tuple[float, float] | None]]] = [
                (name, (lambda m=m: timed(m, keys))) for name, m in views.items()]

            def c_side() -> tuple[float, float] | None:
                if cbin is None:
                    return None
                r = common.run_c(BUILD_DIR / "elem", "hash", n, NKEYS)
                if r is None:
                    return None
                return statistics.median(r["lookup_ns"]), statistics.median(r["update_ns"])

            variants.append(("C", c_side))
            for i in range(rounds):
                for name, fn in variants[i % len(variants):] + variants[:i % len(variants)]:
                    res = fn()
                    if res is not None:
                        samples.setdefault(name, []).append(res)
                common.log(f"round {i + 1}/{rounds} done")
        finally:
            for name, m in views.items():
                if m is not shipped:
                    m.close()

    def med_ratio(a: str, b: str, j: int) -> str:
        if a not in samples or b not in samples:
            return "n/a"
        return f"{statistics.median(x[j] / y[j] for x, y in zip(samples[a], samples[b])):.2f}"

    print(f"HASH u32->u64, {n} ops per round, {rounds} rounds, {common.pinning(cpu)}, "
          f"Python {sys.version.split()[0]}")
    print(f"{'variant':<11} {'m[k] ns':>8} {'/C':>5} {'/no lock':>8}   "
          f"{'m[k]=v ns':>9} {'/C':>5} {'/no lock':>8}")
    for name in ("no lock", "with RLock", "acquire", "per-thread", "C"):
        if name not in samples:
            continue
        look = statistics.median(x[0] for x in samples[name])
        upd = statistics.median(x[1] for x in samples[name])
        print(f"{name:<11} {look:8.0f} {med_ratio(name, 'C', 0):>5} "
              f"{med_ratio(name, 'no lock', 0):>8}   {upd:9.0f} {med_ratio(name, 'C', 1):>5} "
              f"{med_ratio(name, 'no lock', 1):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
