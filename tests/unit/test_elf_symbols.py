"""Symbol -> file offset for uprobes (purebpf.elf.symbols), checked against pyelftools;
tracefs discovery and PMU parsing (purebpf.link._tracefs) on fake trees; section-name plans
(purebpf.link.auto.plan). No kernel needed."""

from __future__ import annotations

import errno
import io
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from purebpf import BPFError, InvalidArgumentError, NotSupportedError
from purebpf.elf.symbols import read_binary, symbol_offset
from purebpf.link import _tracefs
from purebpf.link.auto import plan

SOURCE = r"""
#include <stdio.h>
static __attribute__((noinline)) int hidden(int a) { __asm__ volatile(""); return a * 3; }
__attribute__((noinline)) int visible(int a, int b) { __asm__ volatile(""); return a + b; }
int counter = 4;
int main(int argc, char **argv) { printf("%d\n", visible(argc, hidden(argc)) + counter); return 0; }
"""

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc, clang-19) to build "
                              "a test binary")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def _build(tmp: pathlib.Path, *flags: str, name: str = "prog") -> pathlib.Path:
    src = tmp / "prog.c"
    src.write_text(SOURCE)
    out = tmp / name
    subprocess.run([str(CC), "-O1", *flags, "-o", str(out), str(src)], check=True,
                   capture_output=True)
    return out


def _expected(path: pathlib.Path, name: str) -> int:
    """pyelftools' answer: the symbol's address through the section holding it."""
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(path.read_bytes()))
    for tab in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(tab)
        if sec is None:
            continue
        for sym in sec.iter_symbols():  # type: ignore[attr-defined]
            if sym.name == name and sym["st_shndx"] != "SHN_UNDEF":
                owner = elf.get_section(sym["st_shndx"])
                return int(sym["st_value"] - owner["sh_addr"] + owner["sh_offset"])
    raise AssertionError(f"{name} not in {path}")


@needs_cc
@pytest.mark.parametrize("flags", [(), ("-no-pie",), ("-static",), ("-shared", "-fPIC")],
                         ids=["pie", "no-pie", "static", "shared"])
@pytest.mark.parametrize("name", ["visible", "hidden", "main"])
def test_offsets_match_pyelftools(tmp_path: pathlib.Path, flags: tuple[str, ...],
                                  name: str) -> None:
    try:
        binary = _build(tmp_path, *flags)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"{CC} {' '.join(flags)} cannot link here: {exc.stderr.decode()[-200:]}")
    assert symbol_offset(binary, name) == _expected(binary, name)


@needs_cc
def test_stripped_binary_uses_dynsym_and_says_why_static_functions_are_gone(
        tmp_path: pathlib.Path) -> None:
    lib = _build(tmp_path, "-shared", "-fPIC", "-s", name="lib.so")
    assert not read_binary(lib).symtab
    assert symbol_offset(lib, "visible") == _expected(lib, "visible")
    with pytest.raises(BPFError) as e:
        symbol_offset(lib, "hidden")
    assert e.value.errno == errno.ENOENT
    assert "'hidden'" in str(e.value) and str(lib) in str(e.value)
    assert "stripped" in str(e.value)


@pytest.mark.skipif(not os.path.exists(LIBC), reason=f"no {LIBC}")
def test_libc_getpid_from_dynsym() -> None:
    assert symbol_offset(LIBC, "getpid") == _expected(pathlib.Path(LIBC), "getpid")


@needs_cc
def test_missing_symbol_names_symbol_and_file_and_suggests(tmp_path: pathlib.Path) -> None:
    binary = _build(tmp_path)
    with pytest.raises(BPFError) as e:
        symbol_offset(binary, "visibel")
    assert e.value.errno == errno.ENOENT
    text = str(e.value)
    assert "'visibel'" in text and str(binary) in text and "did you mean visible" in text


@needs_cc
def test_imported_symbol_is_undefined_here(tmp_path: pathlib.Path) -> None:
    binary = _build(tmp_path)
    with pytest.raises(BPFError) as e:
        symbol_offset(binary, "printf")
    assert e.value.errno == errno.ENOENT
    assert "undefined" in str(e.value) and "library" in str(e.value)


