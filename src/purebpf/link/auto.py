"""Attach a program by its section name, as libbpf skeletons do: ``tp/sched/sched_switch``
names its hook fully; ``xdp`` needs an interface, ``cgroup/connect4`` a cgroup.

:func:`attach` dispatches to the ``attach_*`` functions of :mod:`purebpf.link`;
:func:`attach_all` does it for every program of a collection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, NotSupportedError
from ._link import BaseLink

if TYPE_CHECKING:
    from .._program import Program


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a section attaches: the hook family, what the section names, and the keywords
    still needed (empty when the section names the hook fully)."""

    family: str
    target: str
    needs: tuple[str, ...]
    accepts: tuple[str, ...]


# prefix (longest first) -> family
_FAMILIES = [
    ("tracepoint/", "tracepoint"), ("tp/", "tracepoint"), ("tracepoint", "tracepoint"),
    ("tp", "tracepoint"),
    ("raw_tracepoint.w/", "raw_tp"), ("raw_tp.w/", "raw_tp"),
    ("raw_tracepoint/", "raw_tp"), ("raw_tp/", "raw_tp"), ("raw_tracepoint", "raw_tp"),
    ("raw_tp", "raw_tp"),
    ("tp_btf/", "tracing"), ("fentry/", "tracing"), ("fexit/", "tracing"),
    ("fmod_ret/", "tracing"), ("fentry.s/", "tracing"), ("fexit.s/", "tracing"),
    ("fmod_ret.s/", "tracing"), ("lsm/", "lsm"), ("lsm.s/", "lsm"),
    ("kretprobe.multi/", "kretprobe.multi"), ("kprobe.multi/", "kprobe.multi"),
    ("kretprobe/", "kretprobe"), ("kprobe/", "kprobe"), ("kretprobe", "kretprobe"),
    ("kprobe", "kprobe"),
    ("uretprobe.s/", "uretprobe"), ("uprobe.s/", "uprobe"), ("uretprobe/", "uretprobe"),
    ("uprobe/", "uprobe"), ("uretprobe.s", "uretprobe"), ("uprobe.s", "uprobe"),
    ("uretprobe", "uretprobe"), ("uprobe", "uprobe"),
    ("iter/", "iter"), ("iter.s/", "iter"),
    ("xdp.frags", "xdp"), ("xdp", "xdp"),
    ("tcx/", "tc"), ("tc/", "tc"), ("tc", "tc"), ("classifier", "tc"),
    ("cgroup_skb/", "cgroup"), ("cgroup/", "cgroup"), ("sockops", "cgroup"),
]
_KEYWORDS = {
    "tracepoint": ("tracepoint", "cookie"),
    "raw_tp": ("tracepoint", "cookie"),
    "tracing": ("cookie",),
    "lsm": ("cookie",),
    "kprobe": ("func", "offset", "cookie"),
    "kretprobe": ("func", "offset", "cookie"),
    "kprobe.multi": ("func",),
    "kretprobe.multi": ("func",),
    "uprobe": ("path", "symbol", "pid", "cookie"),
    "uretprobe": ("path", "symbol", "pid", "cookie"),
    "iter": ("map",),
    "xdp": ("iface", "mode"),
    "tc": ("iface", "direction", "priority", "before", "after"),
    "cgroup": ("cgroup",),
}
_TC_DIRECTIONS = ("ingress", "egress")
_ITER_NEEDS_MAP = ("bpf_map_elem", "bpf_sk_storage_map", "sockmap")
# Keywords that name the hook: attach_all passes them only to programs that need them.
_TARGET_KEYS = ("tracepoint", "func", "offset", "path", "symbol", "direction")


