"""Programs on a network namespace: sk_lookup and flow dissector (:func:`attach_netns`).

An SK_LOOKUP program picks the socket for connections and datagrams arriving in the
namespace (several may run, in attach order); a FLOW_DISSECTOR program replaces the
kernel's flow dissector there (one per namespace, and one in the root namespace overrides
all). Both take a bpf_link on the namespace (BPF_LINK_CREATE: 5.8+ for flow dissectors,
5.9+ for sk_lookup, which has no other way); flow dissectors also attach with
BPF_PROG_ATTACH on older kernels, to the caller's own namespace only.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from typing import Any

from .._program import Program
from .._sys import links as L
from .._sys.syscall import close_fd
from ..errors import BPFError, ClosedError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType as A
from ..types import LinkType
from ..types import ProgramType as P
from ._link import Attachment, Link, LinkInfo, check_program, dup_fd, program_name
from ._hooks import (AttachedProgram, check_mechanism, detach_by_id, has_link, links_by_target,
                     refused_at, use_link)

NETNS_HOOKS = {P.SK_LOOKUP: A.SK_LOOKUP, P.FLOW_DISSECTOR: A.FLOW_DISSECTOR}
_OWN_NETNS = "/proc/thread-self/ns/net"
_NAMED = "/var/run/netns"  # where `ip netns add NAME` puts its namespaces


def _describe(netns: Any) -> str:
    if netns is None:
        return "of this thread"
    if isinstance(netns, int) and not isinstance(netns, bool):
        return f"fd {netns}"
    return repr(os.fspath(netns)) if isinstance(netns, str | os.PathLike) else repr(netns)


def open_netns(netns: Any, what: str) -> tuple[int, str | None]:
    """A new fd for ``netns`` (None: the calling thread's; an ``ip netns`` name; a path
    such as /proc/PID/ns/net or /var/run/netns/NAME; an open fd, duplicated) and the
    path it was opened by (None for an fd or the thread's own)."""
    if isinstance(netns, int) and not isinstance(netns, bool):
        fd, path = dup_fd(netns, what), None
    else:
        if netns is None:
            netns = _OWN_NETNS
        if not isinstance(netns, str | os.PathLike):
            raise TypeError(f"{what}: the netns must be a path, a name or an fd, not "
                            f"{type(netns).__name__}")
        path = os.fspath(netns)
        if "\0" in path:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: the path contains a NUL byte")
        if os.sep not in path:
            path = os.path.join(_NAMED, path)
        try:
            # O_NONBLOCK: a FIFO given by mistake must not block the open (it is refused
            # below as not a namespace file); nsfs files ignore the flag.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise error_for(errno.ENOENT, f"{what}: no such network namespace: {path!r} "
                            "does not exist", hint="name one of `ip netns list` or pass "
                            "/proc/PID/ns/net") from None
        except OSError as exc:
            raise error_for(exc.errno, f"{what}: cannot open {path!r}: {exc.strerror}") \
                from None
    # Namespace files live on nsfs (one device for all); /proc's links name the kind.
    try:
        kind = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        kind = ""
    m = re.match(r"(\w+):\[", kind)
    nsfs = os.fstat(fd).st_dev == os.stat(_OWN_NETNS).st_dev
    if not nsfs or (m is not None and m.group(1) != "net"):
        close_fd(fd)
        it = f"a {m.group(1)} namespace" if m is not None else "not a namespace file"
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {path or f'fd {netns}'} is not a "
                                   f"network namespace ({it})",
                                   hint="pass /proc/PID/ns/net, /var/run/netns/NAME or a "
                                   "name from `ip netns list`")
    return fd, (None if path == _OWN_NETNS else path)


def _same_netns(fd: int) -> bool:
    own = os.stat(_OWN_NETNS)
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _attach_error(exc: BPFError, program: Program, at: A, what: str) -> BPFError:
    if exc.errno in (errno.EEXIST, errno.E2BIG) and at == A.FLOW_DISSECTOR:
        # EEXIST: attached by the other mechanism or in the root netns; E2BIG: a link.
        return BPFError(exc.errno, f"{what}: a flow dissector is already attached there",
                        hint="one flow dissector runs per namespace, and one attached in "
                         "the root namespace excludes all others; detach it first")
    if exc.errno == errno.EINVAL:
        return refused_at(exc, program, at, what, "")
    return error_for(exc.errno, f"{what}: {exc.strerror}")


