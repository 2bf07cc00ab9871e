"""Program safety: every size handed to BPF_PROG_TEST_RUN matches its buffer, ints are
range-checked before ctypes sees them, from_fd/from_pin open only programs, and the
verifier log cap is the kernel's."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import (BPFError, InvalidArgumentError, Map, MapSpec, MapType, Program,
                     ProgramType, RunResult)
from purebpf._program import _LOG_MAX
from purebpf._sys import progs
from purebpf._sys.attrs import ProgTestRunAttr
from purebpf.asm import R0, Exit, Mov, assemble

from helpers import bpffs  # noqa: F401 (bpffs: a fixture)

PACKET = bytes(range(64))  # XDP test runs need at least an Ethernet header
XDP_PASS = 2


@pytest.fixture
def xdp() -> Iterator[Program]:
    """An XDP program that passes the packet unchanged."""
    code = assemble([Mov(R0, XDP_PASS), Exit()])
    with Program.load(code.spec("safety_pass", ProgramType.XDP)) as prog:
        yield prog


# == test_run: sizes, counts and types ========================================================

def test_run_returns_the_packet(xdp: Program) -> None:
    r = xdp.test_run(PACKET)
    assert isinstance(r, RunResult)
    assert (r.retval, r.data) == (XDP_PASS, PACKET)
    exact = xdp.test_run(PACKET, data_out_size=len(PACKET))
    assert exact.data == PACKET


@pytest.mark.parametrize("size", [0, -1], ids=["zero", "minus-one"])
def test_run_refuses_an_output_size_below_one(xdp: Program, size: int) -> None:
    # Before: a 1-byte buffer went to the kernel with data_size_out 0 ("copy the whole
    # packet") or 0xffffffff, and the kernel wrote 64 bytes into it: a segfault.
    with pytest.raises(InvalidArgumentError) as info:
        xdp.test_run(PACKET, data_out_size=size)
    assert info.value.errno == errno.EINVAL
    assert f"data_out_size must be between 1 and {progs.TEST_RUN_MAX}, got {size}" \
        in str(info.value)
    assert "leave it None" in str(info.value)


def test_run_refuses_a_huge_output_size_without_allocating(xdp: Program) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        xdp.test_run(PACKET, data_out_size=2**40)
    assert info.value.errno == errno.EINVAL
    assert f"data_out_size must be between 1 and {progs.TEST_RUN_MAX}, got {2**40}" \
        in str(info.value)


@pytest.mark.parametrize("repeat", [2**32, 2**32 + 1, 0, -5], ids=["2**32", "2**32+1", "zero",
                                                                   "negative"])
def test_run_refuses_a_repeat_the_kernel_field_cannot_hold(xdp: Program, repeat: int) -> None:
    # Before: 2**32 was truncated by ctypes to 0, which the kernel runs once.
    with pytest.raises(InvalidArgumentError) as info:
        xdp.test_run(PACKET, repeat=repeat)
    assert info.value.errno == errno.EINVAL
    assert f"repeat must be between 1 and {2**32 - 1}, got {repeat}" in str(info.value)


def test_run_checks_the_types_of_counts(xdp: Program) -> None:
    with pytest.raises(TypeError, match="repeat must be an int, not float"):
        xdp.test_run(PACKET, repeat=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data_out_size must be an int, not str"):
        xdp.test_run(PACKET, data_out_size="64")  # type: ignore[arg-type]


def test_run_refuses_an_int_for_data(xdp: Program) -> None:
    # Before: bytes(64) silently made a packet of 64 zero bytes.
    with pytest.raises(TypeError) as info:
        xdp.test_run(64)  # type: ignore[arg-type]
    assert "data must be bytes, bytearray or memoryview, not int" in str(info.value)
    assert "pass bytes(64)" in str(info.value)
    with pytest.raises(TypeError, match="ctx must be bytes, bytearray or memoryview, not int"):
        xdp.test_run(PACKET, ctx=16)  # type: ignore[arg-type]


def test_run_accepts_bytearray_and_memoryview(xdp: Program) -> None:
    assert xdp.test_run(bytearray(PACKET)).data == PACKET
    assert xdp.test_run(memoryview(PACKET)).data == PACKET


def test_run_output_larger_than_the_buffer_is_enospc(xdp: Program) -> None:
    with pytest.raises(BPFError) as info:
        xdp.test_run(PACKET, data_out_size=16)
    assert info.value.errno == errno.ENOSPC
    assert "the output is 64 bytes, more than data_out_size=16" in str(info.value)
    assert "pass data_out_size=64 or more" in str(info.value)


def test_sys_test_run_passes_no_buffer_for_size_zero(xdp: Program) -> None:
    # At the _sys layer 0 means "no output": the kernel gets NULL and copies nothing.
    r = progs.prog_test_run(xdp.fd, PACKET, data_out_size=0)
    assert (r.error, r.retval, r.data) == (0, XDP_PASS, b"")
    r = progs.prog_test_run(xdp.fd, PACKET, data_out_size=8)
    assert r.error == errno.ENOSPC and r.data_size_out == 64 and r.data == PACKET[:8]


@pytest.mark.parametrize("field", ["data_out_size", "ctx_out_size"])
@pytest.mark.parametrize("size", [-1, 2**40], ids=["negative", "2**40"])
def test_sys_test_run_checks_output_sizes(xdp: Program, field: str, size: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        progs.prog_test_run(xdp.fd, PACKET, **{field: size})  # type: ignore[arg-type]
    assert info.value.errno == errno.EINVAL
    assert f"BPF_PROG_TEST_RUN: {field}={size} is outside 0..{progs.TEST_RUN_MAX}" \
        in str(info.value)


@pytest.mark.parametrize(("field", "value"), [("cpu", 2**32), ("flags", -1), ("repeat", 2**32)])
def test_sys_test_run_checks_every_u32(xdp: Program, field: str, value: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        progs.prog_test_run(xdp.fd, PACKET, **{field: value})  # type: ignore[arg-type]
    assert info.value.errno == errno.EINVAL
    assert f"BPF_PROG_TEST_RUN: {field}={value} does not fit the kernel's u32 field " \
        f"(0..{2**32 - 1})" in str(info.value)


def test_checked_knows_signed_fields() -> None:
    attr = progs.checked(ProgTestRunAttr, "x", repeat=2**32 - 1)
    assert attr.repeat == 2**32 - 1
    from purebpf._sys.attrs import ProgLoadAttr

    with pytest.raises(InvalidArgumentError, match=r"prog_token_fd=2147483648 does not fit "
                       r"the kernel's s32 field \(-2147483648\.\.2147483647\)"):
        progs.checked(ProgLoadAttr, "BPF_PROG_LOAD", prog_token_fd=2**31)


def test_load_refuses_a_log_level_that_would_wrap() -> None:
    code = assemble([Mov(R0, XDP_PASS), Exit()])
    with pytest.raises(InvalidArgumentError) as info:
        Program.load(code.spec("safety_wrap", ProgramType.XDP), log_level=2**32 + 1)
    assert info.value.errno == errno.EINVAL
    assert "BPF_PROG_LOAD: log_level=4294967297 does not fit the kernel's u32 field" \
        in str(info.value)


def test_no_segfault_on_a_zero_output_size() -> None:
    # The original report, in a child process: it must exit with the error, not SIGSEGV.
    child = (
        "from purebpf import Program, ProgramType, InvalidArgumentError\n"
        "from purebpf.asm import R0, Exit, Mov, assemble\n"
        "code = assemble([Mov(R0, 2), Exit()])\n"
        "with Program.load(code.spec('safety_child', ProgramType.XDP)) as p:\n"
        "    for size in (0, -1):\n"
        "        try:\n"
        "            p.test_run(bytes(64), data_out_size=size)\n"
        "        except InvalidArgumentError:\n"
        "            pass\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         timeout=60)
    assert (res.returncode, res.stdout.strip()) == (0, "ok"), res.stderr


# == the verifier log cap =====================================================================

BAD = assemble([Exit()]).code  # R0 is never set: the verifier refuses it


def test_the_log_cap_is_the_kernels_largest_size() -> None:
    # UINT_MAX >> 2 is the largest log_size the kernel takes; 1 << 30 was EINVAL with no log.
    assert _LOG_MAX == (1 << 30) - 1
    res = progs.prog_load(int(ProgramType.XDP), BAD, "GPL", log_level=1, log_size=_LOG_MAX)
    assert res.fd == -errno.EACCES
    assert "R0 !read_ok" in res.log


def test_a_log_size_over_the_cap_is_refused_before_the_kernel() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        progs.prog_load(int(ProgramType.XDP), BAD, "GPL", log_level=1, log_size=1 << 30)
    assert info.value.errno == errno.EINVAL
    assert f"BPF_PROG_LOAD: log_size={1 << 30} is outside 0..{(1 << 30) - 1}" \
        in str(info.value)


# == from_fd / from_pin =======================================================================

def test_from_fd_wraps_a_program(xdp: Program) -> None:
    with Program.from_fd(xdp.fd) as again:
        assert again.id == xdp.id and again.fd != xdp.fd
        assert again.test_run(PACKET).retval == XDP_PASS


def test_from_fd_refuses_a_map_fd() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) as m:
        with pytest.raises(InvalidArgumentError) as info:
            Program.from_fd(m.fd)
        assert info.value.errno == errno.EINVAL
        assert f"open program from fd {m.fd}: it is a BPF map, not a program" \
            in str(info.value)


def test_from_fd_refuses_a_pipe() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(InvalidArgumentError) as info:
            Program.from_fd(r)
        assert info.value.errno == errno.EINVAL
        assert f"open program from fd {r}: not a BPF program" in str(info.value)
    finally:
        os.close(r)
        os.close(w)


def test_from_fd_on_a_closed_fd() -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(BPFError) as info:
        Program.from_fd(r)
    assert info.value.errno in (errno.EBADF, errno.EBADFD)
    assert f"open program from fd {r}: the fd is not open" in str(info.value)
    with pytest.raises(BPFError) as info2:
        Program.from_fd(-1)
    assert info2.value.errno == errno.EBADF
    assert "open program from fd -1: the fd is not open" in str(info2.value)


@pytest.mark.parametrize("prog_id", [2**32, -1], ids=["2**32", "negative"])
def test_from_id_refuses_an_id_the_kernel_field_cannot_hold(prog_id: int) -> None:
    # Before: 2**32 was truncated to id 0 and reported as "no such program" (ENOENT).
    with pytest.raises(InvalidArgumentError) as info:
        Program.from_id(prog_id)
    assert info.value.errno == errno.EINVAL
    assert f"open program id {prog_id}: program ids are 1..{2**32 - 1}" in str(info.value)


def test_from_pin_then_unpin(xdp: Program, bpffs: str) -> None:  # noqa: F811
    path = os.path.join(bpffs, "safety_prog")
    xdp.pin(path)
    with Program.from_pin(path) as pinned:
        assert pinned.id == xdp.id
        pinned.unpin()
    assert not os.path.exists(path)


def test_from_pin_refuses_a_pinned_map(bpffs: str) -> None:  # noqa: F811
    path = os.path.join(bpffs, "safety_map")
    with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)) as m:
        m.pin(path)
        try:
            with pytest.raises(InvalidArgumentError) as info:
                Program.from_pin(path)
            assert info.value.errno == errno.EINVAL
            assert "it is a BPF map, not a program" in str(info.value)
        finally:
            m.unpin()


# == RunResult and the deprecated TestRun =====================================================

def test_testrun_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="purebpf.TestRun is deprecated, use "
                      "purebpf.RunResult"):
        alias = purebpf.TestRun
    assert alias is RunResult
    assert "TestRun" not in purebpf.__all__ and "RunResult" in purebpf.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert purebpf.RunResult is RunResult  # the new name warns about nothing


def test_pytest_does_not_collect_the_result_class(tmp_path: os.PathLike[str]) -> None:
    # A user's test module that imports the class (under either name) must collect cleanly
    # with warnings as errors.
    test = os.path.join(os.fspath(tmp_path), "test_user.py")
    with open(test, "w") as f:
        f.write("import warnings\n"
                "from purebpf import RunResult\n"
                "with warnings.catch_warnings():\n"
                "    warnings.simplefilter('ignore', DeprecationWarning)\n"
                "    from purebpf import TestRun\n"
                "def test_nothing():\n"
                "    assert TestRun is RunResult\n")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-W", "error", "-p",
                          "no:cacheprovider", "--rootdir", os.fspath(tmp_path), test],
                         capture_output=True, text=True, timeout=120,
                         cwd=os.fspath(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout
