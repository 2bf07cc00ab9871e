"""Programs on cgroup v2 hooks: :func:`attach_cgroup`, :func:`query_cgroup`.

A cgroup program runs for the processes of a cgroup and of its descendants: socket
creation, connect()/bind()/sendmsg() addresses, packets in and out, device access,
sysctls, socket options. The kernel takes them through a bpf_link (BPF_LINK_CREATE, 5.7+)
or, before that, BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI; purebpf probes and picks the
link. The helpers shared with the other socket-family hooks are in ``_hooks``.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from typing import Any

from .._program import Program
from .._sys import links as L
from .._sys import progs
from .._sys.syscall import close_fd
from ..errors import BPFError, ClosedError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType as A
from ..types import LinkType
from ..types import ProgramType as P
from ._hooks import (AttachedProgram, _names, check_mechanism, detach_by_id, expected_type,
                     has_link, infer_attach_type, links_by_target, parse_attach_type, use_link)
from ._link import Attachment, Link, LinkInfo, check_program, dup_fd, program_name

CGROUP_HOOKS: dict[P, tuple[A, ...]] = {
    P.CGROUP_SKB: (A.CGROUP_INET_INGRESS, A.CGROUP_INET_EGRESS),
    P.CGROUP_SOCK: (A.CGROUP_INET_SOCK_CREATE, A.CGROUP_INET_SOCK_RELEASE,
                    A.CGROUP_INET4_POST_BIND, A.CGROUP_INET6_POST_BIND),
    P.CGROUP_SOCK_ADDR: tuple(a for a in A if re.fullmatch(
        r"CGROUP_(INET[46]_(BIND|CONNECT|GETPEERNAME|GETSOCKNAME)|UDP[46]_(SEND|RECV)MSG|"
        r"UNIX_\w+)", a.name)),
    P.SOCK_OPS: (A.CGROUP_SOCK_OPS,),
    P.CGROUP_DEVICE: (A.CGROUP_DEVICE,),
    P.CGROUP_SYSCTL: (A.CGROUP_SYSCTL,),
    P.CGROUP_SOCKOPT: (A.CGROUP_GETSOCKOPT, A.CGROUP_SETSOCKOPT),
    P.LSM: (A.LSM_CGROUP,),
}
"""Which cgroup hooks (attach types) each program type runs at."""

_ALL_HOOKS = tuple(sorted({a for hooks in CGROUP_HOOKS.values() for a in hooks}))


def _short_name(at: A) -> str:
    """bpftool's name for a cgroup attach type: connect4, post_bind6, ingress, sock_ops."""
    name = at.name.removeprefix("CGROUP_")
    m = re.fullmatch(r"(?:INET|UDP)([46]?)_(\w+)", name)
    if m:
        return m.group(2).lower() + m.group(1)
    if name.startswith("UNIX_"):
        return name[5:].lower() + "_unix"
    return name.lower()


CGROUP_ALIASES = {_short_name(a): a for a in _ALL_HOOKS if a != A.LSM_CGROUP}


