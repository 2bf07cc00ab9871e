"""Fuzzing the ELF, BTF and BTF.ext readers and the BTF layout queries and C renderer.

Seeds are objects from tests/testdata and a slice of the running kernel's BTF. Each input
is a seed mutated by a seeded random generator (bit flips, interesting bytes and words,
truncation, spliced chunks, bad header fields, type ids out of range or pointing back at
their own type, huge sizes and counts). Every input must give a result or a purebpf
error (``BTFError``, ``BPFError``): never another exception, and never take longer than
a few seconds.

CI runs ``PUREBPF_FUZZ_N`` inputs (default 2000, under 15 s); ``PUREBPF_FUZZ_N=100000`` is
the long run (about 10 minutes), ``PUREBPF_FUZZ_SEED`` picks another sequence, and
``PUREBPF_FUZZ_SAVE=DIR`` writes one failing input per distinct failure there. Every
crasher found is kept in tests/testdata/fuzz and replayed by ``test_regression_file``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import resource
import signal
import struct
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from purebpf.btf import (
    Array, BTFError, Const, Datasec, DeclTag, Enum64, Func, FuncProto, Fwd, Int, IntEncoding,
    Member, Param, Ptr, Restrict, Spec, Struct, Type, Typedef, TypeTag, Union, Var, VarSecinfo,
    Volatile, dump_c, format_type, parse, parse_ext, refs,
)
from purebpf.btf.raw import iter_raw, raw_type
from purebpf.btf.values import decode, encode
from purebpf.elf import read_collection, read_elf
from purebpf.errors import BPFError

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
REGRESSIONS = TESTDATA / "fuzz"
VMLINUX = Path("/sys/kernel/btf/vmlinux")
N = int(os.environ.get("PUREBPF_FUZZ_N", "2000"))
SEED = int(os.environ.get("PUREBPF_FUZZ_SEED", "7"))
SAVE = os.environ.get("PUREBPF_FUZZ_SAVE")
TIME_LIMIT = float(os.environ.get("PUREBPF_FUZZ_TIME_LIMIT", "5"))
MEMORY_LIMIT_MB = 256  # growth of the process's peak memory over the run
SEED_OBJECTS = ("btf/kinds.o", "btf/kinds.bpfeb.o", "btf/core.o", "globals.o",
                "map_in_map.o", "structs.o", "tailcall.o", "defaults.o", "invalid/nested.o",
                "asm/jumps.o")
EXPECTED = (BTFError, BPFError)
TYPES_CHECKED = 48  # per input, the layout and rendering of this many types one by one
VALUE = bytes(range(64))  # what map values are decoded from
LONG = Int("long", 8, IntEncoding.SIGNED, 64)  # stands in for what a vmlinux slice leaves out


# -- what every input goes through ------------------------------------------------------------
def exercise_btf(spec: Spec) -> None:
    """Everything a user may ask of parsed BTF, each expected failure caught on its own."""
    for check in (spec.validate, lambda: "".join(iter_raw(spec)), lambda: dump_c(spec)):
        try:
            check()
        except BTFError:
            pass
    end = min(spec.end_id, spec.start_id + TYPES_CHECKED)
    for tid in range(spec.start_id, end):
        for query in (raw_type, lambda s, i, t: s.sizeof(i), lambda s, i, t: s.alignof(i),
                      lambda s, i, t: s.is_packed(i), lambda s, i, t: format_type(s, i),
                      lambda s, i, t: decode(s, i, VALUE), _reencode):
            try:
                query(spec, tid, spec.type_by_id(tid))
            except BTFError:
                pass


def _reencode(spec: Spec, tid: int, t: Type) -> None:
    # A value's bytes are as many as its type says: only types of sane size are encoded.
    if spec.sizeof(tid) <= 1 << 20:
        encode(spec, tid, decode(spec, tid, VALUE))


def exercise(kind: str, data: bytes) -> None:
    """Parse ``data`` as raw BTF (``kind == "btf"``) or as a BPF object and use it."""
    if kind == "btf":
        try:
            parsed = parse(data)
        except BTFError:
            return
        exercise_btf(parsed)
        return
    try:
        obj = read_elf(data, "fuzz")
    except BPFError:
        return
    btf, ext = obj.section(".BTF"), obj.section(".BTF.ext")
    spec: Spec | None = None
    if btf is not None:
        try:
            spec = parse(btf.data)
        except BTFError:
            pass
    if spec is not None:
        exercise_btf(spec)
        if ext is not None:
            try:
                parse_ext(ext.data, spec)
            except BTFError:
                pass
    try:
        read_collection(data, "fuzz")
    except EXPECTED:
        pass


class Hang(Exception):
    """An input took longer than TIME_LIMIT seconds."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"took more than {TIME_LIMIT} s")


