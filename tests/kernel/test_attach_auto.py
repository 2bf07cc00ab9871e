"""Auto-attach by section name on the real kernel: ``prog.attach()``,
``purebpf.link.attach(prog, ...)`` and ``collection.attach_all()`` (links closed with the
collection), and the errors that say which keyword to pass."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import subprocess

import pytest

import purebpf
from purebpf import BPFError, InvalidArgumentError, NotSupportedError, ProgramType, asm
from purebpf.link import Iterator as BPFIterator
from purebpf.link import Link, LinkType, attach

from test_attach_tracing import (GENERIC_TP, OBJ, RAW_TP, TP, TP_BTF, UPROBE, count, load,
                                 perf_fds)

SAFE = ["tp_getpid", "tp_any", "raw_sys_enter", "btf_sys_enter", "dump_maps", "dump_elems",
        "on_call", "on_return"]


def _asm_prog(section: str, ptype: ProgramType, attach_type: int = 0) -> purebpf.Program:
    a = asm.assemble([asm.Mov(asm.R0, 1), asm.Exit()])
    spec = a.spec("auto_test", ptype, license="GPL").replace(
        section=section, expected_attach_type=attach_type)
    return purebpf.Program.load(spec)


def test_prog_attach_by_section() -> None:
    with load(*SAFE) as c:
        with c.programs["tp_getpid"].attach() as tp, c.programs["raw_sys_enter"].attach() as raw, \
                c.programs["btf_sys_enter"].attach() as btf:
            for _ in range(4):
                os.getpid()
            assert (count(c, TP), count(c, RAW_TP), count(c, TP_BTF)) == (4, 4, 4)
            assert tp.info().target["tracepoint"] == "sys_enter_getpid"
            assert raw.info().type == btf.info().type == LinkType.RAW_TRACEPOINT
        with c.programs["dump_maps"].attach() as it:
            assert isinstance(it, BPFIterator)
            assert f"map {c.maps['counts'].id}\n" in it.text()
        with attach(c.programs["dump_elems"], map=c.maps["shown"]) as it:
            assert isinstance(it, BPFIterator) and it.text() == "0=0\n1=0\n2=0\n"


def test_bare_section_says_which_keyword() -> None:
    with load(*SAFE) as c:
        with pytest.raises(InvalidArgumentError) as e:
            c.programs["tp_any"].attach()
        assert e.value.errno == errno.EINVAL
        assert "pass tracepoint=" in str(e.value) and "'tracepoint'" in str(e.value)
        with c.programs["tp_any"].attach(tracepoint="syscalls/sys_enter_getpid"):
            os.getpid()
            assert count(c, GENERIC_TP) == 1
        with pytest.raises(InvalidArgumentError, match="pass path= and symbol="):
            c.programs["on_call"].attach()
        with pytest.raises(InvalidArgumentError, match="pass map="):
            c.programs["dump_elems"].attach()
        with pytest.raises(TypeError, match="unexpected keyword iface"):
            c.programs["tp_getpid"].attach(iface="lo")


@pytest.mark.parametrize("section,ptype,attach_type,keyword", [
    ("xdp", ProgramType.XDP, 37, "pass iface="),
    ("tc/ingress", ProgramType.SCHED_CLS, 46, "pass iface="),
    ("tc", ProgramType.SCHED_CLS, 0, "pass iface= and direction="),
    ("cgroup_skb/egress", ProgramType.CGROUP_SKB, 1, "pass cgroup="),
], ids=["xdp", "tc-ingress", "tc", "cgroup"])
def test_hooks_that_need_a_target_say_so(section: str, ptype: ProgramType, attach_type: int,
                                         keyword: str) -> None:
    with _asm_prog(section, ptype, attach_type) as prog:
        with pytest.raises(InvalidArgumentError) as e:
            prog.attach()
        assert keyword in str(e.value) and f"section {section!r}" in str(e.value)
        assert "for example prog.attach(" in str(e.value)


def test_section_that_names_no_hook() -> None:
    with _asm_prog("socket", ProgramType.SOCKET_FILTER) as prog:
        with pytest.raises(NotSupportedError, match="does not say where to attach"):
            prog.attach()


def test_uprobe_section_with_path_and_symbol(tmp_path: pathlib.Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
    assert cc is not None, "no C compiler for the uprobe test binary"
    (tmp_path / "t.c").write_text(
        "#include <stdio.h>\n__attribute__((noinline)) int add(int a, int b) "
        "{ __asm__ volatile(\"\"); return a + b; }\nint main(void) { int n = 0, s = 0; "
        "if (scanf(\"%d\", &n) != 1) return 1; for (int i = 0; i < n; i++) s += add(i, 1); "
        "return s == n * (n + 1) / 2 ? 0 : 2; }\n")
    binary = tmp_path / "t"
    subprocess.run([cc, "-O1", "-o", str(binary), str(tmp_path / "t.c")], check=True)
    spec = purebpf.CollectionSpec.from_file(OBJ)
    for n, p in spec.programs.items():
        p.autoload = n == "on_call"
    spec.programs["on_call"].section = f"uprobe/{binary}:add"
    with purebpf.Collection.load(spec) as c:
        with c.programs["on_call"].attach() as link:
            assert link.info().target["symbol"] == "add"
            assert link.info().target["file"] == str(binary)
            proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, text=True)
            c.variables["target_pid"].set(proc.pid)
            proc.communicate("3\n", timeout=120)
            assert proc.returncode == 0
            assert count(c, UPROBE) == 3


def test_attach_all_attaches_what_it_can_and_closes_with_the_collection() -> None:
    before_fds = perf_fds()
    c = load(*SAFE)
    try:
        links = c.attach_all()
        assert set(links) == {"tp_getpid", "raw_sys_enter", "btf_sys_enter", "dump_maps"}
        assert links.skipped == {"tp_any": "needs tracepoint=",
                                 "on_call": "needs path=, symbol=",
                                 "on_return": "needs path=, symbol=",
                                 "dump_elems": "needs map="}
        os.getpid()
        os.getpid()
        assert (count(c, TP), count(c, RAW_TP), count(c, TP_BTF)) == (2, 2, 2)
        more = c.attach_all(map=c.maps["shown"], tracepoint="syscalls/sys_enter_getpid")
        # the programs attached before keep their links; the others attach now
        assert set(more) == set(links) | {"dump_elems", "tp_any"}
        assert all(more[n] is links[n] for n in links)
        assert more.skipped == {"on_call": "needs path=, symbol=",
                                "on_return": "needs path=, symbol="}
        ids = {lk.info().id for lk in [*links.values(), *more.values()]}
        assert ids <= set(Link.ids())
    finally:
        c.close()
    assert not ids & set(Link.ids())
    assert all(lk.closed for lk in [*links.values(), *more.values()])
    assert perf_fds() == before_fds


def test_attach_all_is_all_or_nothing() -> None:
    with load(*SAFE) as c:
        before = set(Link.ids())
        with pytest.raises(BPFError) as e:
            c.attach_all(tracepoint="syscalls/sys_enter_nope")
        assert e.value.errno == errno.ENOENT and "sys_enter_nope" in str(e.value)
        assert set(Link.ids()) == before
        assert not getattr(c, "_links", {})
