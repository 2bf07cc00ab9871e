"""rtnetlink over ``socket.AF_NETLINK``: the few messages purebpf needs for XDP and tc.

Our own small encoder/decoder (no pyroute2): RTM_GETLINK (one interface or a dump, with its
IFLA_XDP state), RTM_SETLINK with IFLA_XDP (attach/replace/remove a program, with
IFLA_XDP_EXPECTED_FD so we only ever remove our own), RTM_NEWQDISC/DELQDISC/GETQDISC for the
clsact qdisc, and RTM_NEWTFILTER/DELTFILTER/GETTFILTER for direct-action cls_bpf filters.
Layouts and numbers are from include/uapi/linux/{netlink,rtnetlink,if_link,pkt_sched,
pkt_cls}.h. Errors carry the kernel's extended-ack text (NETLINK_EXT_ACK) when it sends one.
Each call opens a short-lived socket and closes it before returning.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import BPFError

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x2, 0x4, 0x8
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG = 1
NLA_TYPE_MASK = 0x3FFF
NLA_F_NESTED = 0x8000

RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK = 16, 18, 19
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46

IFLA_IFNAME = 3
IFLA_XDP = 43
IFLA_XDP_FD, IFLA_XDP_ATTACHED, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID = 1, 2, 3, 4
IFLA_XDP_DRV_PROG_ID, IFLA_XDP_SKB_PROG_ID, IFLA_XDP_HW_PROG_ID = 5, 6, 7
IFLA_XDP_EXPECTED_FD = 8

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4
XDP_ATTACHED_NONE, XDP_ATTACHED_DRV, XDP_ATTACHED_SKB, XDP_ATTACHED_HW = 0, 1, 2, 3
XDP_ATTACHED_MULTI = 4

TCA_KIND, TCA_OPTIONS = 1, 2
TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS, TCA_BPF_ID = 6, 7, 8, 11
TCA_BPF_FLAG_ACT_DIRECT = 1
TC_H_CLSACT = 0xFFFFFFF1  # == TC_H_INGRESS: the clsact qdisc's parent
CLSACT_HANDLE = 0xFFFF0000  # TC_H_MAKE(TC_H_CLSACT, 0)
TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFF2, 0xFFF3
PARENT_INGRESS = 0xFFFF0000 | TC_H_MIN_INGRESS
PARENT_EGRESS = 0xFFFF0000 | TC_H_MIN_EGRESS
ETH_P_ALL = 0x0003

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
_TCMSG = struct.Struct("=BxxxiIII")  # tcmsg
_RTA = struct.Struct("=HH")
_I32 = struct.Struct("=i")


class NetlinkError(BPFError):
    """An rtnetlink request failed; ``extack`` is the kernel's own explanation, if any."""

    def __init__(self, code: int, message: str, *, extack: str = "", hint: str = "") -> None:
        super().__init__(code, message, hint=hint)
        self.extack = extack


# --- attributes ------------------------------------------------------------------------------

def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr (header, payload, padding to 4 bytes)."""
    n = _RTA.size + len(payload)
    return _RTA.pack(n, kind) + payload + b"\0" * (_align(n) - n)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attr_i32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=i", value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """rtattrs of one level, by type (flags masked off); a repeated type keeps the last."""
    out: dict[int, bytes] = {}
    off = 0
    while off + _RTA.size <= len(data):
        n, kind = _RTA.unpack_from(data, off)
        if n < _RTA.size or off + n > len(data):
            break
        out[kind & NLA_TYPE_MASK] = data[off + _RTA.size:off + n]
        off += _align(n)
    return out


def _unpack(st: struct.Struct, data: bytes, what: str) -> tuple[int, ...]:
    """``st`` at the start of ``data``; NetlinkError EPROTO when the kernel's message is too
    short for it (never a struct.error)."""
    if len(data) < st.size:
        raise NetlinkError(_errno.EPROTO, f"{what}: malformed rtnetlink reply ({len(data)} "
                           f"bytes where {st.size} were expected)")
    return st.unpack_from(data)


def _u8(data: bytes | None) -> int:
    return data[0] if data else 0


def _u32(data: bytes | None) -> int:
    return struct.unpack_from("=I", data)[0] if data and len(data) >= 4 else 0


def _str(data: bytes | None) -> str:
    return data.split(b"\0", 1)[0].decode(errors="replace") if data else ""


# --- the socket ------------------------------------------------------------------------------

def _request(kind: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
    """Send one request and collect its replies (type, payload) up to the ACK or DONE."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         NETLINK_ROUTE)
    try:
        for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            try:
                sock.setsockopt(SOL_NETLINK, opt, 1)
            except OSError:  # older kernels: plain errors, whole requests echoed back
                pass
        sock.bind((0, 0))
        seq = 1
        sock.sendall(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK,
                               seq, 0) + body)
        return list(_replies(sock, seq, what))
    finally:
        sock.close()


