"""Attaching programs to hooks: :class:`Link` objects and one module per hook family.

Every ``attach_*`` function probes the running kernel and picks the best mechanism (a
bpf_link where the kernel has one); ``link.info().mechanism`` says which. The hook modules
load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..types import LinkType as LinkType
from ._link import Attachment as Attachment
from ._link import BaseLink as BaseLink
from ._link import Link as Link
from ._link import LinkInfo as LinkInfo

# public name -> the module (under purebpf.link) that defines it
_LAZY = {
    "attach_xdp": "xdp", "XdpAttachment": "xdp",
    "attach_tc": "tc", "TcFilter": "tc",
    "net_show": "net", "InterfaceHooks": "net",
    "attach_cgroup": "cgroup", "query_cgroup": "cgroup", "CgroupAttachment": "cgroup",
    "AttachedProgram": "_hooks",
    "attach_netns": "netns", "query_netns": "netns", "NetnsAttachment": "netns",
    "attach_sockmap": "sock", "query_sockmap": "sock", "SockmapAttachment": "sock",
    "attach_tracepoint": "tracing", "attach_raw_tracepoint": "tracing",
    "attach_tracing": "tracing", "attach_lsm": "tracing", "PerfEventAttachment": "tracing",
    "attach_kprobe": "probes", "attach_uprobe": "probes",
    "attach_iter": "iter", "Iterator": "iter",
    "attach": "auto",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Attachment", "BaseLink", "Link", "LinkInfo", "LinkType", *_LAZY]
