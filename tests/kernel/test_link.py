"""Link objects on the kernel: info, pins, ids, update, detach, lifetime.

XDP links on a veth pair made for the test serve as the updatable, detachable kind; a raw
tracepoint link serves as a kind the kernel cannot update.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import ClosedError, InvalidArgumentError, NotSupportedError, ProgramType, asm
from purebpf._sys import links as L
from purebpf.link import Link, LinkType
from purebpf.types import AttachType

from helpers import bpffs  # noqa: F401  (fixture)


def _xdp(name: str, verdict: int = 2) -> purebpf.Program:
    a = asm.assemble([asm.Mov(asm.R0, verdict), asm.Exit()])
    return purebpf.Program.load(a.spec(name, ProgramType.XDP, license="GPL"))


@pytest.fixture
def veth() -> Iterator[int]:
    """A veth pair that exists only for the test; yields the first end's ifindex."""
    name = "pbl" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True)
    try:
        yield socket.if_nametoindex(name)
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)


@pytest.fixture
def prog() -> Iterator[purebpf.Program]:
    with _xdp("pass") as p:
        yield p


def _xdp_link(prog: purebpf.Program, ifindex: int) -> Link:
    # The link layer alone (attach_xdp is tested in test_attach_xdp.py).
    return Link._adopt(L.link_create(prog.fd, ifindex, AttachType.XDP), "test", program=prog)


def test_info_names_the_target_and_program(prog: purebpf.Program, veth: int) -> None:
    with _xdp_link(prog, veth) as link:
        info = link.info()
        assert info.type == LinkType.XDP and info.attach_type == AttachType.XDP
        assert info.program_id == prog.id and info.target == {"ifindex": veth}
        assert info.mechanism == "bpf_link" and info.id == link.id > 0
        assert link.id in set(Link.ids())
        assert link.fdinfo()["link_type"] == "xdp"
        assert repr(link) == f"<Link XDP id={link.id} prog_id={prog.id} fd={link.fd}>"
        j = info.to_json()
        assert j["type"] == "xdp" and j["prog_id"] == prog.id and j["ifindex"] == veth
        lid = link.id
    assert lid not in set(Link.ids())  # closing the only fd detaches and frees the link
    assert repr(link) == "<Link XDP closed>"


def test_from_id_and_from_fd_open_the_same_link(prog: purebpf.Program, veth: int) -> None:
    with _xdp_link(prog, veth) as link:
        with Link.from_id(link.id) as a, Link.from_fd(link.fd) as b:
            assert a.id == b.id == link.id and a.fd != link.fd != b.fd
            assert a.info().target == {"ifindex": veth}
        assert link.info().program_id == prog.id  # closing the others left it attached


@pytest.mark.parametrize("bad, exc, code, words", [
    (0, purebpf.BPFError, errno.ENOENT, "no such link"),
    (2**32 - 1, purebpf.BPFError, errno.ENOENT, "no such link"),
    (2**32, InvalidArgumentError, errno.EINVAL, "link ids are 1.."),
    (-1, InvalidArgumentError, errno.EINVAL, "link ids are 1.."),
], ids=["zero", "u32-max", "too-big", "negative"])
def test_from_id_errors(bad: int, exc: type[Exception], code: int, words: str) -> None:
    with pytest.raises(exc) as info:
        Link.from_id(bad)
    assert isinstance(info.value, OSError) and info.value.errno == code
    assert words in str(info.value) and f"link id {bad}" in str(info.value)


def test_from_id_refuses_non_ints() -> None:
    with pytest.raises(TypeError, match="must be an int, not str"):
        Link.from_id("3")  # type: ignore[arg-type]


def test_from_fd_refuses_other_objects(prog: purebpf.Program) -> None:
    with pytest.raises(InvalidArgumentError, match="it is a BPF program, not a link") as info:
        Link.from_fd(prog.fd)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(purebpf.BPFError, match="not open") as info2:
        Link.from_fd(-1)
    assert info2.value.errno == errno.EBADF


def test_pinned_link_outlives_close_and_reopens_in_another_process(
        prog: purebpf.Program, veth: int, bpffs: str) -> None:  # noqa: F811
    path = os.path.join(bpffs, "xdp_link")
    with _xdp_link(prog, veth) as link:
        link.pin(path)
        lid = link.id
    assert lid in set(Link.ids())  # the pin holds it: the program stays attached
    code = ("import sys; from purebpf.link import Link\n"
            "with Link.from_pin(sys.argv[1]) as l:\n"
            "    i = l.info(); print(i.id, i.program_id, i.target['ifindex'])\n")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(lid), str(prog.id), str(veth)]
    with Link.from_pin(path) as again:
        assert again.id == lid
        again.unpin()
    assert not os.path.exists(path)
    assert lid not in set(Link.ids())


