"""attach_cgroup / query_cgroup on the real kernel.

Each test makes its own cgroup under the cgroup2 mount and moves a child process into it:
the child writes its pid to cgroup.procs and connect()s a UDP socket to 127.0.0.1:9, which
runs the cgroup/connect4 programs of tests/testdata/attach_cgroup.c (they count in
'connects', or refuse the connect with EPERM). Both mechanisms run: bpf_link
(BPF_LINK_CREATE) and prog_attach (BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI), chosen with
``mechanism=``.
"""

from __future__ import annotations

import errno
import gc
import os
import pathlib
import platform
import re
import socket
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import BPFError, ClosedError, InvalidArgumentError, Program
from purebpf._sys import links as L
from purebpf.link import (AttachedProgram, CgroupAttachment, Link, LinkType, attach_cgroup,
                          query_cgroup)
from purebpf.link.cgroup import cgroup2_mount, has_link, parse_attach_type
from purebpf.types import AttachType, ProgramType

OBJ = pathlib.Path(__file__).parents[1] / "testdata" / "attach_cgroup.o"
CONNECT4 = AttachType.CGROUP_INET4_CONNECT
MOUNT = cgroup2_mount()

pytestmark = pytest.mark.skipif(MOUNT is None, reason="no cgroup2 mount in /proc/self/mounts "
                                "(purebpf.link.cgroup.cgroup2_mount() is None)")

# The child: join the cgroup, then connect() a UDP socket (no packet is sent) and print
# the errno (0: allowed).
CHILD = """import os, socket, sys
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(s.connect_ex(("127.0.0.1", 9)))
s.close()
"""


def connect_in(cgroup: str) -> int:
    """connect() from a new process inside ``cgroup``; the errno it got."""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD,
                        os.path.join(cgroup, "cgroup.procs")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def fds_on(path: str) -> int:
    """How many of this process's fds are open on ``path`` (a cgroup directory)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:
            pass
    return n


def mechanisms() -> list[object]:
    link = pytest.param("bpf_link", marks=pytest.mark.skipif(
        not has_link(ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS),
        reason="this kernel has no cgroup links (link.cgroup.has_link: 5.7+)"))
    return [link, "prog_attach"]


@pytest.fixture
def objs() -> Iterator[purebpf.Collection]:
    with purebpf.load(OBJ) as coll:
        yield coll


def _make_cgroup(parent: str) -> str:
    path = os.path.join(parent, "purebpf-test-" + uuid.uuid4().hex[:10])
    os.mkdir(path)
    return path


def _remove_cgroup(path: str) -> None:
    for sub in sorted(pathlib.Path(path).glob("purebpf-test-*"), reverse=True):
        _remove_cgroup(str(sub))
    os.rmdir(path)


@pytest.fixture
def cgroup() -> Iterator[str]:
    """A new, empty cgroup (its child processes exit before the test ends)."""
    assert MOUNT is not None
    path = _make_cgroup(MOUNT)
    try:
        yield path
    finally:
        _remove_cgroup(path)


def counts(coll: purebpf.Collection) -> tuple[int, int]:
    m = coll.maps["connects"]
    return m[0], m[1]


@pytest.mark.parametrize("mechanism", mechanisms())
def test_program_runs_for_processes_in_the_cgroup_until_closed(
        objs: purebpf.Collection, cgroup: str, mechanism: str) -> None:
    prog = objs.programs["count_connect4"]
    with attach_cgroup(prog, cgroup, mechanism=mechanism) as att:
        info = att.info()
        assert info.mechanism == mechanism
        assert info.attach_type == CONNECT4
        assert info.type == LinkType.CGROUP
        assert info.program_id == prog.id
        assert info.target["cgroup_id"] == os.stat(cgroup).st_ino
        assert info.target["path"] == cgroup
        assert isinstance(att, Link if mechanism == "bpf_link" else CgroupAttachment)
        assert (att.id != 0) == (mechanism == "bpf_link")
        assert connect_in(cgroup) == 0
        assert counts(objs) == (1, 0)
        # This process is not in the cgroup: its connect() runs no program.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", 9))
        assert counts(objs) == (1, 0)
        assert fds_on(cgroup) == (0 if mechanism == "bpf_link" else 1)
    assert connect_in(cgroup) == 0
    assert counts(objs) == (1, 0)  # detached by close()
    assert query_cgroup(cgroup) == []
    assert fds_on(cgroup) == 0


@pytest.mark.parametrize("mechanism", mechanisms())
def test_a_program_returning_0_makes_connect_fail_with_eperm(
        objs: purebpf.Collection, cgroup: str, mechanism: str) -> None:
    with attach_cgroup(objs.programs["count_connect4"], cgroup, "connect4",
                       mechanism=mechanism), \
            attach_cgroup(objs.programs["deny_connect4"], cgroup, "connect4",
                          mechanism=mechanism):
        assert connect_in(cgroup) == errno.EPERM
        assert counts(objs) == (1, 0)  # both ran (multi mode)
    assert connect_in(cgroup) == 0


@pytest.mark.parametrize("mechanism", mechanisms())
def test_query_lists_the_program_then_not(objs: purebpf.Collection, cgroup: str,
                                          mechanism: str) -> None:
    prog = objs.programs["count_connect4"]
    child = _make_cgroup(cgroup)
    with attach_cgroup(prog, cgroup, mechanism=mechanism) as att:
        want = AttachedProgram(CONNECT4, prog.id, "count_connect4", L.BPF_F_ALLOW_MULTI,
                               att.id)
        assert query_cgroup(cgroup, "connect4") == [want]
        assert query_cgroup(cgroup) == [want]  # every hook: only this one has a program
        assert query_cgroup(cgroup, AttachType.CGROUP_INET4_BIND) == []
        # A child cgroup inherits it: listed as effective there, not as attached there.
        assert query_cgroup(child, CONNECT4) == []
        eff = query_cgroup(child, CONNECT4, effective=True)
        assert [(p.program_id, p.name) for p in eff] == [(prog.id, "count_connect4")]
        with _fd(cgroup) as fd:
            assert query_cgroup(fd, CONNECT4) == [want]
    assert query_cgroup(cgroup) == []
    assert query_cgroup(child, CONNECT4, effective=True) == []


class _fd:
    """An fd of a directory, closed on exit."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


