"""bpf() commands for links and attachments: BPF_LINK_*, BPF_PROG_ATTACH/DETACH/QUERY,
BPF_RAW_TRACEPOINT_OPEN and BPF_ITER_CREATE.

The attrs are laid out as in include/uapi/linux/bpf.h (Linux 6.18). ``link_create``'s
per-hook union is written field by field here, so the pointers it carries (iterator info,
kprobe_multi symbols, uprobe_multi path and offsets) stay in buffers this module owns for
the length of the call.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from . import constants as C
from ..errors import InvalidArgumentError
from .attrs import GetIdAttr, InfoAttr
from .progs import checked
from .syscall import bpf, bpf_errno

u32 = ctypes.c_uint32
u64 = ctypes.c_uint64

BPF_F_REPLACE = 1 << 2
BPF_F_ALLOW_OVERRIDE = 1 << 0
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_BEFORE = 1 << 3
BPF_F_AFTER = 1 << 4
BPF_F_ID = 1 << 5
BPF_F_LINK_MP = 1 << 13  # BPF_F_LINK in the mprog (tcx/netkit) flags
BPF_F_KPROBE_MULTI_RETURN = 1 << 0
BPF_F_UPROBE_MULTI_RETURN = 1 << 0
BPF_F_QUERY_EFFECTIVE = 1 << 0


class LinkCreateAttr(ctypes.Structure):
    """BPF_LINK_CREATE: the common head and the per-hook union as raw u64 words."""

    _fields_ = [
        ("prog_fd", u32),
        ("target", u32),  # target_fd / target_ifindex
        ("attach_type", u32),
        ("flags", u32),
        ("extra", u64 * 6),  # the union (uprobe_multi, the largest, is 44 bytes)
    ]


class LinkUpdateAttr(ctypes.Structure):
    """BPF_LINK_UPDATE."""

    _fields_ = [("link_fd", u32), ("new_prog_fd", u32), ("flags", u32), ("old_prog_fd", u32)]


class LinkFdAttr(ctypes.Structure):
    """BPF_LINK_DETACH and BPF_ITER_CREATE (link_fd, flags)."""

    _fields_ = [("link_fd", u32), ("flags", u32)]


class ProgAttachAttr(ctypes.Structure):
    """BPF_PROG_ATTACH / BPF_PROG_DETACH (6.6 added relative_fd and expected_revision)."""

    _fields_ = [
        ("target", u32),
        ("attach_bpf_fd", u32),
        ("attach_type", u32),
        ("attach_flags", u32),
        ("replace_bpf_fd", u32),
        ("relative", u32),
        ("expected_revision", u64),
    ]


class ProgQueryAttr(ctypes.Structure):
    """BPF_PROG_QUERY."""

    _fields_ = [
        ("target", u32),
        ("attach_type", u32),
        ("query_flags", u32),
        ("attach_flags", u32),
        ("prog_ids", u64),
        ("count", u32),
        ("_pad", u32),
        ("prog_attach_flags", u64),
        ("link_ids", u64),
        ("link_attach_flags", u64),
        ("revision", u64),
    ]


class RawTracepointAttr(ctypes.Structure):
    """BPF_RAW_TRACEPOINT_OPEN."""

    _fields_ = [("name", u64), ("prog_fd", u32), ("_pad", u32), ("cookie", u64)]


class BpfLinkInfo(ctypes.Structure):
    """struct bpf_link_info: type, id, prog_id and the per-type union as raw words."""

    _fields_ = [("type", u32), ("id", u32), ("prog_id", u32), ("_pad", u32),
                ("extra", u64 * 8)]


def _pack(fmt: str, *values: int) -> bytes:
    """struct.pack for the BPF_LINK_CREATE union, refusing values its fields cannot hold
    (InvalidArgumentError, not struct.error)."""
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise InvalidArgumentError(_errno.EINVAL, f"BPF_LINK_CREATE: a value does not fit "
                                   f"its field ({exc})") from None


def _extra(attr: LinkCreateAttr, data: bytes) -> None:
    data = data.ljust(48, b"\0")
    ctypes.memmove(ctypes.addressof(attr.extra), data, 48)


def link_create(prog_fd: int, target: int, attach_type: int, flags: int = 0, *,
                target_btf_id: int = 0, cookie: int = 0, relative: int = 0,
                expected_revision: int = 0, iter_info: bytes = b"",
                kind: str = "") -> int:
    """BPF_LINK_CREATE; returns the link fd or raises.

    ``kind`` picks the union member: "" (target_btf_id), "perf_event" (cookie), "tracing"
    (target_btf_id + cookie), "iter" (iter_info), "mprog" (tcx/netkit: relative +
    expected_revision)."""
    attr = checked(LinkCreateAttr, "BPF_LINK_CREATE", prog_fd=prog_fd, target=target,
                   attach_type=attach_type, flags=flags)
    keep = None
    if kind == "perf_event":
        _extra(attr, _pack("=Q", cookie))
    elif kind == "tracing":
        _extra(attr, _pack("=IIQ", target_btf_id, 0, cookie))
    elif kind == "iter":
        keep = ctypes.create_string_buffer(iter_info, len(iter_info)) if iter_info else None
        _extra(attr, struct.pack("=QI", ctypes.addressof(keep) if keep is not None else 0,
                                 len(iter_info)))
    elif kind == "mprog":
        _extra(attr, _pack("=IIQ", relative, 0, expected_revision))
    else:
        _extra(attr, _pack("=I", target_btf_id))
    fd = bpf(C.Cmd.BPF_LINK_CREATE, attr)
    del keep
    return fd


def link_create_kprobe_multi(prog_fd: int, syms: Sequence[str], *, retprobe: bool = False,
                             cookies: Sequence[int] = ()) -> int:
    """BPF_LINK_CREATE with BPF_TRACE_KPROBE_MULTI on kernel symbols (5.18+)."""
    names = [ctypes.create_string_buffer(s.encode()) for s in syms]
    arr = (ctypes.c_void_p * len(names))(*[ctypes.addressof(n) for n in names])
    ck = (u64 * len(syms))(*cookies) if cookies else None
    attr = checked(LinkCreateAttr, "BPF_LINK_CREATE", prog_fd=prog_fd, target=0,
                   attach_type=42, flags=0)
    _extra(attr, struct.pack("=IIQQQ", BPF_F_KPROBE_MULTI_RETURN if retprobe else 0,
                             len(syms), ctypes.addressof(arr), 0,
                             ctypes.addressof(ck) if ck is not None else 0))
    return bpf(C.Cmd.BPF_LINK_CREATE, attr)


def link_create_uprobe_multi(prog_fd: int, path: str, offsets: Sequence[int], *,
                             retprobe: bool = False, pid: int = 0,
                             cookies: Sequence[int] = ()) -> int:
    """BPF_LINK_CREATE with BPF_TRACE_UPROBE_MULTI on file offsets in ``path`` (6.6+)."""
    p = ctypes.create_string_buffer(path.encode())
    offs = (u64 * len(offsets))(*offsets)
    ck = (u64 * len(offsets))(*cookies) if cookies else None
    attr = checked(LinkCreateAttr, "BPF_LINK_CREATE", prog_fd=prog_fd, target=0,
                   attach_type=48, flags=0)
    _extra(attr, struct.pack("=QQQQIII", ctypes.addressof(p), ctypes.addressof(offs), 0,
                             ctypes.addressof(ck) if ck is not None else 0, len(offsets),
                             BPF_F_UPROBE_MULTI_RETURN if retprobe else 0, pid))
    return bpf(C.Cmd.BPF_LINK_CREATE, attr)


def link_update(link_fd: int, new_prog_fd: int, old_prog_fd: int = 0) -> None:
    """BPF_LINK_UPDATE; with ``old_prog_fd`` the kernel replaces only if it still runs that
    program (BPF_F_REPLACE, else EPERM)."""
    attr = checked(LinkUpdateAttr, "BPF_LINK_UPDATE", link_fd=link_fd, new_prog_fd=new_prog_fd,
                   flags=BPF_F_REPLACE if old_prog_fd else 0, old_prog_fd=old_prog_fd)
    bpf(C.Cmd.BPF_LINK_UPDATE, attr)


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH (5.9+): detach the hook; the link fd stays valid but defunct."""
    bpf(C.Cmd.BPF_LINK_DETACH, checked(LinkFdAttr, "BPF_LINK_DETACH", link_fd=link_fd), 4)


