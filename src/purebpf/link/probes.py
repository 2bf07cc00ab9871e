"""kprobes and uprobes through the perf PMUs ``kprobe`` and ``uprobe`` (4.17+), and
kprobe_multi links (5.18+, CONFIG_FPROBE).

The PMU's perf event carries the probe: config1 points at the function name (kprobe) or
the binary's path (uprobe), config2 is the offset (into the function, or into the file),
and the ``retprobe`` format bit of config makes it a return probe. The program goes on the
event as on a tracepoint (:func:`purebpf.link.tracing.attach_perf_event`).
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._sys import links as L
from .._sys import perf
from ..errors import BPFError, InvalidArgumentError, NotSupportedError, error_for
from ..types import ProgramType
from . import _tracefs
from ._link import BaseLink, check_program
from .tracing import adopt, attach_perf_event, check_name, check_u64

if TYPE_CHECKING:
    from .._program import Program

_KPROBE_HINT = ("this kernel was built without kprobes (CONFIG_KPROBES unset): no "
                f"{_tracefs.PMU_ROOT}/kprobe PMU; kprobe programs cannot attach here (uprobes "
                "and tracepoints can)")


def has_kprobes() -> bool:
    """Whether the kernel has the kprobe PMU (CONFIG_KPROBES, 4.17+)."""
    return _tracefs.pmu_type("kprobe") is not None


def _pmu(name: str, what: str, config: str) -> int:
    t = _tracefs.pmu_type(name)
    if t is None:
        hint = _KPROBE_HINT if name == "kprobe" else \
            f"this kernel has no {_tracefs.PMU_ROOT}/{name} PMU ({config} unset, or older " \
            "than 4.17)"
        raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: no {name} PMU in this kernel "
                                f"({config} is not set)", feature=config, hint=hint)
    return t


def _config(name: str, retprobe: bool) -> int:
    return 1 << _tracefs.pmu_retprobe_bit(name) if retprobe else 0


def attach_kprobe(program: Program, func: str | Sequence[str], *, offset: int = 0,
                  retprobe: bool = False, cookie: int = 0) -> BaseLink:
    """Attach a KPROBE program to kernel function ``func`` (``offset`` bytes in), or on its
    return with ``retprobe``: the kprobe PMU (4.17+) and a perf link (5.15+) or ioctl.

    ``func`` may be a list of functions or a glob (``"tcp_*"``): one kprobe_multi link
    (5.18+, CONFIG_FPROBE) for a program loaded from a ``kprobe.multi/`` section.
    Raises NotSupportedError naming CONFIG_KPROBES when the kernel has no kprobes."""
    if not isinstance(func, str) or any(c in func for c in "*?["):
        return _attach_kprobe_multi(program, func, retprobe=retprobe)
    kind = "kretprobe" if retprobe else "kprobe"
    check_u64(offset, "offset", f"attach {kind} {func}")
    what = f"attach {kind} {func}" + (f"+{offset:#x}" if offset else "")
    check_name(func, "function name", what)
    check_u64(cookie, "cookie", what)
    check_program(program, what, (ProgramType.KPROBE,))
    ptype = _pmu("kprobe", what, "CONFIG_KPROBES")
    try:
        pfd = perf.perf_event_open(type=ptype, config=_config("kprobe", retprobe), pid=-1,
                                   cpu=0, flags=perf.ATTR_DISABLED, config1_str=func,
                                   config2=offset, what=what)
    except BPFError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            raise error_for(exc.errno, f"{what}: the kernel cannot probe {func!r} (no such "
                            "function, or one that cannot be probed: inlined, notrace, or "
                            "on the kprobe blacklist)",
                            hint="see /sys/kernel/tracing/available_filter_functions") \
                from None
        raise
    target: dict[str, Any] = {"perf_event_type": kind, "func": func}
    if offset:
        target["offset"] = offset
    return attach_perf_event(program, pfd, what, target, cookie=cookie)


def _attach_kprobe_multi(program: Program, funcs: str | Sequence[str], *,
                         retprobe: bool) -> BaseLink:
    label = funcs if isinstance(funcs, str) else f"{len(funcs)} functions"
    what = f"attach {'kretprobe' if retprobe else 'kprobe'}.multi {label}"
    check_program(program, what, (ProgramType.KPROBE,))
    if not isinstance(funcs, str):
        for s in funcs:
            if not isinstance(s, str):
                raise TypeError(f"{what}: function names must be str, not "
                                f"{type(s).__name__}")
            if not s or "\0" in s:
                raise InvalidArgumentError(errno.EINVAL, f"{what}: function name {s!r} is "
                                           "empty or contains a NUL byte")
    _pmu("kprobe", what, "CONFIG_KPROBES")
    syms = _expand(funcs, what) if isinstance(funcs, str) else list(funcs)
    if not syms:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: no functions to probe")
    try:
        fd = L.link_create_kprobe_multi(program.fd, syms, retprobe=retprobe)
    except BPFError as exc:
        if exc.errno in (errno.EOPNOTSUPP, 524):
            raise NotSupportedError(exc.errno, f"{what}: this kernel has no kprobe_multi "
                                    "links (CONFIG_FPROBE unset, or older than 5.18)",
                                    feature="CONFIG_FPROBE",
                                    hint="attach each function with its own kprobe") from None
        if exc.errno == errno.EINVAL:
            raise error_for(exc.errno, f"{what}: the kernel refused it",
                            hint="the program must be loaded for kprobe_multi (a "
                            "'kprobe.multi/' section), and every function must exist and be "
                            "traceable") from None
        if exc.errno == errno.ESRCH:
            raise error_for(exc.errno, f"{what}: a function is not in the kernel's symbol "
                            "table", hint=", ".join(syms[:5])) from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
    return adopt(fd, what, program, {"funcs": syms})


def _expand(pattern: str, what: str) -> list[str]:
    path = os.path.join(_tracefs.tracefs(), "available_filter_functions")
    try:
        with open(path) as f:
            names = {line.split()[0] for line in f if line.strip()}
    except OSError as exc:
        raise error_for(exc.errno or errno.EIO, f"{what}: read {path}: {exc.strerror}") \
            from None
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def attach_uprobe(program: Program, path: str | os.PathLike[str], symbol: str | int, *,
                  retprobe: bool = False, pid: int = -1, cookie: int = 0) -> BaseLink:
    """Attach a KPROBE program to function ``symbol`` (or a file offset, an int) of the
    executable or shared library at ``path``, on entry, or on return with ``retprobe``;
    ``pid`` limits it to one process (-1: every process that runs the file).

    The symbol's file offset comes from the file's .symtab/.dynsym
    (:func:`purebpf.elf.symbols.symbol_offset`). Raises BPFError ENOENT naming the symbol
    and the file when the symbol is missing, or the file when it is."""
    from ..elf.symbols import symbol_offset

    kind = "uretprobe" if retprobe else "uprobe"
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"attach {kind} {path!r}: the path must be a str or os.PathLike, not "
                        f"{type(path).__name__}")
    p = os.path.abspath(os.fspath(path))
    if not isinstance(p, str):
        raise TypeError(f"attach {kind} {p!r}: the path must be a str")
    int_symbol = isinstance(symbol, int) and not isinstance(symbol, bool) and symbol >= 0
    where = f"{p}:{symbol}" if not int_symbol else f"{p}+{symbol:#x}"
    what = f"attach {kind} {where}"
    if "\0" in p:
        # The kernel reads the path up to the NUL: it would probe another file.
        raise InvalidArgumentError(errno.EINVAL, f"{what}: the path contains a NUL byte")
    if int_symbol:
        check_u64(symbol, "offset", what)
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"{what}: pid must be an int, not {type(pid).__name__}")
    if not (pid == -1 or 0 <= pid <= 0x7FFFFFFF):
        raise InvalidArgumentError(errno.EINVAL, f"{what}: pid={pid} is not a process id "
                                   "(-1 for every process, else 0..2^31-1)")
    check_u64(cookie, "cookie", what)
    check_program(program, what, (ProgramType.KPROBE,))
    if isinstance(symbol, str):
        offset = symbol_offset(p, symbol)
    elif int_symbol:
        if not os.path.exists(p):
            raise error_for(errno.ENOENT, f"{what}: no such file")
        offset = symbol
    else:
        raise TypeError(f"{what}: symbol must be a name (str) or a file offset (int >= 0)")
    ptype = _pmu("uprobe", what, "CONFIG_UPROBE_EVENTS")
    pfd = perf.perf_event_open(type=ptype, config=_config("uprobe", retprobe), pid=pid,
                               cpu=0 if pid == -1 else -1, flags=perf.ATTR_DISABLED,
                               config1_str=p, config2=offset, what=what)
    target: dict[str, Any] = {"perf_event_type": kind, "file": p, "offset": offset}
    if isinstance(symbol, str):
        target["symbol"] = symbol
    if pid != -1:
        target["pid"] = pid
    return attach_perf_event(program, pfd, what, target, cookie=cookie)

