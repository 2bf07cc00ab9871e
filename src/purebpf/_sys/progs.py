"""bpf() commands for programs and BTF objects: load, test run, info, ids."""

from __future__ import annotations

import ctypes
import errno as _errno
from dataclasses import dataclass
from typing import Any

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


def _buf(data: bytes) -> Any:
    return ctypes.create_string_buffer(data, len(data)) if data else None


def _addr(buf: Any) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def prog_load(prog_type: int, insns: bytes, license: str, *, name: str = "",
              expected_attach_type: int = 0, prog_flags: int = 0, kern_version: int = 0,
              btf_fd: int = 0, func_info: bytes = b"", func_info_rec_size: int = 0,
              line_info: bytes = b"", line_info_rec_size: int = 0, attach_btf_id: int = 0,
              attach_prog_fd: int = 0, core_relos: bytes = b"", core_relo_rec_size: int = 0,
              fd_array: bytes = b"", log_level: int = 0, log_size: int = 0) -> LoadResult:
    """BPF_PROG_LOAD; returns the fd or -errno, and the verifier log if one was asked for."""
    insn_buf = _buf(insns)
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(log_size) if log_level and log_size else None
    fi, li, cr, fa = _buf(func_info), _buf(line_info), _buf(core_relos), _buf(fd_array)
    attr = ProgLoadAttr(
        prog_type=prog_type, insn_cnt=len(insns) // 8, insns=_addr(insn_buf),
        license=ctypes.addressof(lic), log_level=log_level if log is not None else 0,
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
    buf = ctypes.create_string_buffer(data, len(data))
    log = ctypes.create_string_buffer(log_size) if log_level and log_size else None
    attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(data), btf_log_buf=_addr(log),
                       btf_log_size=log_size if log is not None else 0,
                       btf_log_level=log_level if log is not None else 0)
    fd = bpf_errno(C.Cmd.BPF_BTF_LOAD, attr)
    text = log.value.decode(errors="replace") if log is not None else ""
    return LoadResult(fd, text, int(attr.btf_log_true_size))


@dataclass
class TestRunResult:
    """Raw outcome of BPF_PROG_TEST_RUN."""

    retval: int
    duration_ns: int
    data: bytes
    ctx: bytes


def prog_test_run(fd: int, data: bytes = b"", ctx: bytes | None = None, *, repeat: int = 1,
                  data_out_size: int | None = None, ctx_out_size: int | None = None,
                  ctx_in_place: bool = False, flags: int = 0, cpu: int = 0) -> TestRunResult:
    """BPF_PROG_TEST_RUN (GIL released: a run with a large ``repeat`` takes a while).

    ``repeat=0`` leaves the field zero (some program types refuse any other value);
    ``ctx_in_place`` reads the context back from the input buffer (syscall programs) and
    passes no ctx_out.
    """
    din = _buf(data)
    out_size = (len(data) + 256) if data_out_size is None else data_out_size
    dout = ctypes.create_string_buffer(max(out_size, 1)) if data or data_out_size else None
    cin = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    csize = (len(ctx) if ctx else 0) if ctx_out_size is None else ctx_out_size
    cout = ctypes.create_string_buffer(csize) if csize and not ctx_in_place else None
    attr = ProgTestRunAttr(prog_fd=fd, data_size_in=len(data), data_in=_addr(din),
                           data_size_out=out_size if dout is not None else 0,
                           data_out=_addr(dout), repeat=repeat,
                           ctx_size_in=len(ctx) if ctx else 0, ctx_in=_addr(cin),
                           ctx_size_out=csize if cout is not None else 0, ctx_out=_addr(cout),
                           flags=flags, cpu=cpu)
    bpf(C.Cmd.BPF_PROG_TEST_RUN, attr)
    data_out = dout.raw[:attr.data_size_out] if dout is not None else b""
    if ctx_in_place:
        ctx_outb = cin.raw if cin is not None else b""
    else:
        ctx_outb = cout.raw[:attr.ctx_size_out] if cout is not None else b""
    return TestRunResult(int(attr.retval), int(attr.duration), data_out, ctx_outb)


def prog_info(fd: int, *, map_ids: bool = True) -> tuple[BpfProgInfo, list[int]]:
    """BPF_OBJ_GET_INFO_BY_FD for a program, with the ids of the maps it uses."""
    info = BpfProgInfo()
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    ids: list[int] = []
    if map_ids and info.nr_map_ids:
        n = info.nr_map_ids
        arr = (ctypes.c_uint32 * n)()
        info2 = BpfProgInfo(nr_map_ids=n, map_ids=ctypes.addressof(arr))
        attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info2), info=ctypes.addressof(info2))
        bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
        ids = list(arr[:min(n, info2.nr_map_ids)])
    return info, ids


def prog_xlated(fd: int, size: int) -> bytes:
    """The program's instructions as the kernel rewrote them (xlated)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    info = BpfProgInfo(xlated_prog_len=size, xlated_prog_insns=ctypes.addressof(buf))
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return buf.raw[:info.xlated_prog_len]


def next_id(kind: str, start: int) -> int | None:
    """BPF_{PROG,BTF}_GET_NEXT_ID: the next id after ``start``, or None at the end."""
    cmd = {"prog": C.Cmd.BPF_PROG_GET_NEXT_ID, "btf": C.Cmd.BPF_BTF_GET_NEXT_ID,
           "link": C.Cmd.BPF_LINK_GET_NEXT_ID}[kind]
    attr = GetIdAttr(id=start)
    ret = bpf_errno(cmd, attr, 8)
    if ret == -_errno.ENOENT:
        return None
    if ret < 0:
        bpf(cmd, attr, 8)
    return int(attr.next_id)


def fd_by_id(kind: str, obj_id: int) -> int:
    """BPF_{PROG,BTF}_GET_FD_BY_ID; returns a new fd."""
    cmd = {"prog": C.Cmd.BPF_PROG_GET_FD_BY_ID, "btf": C.Cmd.BPF_BTF_GET_FD_BY_ID}[kind]
    return bpf(cmd, GetIdAttr(id=obj_id), 12)


def btf_info(fd: int) -> tuple[BpfBtfInfo, bytes, str]:
    """BPF_OBJ_GET_INFO_BY_FD for a BTF object: (info, raw BTF bytes, name)."""
    info = BpfBtfInfo()
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    data = ctypes.create_string_buffer(max(info.btf_size, 1))
    name = ctypes.create_string_buffer(256)
    info2 = BpfBtfInfo(btf=ctypes.addressof(data), btf_size=info.btf_size,
                       name=ctypes.addressof(name), name_len=256)
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info2), info=ctypes.addressof(info2))
    bpf(C.Cmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return info2, data.raw[:info2.btf_size], name.value.decode(errors="replace")
