"""``purebpf features``: what this kernel supports for map-in-map, and why it matters."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from purebpf import MapType, ProgramType, features

from ._common import emit_json, wants_json

Probe = tuple[str, Callable[[], bool], str]


def _map(t: MapType, why: str) -> Probe:
    return (f"map type {t.name}", lambda: features.has_map_type(t), why)


def _prog(t: ProgramType, why: str) -> Probe:
    return (f"program type {t.name}", lambda: features.has_program_type(t), why)


PROBES: list[Probe] = [
    _map(MapType.ARRAY_OF_MAPS, "outer array: a program picks an inner map by index (4.12+)"),
    _map(MapType.HASH_OF_MAPS, "outer hash: a program picks an inner map by any key, such as "
         "a service or tenant id (4.12+)"),
    ("BPF_F_INNER_MAP", features.has_inner_map_flag,
     "inner ARRAYs of different max_entries in one outer map; without it every inner array "
     "must have the template's size (5.10+)"),
    ("batch ops on outer maps", features.has_map_in_map_batch,
     "update_batch stores many inner maps for one RCU grace period instead of one per map "
     "(5.19+); older kernels fall back to one update each"),
    ("batch ops on HASH", lambda: features.has_batch(MapType.HASH),
     "lookup, update and delete many elements per syscall (5.6+)"),
    ("BPF_F_MMAPABLE arrays", features.has_mmapable_array,
     "global variables (.data, .bss) read and written through an mmap, no syscall (5.5+)"),
    _map(MapType.HASH, "the usual inner map: one keyed table per outer slot"),
    _map(MapType.ARRAY, "fixed-size inner tables (resizable per slot with BPF_F_INNER_MAP)"),
    _map(MapType.PERCPU_HASH, "per-CPU inner tables: counters without atomics"),
    _map(MapType.PERCPU_ARRAY, "per-CPU inner arrays: per-slot statistics"),
    _map(MapType.LRU_HASH, "self-evicting inner tables, e.g. connection tracking per tenant"),
    _map(MapType.LPM_TRIE, "longest-prefix-match inner tables, e.g. routes per VRF"),
    _map(MapType.DEVMAP, "XDP redirect tables as inner maps (the kernel document's example)"),
    _map(MapType.RINGBUF, "one event stream per consumer, chosen through an outer map (5.8+)"),
    _prog(ProgramType.XDP, "packet programs that look up outer maps; 'purebpf prog run' "
          "test-runs them"),
    _prog(ProgramType.SCHED_CLS, "tc programs: the same lookups on the tc hook"),
    _prog(ProgramType.SOCKET_FILTER, "socket filters: packet programs on sockets, also "
          "test-runnable"),
    _prog(ProgramType.SYSCALL, "programs run from user space through BPF_PROG_TEST_RUN, "
          "e.g. to set up maps in one call (5.14+)"),
    ("bpf_spin_lock in inner-map templates", features.has_spin_lock_inner_map,
     "inner maps whose value holds a bpf_spin_lock (declared in C with __array(values, ...)); "
     "Linux 6.1 refuses such templates"),
    ("BPF ISA v4", features.has_isa_v4,
     "objects built with clang -mcpu=v4: sign extension, signed division, byte swaps (6.6+)"),
    ("may_goto", features.has_may_goto,
     "loops the verifier cannot bound, with a way out (can_loop in C; 6.9+)"),
    ("load-acquire/store-release", features.has_load_acquire,
     "smp_load_acquire/smp_store_release in programs (6.15+)"),
    _map(MapType.ARENA, "memory shared by programs and user space (6.9+)"),
    ("kfunc bpf_rcu_read_lock", lambda: features.has_kfunc("bpf_rcu_read_lock"),
     "kernel functions (kfuncs) callable from programs, found in the kernel's BTF (6.2+)"),
    ("kernel BTF", lambda: os.path.exists("/sys/kernel/btf/vmlinux"),
     "/sys/kernel/btf/vmlinux: CO-RE relocations, tracing attach targets, "
     "'purebpf btf dump vmlinux'"),
]


def cmd_features(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = [
        {"feature": name, "supported": bool(probe()), "why": why} for name, probe, why in PROBES]
    if wants_json(args):
        emit_json(args, results)
        return 0
    width = max(len(r["feature"]) for r in results)
    for r in results:
        mark = "yes" if r["supported"] else "no "
        print(f"{mark}  {r['feature']:<{width}}  {r['why']}")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    c = sub.add_parser("features", parents=[common],
                       help="what this kernel supports for map-in-map, and why it matters",
                       description="Probe this kernel (by creating the smallest map or "
                       "program that shows each feature) and explain what each one is for.")
    c.set_defaults(func=cmd_features)


__all__ = ["PROBES", "add_parser"]