def cgroup2_mount() -> str | None:
    """Where cgroup v2 is mounted (the first cgroup2 line of /proc/self/mounts), or None."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                  parts[1])
    except OSError:
        pass
    return None


def _mount_hint() -> str:
    mount = cgroup2_mount()
    if mount is None:
        return "no cgroup2 is mounted: mount -t cgroup2 none /sys/fs/cgroup/unified"
    return f"cgroup v2 is mounted at {mount}; pass a directory under it"


def describe_cgroup(cgroup: Any) -> str:
    if isinstance(cgroup, int) and not isinstance(cgroup, bool):
        return f"fd {cgroup}"
    return repr(os.fspath(cgroup)) if isinstance(cgroup, str | os.PathLike) else repr(cgroup)


def open_cgroup(cgroup: Any, what: str) -> tuple[int, str | None]:
    """A new fd for ``cgroup`` (a path, absolute or relative to the cgroup2 mount, or an
    open fd, which is duplicated) and the path it was opened by (None for an fd)."""
    if isinstance(cgroup, int) and not isinstance(cgroup, bool):
        return dup_fd(cgroup, what), None
    if not isinstance(cgroup, str | os.PathLike):
        raise TypeError(f"{what}: the cgroup must be a path or an fd, not "
                        f"{type(cgroup).__name__}")
    path = os.fspath(cgroup)
    if "\0" in path:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: the path contains a NUL byte")
    if not os.path.isabs(path):
        mount = cgroup2_mount()
        if mount is None:
            raise error_for(errno.ENOENT, f"{what}: a relative cgroup path needs a cgroup2 "
                            "mount, and none is mounted",
                            hint="mount -t cgroup2 none /sys/fs/cgroup/unified")
        path = os.path.join(mount, path)
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path
    except FileNotFoundError:
        raise error_for(errno.ENOENT, f"{what}: no such cgroup: {path!r} does not exist",
                        hint=_mount_hint()) from None
    except NotADirectoryError:
        raise error_for(errno.ENOTDIR, f"{what}: {path!r} is not a directory (a cgroup is "
                        "a directory under the cgroup2 mount)", hint=_mount_hint()) from None
    except OSError as exc:
        raise error_for(exc.errno, f"{what}: cannot open {path!r}: {exc.strerror}") from None


def _not_cgroup2(what: str, shown: str) -> BPFError:
    return error_for(errno.EBADF, f"{what}: {shown} is not a cgroup v2 directory (a cgroup "
                     "v1 hierarchy or any other directory cannot run BPF programs)",
                     hint=_mount_hint())


# -- attaching ---------------------------------------------------------------------------------

def resolve_cgroup_type(program: Program, attach_type: Any, what: str) -> A:
    hooks = CGROUP_HOOKS[P(program.type)]
    tname = getattr(program.type, "name", program.type)
    if attach_type is None:
        # CGROUP_SOCK programs loaded without one default to socket creation in the kernel
        default = A.CGROUP_INET_SOCK_CREATE if program.type == P.CGROUP_SOCK else None
        return infer_attach_type(program, hooks, what, "cgroup", default)
    at = parse_attach_type(attach_type, what, _ALL_HOOKS, CGROUP_ALIASES)
    if at not in hooks:
        takers = [t.name for t, h in CGROUP_HOOKS.items() if at in h]
        runs = f"; {at.name} runs {', '.join(takers)} programs" if takers else \
            f"; {at.name} is not a cgroup hook"
        raise InvalidArgumentError(errno.EINVAL, f"{what}: a {tname} program cannot run at "
                                   f"{at.name}; it runs at {_names(hooks)}{runs}")
    return at


def _attached(cgroup_fd: int, program: Program, at: A) -> bool:
    try:
        return program.id in L.prog_query(cgroup_fd, at).prog_ids
    except BPFError:
        return False


def _attach_error(exc: BPFError, program: Program, at: A, what: str, shown: str,
                  replace: Program | None = None, cgroup_fd: int = -1) -> BPFError:
    code = exc.errno
    if code == errno.EBADF:
        return _not_cgroup2(what, shown)
    if code in (errno.EEXIST, errno.EINVAL) and replace is None and cgroup_fd >= 0 and \
            _attached(cgroup_fd, program, at):
        # The kernel says EEXIST (6.1) or EINVAL (6.18) for a program attached twice.
        return BPFError(code, f"{what}: the program is already attached at {at.name} of "
                        "this cgroup (BPF_PROG_ATTACH takes a program once per hook)")
    if code == errno.EINVAL:
        spec = program.spec
        loaded = expected_type(program, CGROUP_HOOKS[P(program.type)]) if spec else None
        if loaded is not None and loaded != at:
            return error_for(code, f"{what}: the kernel refuses it at {at.name}: the program "
                             f"was loaded for {loaded.name} (its expected attach type)",
                             hint=f"attach it at {loaded.name}, or load it for {at.name} "
                             f"(section {_short_section(at)!r})")
        tname = getattr(program.type, "name", program.type)
        return error_for(code, f"{what}: the kernel refuses a {tname} program at "
                         f"{at.name}", hint="a program's expected attach type (set when it "
                         "was loaded, from its section) must be the hook it is attached to")
    if code == errno.EPERM:
        return error_for(code, f"{what}: the cgroup's {at.name} hook takes no more programs",
                         hint="a program attached there without BPF_F_ALLOW_MULTI (exclusive "
                         "or override mode) keeps others out; detach it first (or run as "
                         "root with CAP_NET_ADMIN and CAP_BPF)")
    if code == errno.ENOENT and replace is not None:
        return error_for(code, f"{what}: the program to replace, {replace.name!r} (id "
                         f"{replace.id}), is not attached at {at.name} of this cgroup")
    if code == errno.E2BIG:
        return BPFError(code, f"{what}: the hook already holds the most programs the "
                        "kernel allows (64)")
    return error_for(code, f"{what}: {exc.strerror}")


def _short_section(at: A) -> str:
    if at in (A.CGROUP_INET_INGRESS, A.CGROUP_INET_EGRESS):
        return "cgroup_skb/" + _short_name(at)
    return "cgroup/" + _short_name(at)


def attach_cgroup(program: Program, cgroup: str | os.PathLike[str] | int,
                  attach_type: A | int | str | None = None, *,
                  replace: Program | None = None,
                  mechanism: str = "auto") -> Link | CgroupAttachment:
    """Attach ``program`` to a cgroup v2 hook; the program then runs for the processes of
    the cgroup and its descendants until the returned object is closed.

    ``cgroup`` is a directory (absolute, or relative to the cgroup2 mount found in
    /proc/self/mounts) or an open fd. ``attach_type`` is an AttachType or a name
    ("connect4", "inet_ingress", "CGROUP_INET4_CONNECT"); by default the hook the program
    was loaded for (its section / expected attach type).

    ``mechanism``: ``"auto"`` makes a bpf_link (BPF_LINK_CREATE, 5.7+) when the kernel has
    cgroup links, else BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI; ``"bpf_link"`` or
    ``"prog_attach"`` insist on one. ``replace`` (prog_attach only) atomically swaps an
    attached program for this one (BPF_F_REPLACE). A prog_attach attachment
    (:class:`CgroupAttachment`) detaches exactly its program on close (BPF_PROG_DETACH).

    Raises InvalidArgumentError for a program or attach type that is not for cgroups (or
    not for this hook), BPFError ENOENT for a missing path and EBADF for a directory that
    is not a cgroup v2 one, NotSupportedError when ``mechanism`` asks for what the kernel
    lacks."""
    what = f"attach program {getattr(program, 'name', '?')!r} to cgroup " \
           f"{describe_cgroup(cgroup)}"
    check_program(program, what, CGROUP_HOOKS)
    check_mechanism(mechanism, what)
    at = resolve_cgroup_type(program, attach_type, what)
    if replace is not None:
        check_program(replace, what, CGROUP_HOOKS)
        if mechanism == "bpf_link":
            raise InvalidArgumentError(errno.EINVAL, f"{what}: replace= swaps programs "
                                       "attached by BPF_PROG_ATTACH; a link's program is "
                                       "changed with link.update()")
        mechanism = "prog_attach"
    fd, path = open_cgroup(cgroup, what)
    shown = repr(path) if path is not None else describe_cgroup(cgroup)
    try:
        link = use_link(mechanism, has_link(P.CGROUP_SKB, A.CGROUP_INET_INGRESS), what,
                        "cgroup bpf_link (BPF_LINK_CREATE, 5.7)")
        extra = {"path": path} if path is not None else {}
        if link:
            try:
                lfd = L.link_create(program.fd, fd, at)
            except BPFError as exc:
                raise _attach_error(exc, program, at, what, shown) from None
            return Link._adopt(lfd, what, program=program, extra=extra)
        flags = L.BPF_F_ALLOW_MULTI | (L.BPF_F_REPLACE if replace is not None else 0)
        try:
            L.prog_attach(fd, program.fd, at, flags,
                          replace_fd=replace.fd if replace is not None else 0)
        except BPFError as exc:
            raise _attach_error(exc, program, at, what, shown, replace, fd) from None
        info = LinkInfo(0, LinkType.CGROUP, program.id, at,
                        {"cgroup_id": os.fstat(fd).st_ino, **extra})
        desc = f"cgroup attachment of {program.name!r} at {at.name} of {shown}"
        owned, fd = _Fd(fd), -1  # the attachment owns the fd now
        return CgroupAttachment(info, program, desc, owned)
    finally:
        if fd >= 0:
            close_fd(fd)


# -- BPF_PROG_ATTACH attachments ---------------------------------------------------------------

class _Fd:
    """The fd a legacy attachment keeps for detaching: closed once, by whoever is first."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            close_fd(fd)