def plan(section: str) -> Plan | None:
    """What section ``section`` says about attaching (pure); None when auto-attach does not
    know the section (socket filters, struct_ops, freplace, devmap programs ...)."""
    s = section.lstrip("?")
    for prefix, family in _FAMILIES:
        if prefix.endswith("/"):
            if not s.startswith(prefix):
                continue
            rest = s[len(prefix):]
        elif s == prefix:
            rest = ""
        else:
            continue
        if family == "xdp" and rest:
            return None  # xdp/devmap, xdp/cpumap: programs for map entries, not interfaces
        accepts = _KEYWORDS[family]
        needs: tuple[str, ...] = ()
        if family in ("tracepoint", "raw_tp") and not rest:
            needs = ("tracepoint",)
        elif family == "tracepoint" and rest.count("/") != 1:
            return Plan(family, rest, ("tracepoint",), accepts)
        elif family.startswith(("kprobe", "kretprobe")) and not rest:
            needs = ("func",)
        elif family in ("uprobe", "uretprobe") and ":" not in rest:
            needs = ("path", "symbol")
        elif family in ("xdp",):
            needs = ("iface",)
        elif family == "tc":
            needs = ("iface",) if rest in _TC_DIRECTIONS else ("iface", "direction")
        elif family == "cgroup":
            needs = ("cgroup",)
        elif family == "iter" and rest in _ITER_NEEDS_MAP:
            needs = ("map",)
        return Plan(family, rest, needs, accepts)
    return None


def _example(family: str) -> str:
    return {"xdp": "iface='eth0'", "tc": "iface='eth0', direction='ingress'",
            "cgroup": "cgroup='/sys/fs/cgroup/mygroup'", "tracepoint": "tracepoint='sched/"
            "sched_switch'", "raw_tp": "tracepoint='sched_switch'",
            "kprobe": "func='do_unlinkat'", "kretprobe": "func='do_unlinkat'",
            "uprobe": "path='/usr/bin/bash', symbol='readline'",
            "uretprobe": "path='/usr/bin/bash', symbol='readline'"}.get(family, "")


def attach(program: Program, **kw: Any) -> BaseLink:
    """Attach ``program`` where its section name says (``prog.attach()``).

    Sections that name the hook fully attach with no arguments: ``tp/<cat>/<name>``,
    ``tracepoint/...``, ``raw_tp/<name>``, ``tp_btf/...``, ``fentry/...``, ``fexit/...``,
    ``fmod_ret/...``, ``lsm/...``, ``kprobe/<func>[+off]``, ``kretprobe/<func>``,
    ``uprobe/<path>:<symbol>``, ``uretprobe/...``, ``iter/...``. Others take keywords:
    ``xdp`` needs ``iface=`` (``mode=``), ``tc``/``tcx`` need ``iface=`` (and
    ``direction=`` unless the section says it), ``cgroup/...`` needs ``cgroup=``; bare
    ``kprobe``/``uprobe``/``tracepoint`` sections take ``func=``, ``path=``/``symbol=``,
    ``tracepoint='cat/name'``. Raises InvalidArgumentError naming the missing keyword."""
    from ._link import check_program

    section = program.spec.section if program.spec is not None else ""
    what = f"attach program {program.name!r}" + (f" (section {section!r})" if section else "")
    check_program(program, what, tuple(_all_types()))
    p = plan(section) if section else None
    if p is None:
        raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: the section name does not say "
                                "where to attach" if section else f"{what}: the program has no"
                                " section name", feature="auto-attach",
                                hint="call the purebpf.link.attach_* function for its hook")
    unknown = sorted(set(kw) - set(p.accepts))
    if unknown:
        raise TypeError(f"{what}: unexpected keyword {', '.join(unknown)} (a {p.family} "
                        f"program takes {', '.join(p.accepts)})")
    missing = [k for k in p.needs if kw.get(k) is None]
    if missing:
        raise InvalidArgumentError(
            errno.EINVAL, f"{what}: the section does not name the "
            f"{'interface' if 'iface' in missing else 'hook'} fully: pass "
            + " and ".join(f"{k}=" for k in missing),
            hint=f"for example prog.attach({_example(p.family)})")
    return _dispatch(program, p, kw, what)


