"""attach_netns (sk_lookup, flow dissector) and attach_sockmap (sk_msg, sk_skb) on the
real kernel, with the programs of tests/testdata/attach_sock.c (they count their runs in
'hits': 0 sk_msg, 1 sk_skb verdict, 2 and 3 sk_lookup).

sk_lookup runs in a namespace made for the test (`ip netns add`): a process started in it
with `ip netns exec` connects to 127.0.0.1, and the SYN's socket lookup runs the program
(the connection is refused: nothing listens). Sockmap programs run on a TCP connection over
loopback whose two sockets are in the map.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import platform
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import (BPFError, InvalidArgumentError, Map, MapSpec, MapType, NotSupportedError,
                     Program, asm)
from purebpf.link import (Link, LinkType, SockmapAttachment, attach_netns, attach_sockmap,
                          query_netns, query_sockmap)
from purebpf.link.cgroup import has_link
from purebpf.types import AttachType, ProgramType

OBJ = pathlib.Path(__file__).parents[1] / "testdata" / "attach_sock.o"
SRC = str(pathlib.Path(__file__).parents[2] / "src")


@pytest.fixture
def objs() -> Iterator[purebpf.Collection]:
    with purebpf.load(OBJ) as coll:
        yield coll


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of the test's own, with lo up; yields its name."""
    name = "purebpf-" + uuid.uuid4().hex[:10]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


CONNECT = "import socket; s = socket.socket(); print(s.connect_ex(('127.0.0.1', 7)))"


def connect_in(ns: str) -> int:
    """A TCP connect() to 127.0.0.1:7 from a process inside ``ns``; its errno."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-I", "-S", "-c", CONNECT],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def hits(coll: purebpf.Collection, slot: int) -> int:
    return int(coll.maps["hits"][slot])


# -- sk_lookup ---------------------------------------------------------------------------------

def test_sk_lookup_runs_for_connections_in_the_netns(objs: purebpf.Collection,
                                                     netns: str) -> None:
    prog = objs.programs["count_lookup"]
    path = f"/var/run/netns/{netns}"
    with attach_netns(prog, netns) as link:
        assert isinstance(link, Link)
        info = link.info()
        assert (info.type, info.attach_type, info.mechanism) == \
            (LinkType.NETNS, AttachType.SK_LOOKUP, "bpf_link")
        assert info.target == {"netns_ino": os.stat(path).st_ino, "path": path}
        assert info.program_id == prog.id
        assert [(p.program_id, p.name, p.link_id) for p in query_netns(netns)] == \
            [(prog.id, "count_lookup", link.id)]
        assert hits(objs, 2) == 0
        assert connect_in(netns) == errno.ECONNREFUSED
        assert hits(objs, 2) >= 1
        # This process's own namespace has no program.
        assert query_netns() == []
        link.update(objs.programs["other_lookup"])
        before = hits(objs, 2)
        assert connect_in(netns) == errno.ECONNREFUSED
        assert hits(objs, 2) == before and hits(objs, 3) >= 1
    assert query_netns(path) == []
    seen = hits(objs, 2), hits(objs, 3)
    assert connect_in(netns) == errno.ECONNREFUSED
    assert (hits(objs, 2), hits(objs, 3)) == seen  # detached by close()


def test_several_sk_lookup_programs_run_in_attach_order(objs: purebpf.Collection,
                                                        netns: str) -> None:
    a, b = objs.programs["count_lookup"], objs.programs["other_lookup"]
    with open(f"/var/run/netns/{netns}") as f:
        with attach_netns(a, f.fileno()) as la, attach_netns(b, netns) as lb:
            assert "path" not in la.info().target
            assert [(p.program_id, p.link_id) for p in query_netns(f.fileno(), "sk_lookup")] \
                == [(a.id, la.id), (b.id, lb.id)]
            assert connect_in(netns) == errno.ECONNREFUSED
            assert hits(objs, 2) >= 1 and hits(objs, 3) >= 1
            lb.detach()
            with pytest.raises(BPFError) as exc:
                lb.detach()
            assert exc.value.errno == errno.ENOLINK
            assert [p.program_id for p in query_netns(netns)] == [a.id]
    assert query_netns(netns) == []


def test_sk_lookup_has_no_prog_attach(objs: purebpf.Collection, netns: str) -> None:
    with pytest.raises(NotSupportedError) as exc:
        attach_netns(objs.programs["count_lookup"], netns, mechanism="prog_attach")
    assert "only through a bpf_link" in str(exc.value)
    assert query_netns(netns) == []


# -- flow dissector ----------------------------------------------------------------------------

def test_flow_dissector_link_attach_query_detach(objs: purebpf.Collection,
                                                 netns: str) -> None:
    prog = objs.programs["dissect"]
    with attach_netns(prog, f"/var/run/netns/{netns}") as link:
        info = link.info()
        assert (info.type, info.attach_type) == (LinkType.NETNS, AttachType.FLOW_DISSECTOR)
        assert query_netns(netns, AttachType.FLOW_DISSECTOR)[0].link_id == link.id
        assert query_netns(netns, "sk_lookup") == []
        # One flow dissector per namespace.
        with pytest.raises(BPFError) as exc:
            attach_netns(prog, netns)
        assert exc.value.errno in (errno.E2BIG, errno.EEXIST)
        assert "a flow dissector is already attached there" in str(exc.value)
        link.detach()
        assert query_netns(netns) == []
    assert query_netns(netns) == []


def test_flow_dissector_prog_attach_needs_the_callers_own_netns(objs: purebpf.Collection,
                                                                netns: str) -> None:
    with pytest.raises(NotSupportedError) as exc:
        attach_netns(objs.programs["dissect"], netns, mechanism="prog_attach")
    assert "caller's own namespace" in str(exc.value) and "ip netns exec" in str(exc.value)
    assert query_netns(netns) == []


# Run inside the namespace: BPF_PROG_ATTACH works on the caller's own.
LEGACY = """import errno, json, sys
import purebpf
from purebpf import BPFError, Program, asm
from purebpf.link import attach_netns, query_netns
from purebpf.types import ProgramType
out = {}
with purebpf.load(sys.argv[1]) as coll:
    prog = coll.programs["dissect"]
    code = asm.assemble([asm.Mov(asm.R0, 0), asm.Exit()])
    with Program.load(code.spec("dissect2", ProgramType.FLOW_DISSECTOR)) as other:
        with attach_netns(prog, mechanism="prog_attach") as att:
            info = att.info()
            out["info"] = [type(att).__name__, info.mechanism, info.id, info.program_id == prog.id,
                           "path" in info.target]
            out["query"] = [(p.program_id == prog.id, p.link_id) for p in query_netns()]
            try:
                attach_netns(other, mechanism="prog_attach")
            except BPFError as exc:
                out["second"] = [exc.errno, str(exc)]
            att.update(other)
            out["updated"] = [p.program_id == other.id for p in query_netns()]
            att.detach()
            out["detached"] = query_netns()
            try:
                att.detach()
            except BPFError as exc:
                out["again"] = [exc.errno, str(exc)]
