"""Program section names -> program type, expected attach type, flags, attach target.

The names are the ones libbpf's ``SEC()`` conventions use, so objects written for libbpf
load unchanged.
"""

from __future__ import annotations

import dataclasses

from ..types import AttachType as A
from ..types import ProgramType as P

BPF_F_SLEEPABLE = 1 << 4
BPF_F_XDP_HAS_FRAGS = 1 << 5


@dataclasses.dataclass(frozen=True)
class SectionDef:
    """How to load a program found in a section whose name starts with ``prefix``."""

    prefix: str
    type: P
    attach: A | int = 0
    flags: int = 0
    # For BTF-attached programs: how the kernel BTF object is named from the text after the
    # prefix ("{}" is replaced), e.g. "bpf_lsm_{}" for lsm/file_open.
    target: str = ""


S = BPF_F_SLEEPABLE
_DEFS = [
    SectionDef("socket", P.SOCKET_FILTER),
    SectionDef("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE),
    SectionDef("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT),
    SectionDef("kprobe.multi/", P.KPROBE, A.TRACE_KPROBE_MULTI),
    SectionDef("kretprobe.multi/", P.KPROBE, A.TRACE_KPROBE_MULTI),
    SectionDef("kprobe.session/", P.KPROBE, A.TRACE_KPROBE_SESSION),
    SectionDef("uprobe.multi/", P.KPROBE, A.TRACE_UPROBE_MULTI),
    SectionDef("uretprobe.multi/", P.KPROBE, A.TRACE_UPROBE_MULTI),
    SectionDef("uprobe.multi.s/", P.KPROBE, A.TRACE_UPROBE_MULTI, S),
    SectionDef("uprobe.session/", P.KPROBE, A.TRACE_UPROBE_SESSION),
    SectionDef("kprobe/", P.KPROBE),
    SectionDef("kretprobe/", P.KPROBE),
    SectionDef("uprobe/", P.KPROBE),
    SectionDef("uretprobe/", P.KPROBE),
    SectionDef("uprobe.s/", P.KPROBE, 0, S),
    SectionDef("uretprobe.s/", P.KPROBE, 0, S),
    SectionDef("ksyscall/", P.KPROBE),
    SectionDef("kretsyscall/", P.KPROBE),
    SectionDef("usdt/", P.KPROBE),
    SectionDef("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS),
    SectionDef("tc/egress", P.SCHED_CLS, A.TCX_EGRESS),
    SectionDef("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS),
    SectionDef("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS),
    SectionDef("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY),
    SectionDef("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER),
    SectionDef("tc", P.SCHED_CLS),
    SectionDef("classifier", P.SCHED_CLS),
    SectionDef("action", P.SCHED_ACT),
    SectionDef("tracepoint/", P.TRACEPOINT),
    SectionDef("tp/", P.TRACEPOINT),
    SectionDef("raw_tracepoint/", P.RAW_TRACEPOINT),
    SectionDef("raw_tp/", P.RAW_TRACEPOINT),
    SectionDef("raw_tracepoint.w/", P.RAW_TRACEPOINT_WRITABLE),
    SectionDef("raw_tp.w/", P.RAW_TRACEPOINT_WRITABLE),
    SectionDef("tp_btf/", P.TRACING, A.TRACE_RAW_TP, 0, "btf_trace_{}"),
    SectionDef("fentry/", P.TRACING, A.TRACE_FENTRY, 0, "{}"),
    SectionDef("fmod_ret/", P.TRACING, A.MODIFY_RETURN, 0, "{}"),
    SectionDef("fexit/", P.TRACING, A.TRACE_FEXIT, 0, "{}"),
    SectionDef("fentry.s/", P.TRACING, A.TRACE_FENTRY, S, "{}"),
    SectionDef("fmod_ret.s/", P.TRACING, A.MODIFY_RETURN, S, "{}"),
    SectionDef("fexit.s/", P.TRACING, A.TRACE_FEXIT, S, "{}"),
    SectionDef("freplace/", P.EXT),
    SectionDef("lsm/", P.LSM, A.LSM_MAC, 0, "bpf_lsm_{}"),
    SectionDef("lsm.s/", P.LSM, A.LSM_MAC, S, "bpf_lsm_{}"),
    SectionDef("lsm_cgroup/", P.LSM, A.LSM_CGROUP, 0, "bpf_lsm_{}"),
    SectionDef("iter/", P.TRACING, A.TRACE_ITER, 0, "bpf_iter_{}"),
    SectionDef("iter.s/", P.TRACING, A.TRACE_ITER, S, "bpf_iter_{}"),
    SectionDef("syscall", P.SYSCALL, 0, S),
    SectionDef("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, BPF_F_XDP_HAS_FRAGS),
    SectionDef("xdp/devmap", P.XDP, A.XDP_DEVMAP),
    SectionDef("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, BPF_F_XDP_HAS_FRAGS),
    SectionDef("xdp/cpumap", P.XDP, A.XDP_CPUMAP),
    SectionDef("xdp.frags", P.XDP, A.XDP, BPF_F_XDP_HAS_FRAGS),
    SectionDef("xdp", P.XDP, A.XDP),
    SectionDef("perf_event", P.PERF_EVENT),
    SectionDef("lwt_in", P.LWT_IN),
    SectionDef("lwt_out", P.LWT_OUT),
    SectionDef("lwt_xmit", P.LWT_XMIT),
    SectionDef("lwt_seg6local", P.LWT_SEG6LOCAL),
    SectionDef("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS),
    SectionDef("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER),
    SectionDef("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT),
    SectionDef("sk_skb/verdict", P.SK_SKB, A.SK_SKB_VERDICT),
    SectionDef("sk_skb", P.SK_SKB),
    SectionDef("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT),
    SectionDef("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2),
    SectionDef("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR),
    SectionDef("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS),
    SectionDef("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS),
    SectionDef("cgroup/skb", P.CGROUP_SKB),
    SectionDef("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
    SectionDef("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE),
    SectionDef("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
    SectionDef("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND),
    SectionDef("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND),
    SectionDef("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND),
    SectionDef("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND),
    SectionDef("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT),
    SectionDef("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT),
    SectionDef("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT),
    SectionDef("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG),
    SectionDef("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG),
    SectionDef("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG),
    SectionDef("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG),
    SectionDef("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG),
    SectionDef("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG),
    SectionDef("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETPEERNAME),
    SectionDef("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETPEERNAME),
    SectionDef("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME),
    SectionDef("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETSOCKNAME),
    SectionDef("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETSOCKNAME),
    SectionDef("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME),
    SectionDef("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL),
    SectionDef("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT),
    SectionDef("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT),
    SectionDef("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE),
    SectionDef("struct_ops/", P.STRUCT_OPS),
    SectionDef("struct_ops.s/", P.STRUCT_OPS, 0, S),
    SectionDef("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP),
    SectionDef("netfilter", P.NETFILTER, A.NETFILTER),
]
# Longest prefix first, so "xdp.frags/devmap" wins over "xdp".
_ORDERED = sorted(_DEFS, key=lambda d: -len(d.prefix))


def section_def(section: str) -> tuple[SectionDef, str] | None:
    """The definition matching ``section`` and the text after its prefix, or None.

    A prefix ending in "/" takes text after it (``kprobe/do_sys_open``); it may be left
    out (``SEC("kprobe")``, attached later) unless the program's BTF attach target comes
    from it (fentry, lsm, tp_btf, iter). Any other prefix matches the whole name or the name
    followed by "/..." (``xdp``, ``tc/anything``). A leading "?" (libbpf: do not load
    unless asked) is for the caller to strip.
    """
    for d in _ORDERED:
        if d.prefix.endswith("/"):
            if section.startswith(d.prefix) and len(section) > len(d.prefix):
                return d, section[len(d.prefix):]
            if section == d.prefix[:-1] and not d.target:
                return d, ""
        elif section == d.prefix:
            return d, ""
        elif section.startswith(d.prefix + "/"):
            return d, section[len(d.prefix) + 1:]
    return None