def _dispatch(program: Program, p: Plan, kw: dict[str, Any], what: str) -> BaseLink:
    from .. import link as L
    from .iter import attach_iter
    from .probes import attach_kprobe, attach_uprobe
    from .tracing import attach_lsm, attach_raw_tracepoint, attach_tracepoint, attach_tracing

    cookie = kw.get("cookie", 0)
    if p.family == "tracepoint":
        cat, sep, name = (kw.get("tracepoint") or p.target).partition("/")
        if not sep or "/" in name:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: a tracepoint is "
                                       "'<category>/<name>', like 'sched/sched_switch'")
        return attach_tracepoint(program, cat, name, cookie=cookie)
    if p.family == "raw_tp":
        return attach_raw_tracepoint(program, kw.get("tracepoint") or p.target, cookie=cookie)
    if p.family == "tracing":
        return attach_tracing(program, cookie=cookie)
    if p.family == "lsm":
        return attach_lsm(program, cookie=cookie)
    if p.family in ("kprobe.multi", "kretprobe.multi"):
        funcs = kw.get("func") or p.target
        return attach_kprobe(program, [funcs] if isinstance(funcs, str) and
                             not any(c in funcs for c in "*?[") else funcs,
                             retprobe=p.family.startswith("kret"))
    if p.family in ("kprobe", "kretprobe"):
        func, offset = kw.get("func") or p.target, kw.get("offset", 0)
        if isinstance(func, str) and "+" in func:
            func, _, off = func.partition("+")
            try:
                offset = int(off, 0)
            except ValueError:
                raise InvalidArgumentError(errno.EINVAL, f"{what}: {off!r} is not an offset "
                                           "(kprobe/<func>+<offset>, like "
                                           "'kprobe/do_unlinkat+0x10')") from None
        return attach_kprobe(program, func, offset=offset, retprobe=p.family == "kretprobe",
                             cookie=cookie)
    if p.family in ("uprobe", "uretprobe"):
        path, symbol = kw.get("path"), kw.get("symbol")
        if path is None or symbol is None:
            sec_path, _, sec_sym = p.target.rpartition(":")
            path, symbol = path or sec_path, symbol or sec_sym
        return attach_uprobe(program, path, symbol, retprobe=p.family == "uretprobe",
                             pid=kw.get("pid", -1), cookie=cookie)
    if p.family == "iter":
        return attach_iter(program, map=kw.get("map"))
    # attach_xdp / attach_tc / attach_cgroup live in purebpf.link's xdp, tc and cgroup
    # modules, loaded on first use.
    hook: Callable[..., BaseLink] = getattr(L, f"attach_{p.family}")
    if p.family == "xdp":
        mode = {"mode": kw["mode"]} if kw.get("mode") is not None else {}
        link = hook(program, kw["iface"], **mode)
    elif p.family == "tc":
        extra = {k: kw[k] for k in ("priority", "before", "after") if kw.get(k) is not None}
        link = hook(program, kw["iface"], kw.get("direction") or p.target, **extra)
    else:
        link = hook(program, kw["cgroup"], program.spec.expected_attach_type
                    if program.spec is not None else None)
    return link


def _all_types() -> list[Any]:
    from ..types import ProgramType

    return list(ProgramType)


class Attached(dict[str, BaseLink]):
    """The links :func:`attach_all` made, by program name; ``skipped`` maps each program it
    left alone to the reason (the keyword it needs, or a section that names no hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[str, str] = {}


def attach_all(programs: dict[str, Program], **kw: Any) -> Attached:
    """Attach every program whose section names its hook, or whose missing keywords are in
    ``kw`` (each program gets the keywords its hook takes). All or nothing: a failure
    detaches what was attached and raises."""
    links = Attached()
    skipped = links.skipped
    with contextlib.ExitStack() as stack:
        for name, prog in programs.items():
            section = prog.spec.section if prog.spec is not None else ""
            p = plan(section) if section else None
            if p is None:
                skipped[name] = f"section {section!r} does not name a hook" if section \
                    else "no section name"
                continue
            missing = [k for k in p.needs if kw.get(k) is None]
            if missing:
                skipped[name] = f"needs {', '.join(k + '=' for k in missing)}"
                continue
            link = attach(prog, **{k: v for k, v in kw.items() if k in p.needs or
                                   (k in p.accepts and k not in _TARGET_KEYS)})
            stack.callback(link.close)
            links[name] = link
        stack.pop_all()
    return links