@needs_cc
def test_a_variable_is_not_a_function(tmp_path: pathlib.Path) -> None:
    binary = _build(tmp_path)
    with pytest.raises(InvalidArgumentError, match="STT_OBJECT, not a function"):
        symbol_offset(binary, "counter")


def test_missing_file_and_not_elf(tmp_path: pathlib.Path) -> None:
    with pytest.raises(BPFError) as e:
        symbol_offset(tmp_path / "nope", "main")
    assert e.value.errno == errno.ENOENT and "nope" in str(e.value)
    junk = tmp_path / "junk"
    junk.write_bytes(b"#!/bin/sh\necho hi\n" * 4)
    with pytest.raises(InvalidArgumentError, match="not an ELF file"):
        symbol_offset(junk, "main")


def test_truncated_elf_is_an_error_not_a_crash() -> None:
    data = pathlib.Path(sys.executable).resolve().read_bytes()[:200]
    with pytest.raises(InvalidArgumentError, match="read symbols of"):
        read_binary(data, "python-head")


# --- tracefs ----------------------------------------------------------------------------

MOUNTINFO = """\
22 28 0:21 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:12 / /sys/kernel/debug rw,relatime - debugfs debugfs rw
31 22 0:13 / /sys/kernel/tracing rw,relatime - tracefs tracefs rw
40 28 0:44 / /mnt/my\\040traces rw - tracefs nodev rw
"""


def test_locate_prefers_the_standard_tracefs_mount() -> None:
    assert _tracefs.locate(MOUNTINFO) == "/sys/kernel/tracing"
    only_other = "\n".join(ln for ln in MOUNTINFO.splitlines() if "31 22" not in ln)
    assert _tracefs.locate(only_other) == "/mnt/my traces"  # \040 is a space


def test_locate_falls_back_to_debugfs_tracing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tracing" / "events").mkdir(parents=True)
    info = f"30 22 0:12 / {tmp_path} rw - debugfs debugfs rw\n"
    assert _tracefs.locate(info) == f"{tmp_path}/tracing"
    assert _tracefs.locate("22 28 0:21 / /sys rw - sysfs sysfs rw\n") is None


