"""The kernel's tracing file systems: find (or mount) tracefs, read tracepoint ids, perf
PMUs (kprobe, uprobe) and the lockdown state.

Plain file reads; mounting runs mount(8) (tracefs, or debugfs whose ``tracing`` directory
mounts tracefs on access), as bpftool does when tracefs is missing.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Iterable

from ..errors import BPFError, NotSupportedError, error_for

TRACEFS = "/sys/kernel/tracing"
DEBUGFS = "/sys/kernel/debug"
CANDIDATES = (TRACEFS, DEBUGFS + "/tracing")
PMU_ROOT = "/sys/bus/event_source/devices"
LOCKDOWN = "/sys/kernel/security/lockdown"
SECURITYFS = "/sys/kernel/security"

_lock = threading.Lock()
_found: str | None = None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_of(mountinfo: str, fstype: str) -> list[str]:
    """The mount points of file systems of type ``fstype`` in a /proc/self/mountinfo text."""
    found = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        if tail.split()[0] == fstype:
            found.append(_unescape(fields[4]))
    return found


def locate(mountinfo: str, candidates: Iterable[str] = CANDIDATES) -> str | None:
    """Where tracefs is, from a mountinfo text: a tracefs mount point (the standard place
    first), or a debugfs mount's ``tracing`` directory; None when neither is mounted."""
    cands = list(candidates)
    tracefs = mounts_of(mountinfo, "tracefs")
    for c in cands:
        if c in tracefs:
            return c
    if tracefs:
        return tracefs[0]
    for d in mounts_of(mountinfo, "debugfs"):
        path = os.path.join(d, "tracing")
        if os.path.isdir(os.path.join(path, "events")):
            return path
    return None


def _read_mountinfo(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _mount(fstype: str, where: str) -> str:
    """mount(8) ``fstype`` at ``where``; '' on success, else why not."""
    if not os.path.isdir(where):
        return f"{where} does not exist"
    try:
        res = subprocess.run(["mount", "-t", fstype, "nodev", where], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"mount -t {fstype}: {exc}"
    return "" if res.returncode == 0 else (res.stderr.strip() or f"mount exit {res.returncode}")


def tracefs(*, mount: bool = True, mountinfo: str = "/proc/self/mountinfo",
            candidates: Iterable[str] = CANDIDATES) -> str:
    """The tracefs directory (``/sys/kernel/tracing`` normally), mounting tracefs there (or
    debugfs at /sys/kernel/debug) when it is not mounted and ``mount`` is true.

    Raises NotSupportedError (ENOENT) naming where it looked and why mounting failed."""
    global _found
    cands = list(candidates)
    default = tuple(cands) == CANDIDATES and mountinfo == "/proc/self/mountinfo"
    with _lock:
        if default and _found is not None and os.path.isdir(os.path.join(_found, "events")):
            return _found
        where = locate(_read_mountinfo(mountinfo), cands)
        why: list[str] = []
        if where is None and mount:
            for fstype, path in (("tracefs", cands[0]), ("debugfs", os.path.dirname(cands[-1]))):
                problem = _mount(fstype, path)
                if not problem:
                    where = locate(_read_mountinfo(mountinfo), cands)
                    if where is not None:
                        break
                    problem = "mounted, but no events directory appeared"
                why.append(f"mount -t {fstype} nodev {path}: {problem}")
        if where is None:
            looked = " or ".join(cands)
            raise NotSupportedError(
                errno.ENOENT, f"find tracefs: not mounted (looked for {looked} in {mountinfo})"
                + (f"; {'; '.join(why)}" if why else ""), feature="tracefs",
                hint=f"mount it: mount -t tracefs nodev {cands[0]} (needs root and a kernel "
                "with CONFIG_TRACING)")
        if default:
            _found = where
        return where


def tracepoint_id(category: str, name: str, *, root: str | None = None) -> int:
    """The perf id of tracepoint ``category/name`` (tracefs ``events/<cat>/<name>/id``).

    Raises BPFError (ENOENT) naming the tracepoint and the path it looked at."""
    what = f"attach tracepoint {category}/{name}"
    for part in (category, name):
        if not part or "/" in part or part in (".", ".."):
            raise error_for(errno.EINVAL, f"{what}: {part!r} is not a tracepoint name",
                            hint="pass the category and the event separately: "
                            "attach_tracepoint(prog, 'sched', 'sched_switch')")
    base = root if root is not None else tracefs()
    path = os.path.join(base, "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        if os.path.isdir(os.path.join(base, "events", category)):
            hint = f"category {category!r} exists; its events are listed in " \
                   f"{os.path.join(base, 'events', category)}"
        else:
            hint = f"there is no category {category!r} in {os.path.join(base, 'events')}"
        raise error_for(errno.ENOENT, f"{what}: no such tracepoint ({path} does not "
                        "exist)", hint=hint) from None
    except (OSError, ValueError) as exc:
        code = getattr(exc, "errno", None) or errno.EINVAL
        raise error_for(code, f"{what}: cannot read {path}: {exc}") from None


def pmu_type(pmu: str, root: str = PMU_ROOT) -> int | None:
    """The perf ``type`` of dynamic PMU ``pmu`` ("kprobe", "uprobe"), None if absent."""
    try:
        with open(os.path.join(root, pmu, "type")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pmu_retprobe_bit(pmu: str, root: str = PMU_ROOT) -> int:
    """The config bit that makes a ``pmu`` probe a return probe (format/retprobe reads
    ``config:0`` on every kernel so far)."""
    try:
        with open(os.path.join(root, pmu, "format", "retprobe")) as f:
            text = f.read().strip()
    except OSError:
        return 0
    _, _, bit = text.partition(":")
    try:
        return int(bit.split("-")[0])
    except ValueError:
        return 0


def lockdown(path: str = LOCKDOWN, *, mount: bool = True) -> str | None:
    """The kernel lockdown mode ("none", "integrity", "confidentiality"), or None when it
    cannot be read. Mounts securityfs (as init systems do) when it is not mounted."""
    text = _read(path)
    if text is None and mount and path == LOCKDOWN and os.path.isdir(SECURITYFS) \
            and not os.listdir(SECURITYFS):
        _mount("securityfs", SECURITYFS)
        text = _read(path)
    if text is None:
        return None
    # "none integrity [confidentiality]": the bracketed word is the mode in force
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return None


def active_lsms(path: str = SECURITYFS + "/lsm") -> list[str] | None:
    """The active LSMs (securityfs ``lsm``), None when it cannot be read."""
    lockdown()  # mounts securityfs when it is not mounted
    text = _read(path)
    return text.strip().split(",") if text is not None else None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def lockdown_hint(what: str) -> str:
    """A hint for an EPERM that root got from a tracing load or attach: names kernel
    lockdown when it is in force (the usual cause), '' when it is not."""
    mode = lockdown()
    if mode in ("integrity", "confidentiality"):
        return (f"kernel lockdown ({mode}) is in force ({LOCKDOWN} reads [{mode}]) and is "
                f"the usual reason root is refused {what}; lockdown cannot be lifted at run "
                "time: boot a kernel without it (the lockdown= boot parameter, "
                "CONFIG_LOCK_DOWN_KERNEL_FORCE_*, Secure Boot)")
    return ""


def raise_eperm(exc: BPFError, what: str, kind: str) -> BPFError:
    """The error for an EPERM from ``what``: explained by lockdown when it is active."""
    hint = lockdown_hint(kind)
    return error_for(exc.errno, f"{what}: not permitted", hint=hint)