@pytest.mark.parametrize("mechanism", mechanisms())
def test_update_swaps_the_program(objs: purebpf.Collection, cgroup: str,
                                  mechanism: str) -> None:
    count, other = objs.programs["count_connect4"], objs.programs["other_connect4"]
    with attach_cgroup(count, cgroup, mechanism=mechanism) as att:
        with pytest.raises(BPFError) as exc:
            att.update(other, expected=objs.programs["deny_connect4"])
        assert exc.value.errno == errno.EPERM
        assert "expected" in str(exc.value)
        att.update(other, expected=count)
        assert att.info().program_id == other.id
        assert [p.program_id for p in query_cgroup(cgroup, CONNECT4)] == [other.id]
        assert connect_in(cgroup) == 0
        assert counts(objs) == (0, 1)
    assert query_cgroup(cgroup) == []  # close detached the new program


@pytest.mark.parametrize("mechanism", mechanisms())
def test_detach_twice_says_it_is_already_detached(objs: purebpf.Collection, cgroup: str,
                                                  mechanism: str) -> None:
    with attach_cgroup(objs.programs["count_connect4"], cgroup, mechanism=mechanism) as att:
        att.detach()
        assert query_cgroup(cgroup) == []
        with pytest.raises(BPFError) as exc:
            att.detach()
        assert exc.value.errno == errno.ENOLINK
        assert "already detached" in str(exc.value)
        assert connect_in(cgroup) == 0
        assert counts(objs) == (0, 0)
    att.close()  # closing again is fine