def _cgroup_undo(cg: _Fd, prog_id: int, at: A, desc: str) -> Callable[[], None]:
    def undo() -> None:
        if cg.fd < 0:
            return  # detached (or found gone) already
        try:
            detach_by_id(cg.fd, prog_id, at, f"detach {desc}", "from the cgroup")
        finally:
            cg.close()
    return undo


class CgroupAttachment(Attachment):
    """A program attached to a cgroup hook with BPF_PROG_ATTACH (kernels without cgroup
    links, or ``mechanism="prog_attach"``). Keeps an fd of the cgroup; ``close()`` and
    ``detach()`` remove exactly this program (BPF_PROG_DETACH), ``update()`` swaps it
    atomically (BPF_F_REPLACE). A program someone else already detached is not an error
    for ``close()``; ``detach()`` reports it (ENOENT)."""

    mechanism = "prog_attach"

    def __init__(self, info: LinkInfo, program: Program, desc: str, cg: _Fd) -> None:
        self._cg = cg
        at = A(int(info.attach_type or 0))
        super().__init__(info, program, desc, _cgroup_undo(cg, program.id, at, desc))

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        what = f"update {self._desc}"
        at = A(int(self._info.attach_type or 0))
        check_program(program, what, CGROUP_HOOKS)
        self._check_expected(expected, what)
        old = progs.fd_by_id("prog", self._info.program_id)
        try:
            L.prog_attach(self._cg.fd, program.fd, at, L.BPF_F_ALLOW_MULTI | L.BPF_F_REPLACE,
                          replace_fd=old)
        except BPFError as exc:
            if exc.errno == errno.ENOENT:
                raise error_for(exc.errno, f"{what}: program id {self._info.program_id} is "
                                "no longer attached (detached or replaced by someone "
                                "else)") from None
            raise _attach_error(exc, program, at, what, "the cgroup") from None
        finally:
            close_fd(old)
        return _cgroup_undo(self._cg, program.id, at, self._desc)

    def close(self) -> None:
        try:
            super().close()
        except BPFError as exc:
            if exc.errno != errno.ENOENT:  # gone already: nothing left to detach
                raise
        finally:
            if self._closed:
                self._cg.close()  # also when disconnected (nothing detached it)

    def disconnect(self) -> None:
        super().disconnect()
        with self._lock:
            self._undo[0] = self._cg.close  # close and GC: let go of the cgroup fd only

    def __repr__(self) -> str:
        if self._closed:
            return "<CgroupAttachment closed>"
        at = getattr(self._info.attach_type, "name", self._info.attach_type)
        return f"<CgroupAttachment {at} cgroup_id={self._info.target.get('cgroup_id')} " \
               f"prog_id={self._info.program_id}{' detached' if self._detached else ''}>"


