"""perf_event_open(2) and its ioctls: the perf side of tracepoints, kprobes, uprobes and
perf event arrays (PERF_COUNT_SW_BPF_OUTPUT)."""

from __future__ import annotations

import ctypes
import errno as _errno
import fcntl
import os
import platform

from ..errors import InvalidArgumentError, NotSupportedError, error_for
from .syscall import _libc

u32 = ctypes.c_uint32
u64 = ctypes.c_uint64
_U64_MAX = (1 << 64) - 1

_NR_PERF_EVENT_OPEN = {"x86_64": 298, "i386": 336, "i686": 336, "aarch64": 241,
                       "arm64": 241, "riscv64": 241, "loongarch64": 241, "armv7l": 364,
                       "armv6l": 364, "ppc64le": 319, "ppc64": 319, "s390x": 331,
                       "mips64": 5296}.get(platform.machine())

PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# bits in perf_event_attr's flags word (disabled is bit 0 ...)
ATTR_DISABLED = 1 << 0
ATTR_WATERMARK = 1 << 14

# _IO('$', n) and _IOW('$', 8, __u32) on the generic ioctl layout (x86, arm64, riscv)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ctypes.Structure):
    """struct perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1 = 72 bytes is enough for
    every field purebpf sets; the kernel accepts any published size)."""

    _fields_ = [
        ("type", u32),
        ("size", u32),
        ("config", u64),
        ("sample_period", u64),  # or sample_freq
        ("sample_type", u64),
        ("read_format", u64),
        ("flags", u64),
        ("wakeup_events", u32),  # or wakeup_watermark
        ("bp_type", u32),
        ("config1", u64),  # kprobe_func / uprobe_path pointer
        ("config2", u64),  # probe_offset / kprobe_addr
    ]


def perf_event_open(*, type: int, config: int, pid: int = -1, cpu: int = 0,
                    sample_type: int = 0, sample_period: int = 0, wakeup_events: int = 0,
                    flags: int = 0, config1_str: str | None = None, config2: int = 0,
                    what: str = "perf_event_open") -> int:
    """perf_event_open(2) with close-on-exec; a new fd, or BPFError naming ``what``."""
    if _NR_PERF_EVENT_OPEN is None:
        raise NotSupportedError(_errno.ENOSYS, f"{what}: no perf_event_open syscall number "
                                f"known for machine {platform.machine()!r}",
                                feature="perf_event_open")
    # ctypes would truncate a u64 field silently, and raise its own error for a pid/cpu
    # past an int: refuse both with our message. A NUL in config1's string would make the
    # kernel read another name or path than the one given.
    for name, value, lo, hi in (("config", config, 0, _U64_MAX), ("config2", config2, 0, _U64_MAX),
                                ("sample_period", sample_period, 0, _U64_MAX),
                                ("sample_type", sample_type, 0, _U64_MAX),
                                ("flags", flags, 0, _U64_MAX),
                                ("wakeup_events", wakeup_events, 0, 0xFFFFFFFF),
                                ("type", type, 0, 0xFFFFFFFF),
                                ("pid", pid, -1, 0x7FFFFFFF), ("cpu", cpu, -1, 0x7FFFFFFF)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidArgumentError(_errno.EINVAL, f"{what}: {name}={value!r} is out of "
                                       f"range ({lo}..{hi})")
    if config1_str is not None and "\0" in config1_str:
        raise InvalidArgumentError(_errno.EINVAL, f"{what}: {config1_str!r} contains a NUL "
                                   "byte")
    keep = ctypes.create_string_buffer(config1_str.encode()) if config1_str is not None \
        else None
    attr = PerfEventAttr(type=type, size=ctypes.sizeof(PerfEventAttr), config=config,
                         sample_period=sample_period, sample_type=sample_type, flags=flags,
                         wakeup_events=wakeup_events,
                         config1=ctypes.addressof(keep) if keep is not None else 0,
                         config2=config2)
    fd: int = _libc.syscall(_NR_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, -1,
                            PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        code = ctypes.get_errno()
        raise error_for(code, f"{what}: {os.strerror(code)}")
    return fd


def ioctl(fd: int, request: int, arg: int = 0, what: str = "perf ioctl") -> None:
    """An ioctl on a perf event fd, raising BPFError with the errno."""
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        raise error_for(exc.errno or _errno.EINVAL, f"{what}: {exc.strerror}") from None
