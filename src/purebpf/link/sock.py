"""Programs on a sockmap: sk_msg and sk_skb (:func:`attach_sockmap`).

An SK_MSG program (BPF_SK_MSG_VERDICT) runs for each sendmsg() on the sockets of a
SOCKMAP or SOCKHASH; SK_SKB programs run on what those sockets receive: a stream parser
(BPF_SK_SKB_STREAM_PARSER) and verdict (BPF_SK_SKB_STREAM_VERDICT), or a verdict alone
(BPF_SK_SKB_VERDICT, 5.13+). One program per attach type per map. The kernel takes them
through a bpf_link on the map (BPF_LINK_CREATE, 6.10+) or BPF_PROG_ATTACH before that.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from .._map import Map
from .._program import Program
from .._sys import links as L
from .._sys import ops
from .._sys.syscall import close_fd
from ..errors import BPFError, ClosedError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType as A
from ..types import LinkType, MapType
from ..types import ProgramType as P
from ._link import Attachment, Link, LinkInfo, check_program, program_name
from ._hooks import (AttachedProgram, _names, check_mechanism, detach_by_id, has_link,
                     infer_attach_type, links_by_target, parse_attach_type, refused_at,
                     use_link)

SOCKMAP_HOOKS: dict[P, tuple[A, ...]] = {
    P.SK_MSG: (A.SK_MSG_VERDICT,),
    P.SK_SKB: (A.SK_SKB_STREAM_PARSER, A.SK_SKB_STREAM_VERDICT, A.SK_SKB_VERDICT),
}
_ALL = (A.SK_MSG_VERDICT, A.SK_SKB_STREAM_PARSER, A.SK_SKB_STREAM_VERDICT, A.SK_SKB_VERDICT)
_ALIASES = {"msg_verdict": A.SK_MSG_VERDICT, "stream_parser": A.SK_SKB_STREAM_PARSER,
            "stream_verdict": A.SK_SKB_STREAM_VERDICT, "skb_verdict": A.SK_SKB_VERDICT,
            "verdict": A.SK_SKB_VERDICT}
_MAP_TYPES = (MapType.SOCKMAP, MapType.SOCKHASH)


def _check_map(m: Any, what: str) -> None:
    if not isinstance(m, Map):
        raise TypeError(f"{what}: expected a purebpf.Map, not {type(m).__name__}")
    if m.closed:
        raise ClosedError(errno.EBADF, f"{what}: {m!r} is closed")
    if m.type not in _MAP_TYPES:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: the map is {m.type.name}; sk_msg "
                                   "and sk_skb programs attach to a SOCKMAP or SOCKHASH")


def _resolve(program: Program, attach_type: Any, what: str) -> A:
    hooks = SOCKMAP_HOOKS[P(program.type)]
    tname = getattr(program.type, "name", program.type)
    if attach_type is None:
        return infer_attach_type(program, hooks, what, "sockmap")
    at = parse_attach_type(attach_type, what, _ALL, _ALIASES)
    if at not in hooks:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: a {tname} program cannot run at "
                                   f"{at.name}; it runs at {_names(hooks)}")
    return at


def _attach_error(exc: BPFError, program: Program, at: A, what: str) -> BPFError:
    if exc.errno == errno.EBUSY:
        return error_for(exc.errno, f"{what}: the map already has a program at {at.name}",
                         hint="a map takes one program per attach type (and not a "
                         "SK_SKB_VERDICT beside a SK_SKB_STREAM_VERDICT); detach it first")
    if exc.errno == errno.EINVAL:
        return refused_at(exc, program, at, what, ", from its section")
    return error_for(exc.errno, f"{what}: {exc.strerror}")


def _holder(map_fd: int, at: A) -> int:
    """The id of the program at ``at`` of the map (0: none, or no BPF_PROG_QUERY for
    sockmaps on this kernel, 5.17-)."""
    try:
        ids = L.prog_query(map_fd, at).prog_ids
    except BPFError:
        return 0
    return ids[0] if ids else 0


def attach_sockmap(program: Program, map: Map, attach_type: A | int | str | None = None, *,
                   mechanism: str = "auto") -> Link | SockmapAttachment:
    """Attach an SK_MSG or SK_SKB program to a SOCKMAP/SOCKHASH ``map``.

    ``attach_type`` (an AttachType or "msg_verdict", "stream_parser", "stream_verdict",
    "skb_verdict") defaults to the hook the program was loaded for (its section).
    ``mechanism="auto"`` makes a bpf_link on the map (BPF_LINK_CREATE, 6.10+) when the
    kernel has sockmap links, else BPF_PROG_ATTACH (:class:`SockmapAttachment`, whose
    close detaches exactly this program). Unlike the kernel's BPF_PROG_ATTACH, which
    silently replaces a program already there, purebpf refuses (EBUSY) as links do.

    Raises InvalidArgumentError for another program type, attach type or map type,
    BPFError EBUSY when the map already has a program at that hook."""
    what = f"attach program {getattr(program, 'name', '?')!r} to sockmap " \
           f"{getattr(map, 'name', '?')!r}"
    check_program(program, what, SOCKMAP_HOOKS)
    _check_map(map, what)
    check_mechanism(mechanism, what)
    at = _resolve(program, attach_type, what)
    link = use_link(mechanism, has_link(P(program.type), at), what,
                    "sockmap bpf_link (BPF_LINK_CREATE, 6.10)")
    if link:
        try:
            lfd = L.link_create(program.fd, map.fd, at)
        except BPFError as exc:
            raise _attach_error(exc, program, at, what) from None
        return Link._adopt(lfd, what, program=program)
    holder = _holder(map.fd, at)
    if holder:
        raise error_for(errno.EBUSY, f"{what}: the map already has program id {holder} at "
                        f"{at.name}", hint="a map takes one program per attach type; "
                        "detach it first")
    try:
        L.prog_attach(map.fd, program.fd, at)
    except BPFError as exc:
        raise _attach_error(exc, program, at, what) from None
    info = LinkInfo(0, LinkType.SOCKMAP, program.id, at, {"map_id": map.id})
    desc = f"sockmap attachment of {program.name!r} at {at.name} of map {map.name!r}"
    return SockmapAttachment(info, program, desc)


def _sockmap_undo(map_id: int, prog_id: int, at: A, desc: str) -> Callable[[], None]:
    def undo() -> None:
        what = f"detach {desc}"
        try:
            map_fd = ops.map_fd_by_id(map_id)
        except BPFError as exc:
            if exc.errno == errno.ENOENT:
                return  # the map is gone, and its programs with it
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
        try:
            detach_by_id(map_fd, prog_id, at, what, "to the map")
        finally:
            close_fd(map_fd)
    return undo


class SockmapAttachment(Attachment):
    """An SK_MSG/SK_SKB program attached to a sockmap with BPF_PROG_ATTACH (kernels
    before 6.10, or ``mechanism="prog_attach"``). Holds no fd: ``close()`` opens the map
    by id and detaches exactly this program (BPF_PROG_DETACH); a map that is gone already
    took its programs along. ``update()`` swaps the program atomically."""

    mechanism = "prog_attach"

    def __init__(self, info: LinkInfo, program: Program, desc: str) -> None:
        at = A(int(info.attach_type or 0))
        super().__init__(info, program, desc,
                         _sockmap_undo(info.target["map_id"], program.id, at, desc))

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        what = f"update {self._desc}"
        at = A(int(self._info.attach_type or 0))
        check_program(program, what, SOCKMAP_HOOKS)
        self._check_expected(expected, what)
        map_id = self._info.target["map_id"]
        try:
            map_fd = ops.map_fd_by_id(map_id)
        except BPFError as exc:
            raise error_for(exc.errno, f"{what}: map id {map_id}: {exc.strerror}") from None
        try:
            holder = _holder(map_fd, at)
            if holder and holder != self._info.program_id:
                raise error_for(errno.ENOENT, f"{what}: program id {self._info.program_id} "
                                f"is no longer attached (program id {holder} is)")
            L.prog_attach(map_fd, program.fd, at)  # the kernel swaps it in
        except BPFError as exc:
            if exc.errno == errno.ENOENT:
                raise
            raise _attach_error(exc, program, at, what) from None
        finally:
            close_fd(map_fd)
        return _sockmap_undo(map_id, program.id, at, self._desc)

    def close(self) -> None:
        try:
            super().close()
        except BPFError as exc:
            if exc.errno != errno.ENOENT:  # gone already: nothing left to detach
                raise


def query_sockmap(map: Map, attach_type: A | int | str | None = None
                  ) -> list[AttachedProgram]:
    """The programs attached to a SOCKMAP/SOCKHASH (BPF_PROG_QUERY on the map, 5.17+),
    one per attach type at most, with the link holding each (0: BPF_PROG_ATTACH)."""
    what = f"query sockmap {getattr(map, 'name', '?')!r}"
    _check_map(map, what)
    hooks = _ALL if attach_type is None else \
        (parse_attach_type(attach_type, what, _ALL, _ALIASES),)
    if hooks[0] not in _ALL:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {hooks[0].name} is not a sockmap "
                                   f"hook; it has {_names(_ALL)}")
    found: list[AttachedProgram] = []
    for at in hooks:
        try:
            res = L.prog_query(map.fd, at)
        except ClosedError:
            raise
        except BPFError as exc:
            if exc.errno == errno.EBUSY:
                continue  # the other verdict hook holds the slot: nothing here
            if exc.errno == errno.EINVAL:
                raise NotSupportedError(exc.errno, f"{what}: this kernel cannot query "
                                        "sockmap programs (BPF_PROG_QUERY on a sockmap, "
                                        "5.17)", feature="sockmap BPF_PROG_QUERY") from None
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
        found += [AttachedProgram(at, pid, program_name(pid), res.attach_flags, lid)
                  for pid, lid in zip(res.prog_ids, res.link_ids)]
    if any(p.link_id == 0 for p in found):
        links = links_by_target(LinkType.SOCKMAP)
        found = [AttachedProgram(p.attach_type, p.program_id, p.name, p.attach_flags,
                                 p.link_id or links.get((map.id, int(p.attach_type),
                                                         p.program_id), 0))
                 for p in found]
    return found