def test_from_pin_of_a_map_is_refused(bpffs: str) -> None:  # noqa: F811
    path = os.path.join(bpffs, "m")
    with purebpf.Map.create(purebpf.MapSpec(type=purebpf.MapType.ARRAY, key_size=4,
                                            value_size=4, max_entries=1)) as m:
        m.pin(path)
        try:
            with pytest.raises(InvalidArgumentError, match="it is a BPF map, not a link"):
                Link.from_pin(path)
        finally:
            m.unpin()


def test_update_replaces_the_program_atomically(prog: purebpf.Program, veth: int) -> None:
    with _xdp("drop", 1) as other, _xdp_link(prog, veth) as link:
        link.update(other)
        assert link.info().program_id == other.id and link.program is other
        link.update(prog, expected=other)
        assert link.info().program_id == prog.id
        with pytest.raises(purebpf.BPFError) as info:
            link.update(other, expected=other)  # it runs prog now, not other
        assert info.value.errno == errno.EPERM
        assert "no longer runs the expected program 'drop'" in str(info.value)
        assert link.info().program_id == prog.id  # the refused update changed nothing


def test_update_of_a_kind_that_cannot_change_program() -> None:
    a = asm.assemble([asm.Mov(asm.R0, 0), asm.Exit()])
    spec = a.spec("rawtp", ProgramType.RAW_TRACEPOINT, license="GPL")
    with purebpf.Program.load(spec) as p, purebpf.Program.load(spec) as q:
        fd = L.raw_tracepoint_open(p.fd, "sys_enter")
        with Link._adopt(fd, "test", program=p) as link:
            info = link.info()
            assert info.type == LinkType.RAW_TRACEPOINT
            assert info.target == {"tracepoint": "sys_enter"}
            with pytest.raises(NotSupportedError, match="RAW_TRACEPOINT.*cannot change its "
                               "program") as exc:
                link.update(q)
            assert exc.value.feature == "BPF_LINK_UPDATE"
            assert link.info().program_id == p.id


def test_detach_then_detach_again(prog: purebpf.Program, veth: int) -> None:
    with _xdp_link(prog, veth) as link:
        link.detach()
        assert link.info().target == {"ifindex": 0}  # defunct: the hook is free
        with _xdp_link(prog, veth) as second:  # so another program can attach
            assert second.info().target == {"ifindex": veth}
        with pytest.raises(purebpf.BPFError, match="already detached") as info:
            link.detach()
        assert info.value.errno == errno.ENOLINK


def test_closed_link_raises_closed_error(prog: purebpf.Program, veth: int) -> None:
    link = _xdp_link(prog, veth)
    link.close()
    link.close()  # idempotent
    for op in (link.info, link.detach, lambda: link.update(prog), lambda: link.pin("/x")):
        with pytest.raises(ClosedError):
            op()


def test_forgotten_link_warns_and_detaches(prog: purebpf.Program, veth: int) -> None:
    link = _xdp_link(prog, veth)
    lid = link.id
    with pytest.warns(ResourceWarning, match="unclosed link XDP"):
        del link
        gc.collect()
    assert lid not in set(Link.ids())


def test_close_while_another_thread_uses_the_link(prog: purebpf.Program, veth: int) -> None:
    errors: list[BaseException] = []
    for _ in range(20):
        link = _xdp_link(prog, veth)
        stop = threading.Event()

        def use(link: Link = link) -> None:
            while not stop.is_set():
                try:
                    link.info()
                except ClosedError:
                    return
                except BaseException as exc:  # anything else is a bug
                    errors.append(exc)
                    return

        t = threading.Thread(target=use)
        t.start()
        link.close()
        stop.set()
        t.join()
    assert errors == []


def test_link_ids_walk_matches_open_links(prog: purebpf.Program, veth: int) -> None:
    with warnings.catch_warnings():
        with _xdp_link(prog, veth) as a:
            ids = list(Link.ids())
            assert a.id in ids and ids == sorted(ids)


def test_update_with_a_program_of_another_type(prog: purebpf.Program, veth: int) -> None:
    a = asm.assemble([asm.Mov(asm.R0, 0), asm.Exit()])
    with purebpf.Program.load(a.spec("cls", ProgramType.SCHED_CLS, license="GPL")) as cls, \
            _xdp_link(prog, veth) as link:
        with pytest.raises(InvalidArgumentError, match="program 'cls' is SCHED_CLS, and the "
                           "link runs XDP programs") as exc:
            link.update(cls)
        assert exc.value.errno == errno.EINVAL
        assert link.info().program_id == prog.id


def test_refused_expected_update_has_no_privilege_hint(prog: purebpf.Program,
                                                        veth: int) -> None:
    with _xdp("other", 1) as other, _xdp_link(prog, veth) as link:
        with pytest.raises(purebpf.BPFError) as exc:
            link.update(other, expected=other)
        assert "root" not in str(exc.value) and "nothing was changed" in str(exc.value)