def test_replace_swaps_a_prog_attach_program(objs: purebpf.Collection, cgroup: str) -> None:
    count, other = objs.programs["count_connect4"], objs.programs["other_connect4"]
    first = attach_cgroup(count, cgroup, mechanism="prog_attach")
    try:
        with attach_cgroup(other, cgroup, replace=count) as second:
            assert second.info().mechanism == "prog_attach"
            assert [p.program_id for p in query_cgroup(cgroup, CONNECT4)] == [other.id]
            # The first attachment's program is gone: detach() says so, close() does not.
            with pytest.raises(BPFError) as exc:
                first.detach()
            assert exc.value.errno == errno.ENOENT
            assert "no longer attached" in str(exc.value)
            first.close()
            assert [p.program_id for p in query_cgroup(cgroup, CONNECT4)] == [other.id]
        assert query_cgroup(cgroup) == []
    finally:
        first.close()


def test_replace_of_a_program_that_is_not_attached(objs: purebpf.Collection,
                                                   cgroup: str) -> None:
    with pytest.raises(BPFError) as exc:
        attach_cgroup(objs.programs["other_connect4"], cgroup,
                      replace=objs.programs["count_connect4"])
    assert exc.value.errno == errno.ENOENT
    assert "'count_connect4'" in str(exc.value) and "is not attached" in str(exc.value)
    with pytest.raises(InvalidArgumentError, match=r"link\.update"):
        attach_cgroup(objs.programs["other_connect4"], cgroup, mechanism="bpf_link",
                      replace=objs.programs["count_connect4"])
    assert query_cgroup(cgroup) == []


@pytest.mark.parametrize("mechanism", mechanisms())
def test_cgroup_given_as_fd_or_relative_path(objs: purebpf.Collection, cgroup: str,
                                             mechanism: str) -> None:
    prog = objs.programs["count_connect4"]
    with _fd(cgroup) as fd:
        att = attach_cgroup(prog, fd, mechanism=mechanism)
    # The caller's fd is closed: the attachment does not depend on it.
    with att:
        assert "path" not in att.info().target
        assert att.info().target["cgroup_id"] == os.stat(cgroup).st_ino
        assert connect_in(cgroup) == 0
    assert query_cgroup(cgroup) == []
    assert MOUNT is not None
    rel = os.path.relpath(cgroup, MOUNT)
    with attach_cgroup(prog, rel, mechanism=mechanism) as att:
        assert att.info().target["path"] == cgroup
        assert [p.program_id for p in query_cgroup(rel)] == [prog.id]
    assert counts(objs) == (1, 0)


def test_prog_attach_takes_a_program_once_per_hook(objs: purebpf.Collection,
                                                   cgroup: str) -> None:
    prog = objs.programs["count_connect4"]
    with attach_cgroup(prog, cgroup, mechanism="prog_attach"):
        with pytest.raises(BPFError) as exc:
            attach_cgroup(prog, cgroup, mechanism="prog_attach")
        assert exc.value.errno in (errno.EEXIST, errno.EINVAL)  # 6.1, 6.18
        assert "already attached" in str(exc.value)
    assert query_cgroup(cgroup) == []


def test_hook_from_the_section_or_the_program_type(objs: purebpf.Collection,
                                                   cgroup: str) -> None:
    with attach_cgroup(objs.programs["sock_create"], cgroup) as att:
        assert att.info().attach_type == AttachType.CGROUP_INET_SOCK_CREATE
    # "cgroup/skb" names no direction: the caller must.
    skb = objs.programs["any_skb"]
    with pytest.raises(InvalidArgumentError) as exc:
        attach_cgroup(skb, cgroup)
    msg = str(exc.value)
    assert "cannot tell" in msg and "'cgroup/skb'" in msg
    assert "CGROUP_INET_INGRESS" in msg and "CGROUP_INET_EGRESS" in msg
    with attach_cgroup(skb, cgroup, "egress") as att:
        assert att.info().attach_type == AttachType.CGROUP_INET_EGRESS
    # A program opened by id has no section; one hook of many cannot be guessed.
    with Program.from_id(objs.programs["count_connect4"].id) as p:
        with pytest.raises(InvalidArgumentError, match="cannot tell which cgroup hook"):
            attach_cgroup(p, cgroup)
        with attach_cgroup(p, cgroup, "connect4") as att:
            assert att.info().program_id == p.id
    assert query_cgroup(cgroup) == []


