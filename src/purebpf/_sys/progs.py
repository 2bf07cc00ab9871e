"""bpf() commands for programs and BTF objects: load, test run, info, ids."""

from __future__ import annotations

import ctypes
import errno as _errno
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InvalidArgumentError
from . import constants as C
from .attrs import (BpfBtfInfo, BpfProgInfo, BtfLoadAttr, GetIdAttr, InfoAttr, ProgLoadAttr,
                    ProgTestRunAttr)
from .syscall import bpf, bpf_errno


@dataclass
class LoadResult:
    """Outcome of one BPF_PROG_LOAD or BPF_BTF_LOAD: fd (or -errno) and the log text."""

    fd: int
    log: str
    log_true_size: int


S = TypeVar("S", bound=ctypes.Structure)


def checked(cls: type[S], what: str, **fields: Any) -> S:
    """``cls(**fields)``, refusing any int its C field would silently truncate or wrap
    (ctypes keeps the low bits: a repeat of 2**32 would reach the kernel as 0)."""
    ctypes_of = {f[0]: f[1] for f in cls._fields_}
    for name, value in fields.items():
        ctype = ctypes_of[name]
        if isinstance(value, int) and hasattr(ctype, "_type_") and \
                isinstance(ctype._type_, str) and ctype._type_ in "bBhHiIlLqQ":
            bits = ctypes.sizeof(ctype) * 8
            signed = ctype._type_ in "bhilq"
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else \
                (0, (1 << bits) - 1)
            if not lo <= value <= hi:
                kind = f"{'s' if signed else 'u'}{bits}"
                raise InvalidArgumentError(_errno.EINVAL, f"{what}: {name}={value} does not fit "
                                           f"the kernel's {kind} field ({lo}..{hi})")
    return cls(**fields)


def _buf(data: bytes) -> Any:
    return ctypes.create_string_buffer(data, len(data)) if data else None


def _addr(buf: Any) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


LOG_SIZE_MAX = (1 << 30) - 1
"""The largest verifier/BTF log the kernel accepts: log_size > UINT_MAX >> 2 is EINVAL."""


def _check_log_size(what: str, log_size: int) -> None:
    # Checked before the log buffer is allocated, not only when the attr is built.
    if not 0 <= log_size <= LOG_SIZE_MAX:
        raise InvalidArgumentError(_errno.EINVAL, f"{what}: log_size={log_size} is outside "
                                   f"0..{LOG_SIZE_MAX}, the kernel's limit")


def prog_load(prog_type: int, insns: bytes, license: str, *, name: str = "",
              expected_attach_type: int = 0, prog_flags: int = 0, kern_version: int = 0,
              btf_fd: int = 0, func_info: bytes = b"", func_info_rec_size: int = 0,
              line_info: bytes = b"", line_info_rec_size: int = 0, attach_btf_id: int = 0,
              attach_prog_fd: int = 0, core_relos: bytes = b"", core_relo_rec_size: int = 0,
              fd_array: bytes = b"", log_level: int = 0, log_size: int = 0) -> LoadResult:
    """BPF_PROG_LOAD; returns the fd or -errno, and the verifier log if one was asked for."""
    _check_log_size("BPF_PROG_LOAD", log_size)
    insn_buf = _buf(insns)
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(log_size) if log_level and log_size else None
    fi, li, cr, fa = _buf(func_info), _buf(line_info), _buf(core_relos), _buf(fd_array)
    attr = checked(
        ProgLoadAttr, "BPF_PROG_LOAD", prog_type=prog_type, insn_cnt=len(insns) // 8,
        insns=_addr(insn_buf), license=ctypes.addressof(lic),
        log_level=log_level if log is not None else 0,
        log_size=log_size if log is not None else 0, log_buf=_addr(log),
        kern_version=kern_version, prog_flags=prog_flags, prog_name=name.encode()[:15],
        expected_attach_type=expected_attach_type, prog_btf_fd=btf_fd,
        func_info_rec_size=func_info_rec_size if func_info else 0, func_info=_addr(fi),
        func_info_cnt=len(func_info) // func_info_rec_size if func_info else 0,
        line_info_rec_size=line_info_rec_size if line_info else 0, line_info=_addr(li),
        line_info_cnt=len(line_info) // line_info_rec_size if line_info else 0,
        attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd,
        core_relo_cnt=len(core_relos) // core_relo_rec_size if core_relos else 0,
        fd_array=_addr(fa), core_relos=_addr(cr),
        core_relo_rec_size=core_relo_rec_size if core_relos else 0)
    fd = bpf_errno(C.Cmd.BPF_PROG_LOAD, attr)
    text = log.value.decode(errors="replace") if log is not None else ""
    return LoadResult(fd, text, int(attr.log_true_size))