def test_tracefs_absent_says_where_it_looked_and_how_to_mount(tmp_path: pathlib.Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("22 28 0:21 / /sys rw - sysfs sysfs rw\n")
    cands = (str(tmp_path / "tracing"), str(tmp_path / "debug" / "tracing"))
    with pytest.raises(NotSupportedError) as e:
        _tracefs.tracefs(mount=False, mountinfo=str(info), candidates=cands)
    assert e.value.errno == errno.ENOENT and e.value.feature == "tracefs"
    text = str(e.value)
    assert "not mounted" in text and cands[0] in text and cands[1] in text
    assert f"mount -t tracefs nodev {cands[0]}" in text


def test_tracefs_mount_failure_is_reported(tmp_path: pathlib.Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("")
    cands = (str(tmp_path / "missing"), str(tmp_path / "gone" / "tracing"))
    with pytest.raises(NotSupportedError) as e:
        _tracefs.tracefs(mountinfo=str(info), candidates=cands)
    assert f"mount -t tracefs nodev {cands[0]}: {cands[0]} does not exist" in str(e.value)


def test_tracepoint_id_and_missing_tracepoint(tmp_path: pathlib.Path) -> None:
    ev = tmp_path / "events" / "sched" / "sched_switch"
    ev.mkdir(parents=True)
    (ev / "id").write_text("316\n")
    assert _tracefs.tracepoint_id("sched", "sched_switch", root=str(tmp_path)) == 316
    with pytest.raises(BPFError) as e:
        _tracefs.tracepoint_id("sched", "nope", root=str(tmp_path))
    assert e.value.errno == errno.ENOENT
    assert "sched/nope" in str(e.value)
    assert str(tmp_path / "events" / "sched" / "nope" / "id") in str(e.value)
    assert "category 'sched' exists" in str(e.value)
    with pytest.raises(BPFError, match="no category 'nosuch'"):
        _tracefs.tracepoint_id("nosuch", "x", root=str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="not a tracepoint name"):
        _tracefs.tracepoint_id("sched/sched_switch", "", root=str(tmp_path))


def test_pmu_type_and_retprobe_bit(tmp_path: pathlib.Path) -> None:
    (tmp_path / "uprobe" / "format").mkdir(parents=True)
    (tmp_path / "uprobe" / "type").write_text("8\n")
    (tmp_path / "uprobe" / "format" / "retprobe").write_text("config:0\n")
    (tmp_path / "odd" / "format").mkdir(parents=True)
    (tmp_path / "odd" / "format" / "retprobe").write_text("config:5-5\n")
    assert _tracefs.pmu_type("uprobe", str(tmp_path)) == 8
    assert _tracefs.pmu_type("kprobe", str(tmp_path)) is None
    assert _tracefs.pmu_retprobe_bit("uprobe", str(tmp_path)) == 0
    assert _tracefs.pmu_retprobe_bit("odd", str(tmp_path)) == 5


def test_lockdown_mode_is_the_bracketed_word(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "lockdown"
    f.write_text("none integrity [confidentiality]\n")
    assert _tracefs.lockdown(str(f)) == "confidentiality"
    f.write_text("[none] integrity confidentiality\n")
    assert _tracefs.lockdown(str(f)) == "none"
    assert _tracefs.lockdown(str(tmp_path / "absent")) is None


# --- section names -----------------------------------------------------------------------

@pytest.mark.parametrize("section,family,target,needs", [
    ("tp/sched/sched_switch", "tracepoint", "sched/sched_switch", ()),
    ("tracepoint/syscalls/sys_enter_getpid", "tracepoint", "syscalls/sys_enter_getpid", ()),
    ("tracepoint", "tracepoint", "", ("tracepoint",)),
    ("tp/sched", "tracepoint", "sched", ("tracepoint",)),
    ("raw_tp/sys_enter", "raw_tp", "sys_enter", ()),
    ("raw_tracepoint/sched_switch", "raw_tp", "sched_switch", ()),
    ("raw_tp", "raw_tp", "", ("tracepoint",)),
    ("tp_btf/sched_switch", "tracing", "sched_switch", ()),
    ("fentry/do_unlinkat", "tracing", "do_unlinkat", ()),
    ("fexit/do_unlinkat", "tracing", "do_unlinkat", ()),
    ("fmod_ret/security_x", "tracing", "security_x", ()),
    ("lsm/file_open", "lsm", "file_open", ()),
    ("kprobe/do_unlinkat+0x4", "kprobe", "do_unlinkat+0x4", ()),
    ("kretprobe/do_unlinkat", "kretprobe", "do_unlinkat", ()),
    ("kprobe", "kprobe", "", ("func",)),
    ("kprobe.multi/tcp_*", "kprobe.multi", "tcp_*", ()),
    ("uprobe//usr/bin/bash:readline", "uprobe", "/usr/bin/bash:readline", ()),
    ("uretprobe/libc.so.6:malloc", "uretprobe", "libc.so.6:malloc", ()),
    ("uprobe", "uprobe", "", ("path", "symbol")),
    ("iter/task", "iter", "task", ()),
    ("xdp", "xdp", "", ("iface",)),
    ("xdp.frags", "xdp", "", ("iface",)),
    ("tc/ingress", "tc", "ingress", ("iface",)),
    ("tcx/egress", "tc", "egress", ("iface",)),
    ("tc", "tc", "", ("iface", "direction")),
    ("cgroup/connect4", "cgroup", "connect4", ("cgroup",)),
    ("cgroup_skb/egress", "cgroup", "egress", ("cgroup",)),
    ("?tp/sched/sched_switch", "tracepoint", "sched/sched_switch", ()),
], ids=lambda v: v if isinstance(v, str) else None)
def test_plan(section: str, family: str, target: str, needs: tuple[str, ...]) -> None:
    p = plan(section)
    assert p is not None
    assert (p.family, p.target, p.needs) == (family, target, needs)


@pytest.mark.parametrize("section", ["socket", "xdp/devmap", "struct_ops/x", "freplace/f",
                                     "syscall", "license"])
def test_plan_unknown(section: str) -> None:
    assert plan(section) is None