@pytest.mark.parametrize("mechanism", mechanisms())
def test_the_kernels_einval_for_another_hook_is_explained(
        objs: purebpf.Collection, cgroup: str, mechanism: str) -> None:
    # A CGROUP_SOCK_ADDR program loaded for connect4 does not run at bind4.
    with pytest.raises(InvalidArgumentError) as exc:
        attach_cgroup(objs.programs["count_connect4"], cgroup, "bind4", mechanism=mechanism)
    assert exc.value.errno == errno.EINVAL
    msg = str(exc.value)
    assert "CGROUP_INET4_BIND" in msg and "loaded for CGROUP_INET4_CONNECT" in msg
    assert "'cgroup/bind4'" in msg
    assert query_cgroup(cgroup) == []


def test_wrong_program_type_or_attach_type(objs: purebpf.Collection, cgroup: str) -> None:
    prog = objs.programs["count_connect4"]
    with pytest.raises(InvalidArgumentError) as exc:
        attach_cgroup(prog, cgroup, "inet_ingress")
    msg = str(exc.value)
    assert "CGROUP_SOCK_ADDR program cannot run at CGROUP_INET_INGRESS" in msg
    assert "CGROUP_INET_INGRESS runs CGROUP_SKB programs" in msg
    with pytest.raises(InvalidArgumentError, match="XDP is not a cgroup hook"):
        attach_cgroup(prog, cgroup, AttachType.XDP)
    with pytest.raises(InvalidArgumentError, match=r"unknown attach type 'connect5'.*connect4"):
        attach_cgroup(prog, cgroup, "connect5")
    with pytest.raises(TypeError, match="attach_type must be"):
        attach_cgroup(prog, cgroup, 4.0)  # type: ignore[arg-type]
    xdp = purebpf.asm.assemble([purebpf.asm.Mov(purebpf.asm.R0, 2), purebpf.asm.Exit()])
    with Program.load(xdp.spec("pass", ProgramType.XDP)) as p:
        with pytest.raises(InvalidArgumentError) as exc:
            attach_cgroup(p, cgroup)
        assert "'pass' is XDP" in str(exc.value) and "CGROUP_SOCK_ADDR" in str(exc.value)
    with pytest.raises(InvalidArgumentError, match="mechanism='netlink'"):
        attach_cgroup(prog, cgroup, mechanism="netlink")
    with Program.from_id(prog.id) as p:
        p.close()
        with pytest.raises(ClosedError):
            attach_cgroup(p, cgroup, "connect4")
    assert query_cgroup(cgroup) == []


def test_missing_cgroup_path(objs: purebpf.Collection, cgroup: str) -> None:
    missing = cgroup + "-missing"
    for mech in ("auto", "prog_attach"):
        with pytest.raises(BPFError) as exc:
            attach_cgroup(objs.programs["count_connect4"], missing, mechanism=mech)
        assert exc.value.errno == errno.ENOENT
        assert repr(missing) in str(exc.value) and "does not exist" in str(exc.value)
        assert f"mounted at {MOUNT}" in str(exc.value)
    with pytest.raises(BPFError) as exc:
        query_cgroup("purebpf-no-such-cgroup")
    assert exc.value.errno == errno.ENOENT
    assert os.path.join(str(MOUNT), "purebpf-no-such-cgroup") in str(exc.value)
    with pytest.raises(BPFError) as exc:
        attach_cgroup(objs.programs["count_connect4"], os.path.join(cgroup, "cgroup.procs"))
    assert exc.value.errno == errno.ENOTDIR
    assert "not a directory" in str(exc.value)


@pytest.mark.parametrize("mechanism", mechanisms())
def test_a_directory_that_is_not_a_cgroup2_one(objs: purebpf.Collection,
                                               tmp_path: pathlib.Path, mechanism: str) -> None:
    with pytest.raises(BPFError) as exc:
        attach_cgroup(objs.programs["count_connect4"], str(tmp_path), mechanism=mechanism)
    assert exc.value.errno == errno.EBADF
    assert "is not a cgroup v2 directory" in str(exc.value)
    with pytest.raises(BPFError) as exc:
        query_cgroup(str(tmp_path), CONNECT4)
    assert exc.value.errno == errno.EBADF