print(json.dumps(out))
"""


def test_flow_dissector_prog_attach_inside_the_netns(netns: str) -> None:
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", LEGACY, str(OBJ)],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["info"] == ["NetnsAttachment", "prog_attach", 0, True, False]
    assert out["query"] == [[True, 0]]
    assert out["second"][0] == errno.EEXIST  # PROG_ATTACH of another one is refused...
    assert "already attached" in out["second"][1]
    assert out["updated"] == [True]  # ...but update() swaps it
    assert out["detached"] == []
    assert out["again"][0] == errno.ENOLINK and "already detached" in out["again"][1]
    assert query_netns(netns) == []


def test_netns_errors(objs: purebpf.Collection, tmp_path: pathlib.Path) -> None:
    prog = objs.programs["count_lookup"]
    with pytest.raises(BPFError) as exc:
        attach_netns(prog, "purebpf-no-such-netns")
    assert exc.value.errno == errno.ENOENT
    assert "'/var/run/netns/purebpf-no-such-netns' does not exist" in str(exc.value)
    with pytest.raises(InvalidArgumentError, match=r"is not a network namespace \(a mnt "):
        attach_netns(prog, "/proc/self/ns/mnt")
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(InvalidArgumentError, match="not a namespace file"):
        attach_netns(prog, str(f))
    with pytest.raises(InvalidArgumentError) as exc2:
        attach_netns(objs.programs["count_msg"], None)
    assert "is SK_MSG" in str(exc2.value) and "SK_LOOKUP, FLOW_DISSECTOR" in str(exc2.value)
    with pytest.raises(InvalidArgumentError, match="CGROUP_INET4_CONNECT is not a netns hook"):
        query_netns(None, "CGROUP_INET4_CONNECT")
    with pytest.raises(InvalidArgumentError, match="unknown attach type 'connect4'"):
        query_netns(None, "connect4")


# -- sockmap -----------------------------------------------------------------------------------

def mechanisms() -> list[object]:
    link = pytest.param("bpf_link", marks=pytest.mark.skipif(
        not has_link(ProgramType.SK_MSG, AttachType.SK_MSG_VERDICT),
        reason="this kernel has no sockmap links (link.cgroup.has_link: 6.10+)"))
    return [link, "prog_attach"]


@pytest.fixture
def sockmap() -> Iterator[Map]:
    with Map.create(MapSpec(MapType.SOCKMAP, key_size=4, value_size=4, max_entries=2)) as m:
        yield m


@contextlib.contextmanager
def connection_in(m: Map) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP connection over loopback, both ends in the map (0: client, 1: server)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        with socket.create_connection(srv.getsockname()) as client:
            server, _ = srv.accept()
            with server:
                m[0], m[1] = client.fileno(), server.fileno()
                try:
                    yield client, server
                finally:
                    del m[0], m[1]


def _recv(s: socket.socket, n: int) -> bytes:
    s.settimeout(60)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk
        data += chunk
    return data


@pytest.mark.parametrize("mechanism", mechanisms())
def test_sk_msg_and_sk_skb_run_on_traffic(objs: purebpf.Collection, sockmap: Map,
                                          mechanism: str) -> None:
    msg, skb = objs.programs["count_msg"], objs.programs["count_skb"]
    with attach_sockmap(msg, sockmap, mechanism=mechanism) as a1, \
            attach_sockmap(skb, sockmap, "skb_verdict", mechanism=mechanism) as a2:
        kind = Link if mechanism == "bpf_link" else SockmapAttachment
        assert isinstance(a1, kind) and isinstance(a2, kind)
        info = a1.info()
        assert (info.type, info.attach_type, info.mechanism) == \
            (LinkType.SOCKMAP, AttachType.SK_MSG_VERDICT, mechanism)
        assert info.target["map_id"] == sockmap.id
        assert [(p.attach_type, p.program_id, p.name, p.link_id)
                for p in query_sockmap(sockmap)] == \
            [(AttachType.SK_MSG_VERDICT, msg.id, "count_msg", a1.id),
             (AttachType.SK_SKB_VERDICT, skb.id, "count_skb", a2.id)]
        with connection_in(sockmap) as (client, server):
            client.sendall(b"hello")
            assert _recv(server, 5) == b"hello"
            assert hits(objs, 0) >= 1 and hits(objs, 1) >= 1
    assert query_sockmap(sockmap) == []
    seen = hits(objs, 0), hits(objs, 1)
    with connection_in(sockmap) as (client, server):
        client.sendall(b"again")
        assert _recv(server, 5) == b"again"
    assert (hits(objs, 0), hits(objs, 1)) == seen  # detached by close()


@pytest.mark.parametrize("mechanism", mechanisms())
def test_one_program_per_attach_type(objs: purebpf.Collection, sockmap: Map,
                                     mechanism: str) -> None:
    msg = objs.programs["count_msg"]
    with attach_sockmap(msg, sockmap, mechanism=mechanism):
        with pytest.raises(BPFError) as exc:
            attach_sockmap(msg, sockmap, mechanism=mechanism)
        assert exc.value.errno == errno.EBUSY
        assert "already has" in str(exc.value) and "SK_MSG_VERDICT" in str(exc.value)
        assert [p.program_id for p in query_sockmap(sockmap)] == [msg.id]
    with attach_sockmap(objs.programs["stream_verdict"], sockmap, mechanism=mechanism):
        # A verdict alone does not go beside a stream verdict.
        with pytest.raises(BPFError) as exc:
            attach_sockmap(objs.programs["count_skb"], sockmap, mechanism=mechanism)
        assert exc.value.errno == errno.EBUSY
    assert query_sockmap(sockmap) == []


@pytest.mark.parametrize("mechanism", mechanisms())
def test_update_and_detach(objs: purebpf.Collection, sockmap: Map, mechanism: str) -> None:
    msg = objs.programs["count_msg"]
    code = asm.assemble([asm.Mov(asm.R0, 1), asm.Exit()])  # SK_PASS, counting nothing
    spec = code.spec("quiet_msg", ProgramType.SK_MSG,
                     expected_attach_type=AttachType.SK_MSG_VERDICT)
    with Program.load(spec) as quiet, attach_sockmap(msg, sockmap, mechanism=mechanism) as a:
        with pytest.raises(BPFError) as exc:
            a.update(quiet, expected=quiet)
        assert exc.value.errno == errno.EPERM
        a.update(quiet, expected=msg)
        assert [p.program_id for p in query_sockmap(sockmap, "msg_verdict")] == [quiet.id]
        with connection_in(sockmap) as (client, server):
            client.sendall(b"hi")
            assert _recv(server, 2) == b"hi"
        assert hits(objs, 0) == 0
        a.detach()
        assert query_sockmap(sockmap) == []
        with pytest.raises(BPFError) as exc:
            a.detach()
        assert exc.value.errno == errno.ENOLINK
    assert query_sockmap(sockmap) == []


def test_stream_parser_and_verdict(objs: purebpf.Collection, sockmap: Map) -> None:
    with attach_sockmap(objs.programs["parser"], sockmap) as p, \
            attach_sockmap(objs.programs["stream_verdict"], sockmap) as v:
        assert p.info().attach_type == AttachType.SK_SKB_STREAM_PARSER
        assert v.info().attach_type == AttachType.SK_SKB_STREAM_VERDICT
        assert {p.attach_type for p in query_sockmap(sockmap)} == \
            {AttachType.SK_SKB_STREAM_PARSER, AttachType.SK_SKB_STREAM_VERDICT}
    assert query_sockmap(sockmap) == []


def test_sockmap_errors(objs: purebpf.Collection, sockmap: Map) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        attach_sockmap(objs.programs["any_skb"], sockmap)
    msg = str(exc.value)
    assert "cannot tell" in msg and "'sk_skb'" in msg and "SK_SKB_VERDICT" in msg
    with pytest.raises(InvalidArgumentError, match="SK_MSG program cannot run at "
                       "SK_SKB_STREAM_PARSER"):
        attach_sockmap(objs.programs["count_msg"], sockmap, "stream_parser")
    with pytest.raises(InvalidArgumentError, match="is SK_LOOKUP"):
        attach_sockmap(objs.programs["count_lookup"], sockmap)
    with pytest.raises(InvalidArgumentError, match="the map is ARRAY"):
        attach_sockmap(objs.programs["count_msg"], objs.maps["hits"])
    with pytest.raises(TypeError, match="expected a purebpf.Map"):
        attach_sockmap(objs.programs["count_msg"], 3)  # type: ignore[arg-type]
    assert query_sockmap(sockmap) == []


def test_closing_the_map_first(objs: purebpf.Collection) -> None:
    """A map closed before its prog_attach attachment takes its programs along (once the
    kernel frees it); the attachment's close() detaches or finds nothing, and never
    raises."""
    m = Map.create(MapSpec(MapType.SOCKHASH, key_size=4, value_size=4, max_entries=2))
    with m:
        att = attach_sockmap(objs.programs["count_msg"], m, mechanism="prog_attach")
    assert isinstance(att, SockmapAttachment)
    att.close()
    assert att.closed


def _kernel() -> tuple[int, int]:
    major, minor = platform.release().split(".")[:2]
    return int(major), int(re.match(r"\d+", minor).group())  # type: ignore[union-attr]


def test_the_link_probes_match_the_kernel_version() -> None:
    assert has_link(ProgramType.SK_MSG, AttachType.SK_MSG_VERDICT) == (_kernel() >= (6, 10))
    assert has_link(ProgramType.SK_SKB, AttachType.SK_SKB_VERDICT) == (_kernel() >= (6, 10))
    assert has_link(ProgramType.FLOW_DISSECTOR, AttachType.FLOW_DISSECTOR) == \
        (_kernel() >= (5, 8))
    assert has_link(ProgramType.SK_LOOKUP, AttachType.SK_LOOKUP) == (_kernel() >= (5, 9))


def test_insisting_on_a_sockmap_link(objs: purebpf.Collection, sockmap: Map) -> None:
    msg = objs.programs["count_msg"]
    if has_link(ProgramType.SK_MSG, AttachType.SK_MSG_VERDICT):
        with attach_sockmap(msg, sockmap, mechanism="bpf_link") as link:
            assert isinstance(link, Link)
    else:
        with pytest.raises(NotSupportedError) as exc:
            attach_sockmap(msg, sockmap, mechanism="bpf_link")
        assert "no bpf_link for this hook" in str(exc.value)
        assert exc.value.feature == "sockmap bpf_link (BPF_LINK_CREATE, 6.10)"
    assert query_sockmap(sockmap) == []
