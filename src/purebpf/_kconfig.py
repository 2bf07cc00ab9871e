"""Values of ``.kconfig`` externs on the running kernel, as libbpf computes them.

``LINUX_KERNEL_VERSION`` comes from the release (Ubuntu's /proc/version_signature and
Debian's "Debian X.Y.Z" in the uname version first), ``LINUX_HAS_SYSCALL_WRAPPER`` and
``LINUX_HAS_BPF_COOKIE`` from probes, ``CONFIG_*`` from /boot/config-$(uname -r) or else
/proc/config.gz. The parsers are pure functions; only :func:`resolve` reads the system.
"""

from __future__ import annotations

import errno
import functools
import gzip
import os
import platform
import re
from collections.abc import Iterable
from typing import Any

from ._spec import KconfigExtern
from .errors import InvalidArgumentError

PROC_CONFIG = "/proc/config.gz"
UBUNTU_SIGNATURE = "/proc/version_signature"

# The syscall-wrapper symbol prefix of each architecture (__x64_sys_bpf on x86-64).
_SYSCALL_PREFIX = {
    "x86_64": "x64", "i386": "ia32", "i686": "ia32", "aarch64": "arm64", "arm64": "arm64",
    "s390x": "s390x", "riscv64": "riscv", "ppc64le": "powerpc", "ppc64": "powerpc",
    "loongarch64": "loongarch", "armv7l": "arm",
}


def kernel_version(major: int, minor: int, patch: int) -> int:
    """KERNEL_VERSION(a, b, c): the patch level is capped at 255 (as the kernel's own
    LINUX_VERSION_CODE is since 4.9.256)."""
    return (major << 16) + (minor << 8) + min(patch, 255)


def parse_kernel_version(release: str, version: str = "", signature: str = "") -> int:
    """LINUX_KERNEL_VERSION as libbpf computes it; 0 when nothing tells it.

    ``signature`` is Ubuntu's /proc/version_signature ("Ubuntu 5.15.0-91.101-generic
    5.15.131"): its third word wins. Then ``version`` (uname -v) with "Debian 6.1.192-3"
    in it, then ``release`` (uname -r, "6.18.44-fc-v657").
    """
    words = signature.split()
    if len(words) >= 3:
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", words[2])
        if m:
            return kernel_version(*map(int, m.groups()))
    m = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", version)
    if m:
        return kernel_version(*map(int, m.groups()))
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", release)
    return kernel_version(*map(int, m.groups())) if m else 0


def parse_config(text: str, source: str = "kernel config") -> dict[str, str]:
    """``CONFIG_X=value`` lines of a kernel config -> {name: value text}; comments and
    ``# CONFIG_X is not set`` lines are skipped. A CONFIG_ line without '=' or without a
    value is an InvalidArgumentError (libbpf refuses it too)."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("CONFIG_"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not value:
            raise InvalidArgumentError(
                errno.EINVAL, f"read {source}: line {n} {line!r}: "
                f"{'no value' if sep else 'no =' }")
        out.setdefault(name, value)
    return out


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode(errors="replace")


def system_config() -> tuple[dict[str, str], str]:
    """(CONFIG_ values, where they came from) of the running kernel: /boot/config-$(uname
    -r) or /proc/config.gz, as libbpf looks. ({}, the places looked at) when neither
    exists."""
    boot = f"/boot/config-{os.uname().release}"
    for path in (boot, PROC_CONFIG):
        try:
            return parse_config(_read_text(path), path), path
        except OSError:
            continue
    return {}, f"neither {boot} nor {PROC_CONFIG} (none readable)"


def system_kernel_version() -> int:
    """LINUX_KERNEL_VERSION of the running kernel."""
    try:
        with open(UBUNTU_SIGNATURE) as f:
            signature = f.read()
    except OSError:
        signature = ""
    u = os.uname()
    return parse_kernel_version(u.release, u.version, signature)


@functools.cache
def has_syscall_wrapper() -> bool:
    """LINUX_HAS_SYSCALL_WRAPPER: does the kernel call syscalls through wrappers that take
    a pt_regs (4.17+ on x86-64: ``__x64_sys_bpf``)? libbpf probes by creating a kprobe on
    it; purebpf looks the function up in the kernel's BTF, then in /proc/kallsyms, so it
    answers also where kprobes are not configured."""
    prefix = _SYSCALL_PREFIX.get(platform.machine())
    if prefix is None:
        return False
    name = f"__{prefix}_sys_bpf"
    from . import features

    if features.has_kfunc(name):
        return True
    try:
        with open("/proc/kallsyms") as f:
            return any(line.split()[2:3] == [name] for line in f)
    except OSError:
        return False


def _virtual(name: str) -> Any:
    """A LINUX_ extern's value on this kernel, or None for an unknown one."""
    if name == "LINUX_KERNEL_VERSION":
        return system_kernel_version() or None
    if name == "LINUX_HAS_SYSCALL_WRAPPER":
        return has_syscall_wrapper()
    if name == "LINUX_HAS_BPF_COOKIE":
        from . import features

        return features.has_bpf_cookie()
    return None


def resolve(externs: Iterable[KconfigExtern], *, strict: bool = True) -> dict[str, Any]:
    """Each extern's value: its own ``value`` when set, else this kernel's; an unknown
    ``__weak`` one is 0 (False, ""). Unknown non-weak ones raise InvalidArgumentError
    naming the extern and where purebpf looked (or are None when not ``strict``)."""
    out: dict[str, Any] = {}
    config: tuple[dict[str, str], str] | None = None
    for ext in externs:
        value = ext.value
        where = ""
        if value is None and ext.name.startswith("CONFIG_"):
            if config is None:
                config = system_config()
            text = config[0].get(ext.name)
            where = config[1]
            value = ext.parse(text) if text is not None else None
        elif value is None and ext.name.startswith("LINUX_"):
            value = _virtual(ext.name)
            where = "uname -r (no X.Y.Z in it)" if ext.name == "LINUX_KERNEL_VERSION" else \
                "the LINUX_ values purebpf knows (LINUX_KERNEL_VERSION, " \
                "LINUX_HAS_SYSCALL_WRAPPER, LINUX_HAS_BPF_COOKIE)"
        elif value is None:
            where = "nowhere: only CONFIG_ and LINUX_ externs have values"
        if value is None and ext.weak and ext.name.startswith(("CONFIG_", "LINUX_")):
            value = "" if ext.kind == "char_array" else 0
        if value is None and strict:
            raise InvalidArgumentError(
                errno.ESRCH, f"resolve kconfig extern {ext.name!r}: not found in {where}",
                hint=f"declare it __weak to get 0 when unknown, or set "
                f"spec.kconfig[{ext.name!r}].value before loading")
        if value is not None:
            ext.encode(value)  # raises for a value the type cannot hold
        out[ext.name] = value
    return out


def fill(externs: Iterable[KconfigExtern], body: bytearray) -> None:
    """Write every extern's value (see :func:`resolve`) at its offset in ``body``."""
    items = list(externs)
    values = resolve(items)
    for ext in items:
        body[ext.offset:ext.offset + ext.size] = ext.encode(values[ext.name])