def _replies(sock: socket.socket, seq: int, what: str) -> Iterator[tuple[int, bytes]]:
    while True:
        data = sock.recv(1 << 17)
        off = 0
        while off + _HDR.size <= len(data):
            n, kind, flags, mseq, _ = _HDR.unpack_from(data, off)
            if n < _HDR.size:
                return
            payload = data[off + _HDR.size:off + n]
            off += _align(n)
            if mseq != seq:
                continue
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                (err,) = _unpack(_I32, payload, what)
                if err == 0:
                    return
                raise _error(-err, flags, payload, what)
            yield kind, payload


def _error(code: int, flags: int, payload: bytes, what: str) -> NetlinkError:
    extack = ""
    if flags & NLM_F_ACK_TLVS:
        inner = 4 + _HDR.size
        if not flags & NLM_F_CAPPED and len(payload) >= 4 + _HDR.size:
            inner = 4 + _align(_HDR.unpack_from(payload, 4)[0])
        extack = _str(parse_attrs(payload[inner:]).get(NLMSGERR_ATTR_MSG))
    reason = os.strerror(code) + (f" ({extack})" if extack else "")
    return NetlinkError(code, f"{what}: {reason}", extack=extack)


# --- interfaces and XDP ----------------------------------------------------------------------

def ifindex(name: str) -> int:
    """The index of interface ``name`` in this network namespace (ENODEV if none)."""
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        raise NetlinkError(_errno.ENODEV, f"find interface {name!r}: no such interface "
                           "in this network namespace") from None


@dataclass
class XdpState:
    """IFLA_XDP of one interface: the attach mode (XDP_ATTACHED_*) and the program ids."""

    attached: int = XDP_ATTACHED_NONE
    prog_id: int = 0
    drv_prog_id: int = 0
    skb_prog_id: int = 0
    hw_prog_id: int = 0

    def by_mode(self) -> dict[str, int]:
        """{"native"/"generic"/"offload": program id} for each program attached."""
        ids = {"native": self.drv_prog_id, "generic": self.skb_prog_id,
               "offload": self.hw_prog_id}
        if self.attached != XDP_ATTACHED_MULTI and self.prog_id:
            mode = {XDP_ATTACHED_DRV: "native", XDP_ATTACHED_SKB: "generic",
                    XDP_ATTACHED_HW: "offload"}.get(self.attached)
            if mode:
                ids[mode] = self.prog_id
        return {m: i for m, i in ids.items() if i}


@dataclass
class Interface:
    """One RTM_NEWLINK record: index, name and the XDP state."""

    index: int
    name: str
    xdp: XdpState = field(default_factory=XdpState)


def _interface(payload: bytes) -> Interface:
    _family, _type, index, _flags, _change = _unpack(_IFINFO, payload, "read interface")
    attrs = parse_attrs(payload[_IFINFO.size:])
    x = parse_attrs(attrs.get(IFLA_XDP, b""))
    state = XdpState(_u8(x.get(IFLA_XDP_ATTACHED)),
                     _u32(x.get(IFLA_XDP_PROG_ID)), _u32(x.get(IFLA_XDP_DRV_PROG_ID)),
                     _u32(x.get(IFLA_XDP_SKB_PROG_ID)), _u32(x.get(IFLA_XDP_HW_PROG_ID)))
    return Interface(index, _str(attrs.get(IFLA_IFNAME)), state)