def attach_netns(program: Program, netns: str | os.PathLike[str] | int | None = None, *,
                 mechanism: str = "auto") -> Link | NetnsAttachment:
    """Attach an SK_LOOKUP or FLOW_DISSECTOR program to a network namespace.

    ``netns``: None for the calling thread's namespace, a name from ``ip netns list``, a
    path (/proc/PID/ns/net, /var/run/netns/NAME) or an open fd. ``mechanism="auto"``
    makes a bpf_link (BPF_LINK_CREATE: flow dissector 5.8+, sk_lookup 5.9+); else a flow
    dissector is attached with BPF_PROG_ATTACH (:class:`NetnsAttachment`), which the
    kernel applies to the caller's own namespace only. ``"bpf_link"``/``"prog_attach"``
    insist on one.

    Raises InvalidArgumentError for another program type or a file that is not a
    network namespace, BPFError ENOENT for a missing one, EEXIST when a flow dissector is
    already there, NotSupportedError where the kernel lacks the mechanism."""
    what = f"attach program {getattr(program, 'name', '?')!r} to netns {_describe(netns)}"
    check_program(program, what, NETNS_HOOKS)
    check_mechanism(mechanism, what)
    at = NETNS_HOOKS[P(program.type)]
    fd, path = open_netns(netns, what)
    try:
        link = use_link(mechanism, has_link(P(program.type), at), what,
                        f"netns bpf_link for {at.name} (BPF_LINK_CREATE, 5.8/5.9)")
        extra = {"path": path} if path is not None else {}
        if link:
            try:
                lfd = L.link_create(program.fd, fd, at)
            except BPFError as exc:
                raise _attach_error(exc, program, at, what) from None
            return Link._adopt(lfd, what, program=program, extra=extra)
        if at == A.SK_LOOKUP:
            raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: sk_lookup programs attach "
                                    "only through a bpf_link (5.9+)",
                                    feature="sk_lookup bpf_link")
        if not _same_netns(fd):
            raise NotSupportedError(errno.EOPNOTSUPP, f"{what}: BPF_PROG_ATTACH puts a flow "
                                    "dissector in the caller's own namespace only",
                                    hint="enter that namespace first (ip netns exec), or "
                                    "use a kernel with netns links (5.8+)",
                                    feature="flow dissector bpf_link")
        # The kernel's PROG_ATTACH silently replaces a flow dissector already there;
        # purebpf refuses, as links do.
        held = L.prog_query(fd, at).prog_ids
        if held:
            raise BPFError(errno.EEXIST, f"{what}: a flow dissector is already attached "
                           f"there (program id {held[0]})", hint="detach it first, or "
                           "update() the attachment that holds it")
        try:
            L.prog_attach(0, program.fd, at)
        except BPFError as exc:
            raise _attach_error(exc, program, at, what) from None
        info = LinkInfo(0, LinkType.NETNS, program.id, at,
                        {"netns_ino": os.fstat(fd).st_ino, **extra})
        desc = f"netns attachment of {program.name!r} at {at.name}"
        return NetnsAttachment(info, program, desc)
    finally:
        close_fd(fd)


def _netns_undo(netns_ino: int, prog_id: int, desc: str) -> Callable[[], None]:
    def undo() -> None:
        what = f"detach {desc}"
        if os.stat(_OWN_NETNS).st_ino != netns_ino:
            raise error_for(errno.EINVAL, f"{what}: this thread is now in another network "
                            "namespace; BPF_PROG_DETACH works on the caller's own")
        detach_by_id(0, prog_id, A.FLOW_DISSECTOR, what, "in this namespace")
    return undo


class NetnsAttachment(Attachment):
    """A flow dissector attached with BPF_PROG_ATTACH (kernels before 5.8, or
    ``mechanism="prog_attach"``): the caller's own namespace. ``close()`` detaches exactly
    this program, from the same thread's namespace; ``update()`` swaps it atomically."""

    mechanism = "prog_attach"

    def __init__(self, info: LinkInfo, program: Program, desc: str) -> None:
        super().__init__(info, program, desc,
                         _netns_undo(info.target["netns_ino"], program.id, desc))

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        what = f"update {self._desc}"
        check_program(program, what, (P.FLOW_DISSECTOR,))
        self._check_expected(expected, what)
        ino = self._info.target["netns_ino"]
        if os.stat(_OWN_NETNS).st_ino != ino:
            raise error_for(errno.EINVAL, f"{what}: this thread is now in another network "
                            "namespace; BPF_PROG_ATTACH works on the caller's own")
        try:
            L.prog_attach(0, program.fd, A.FLOW_DISSECTOR)  # replaces what is there
        except BPFError as exc:
            raise _attach_error(exc, program, A.FLOW_DISSECTOR, what) from None
        return _netns_undo(ino, program.id, self._desc)

    def close(self) -> None:
        try:
            super().close()
        except BPFError as exc:
            if exc.errno != errno.ENOENT:  # gone already: nothing left to detach
                raise


def query_netns(netns: str | os.PathLike[str] | int | None = None,
                attach_type: A | int | str | None = None) -> list[AttachedProgram]:
    """The SK_LOOKUP and FLOW_DISSECTOR programs attached to a network namespace
    (BPF_PROG_QUERY, 5.8+), with the link holding each (0: BPF_PROG_ATTACH).
    ``attach_type`` picks one of the two."""
    from ._hooks import parse_attach_type

    what = f"query netns {_describe(netns)}"
    hooks = tuple(NETNS_HOOKS.values())
    if attach_type is not None:
        at = parse_attach_type(attach_type, what, hooks)
        if at not in hooks:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: {at.name} is not a netns "
                                       "hook; it has SK_LOOKUP and FLOW_DISSECTOR")
        hooks = (at,)
    fd, _ = open_netns(netns, what)
    try:
        found: list[AttachedProgram] = []
        for at in hooks:
            try:
                res = L.prog_query(fd, at)
            except ClosedError:
                raise
            except BPFError as exc:
                if exc.errno == errno.EINVAL and attach_type is None:
                    continue  # a hook younger than this kernel
                raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
            found += [AttachedProgram(at, pid, program_name(pid), res.attach_flags, lid)
                      for pid, lid in zip(res.prog_ids, res.link_ids)]
        if any(p.link_id == 0 for p in found):
            ino = os.fstat(fd).st_ino
            links = links_by_target(LinkType.NETNS)
            found = [AttachedProgram(p.attach_type, p.program_id, p.name, p.attach_flags,
                                     p.link_id or links.get((ino, int(p.attach_type),
                                                             p.program_id), 0))
                     for p in found]
        return found
    finally:
        close_fd(fd)