def btf_load(data: bytes, *, log_level: int = 0, log_size: int = 0) -> LoadResult:
    """BPF_BTF_LOAD; returns the fd or -errno and the log."""
    _check_log_size("BPF_BTF_LOAD", log_size)
    buf = ctypes.create_string_buffer(data, len(data))
    log = ctypes.create_string_buffer(log_size) if log_level and log_size else None
    attr = checked(BtfLoadAttr, "BPF_BTF_LOAD", btf=ctypes.addressof(buf), btf_size=len(data),
                   btf_log_buf=_addr(log), btf_log_size=log_size if log is not None else 0,
                   btf_log_level=log_level if log is not None else 0)
    fd = bpf_errno(C.Cmd.BPF_BTF_LOAD, attr)
    text = log.value.decode(errors="replace") if log is not None else ""
    return LoadResult(fd, text, int(attr.btf_log_true_size))


@dataclass
class TestRunResult:
    """Raw outcome of BPF_PROG_TEST_RUN: ``error`` is 0 or the errno the kernel returned.

    ``data_size_out``/``ctx_size_out`` are the sizes the kernel reported (after ENOSPC, the
    size the output needed); ``data``/``ctx`` hold what was copied back.
    """

    retval: int
    duration_ns: int
    data: bytes
    ctx: bytes
    error: int = 0
    data_size_out: int = 0
    ctx_size_out: int = 0


TEST_RUN_MAX = 1 << 26
"""The largest output buffer prog_test_run allocates. The kernel never returns more than a
packet (a page plus MAX_SKB_FRAGS pages of XDP frags, 64K pages included) or a context; a
larger request is a mistake, refused before allocating."""


def _bytes(name: str, value: object) -> bytes:
    # bytes(64) is 64 zero bytes: an int given for data would run on a made-up packet.
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"BPF_PROG_TEST_RUN: {name} must be bytes, bytearray or memoryview, "
                        f"not {type(value).__name__}")
    return bytes(value)