def run_one(kind: str, data: bytes) -> str | None:
    """None if ``data`` was handled, else what went wrong (the last traceback lines)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        exercise(kind, data)
    except EXPECTED as exc:  # escaped a check that should have caught it: still a bug
        return f"uncaught {type(exc).__name__}: {exc}"
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - the crash is the finding
        tb = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(tb))
        return f"{type(exc).__name__}: {str(exc)[:200]} at {where}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return None


# -- seeds -----------------------------------------------------------------------------------
def _refs_mapped(t: Type, m: Callable[[int], int]) -> Type:
    """``t`` with every type id it refers to passed through ``m``."""
    r = dataclasses.replace
    if isinstance(t, Ptr):
        return r(t, target=m(t.target))
    if isinstance(t, Array):
        return r(t, elem=m(t.elem), index=m(t.index))
    if isinstance(t, (Struct, Union)):
        return r(t, members=tuple(Member(x.name, m(x.type), x.bit_offset, x.bitfield_size)
                                  for x in t.members))
    if isinstance(t, (Typedef, Volatile, Const, Restrict, TypeTag, Var)):
        return r(t, type=m(t.type))
    if isinstance(t, Func):
        return r(t, proto=m(t.proto))
    if isinstance(t, FuncProto):
        return r(t, ret=m(t.ret), params=tuple(Param(p.name, m(p.type)) for p in t.params))
    if isinstance(t, Datasec):
        return r(t, vars=tuple(VarSecinfo(m(v.type), v.offset, v.size) for v in t.vars))
    if isinstance(t, DeclTag):
        return r(t, target=m(t.target))
    return t


def vmlinux_slice(limit: int = 400) -> bytes:
    """A self-contained piece of the kernel's BTF: some structs (bitfields, anonymous
    unions), enums, functions and tags, with what they hold by value; pointers to
    anything else become pointers to a forward declaration."""
    spec = parse(VMLINUX.read_bytes())
    roots = [ids[0] for n, k in (("sk_buff", Struct), ("bpf_attr", Union), ("xdp_md", Struct),
                                 ("bpf_cmd", None), ("bpf_insn", Struct))
             if (ids := spec.find_ids(n, k))]
    kinds: set[type] = set()
    for tid, t in spec.items():
        if isinstance(t, (Func, Enum64, DeclTag, TypeTag)) and type(t) not in kinds:
            kinds.add(type(t))
            roots.append(tid)
    order: list[int] = []
    queue, index = list(roots), {0: 0}
    while queue and len(order) < limit:
        tid = queue.pop(0)
        if tid in index:
            continue
        index[tid] = len(order) + 1
        order.append(tid)
        t = spec.type_by_id(tid)
        if not isinstance(t, Ptr):
            queue.extend(refs(t))
    out: list[Type] = []
    extra: list[Type] = []

    def remap(ref: int) -> int:
        if ref in index:
            return index[ref]
        target = spec.type_by_id(ref)
        extra.append(Fwd(target.name, isinstance(target, Union))
                     if isinstance(target, (Struct, Union)) and target.name else LONG)
        index[ref] = len(order) + len(extra)
        return index[ref]

    for tid in order:
        out.append(_refs_mapped(spec.type_by_id(tid), remap))
    return Spec(out + extra).encode()


@pytest.fixture(scope="module")
def seeds() -> list[tuple[str, bytes]]:
    out = [("elf", (TESTDATA / name).read_bytes()) for name in SEED_OBJECTS]
    for name in SEED_OBJECTS[:3]:
        sec = read_elf(TESTDATA / name).section(".BTF")
        assert sec is not None
        out.append(("btf", sec.data))
    if VMLINUX.exists():
        out.append(("btf", vmlinux_slice()))
    return out


# -- mutations -------------------------------------------------------------------------------
WORDS = (0, 1, 2, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x00FFFFFF,
         0x0F000000, 0x40000000)
_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}  # bytes after the 12-byte btf_type, by kind
_PER_VLEN = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # bytes per vlen entry, by kind


def btf_records(data: bytes) -> tuple[str, int, list[tuple[int, int, int]]]:
    """Byte order, type-section start and (offset, kind, vlen) of each record of raw BTF."""
    p = "<" if data[:2] == b"\x9f\xeb" else ">"
    hdr_len, type_off, type_len = struct.unpack_from(p + "III", data, 4)
    off = start = hdr_len + type_off
    recs = []
    while off + 12 <= start + type_len:
        info = struct.unpack_from(p + "I", data, off + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        recs.append((off, kind, vlen))
        off += 12 + _FIXED.get(kind, 0) + _PER_VLEN.get(kind, 0) * vlen
    return p, start, recs


def mutate_btf(rng: random.Random, data: bytes) -> bytes:
    """A BTF-aware change: a type id, size or count at a place that holds one."""
    buf = bytearray(data)
    try:
        p, _, recs = btf_records(data)
    except struct.error:
        return bytes(buf)
    recs = [r for r in recs if r[0] + 12 <= len(buf)]
    if not recs or rng.random() < 0.15:
        at = rng.randrange(4, 24, 4)  # a header field: lengths and offsets
        if at + 4 <= len(buf):
            struct.pack_into(p + "I", buf, at, rng.choice((*WORDS, len(data), len(data) - 24)))
        return bytes(buf)
    i = rng.randrange(len(recs))
    off, kind, vlen = recs[i]
    own_id = i + 1
    words = [off + 8]  # size or type id
    words += [off + 12 + 4 * k for k in range(_FIXED.get(kind, 0) // 4)]
    words += [off + 12 + _FIXED.get(kind, 0) + 4 * k
              for k in range(_PER_VLEN.get(kind, 0) * min(vlen, 8) // 4)]
    at = rng.choice(words)
    choice = rng.random()
    if choice < 0.35:
        value = own_id  # a type that refers to (or is as big as) itself
    elif choice < 0.6:
        value = rng.randrange(len(recs) + 1)  # another type: loops through several
    elif choice < 0.75:
        value = rng.choice((len(recs) + 1, len(recs) + 2, 0xFFFFF, 0xFFFFFFFF))
    elif choice < 0.9:
        value = rng.choice(WORDS)  # huge sizes, counts and bitfield widths
    else:
        info = struct.unpack_from(p + "I", buf, off + 4)[0]
        at, value = off + 4, info ^ (1 << rng.randrange(32))  # kind, vlen, kind_flag
    if at + 4 <= len(buf):
        struct.pack_into(p + "I", buf, at, value)
    return bytes(buf)


def mutate_bytes(rng: random.Random, data: bytes, lo: int, hi: int) -> bytes:
    """A format-blind change inside data[lo:hi]."""
    buf = bytearray(data)
    if hi <= lo:
        return bytes(buf)
    op = rng.randrange(5)
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    elif op == 1:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(lo, hi)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
    elif op == 2 and hi - lo >= 4:
        at = lo + rng.randrange((hi - lo) // 4) * 4
        buf[at:at + 4] = rng.choice(WORDS).to_bytes(4, rng.choice(("little", "big")))
    elif op == 3:
        n = rng.randint(1, min(64, hi - lo))
        src, dst = rng.randrange(lo, hi - n + 1), rng.randrange(lo, hi - n + 1)
        buf[dst:dst + n] = data[src:src + n]
    else:
        return bytes(buf[:rng.randrange(len(buf))])
    return bytes(buf)


def mutate(rng: random.Random, kind: str, data: bytes) -> bytes:
    """One or more mutations of a seed; for objects, often inside .BTF or .BTF.ext."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if kind == "btf":
            data = mutate_btf(rng, data) if rng.random() < 0.6 else \
                mutate_bytes(rng, data, 0, len(data))
            continue
        where = rng.random()
        try:
            obj = read_elf(data, "seed")
            secs = {s.name: s for s in obj.sections}
        except BPFError:
            secs = {}
        name = ".BTF" if where < 0.45 else ".BTF.ext" if where < 0.7 else ""
        sec = secs.get(name)
        if sec is not None and sec.data and data.find(sec.data) >= 0:
            start = data.find(sec.data)
            body = sec.data
            new = mutate_btf(rng, body) if name == ".BTF" and rng.random() < 0.6 else \
                mutate_bytes(rng, body, 0, len(body))
            new = new[:len(body)].ljust(len(body), b"\0")  # the object keeps its framing
            data = data[:start] + new + data[start + len(body):]
        else:
            data = mutate_bytes(rng, data, 0, len(data))
    return data