def test_query_refuses_a_hook_that_is_not_a_cgroup_one(cgroup: str) -> None:
    with pytest.raises(InvalidArgumentError, match="XDP is not a cgroup hook"):
        query_cgroup(cgroup, "xdp")


def test_a_forgotten_attachment_is_detached_with_a_warning(objs: purebpf.Collection,
                                                          cgroup: str) -> None:
    att = attach_cgroup(objs.programs["count_connect4"], cgroup, mechanism="prog_attach")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del att
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed" in str(w.message)
               for w in caught)
    assert query_cgroup(cgroup) == []
    assert fds_on(cgroup) == 0


@pytest.mark.parametrize("name", ["connect4", "inet4_connect", "CGROUP_INET4_CONNECT",
                                  "BPF_CGROUP_INET4_CONNECT", " Connect4 ", 10, CONNECT4])
def test_attach_type_names(name: object) -> None:
    from purebpf.link.cgroup import CGROUP_ALIASES

    assert parse_attach_type(name, "t", [CONNECT4], CGROUP_ALIASES) is CONNECT4


@pytest.mark.parametrize("name, member", [
    ("ingress", "CGROUP_INET_INGRESS"), ("sock_create", "CGROUP_INET_SOCK_CREATE"),
    ("post_bind6", "CGROUP_INET6_POST_BIND"), ("sendmsg4", "CGROUP_UDP4_SENDMSG"),
    ("getsockname6", "CGROUP_INET6_GETSOCKNAME"), ("connect_unix", "CGROUP_UNIX_CONNECT"),
    ("sock_ops", "CGROUP_SOCK_OPS"), ("device", "CGROUP_DEVICE"), ("sysctl", "CGROUP_SYSCTL"),
    ("setsockopt", "CGROUP_SETSOCKOPT")])
def test_bpftool_short_names(name: str, member: str) -> None:
    from purebpf.link.cgroup import CGROUP_ALIASES

    assert CGROUP_ALIASES[name] == AttachType[member]


def _kernel() -> tuple[int, int]:
    major, minor = platform.release().split(".")[:2]
    return int(major), int(re.match(r"\d+", minor).group())  # type: ignore[union-attr]


def test_the_link_probe_matches_the_kernel_version() -> None:
    assert has_link(ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS) == \
        (_kernel() >= (5, 7))
    assert has_link(ProgramType.CGROUP_SOCK_ADDR, CONNECT4) == (_kernel() >= (5, 7))


def test_the_attachment_does_not_need_the_program_open(objs: purebpf.Collection,
                                                       cgroup: str) -> None:
    prog_id = objs.programs["count_connect4"].id
    for mech in ("auto", "prog_attach"):
        with Program.from_id(prog_id) as p:
            att = attach_cgroup(p, cgroup, "connect4", mechanism=mech)
        with att:
            assert [q.program_id for q in query_cgroup(cgroup)] == [prog_id]
        assert query_cgroup(cgroup) == []


@pytest.mark.parametrize("mechanism", mechanisms())
def test_a_hook_held_exclusively_refuses_more_programs(objs: purebpf.Collection, cgroup: str,
                                                       mechanism: str) -> None:
    count = objs.programs["count_connect4"]
    with _fd(cgroup) as fd:
        L.prog_attach(fd, count.fd, CONNECT4)  # no BPF_F_ALLOW_MULTI: exclusive
        try:
            assert query_cgroup(cgroup, CONNECT4) == \
                [AttachedProgram(CONNECT4, count.id, "count_connect4", 0, 0)]
            with pytest.raises(BPFError) as exc:
                attach_cgroup(objs.programs["other_connect4"], cgroup, mechanism=mechanism)
            assert exc.value.errno == errno.EPERM
            assert "takes no more programs" in str(exc.value)
            assert "without BPF_F_ALLOW_MULTI" in str(exc.value)
        finally:
            L.prog_detach(fd, count.fd, CONNECT4)
    assert query_cgroup(cgroup) == []
