"""What the socket-family hooks (cgroup, netns, sockmap) share: attach type names, the
probe for whether the kernel makes links for a hook, the record of an attached program,
and detaching a program attached without a link."""

from __future__ import annotations

import errno
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._program import Program
from .._sys import links as L
from .._sys import progs
from .._sys.syscall import close_fd
from ..errors import BPFError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType as A
from ..types import LinkType
from ..types import ProgramType as P
from ._link import Link, decode_info

MECHANISMS = ("auto", "bpf_link", "prog_attach")


def parse_attach_type(value: Any, what: str, choices: Iterable[A],
                      aliases: Mapping[str, A] | None = None) -> A:
    """An AttachType from an AttachType, its number, or a name: the member name
    ("CGROUP_INET4_CONNECT", "BPF_CGROUP_INET4_CONNECT"), without its family prefix
    ("inet4_connect"), or a short alias ("connect4"); any case. Raises TypeError or
    InvalidArgumentError naming the choices."""
    choices = tuple(choices)
    if isinstance(value, A):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{what}: attach_type must be an AttachType, int or str, not "
                        f"{type(value).__name__}")
    if isinstance(value, int):
        try:
            return A(value)
        except ValueError:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: {value} is not an attach "
                                       "type this library knows") from None
    key = value.strip().upper().removeprefix("BPF_")
    prefixes = ("", "CGROUP_", "SK_", "SK_SKB_")
    for prefix in prefixes:
        if prefix + key in A.__members__:
            return A[prefix + key]
    alias = (aliases or {}).get(value.strip().lower())
    if alias is not None:
        return alias
    names = ", ".join(sorted({*(aliases or {}), *(c.name for c in choices)}))
    raise InvalidArgumentError(errno.EINVAL, f"{what}: unknown attach type {value!r}; "
                               f"this hook takes {names}")


def check_mechanism(mechanism: str, what: str) -> None:
    if mechanism not in MECHANISMS:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: mechanism={mechanism!r}; use one "
                                   f"of {', '.join(map(repr, MECHANISMS))}")


# Above the largest fd any process can have (fs.nr_open tops out at 2**31 - 64): the
# kernel's lookup of it says EBADF.
_NOT_AN_FD = 0x7FFFFFFF


@functools.cache
def has_link(prog_type: P, attach_type: A) -> bool:
    """Whether this kernel makes bpf_links for ``attach_type`` (BPF_LINK_CREATE).

    Creates a link for a two-instruction program with a target fd that is not open: a
    kernel with such links gets as far as looking the target up (EBADF); one without
    refuses the attach type first (EINVAL)."""
    from .. import asm

    code = asm.assemble([asm.Mov(asm.R0, 0), asm.Exit()]).code
    res = progs.prog_load(int(prog_type), code, "GPL", expected_attach_type=int(attach_type))
    if res.fd in (-errno.EPERM, -errno.EACCES):
        raise error_for(-res.fd, f"feature probe: load a {prog_type.name} program: not "
                        "permitted")
    if res.fd < 0:
        return False  # the kernel has no such program type at all
    try:
        fd = L.link_create(res.fd, _NOT_AN_FD, int(attach_type))
    except BPFError as exc:
        return exc.errno != errno.EINVAL
    finally:
        close_fd(res.fd)
    close_fd(fd)  # cannot happen (the target is not open), but never leak a link
    return True


def use_link(mechanism: str, supported: bool, what: str, feature: str) -> bool:
    """Whether to make a bpf_link: ``auto`` when the kernel has one; ``bpf_link`` insists."""
    if mechanism == "bpf_link" and not supported:
        raise NotSupportedError(errno.EINVAL, f"{what}: this kernel has no bpf_link for "
                                "this hook; use mechanism='auto' or 'prog_attach'",
                                feature=feature)
    return mechanism != "prog_attach" and supported


@dataclass(frozen=True)
class AttachedProgram:
    """One program on a hook, as BPF_PROG_QUERY reports it.

    ``attach_flags`` is the hook's mode as the kernel reports it for the queried target
    (BPF_F_ALLOW_MULTI = 2, BPF_F_ALLOW_OVERRIDE = 1, 0 exclusive; 0 in effective queries);
    ``link_id`` is the bpf_link holding the program, 0 when it was attached without one;
    ``name`` is '' when the program could not be opened."""

    attach_type: A | int
    program_id: int
    name: str = ""
    attach_flags: int = 0
    link_id: int = 0


def links_by_target(link_type: LinkType) -> dict[tuple[int, int, int], int]:
    """(target, attach type, program id) -> link id, for every link of ``link_type``: the
    target is the cgroup id, netns inode or map id the link's info names."""
    out: dict[tuple[int, int, int], int] = {}
    key = {LinkType.CGROUP: "cgroup_id", LinkType.NETNS: "netns_ino",
           LinkType.SOCKMAP: "map_id"}[link_type]
    for link_id in Link.ids():
        try:
            fd = L.link_fd_by_id(link_id)
        except BPFError:
            continue  # gone meanwhile
        try:
            info = decode_info(L.link_info(fd))
        except BPFError:
            continue
        finally:
            close_fd(fd)
        if info.type == link_type and info.attach_type is not None:
            out[(info.target.get(key, 0), int(info.attach_type), info.program_id)] = info.id
    return out


# -- opening a cgroup ------------------------------------------------------------------------


def _names(types: Iterable[Any]) -> str:
    return ", ".join(getattr(t, "name", str(t)) for t in types)


def infer_attach_type(program: Program, hooks: tuple[A, ...], what: str, family: str,
                      default: A | None = None) -> A:
    """The hook ``program`` was loaded for (see :func:`expected_type`), else ``default``,
    else an error naming the ``family`` ("cgroup", "sockmap") and the hooks to pick from."""
    at = expected_type(program, hooks)
    if at is None:
        at = default
    if at is None:
        tname = getattr(program.type, "name", program.type)
        section = program.spec.section if program.spec is not None else ""
        said = f" (section {section!r} does not say which)" if section else ""
        raise InvalidArgumentError(errno.EINVAL, f"{what}: cannot tell which {family} hook "
                                   f"the {tname} program is for{said}; pass attach_type=, "
                                   f"one of {_names(hooks)}")
    return at


def refused_at(exc: BPFError, program: Program, at: A, what: str, when: str) -> BPFError:
    """The kernel's EINVAL for a program loaded for another hook, explained."""
    return error_for(exc.errno, f"{what}: the kernel refuses a "
                     f"{getattr(program.type, 'name', program.type)} program at {at.name}",
                     hint=f"its expected attach type (set at load{when}) must be {at.name}")


def expected_type(program: Program, hooks: tuple[A, ...]) -> A | None:
    """The hook ``program`` was loaded for (its expected attach type or section), if that
    is one of ``hooks``; the only hook when there is one; else None."""
    spec = program.spec
    if spec is not None:
        eat = spec.expected_attach_type
        # 0 is both CGROUP_INET_INGRESS and "not given": only an AttachType member says
        # that it was given (the ELF loader leaves a plain 0 for sections without a hook).
        if (isinstance(eat, A) or eat) and int(eat) in hooks:
            return A(int(eat))
    if len(hooks) == 1:
        return hooks[0]
    return None


def detach_by_id(target: int, prog_id: int, at: int, what: str, where: str) -> None:
    """BPF_PROG_DETACH of program ``prog_id`` (opened by id: the caller may have closed
    its Program) from ``target``; ENOENT says someone else detached or replaced it."""
    gone = f"{what}: program id {prog_id} is no longer attached {where} (detached or " \
           "replaced by someone else)"
    try:
        pfd = progs.fd_by_id("prog", prog_id)
    except BPFError as exc:
        if exc.errno == errno.ENOENT:
            raise error_for(errno.ENOENT, gone) from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
    try:
        L.prog_detach(target, pfd, at)
    except BPFError as exc:
        if exc.errno == errno.ENOENT:
            raise error_for(errno.ENOENT, gone) from None
        raise error_for(exc.errno, f"{what}: {exc.strerror}") from None
    finally:
        close_fd(pfd)