def iter_create(link_fd: int) -> int:
    """BPF_ITER_CREATE: a readable fd that runs the iterator program once per read pass."""
    return bpf(C.Cmd.BPF_ITER_CREATE, checked(LinkFdAttr, "BPF_ITER_CREATE", link_fd=link_fd))


def link_fd_by_id(link_id: int) -> int:
    """BPF_LINK_GET_FD_BY_ID; a new fd."""
    return bpf(C.Cmd.BPF_LINK_GET_FD_BY_ID,
               checked(GetIdAttr, "BPF_LINK_GET_FD_BY_ID", id=link_id), 12)


@dataclass
class RawLinkInfo:
    """What BPF_OBJ_GET_INFO_BY_FD says about a link: the union stays raw bytes (decoded by
    purebpf.link), plus the one string some link types point to (tracepoint, function,
    file or iterator target name)."""

    type: int
    id: int
    prog_id: int
    extra: bytes
    name: str


# Where each link type's name pointer and length sit in the union (offset from the union
# start), for the two-pass info call; perf_event links put it after a u32 kind and pad.
_NAME_AT = {1: (0, 8), 4: (0, 8)}  # RAW_TRACEPOINT: tp_name/len; ITER: target_name/len
_PERF_EVENT = 7


def link_info(fd: int) -> RawLinkInfo:
    """BPF_OBJ_GET_INFO_BY_FD for a link (5.8+)."""
    info = BpfLinkInfo()
    attr = checked(InfoAttr, "BPF_OBJ_GET_INFO_BY_FD", bpf_fd=fd,
                   info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    name = ""
    at: tuple[int, int] | None = _NAME_AT.get(info.type)
    if info.type == _PERF_EVENT:
        at = (8, 16)  # perf_event: {u32 type; pad; union {name ptr u64; name_len u32 ...}}
    if at is not None:
        buf = ctypes.create_string_buffer(4096)
        info2 = BpfLinkInfo()
        ctypes.memmove(ctypes.addressof(info2), ctypes.addressof(info), ctypes.sizeof(info))
        base = ctypes.addressof(info2.extra)
        ctypes.memmove(base + at[0], struct.pack("=Q", ctypes.addressof(buf)), 8)
        ctypes.memmove(base + at[1], struct.pack("=I", len(buf)), 4)
        attr = checked(InfoAttr, "BPF_OBJ_GET_INFO_BY_FD", bpf_fd=fd,
                       info_len=ctypes.sizeof(info2), info=ctypes.addressof(info2))
        if bpf_errno(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr) >= 0:
            info = info2
            name = buf.value.decode(errors="replace")
    return RawLinkInfo(int(info.type), int(info.id), int(info.prog_id),
                       bytes(info.extra), name)


def prog_attach(target: int, prog_fd: int, attach_type: int, flags: int = 0, *,
                replace_fd: int = 0, relative: int = 0, expected_revision: int = 0) -> None:
    """BPF_PROG_ATTACH (the pre-link way: cgroups, sockmaps, flow dissector, lirc)."""
    attr = checked(ProgAttachAttr, "BPF_PROG_ATTACH", target=target, attach_bpf_fd=prog_fd,
                   attach_type=attach_type, attach_flags=flags, replace_bpf_fd=replace_fd,
                   relative=relative, expected_revision=expected_revision)
    bpf(C.Cmd.BPF_PROG_ATTACH, attr)


def prog_detach(target: int, prog_fd: int, attach_type: int) -> None:
    """BPF_PROG_DETACH of exactly ``prog_fd`` from ``target``."""
    attr = checked(ProgAttachAttr, "BPF_PROG_DETACH", target=target, attach_bpf_fd=prog_fd,
                   attach_type=attach_type)
    bpf(C.Cmd.BPF_PROG_DETACH, attr)


@dataclass
class QueryResult:
    """BPF_PROG_QUERY: the hook's attach flags, program ids (and link ids on 6.6+ mprog
    hooks, 0 where a program was attached without a link), and the hook's revision."""

    attach_flags: int
    prog_ids: list[int]
    link_ids: list[int]
    revision: int


def prog_query(target: int, attach_type: int, *, effective: bool = False) -> QueryResult:
    """BPF_PROG_QUERY for ``target`` (a cgroup fd, an ifindex for tcx, a netns fd ...)."""
    n = 64
    while True:
        ids = (u32 * n)()
        links = (u32 * n)()
        attr = checked(ProgQueryAttr, "BPF_PROG_QUERY", target=target, attach_type=attach_type,
                       query_flags=BPF_F_QUERY_EFFECTIVE if effective else 0,
                       prog_ids=ctypes.addressof(ids), count=n,
                       link_ids=ctypes.addressof(links))
        ret = bpf_errno(C.Cmd.BPF_PROG_QUERY, attr)
        if ret == -22:
            # Kernels before 6.6 have no query.link_ids and refuse a non-zero one (EINVAL):
            # ask again without it (the ids then stay 0).
            attr.link_ids = 0
            attr.count = n
            ret = bpf_errno(C.Cmd.BPF_PROG_QUERY, attr)
        if ret == -28 and attr.count > n:  # ENOSPC: the kernel wrote the count it needs
            n = attr.count
            continue
        if ret < 0:
            bpf(C.Cmd.BPF_PROG_QUERY, attr)
        cnt = min(int(attr.count), n)
        return QueryResult(int(attr.attach_flags), list(ids[:cnt]), list(links[:cnt]),
                           int(attr.revision))


def raw_tracepoint_open(prog_fd: int, name: str | None, cookie: int = 0) -> int:
    """BPF_RAW_TRACEPOINT_OPEN: a raw tracepoint by name, or (name None) the BTF target the
    program was loaded for (tp_btf, fentry/fexit/fmod_ret, LSM on kernels before links)."""
    if name is not None and "\0" in name:
        raise InvalidArgumentError(_errno.EINVAL, f"BPF_RAW_TRACEPOINT_OPEN: {name!r} "
                                   "contains a NUL byte")
    buf = ctypes.create_string_buffer(name.encode()) if name is not None else None
    attr = checked(RawTracepointAttr, "BPF_RAW_TRACEPOINT_OPEN",
                   name=ctypes.addressof(buf) if buf is not None else 0, prog_fd=prog_fd,
                   cookie=cookie)
    return bpf(C.Cmd.BPF_RAW_TRACEPOINT_OPEN, attr, 16 if not cookie else None)