def _check_index(index: int, what: str) -> None:
    """ifindex is an s32 in ifinfomsg/tcmsg: anything outside 1..2^31-1 names no interface
    (and would not fit the message)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 < index <= 0x7FFFFFFF:
        raise NetlinkError(_errno.ENODEV, f"{what}: no interface with ifindex {index!r}")


def interface(index: int) -> Interface:
    """RTM_GETLINK for one interface (ENODEV if it is gone)."""
    _check_index(index, f"get interface {index}")
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    for kind, payload in _request(RTM_GETLINK, 0, body, f"get interface {index}"):
        if kind == RTM_NEWLINK:
            return _interface(payload)
    raise NetlinkError(_errno.ENODEV, f"get interface {index}: no reply")


def interfaces() -> list[Interface]:
    """RTM_GETLINK dump: every interface of this network namespace."""
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return [_interface(p) for k, p in _request(RTM_GETLINK, NLM_F_DUMP, body, "list interfaces")
            if k == RTM_NEWLINK]


def xdp_set(index: int, prog_fd: int, flags: int, *, expected_fd: int | None = None,
            what: str = "") -> None:
    """RTM_SETLINK with IFLA_XDP: attach ``prog_fd`` (-1 removes). With ``expected_fd``
    (and XDP_FLAGS_REPLACE, 5.7+) the kernel acts only if that program is the one attached
    (else EEXIST)."""
    _check_index(index, what or f"set XDP on interface {index}")
    inner = [attr_i32(IFLA_XDP_FD, prog_fd), attr_u32(IFLA_XDP_FLAGS, flags)]
    if expected_fd is not None:
        inner.append(attr_i32(IFLA_XDP_EXPECTED_FD, expected_fd))
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + nested(IFLA_XDP, *inner)
    _request(RTM_SETLINK, 0, body, what or f"set XDP on interface {index}")


# --- tc: clsact and cls_bpf ------------------------------------------------------------------

def _tcmsg(index: int, handle: int, parent: int, info: int) -> bytes:
    if index:  # 0: every interface (a dump)
        _check_index(index, f"tc request for interface {index}")
    return _TCMSG.pack(socket.AF_UNSPEC, index, handle, parent, info)


def clsact_add(index: int) -> bool:
    """Add a clsact qdisc; False if the interface already has one."""
    body = _tcmsg(index, CLSACT_HANDLE, TC_H_CLSACT, 0) + attr_str(TCA_KIND, "clsact")
    try:
        _request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, body, f"add clsact qdisc to {index}")
    except NetlinkError as exc:
        if exc.errno == _errno.EEXIST:
            return False
        raise
    return True


def clsact_del(index: int) -> None:
    body = _tcmsg(index, CLSACT_HANDLE, TC_H_CLSACT, 0) + attr_str(TCA_KIND, "clsact")
    _request(RTM_DELQDISC, 0, body, f"delete clsact qdisc of {index}")


@dataclass
class Qdisc:
    ifindex: int
    kind: str
    handle: int
    parent: int


def qdiscs(index: int = 0) -> list[Qdisc]:
    """RTM_GETQDISC dump, keeping interface ``index`` (0: all)."""
    out = []
    for kind, payload in _request(RTM_GETQDISC, NLM_F_DUMP, _tcmsg(0, 0, 0, 0), "list qdiscs"):
        if kind != RTM_NEWQDISC:
            continue
        _f, ifi, handle, parent, _info = _unpack(_TCMSG, payload, "list qdiscs")
        if index and ifi != index:
            continue
        out.append(Qdisc(ifi, _str(parse_attrs(payload[_TCMSG.size:]).get(TCA_KIND)),
                         handle, parent))
    return out


@dataclass
class Filter:
    """One tc filter under a clsact hook (prog_id/name/direct_action for cls_bpf)."""

    kind: str
    priority: int
    handle: int
    protocol: int
    prog_id: int = 0
    name: str = ""
    direct_action: bool = False


def _filter(payload: bytes) -> Filter:
    _f, _ifi, handle, _parent, info = _unpack(_TCMSG, payload, "read tc filter")
    attrs = parse_attrs(payload[_TCMSG.size:])
    kind = _str(attrs.get(TCA_KIND))
    opts = parse_attrs(attrs.get(TCA_OPTIONS, b"")) if kind == "bpf" else {}
    return Filter(kind, info >> 16, handle, socket.ntohs(info & 0xFFFF),
                  _u32(opts.get(TCA_BPF_ID)), _str(opts.get(TCA_BPF_NAME)),
                  bool(_u32(opts.get(TCA_BPF_FLAGS)) & TCA_BPF_FLAG_ACT_DIRECT))


def filters(index: int, parent: int) -> list[Filter]:
    """RTM_GETTFILTER dump of one hook (parent PARENT_INGRESS/EGRESS); the per-priority
    heads the kernel sends first (handle 0, no options) are left out."""
    out = []
    for kind, payload in _request(RTM_GETTFILTER, NLM_F_DUMP, _tcmsg(index, 0, parent, 0),
                                  f"list tc filters of {index}"):
        if kind == RTM_NEWTFILTER:
            f = _filter(payload)
            if f.handle:
                out.append(f)
    return out


def bpf_filter_set(index: int, parent: int, priority: int, handle: int, prog_fd: int,
                   name: str, *, replace: bool = False, what: str = "") -> Filter:
    """Add (or with ``replace`` change) a direct-action cls_bpf filter for every protocol.
    ``priority``/``handle`` 0 let the kernel choose; the kernel's echo of the new filter
    says what it chose."""
    body = _tcmsg(index, handle, parent, (priority << 16) | socket.htons(ETH_P_ALL)) + \
        attr_str(TCA_KIND, "bpf") + \
        nested(TCA_OPTIONS, attr_u32(TCA_BPF_FD, prog_fd), attr_str(TCA_BPF_NAME, name),
               attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT))
    flags = NLM_F_ECHO | (NLM_F_REPLACE if replace else NLM_F_CREATE | NLM_F_EXCL)
    for kind, payload in _request(RTM_NEWTFILTER, flags, body, what or "add tc filter"):
        if kind == RTM_NEWTFILTER:
            return _filter(payload)
    return Filter("bpf", priority, handle, ETH_P_ALL)


def filter_del(index: int, parent: int, priority: int, handle: int, what: str = "") -> None:
    body = _tcmsg(index, handle, parent, (priority << 16) | socket.htons(ETH_P_ALL)) + \
        attr_str(TCA_KIND, "bpf")
    _request(RTM_DELTFILTER, 0, body, what or "delete tc filter")
