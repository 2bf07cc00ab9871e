"""uprobes and kprobes on the real kernel: a function in a test binary built here with the C
compiler (uprobe counts its calls, uretprobe adds up what it returned), a kernel function
this process calls (kprobe/kretprobe: needs CONFIG_KPROBES, so they run under 6.1 with
kmatrix and skip on a kernel without the kprobe PMU), and the errors.
"""

from __future__ import annotations

import errno
import gzip
import os
import pathlib
import platform
import shutil
import subprocess
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import BPFError, InvalidArgumentError, NotSupportedError
from purebpf.link import Link, LinkType, attach_kprobe, attach_uprobe
from purebpf.link.probes import has_kprobes
from purebpf.types import AttachType

from test_attach_tracing import KPROBE, KRETPROBE, UPROBE, URETPROBE, count, load

SOURCE = r"""
#include <stdio.h>
__attribute__((noinline)) int add(int a, int b) { __asm__ volatile(""); return a + b; }
int main(void) {
    int n = 0, s = 0;
    if (scanf("%d", &n) != 1) return 1;
    for (int i = 0; i < n; i++) s += add(i, 1);
    printf("%d\n", s);
    return 0;
}
"""
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")

needs_kprobes = pytest.mark.skipif(
    not has_kprobes(), reason="no kprobe PMU (/sys/bus/event_source/devices/kprobe): this "
    "kernel has no kprobes (CONFIG_KPROBES unset)")


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A test binary whose ``add`` is called N times (N read from stdin)."""
    if CC is None:
        pytest.fail("no C compiler (cc, gcc or clang-19) to build the uprobe test binary")
    d = tmp_path_factory.mktemp("uprobe")
    (d / "t.c").write_text(SOURCE)
    subprocess.run([CC, "-O1", "-o", str(d / "t"), str(d / "t.c")], check=True)
    return d / "t"


def run(binary: pathlib.Path, n: int, coll: purebpf.Collection | None = None,
        attach: object = None) -> int:
    """Start the binary, point target_pid at it, attach (``attach(pid)``), let it call
    add() ``n`` times; returns what it printed."""
    p = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        if coll is not None:
            coll.variables["target_pid"].set(p.pid)
        out, _ = p.communicate(f"{n}\n", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0
    return int(out)


@pytest.fixture
def coll() -> Iterator[purebpf.Collection]:
    with load("on_call", "on_return", "tp_any") as c:
        yield c


def test_uprobe_counts_calls_and_uretprobe_sums_returns(binary: pathlib.Path,
                                                         coll: purebpf.Collection) -> None:
    with attach_uprobe(coll.programs["on_call"], binary, "add") as a, \
            attach_uprobe(coll.programs["on_return"], binary, "add", retprobe=True) as b:
        assert run(binary, 10, coll) == 55
        assert count(coll, UPROBE) == 10
        assert count(coll, URETPROBE) == 55
        ia, ib = a.info(), b.info()
        assert ia.type == LinkType.PERF_EVENT and ia.attach_type == AttachType.PERF_EVENT
        assert (ia.target["perf_event_type"], ib.target["perf_event_type"]) == \
            ("uprobe", "uretprobe")
        assert ia.target["file"] == str(binary) and ia.target["symbol"] == "add"
        ids = [ia.id, ib.id]
    assert run(binary, 5, coll) == 15
    assert count(coll, UPROBE) == 10  # detached: the new process was not counted
    live = set(Link.ids())
    assert not [i for i in ids if i and i in live]


def test_uprobe_for_one_process_and_by_offset(binary: pathlib.Path,
                                              coll: purebpf.Collection) -> None:
    from purebpf.elf.symbols import symbol_offset

    off = symbol_offset(binary, "add")
    p = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        coll.variables["target_pid"].set(p.pid)
        with attach_uprobe(coll.programs["on_call"], binary, off, pid=p.pid) as link:
            assert link.info().target["offset"] == off
            assert link.info().target["pid"] == p.pid
            out, _ = p.communicate("4\n", timeout=120)
            assert int(out) == 10
            assert count(coll, UPROBE) == 4
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_missing_symbol_names_symbol_and_file(binary: pathlib.Path,
                                              coll: purebpf.Collection) -> None:
    with pytest.raises(BPFError) as e:
        attach_uprobe(coll.programs["on_call"], binary, "no_such_function")
    assert e.value.errno == errno.ENOENT
    assert "'no_such_function'" in str(e.value) and str(binary) in str(e.value)
    with pytest.raises(BPFError) as e:
        attach_uprobe(coll.programs["on_call"], binary.parent / "missing", "add")
    assert e.value.errno == errno.ENOENT and "missing" in str(e.value)
    with pytest.raises(BPFError) as e:
        attach_uprobe(coll.programs["on_call"], binary.parent / "missing", 0x100)
    assert e.value.errno == errno.ENOENT and "no such file" in str(e.value)


def test_uprobe_wrong_program_type(binary: pathlib.Path, coll: purebpf.Collection) -> None:
    with pytest.raises(InvalidArgumentError, match="runs KPROBE programs"):
        attach_uprobe(coll.programs["tp_any"], binary, "add")
    with pytest.raises(TypeError, match="file offset"):
        attach_uprobe(coll.programs["on_call"], binary, -1)


# --- kprobes ---------------------------------------------------------------------------------

@pytest.mark.skipif(has_kprobes(), reason="this kernel has kprobes (probe: the kprobe PMU "
                    "exists): nothing to refuse")
def test_no_kprobes_names_the_config_option() -> None:
    with load("kprobe_getpgid") as c:
        for func in ("__x64_sys_getpgid", ["__x64_sys_getpgid"], "__x64_sys_getpg*"):
            with pytest.raises(NotSupportedError) as e:
                attach_kprobe(c.programs["kprobe_getpgid"], func)
            assert "CONFIG_KPROBES" in str(e.value) and e.value.feature == "CONFIG_KPROBES"


@needs_kprobes
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the probed function "
                    "__x64_sys_getpgid is x86-64's")
def test_kprobe_and_kretprobe() -> None:
    with load("kprobe_getpgid", "kretprobe_getpgid") as c:
        with attach_kprobe(c.programs["kprobe_getpgid"], "__x64_sys_getpgid") as a, \
                attach_kprobe(c.programs["kretprobe_getpgid"], "__x64_sys_getpgid",
                              retprobe=True) as b:
            for _ in range(3):
                os.getpgid(0)
            assert (count(c, KPROBE), count(c, KRETPROBE)) == (3, 3)
            ia, ib = a.info(), b.info()
            assert ia.type == LinkType.PERF_EVENT
            assert (ia.target["perf_event_type"], ib.target["perf_event_type"]) == \
                ("kprobe", "kretprobe")
            assert ia.target["func"] == "__x64_sys_getpgid"
        os.getpgid(0)
        assert count(c, KPROBE) == 3


@needs_kprobes
def test_kprobe_on_a_missing_function() -> None:
    with load("kprobe_getpgid") as c:
        with pytest.raises(BPFError) as e:
            attach_kprobe(c.programs["kprobe_getpgid"], "no_such_kernel_function_x")
        assert e.value.errno in (errno.ENOENT, errno.EINVAL)
        assert "'no_such_kernel_function_x'" in str(e.value)


def _kernel_config(option: str) -> bool | None:
    """Whether the running kernel's config sets ``option`` (None: config not found)."""
    for path in ("/proc/config.gz", f"/boot/config-{os.uname().release}"):
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:  # type: ignore[operator]
                return any(line.strip() == f"{option}=y" for line in f)
        except OSError:
            continue
    return None


@needs_kprobes
@pytest.mark.skipif(_kernel_config("CONFIG_FPROBE") is not False,
                    reason="probe: the kernel config does not say CONFIG_FPROBE is unset")
def test_kprobe_multi_without_fprobe_names_the_option() -> None:
    spec = purebpf.CollectionSpec.from_file(
        pathlib.Path(__file__).parent.parent / "testdata" / "tracing.o")
    for n, p in spec.programs.items():
        p.autoload = n == "kprobe_getpgid"
    spec.programs["kprobe_getpgid"] = spec.programs["kprobe_getpgid"].replace(
        expected_attach_type=AttachType.TRACE_KPROBE_MULTI)
    with purebpf.Collection.load(spec) as c:
        with pytest.raises(NotSupportedError) as e:
            attach_kprobe(c.programs["kprobe_getpgid"], ["__x64_sys_getpgid"])
        assert e.value.feature == "CONFIG_FPROBE" and "kprobe_multi" in str(e.value)