def _out_size(name: str, value: object) -> int:
    """An output buffer size: an int in 0..TEST_RUN_MAX (0: no buffer)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"BPF_PROG_TEST_RUN: {name} must be an int, not "
                        f"{type(value).__name__}")
    if not 0 <= value <= TEST_RUN_MAX:
        raise InvalidArgumentError(_errno.EINVAL, f"BPF_PROG_TEST_RUN: {name}={value} is "
                                   f"outside 0..{TEST_RUN_MAX}")
    return value


def prog_test_run(fd: int, data: bytes = b"", ctx: bytes | None = None, *, repeat: int = 1,
                  data_out_size: int | None = None, ctx_out_size: int | None = None,
                  ctx_in_place: bool = False, flags: int = 0, cpu: int = 0) -> TestRunResult:
    """BPF_PROG_TEST_RUN (GIL released: a run with a large ``repeat`` takes a while).

    Every size the kernel is told is the size of the buffer passed with it: the kernel reads
    ``data_size_out == 0`` as "copy the whole packet", so an output buffer is never passed
    with size 0. ``data_out_size`` defaults to ``len(data) + 256`` (XDP may grow the packet),
    ``ctx_out_size`` to ``len(ctx)``; 0 passes no buffer. ``repeat=0`` leaves the field zero
    (some program types refuse any other value); ``ctx_in_place`` reads the context back
    from the input buffer (syscall programs) and passes no ctx_out. A kernel error is
    returned in ``error``, not raised; bad arguments raise TypeError/InvalidArgumentError.
    """
    data = _bytes("data", data)
    ctx = _bytes("ctx", ctx) if ctx is not None else b""
    out_size = _out_size("data_out_size",
                         len(data) + 256 if data_out_size is None else data_out_size)
    if not data and data_out_size is None:
        out_size = 0
    csize = _out_size("ctx_out_size", len(ctx) if ctx_out_size is None else ctx_out_size)
    if ctx_in_place:
        csize = 0
    din, cin = _buf(data), _buf(ctx)
    dout = ctypes.create_string_buffer(out_size) if out_size else None
    cout = ctypes.create_string_buffer(csize) if csize else None
    attr = checked(ProgTestRunAttr, "BPF_PROG_TEST_RUN", prog_fd=fd, data_size_in=len(data),
                   data_in=_addr(din), data_size_out=out_size, data_out=_addr(dout),
                   repeat=repeat, ctx_size_in=len(ctx), ctx_in=_addr(cin),
                   ctx_size_out=csize, ctx_out=_addr(cout), flags=flags, cpu=cpu)
    ret = bpf_errno(C.Cmd.BPF_PROG_TEST_RUN, attr)
    # After ENOSPC the kernel reports the size it needed; only the buffer's worth was copied.
    data_out = dout.raw[:min(attr.data_size_out, out_size)] if dout is not None else b""
    if ctx_in_place:
        ctx_outb = cin.raw if cin is not None else b""
    else:
        ctx_outb = cout.raw[:min(attr.ctx_size_out, csize)] if cout is not None else b""
    return TestRunResult(int(attr.retval), int(attr.duration), data_out, ctx_outb,
                         error=-ret if ret < 0 else 0, data_size_out=int(attr.data_size_out),
                         ctx_size_out=int(attr.ctx_size_out))


def _info_attr(fd: int, info: ctypes.Structure) -> InfoAttr:
    return checked(InfoAttr, "BPF_OBJ_GET_INFO_BY_FD", bpf_fd=fd, info_len=ctypes.sizeof(info),
                   info=ctypes.addressof(info))


def prog_info(fd: int, *, map_ids: bool = True) -> tuple[BpfProgInfo, list[int]]:
    """BPF_OBJ_GET_INFO_BY_FD for a program, with the ids of the maps it uses."""
    info = BpfProgInfo()
    attr = _info_attr(fd, info)
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    ids: list[int] = []
    if map_ids and info.nr_map_ids:
        n = info.nr_map_ids
        arr = (ctypes.c_uint32 * n)()
        info2 = checked(BpfProgInfo, "BPF_OBJ_GET_INFO_BY_FD", nr_map_ids=n,
                        map_ids=ctypes.addressof(arr))
        attr = _info_attr(fd, info2)
        bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
        ids = list(arr[:min(n, info2.nr_map_ids)])
    return info, ids


def prog_xlated(fd: int, size: int) -> bytes:
    """The program's instructions as the kernel rewrote them (xlated)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    info = checked(BpfProgInfo, "BPF_OBJ_GET_INFO_BY_FD", xlated_prog_len=size,
                   xlated_prog_insns=ctypes.addressof(buf))
    attr = _info_attr(fd, info)
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return buf.raw[:info.xlated_prog_len]


def next_id(kind: str, start: int) -> int | None:
    """BPF_{PROG,BTF}_GET_NEXT_ID: the next id after ``start``, or None at the end."""
    cmd = {"prog": C.Cmd.BPF_PROG_GET_NEXT_ID, "btf": C.Cmd.BPF_BTF_GET_NEXT_ID,
           "link": C.Cmd.BPF_LINK_GET_NEXT_ID}[kind]
    attr = checked(GetIdAttr, cmd.name, id=start)
    ret = bpf_errno(cmd, attr, 8)
    if ret == -_errno.ENOENT:
        return None
    if ret < 0:
        bpf(cmd, attr, 8)
    return int(attr.next_id)


def fd_by_id(kind: str, obj_id: int) -> int:
    """BPF_{PROG,BTF}_GET_FD_BY_ID; returns a new fd."""
    cmd = {"prog": C.Cmd.BPF_PROG_GET_FD_BY_ID, "btf": C.Cmd.BPF_BTF_GET_FD_BY_ID}[kind]
    return bpf(cmd, checked(GetIdAttr, cmd.name, id=obj_id), 12)


def btf_info(fd: int) -> tuple[BpfBtfInfo, bytes, str]:
    """BPF_OBJ_GET_INFO_BY_FD for a BTF object: (info, raw BTF bytes, name)."""
    info = BpfBtfInfo()
    attr = _info_attr(fd, info)
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    data = ctypes.create_string_buffer(max(info.btf_size, 1))
    name = ctypes.create_string_buffer(256)
    info2 = checked(BpfBtfInfo, "BPF_OBJ_GET_INFO_BY_FD", btf=ctypes.addressof(data),
                    btf_size=info.btf_size, name=ctypes.addressof(name), name_len=256)
    attr = _info_attr(fd, info2)
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return info2, data.raw[:info2.btf_size], name.value.decode(errors="replace")