# -- querying --------------------------------------------------------------------------------

def query_cgroup(cgroup: str | os.PathLike[str] | int,
                 attach_type: A | int | str | None = None, *,
                 effective: bool = False) -> list[AttachedProgram]:
    """The programs attached to a cgroup (BPF_PROG_QUERY), in the order they run, for one
    hook or (``attach_type=None``) every cgroup hook this kernel has. ``effective=True``
    lists what runs for the cgroup's processes, inherited programs included.

    Link ids come from the kernel's query where it reports them, else from the cgroup links'
    own info; 0 means attached by BPF_PROG_ATTACH. Raises as :func:`attach_cgroup` for the
    path, NotSupportedError for a hook this kernel does not have."""
    what = f"query cgroup {describe_cgroup(cgroup)}"
    hooks: tuple[A, ...]
    if attach_type is None:
        hooks = tuple(a for a in _ALL_HOOKS if a != A.LSM_CGROUP)
    else:
        hooks = (parse_attach_type(attach_type, what, _ALL_HOOKS, CGROUP_ALIASES),)
        if hooks[0] not in _ALL_HOOKS or hooks[0] == A.LSM_CGROUP:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: {hooks[0].name} is not a "
                                       "cgroup hook this query lists")
    fd, path = open_cgroup(cgroup, what)
    shown = repr(path) if path is not None else describe_cgroup(cgroup)
    try:
        found: list[AttachedProgram] = []
        for at in hooks:
            try:
                res = L.prog_query(fd, at, effective=effective)
            except ClosedError:
                raise
            except BPFError as exc:
                if exc.errno == errno.EBADF:
                    raise _not_cgroup2(what, shown) from None
                if exc.errno == errno.EINVAL and attach_type is None:
                    continue  # a hook younger than this kernel
                if exc.errno == errno.EINVAL:
                    raise NotSupportedError(exc.errno, f"{what}: this kernel has no "
                                            f"{at.name} hook", feature=at.name) from None
                raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
            found += [AttachedProgram(at, pid, program_name(pid), res.attach_flags, lid)
                      for pid, lid in zip(res.prog_ids, res.link_ids)]
        if not effective and any(p.link_id == 0 for p in found):
            cg_id = os.fstat(fd).st_ino
            links = links_by_target(LinkType.CGROUP)
            found = [_with_link(p, links.get((cg_id, int(p.attach_type), p.program_id)))
                     for p in found]
        return found
    finally:
        close_fd(fd)


def _with_link(p: AttachedProgram, link_id: int | None) -> AttachedProgram:
    if p.link_id or not link_id:
        return p
    return AttachedProgram(p.attach_type, p.program_id, p.name, p.attach_flags, link_id)