def inputs(seeds: list[tuple[str, bytes]], n: int, seed: int) -> Iterator[tuple[int, str, bytes]]:
    rng = random.Random(seed)
    for i in range(n):
        kind, data = seeds[rng.randrange(len(seeds))]
        yield i, kind, mutate(rng, kind, data)


# -- the tests -------------------------------------------------------------------------------
def test_seeds_are_handled(seeds: list[tuple[str, bytes]]) -> None:
    for kind, data in seeds:
        assert run_one(kind, data) is None


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: KiB


def test_fuzz(seeds: list[tuple[str, bytes]], tmp_path: Path) -> None:
    failures: dict[str, tuple[int, str, bytes, str]] = {}
    peak = _peak_mb()
    for i, kind, data in inputs(seeds, N, SEED):
        problem = run_one(kind, data)
        if problem is None and _peak_mb() > peak + MEMORY_LIMIT_MB:
            problem = f"peak memory grew from {peak} to {_peak_mb()} MB"
            peak = _peak_mb()
        if problem is not None:
            key = problem.split(" at ", 1)[-1] if " at " in problem else problem
            if key not in failures:  # one input per place it fails
                failures[key] = (i, kind, data, problem)
                save = Path(SAVE) if SAVE else tmp_path
                save.mkdir(parents=True, exist_ok=True)
                (save / f"crash-{SEED}-{i}.{'btf' if kind == 'btf' else 'o'}").write_bytes(data)
    report = "\n".join(f"input {i} ({kind}, {len(data)} bytes): {problem}"
                       for i, kind, data, problem in failures.values())
    assert not failures, f"{len(failures)} distinct failures:\n{report}"


REGRESSION_FILES = sorted(REGRESSIONS.glob("*.*")) if REGRESSIONS.is_dir() else []


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.name for p in REGRESSION_FILES])
def test_regression_file(path: Path) -> None:
    assert run_one("btf" if path.suffix == ".btf" else "elf", path.read_bytes()) is None
