"""What /proc says about a BPF file descriptor: its object kind and its fdinfo fields.

Plain file reads, no bpf() calls. ``BPF_OBJ_GET`` opens whatever is pinned at a path, and
``BPF_OBJ_GET_INFO_BY_FD`` fills the info struct of whatever the fd is, so the kind check
here is what tells a pinned program from a pinned map.
"""

from __future__ import annotations

import errno
import os

from .errors import InvalidArgumentError

# The anon-inode names the kernel gives BPF fds (bpf_map_new_fd, bpf_prog_new_fd,
# bpf_link_new_fd, btf_new_fd), as /proc/self/fd/N links to "anon_inode:<name>".
# Links opened by BPF_OBJ_GET / BPF_LINK_GET_FD_BY_ID show as "bpf-link" on 6.18.
_KINDS = {"bpf-map": "map", "bpf-prog": "program", "bpf_link": "link", "bpf-link": "link",
          "btf": "BTF object", "bpf_iter": "iterator"}


def fd_kind(fd: int) -> str:
    """``"map"``, ``"program"``, ``"link"``, ``"BTF object"`` ..., or ``""`` when /proc
    cannot tell (not mounted, or not a BPF fd)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
    prefix = "anon_inode:"
    if not target.startswith(prefix):
        return ""
    return _KINDS.get(target[len(prefix):], target[len(prefix):])


def check_kind(fd: int, want: str, what: str) -> None:
    """Raise InvalidArgumentError (EINVAL) if ``fd`` is known to be another kind of object
    than ``want``; the caller still owns (and closes) ``fd``."""
    kind = fd_kind(fd)
    if kind and kind != want:
        desc = "a BTF object" if kind == "BTF object" else f"a BPF {kind}"
        raise InvalidArgumentError(errno.EINVAL, f"{what}: it is {desc}, not a {want}")


def fdinfo(fd: int) -> dict[str, str]:
    """The ``key: value`` lines of /proc/self/fdinfo/<fd> (``frozen``, ``memlock``, ...);
    empty when /proc is not available."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            text = f.read()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
