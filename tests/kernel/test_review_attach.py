"""Review of links, attachments and events: malformed inputs get our errors (never a
struct.error, OverflowError, ctypes error, a silently truncated value, or a hang), and
nothing is attached on the way."""

from __future__ import annotations

import errno
import os
import pathlib
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import open_fds, wait_for
from net_helpers import VethPair, veth, xdp_prog_ids  # noqa: F401  (veth is a fixture)

import purebpf
from purebpf import BPFError, InvalidArgumentError, ProgramType, asm
from purebpf._sys import links as L
from purebpf._sys import netlink as nl
from purebpf.errors import ClosedError
from purebpf.events import PerfEventArray, Poller, RingBuffer
from purebpf.link import (Link, attach_cgroup, attach_netns, attach_raw_tracepoint,
                          attach_tc, attach_tracepoint, attach_uprobe, attach_xdp, net_show,
                          query_cgroup)
from purebpf.link.cgroup import cgroup2_mount

TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
_TRACING = ["tp_getpid", "tp_any", "raw_sys_enter", "on_call", "on_return"]


@pytest.fixture
def net() -> Iterator[purebpf.Collection]:
    with purebpf.load(TESTDATA / "attach_net.o") as c:
        yield c


@pytest.fixture
def tracing() -> Iterator[purebpf.Collection]:
    spec = purebpf.CollectionSpec.from_file(TESTDATA / "tracing.o")
    for n, p in spec.programs.items():
        p.autoload = n in _TRACING
    with purebpf.Collection.load(spec) as c:
        yield c


def _no_links_of(coll: purebpf.Collection) -> None:
    ids = {p.id for p in coll.programs.values()}
    for lid in Link.ids():
        try:
            with Link.from_id(lid) as lk:
                assert lk.info().program_id not in ids, f"link {lid} left attached"
        except BPFError:
            pass


# -- ifindex ----------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [1 << 31, 1 << 40, (1 << 64) + 1],
                         ids=["2^31", "2^40", "2^64+1"])
def test_ifindex_past_s32_is_enodev(net: purebpf.Collection, index: int) -> None:
    # Was: struct.error "'i' format requires ..." from packing ifinfomsg/tcmsg.
    for call in (lambda: attach_xdp(net.programs["xdp_a"], index),
                 lambda: attach_tc(net.programs["tc_a"], index),
                 lambda: net_show(index)):
        with pytest.raises(BPFError) as exc:
            call()
        assert exc.value.errno == errno.ENODEV
        assert f"no interface with ifindex {index}" in str(exc.value)


def test_netlink_requests_refuse_bad_ifindex() -> None:
    for call in (lambda: nl.interface(1 << 40), lambda: nl.filters(-5, nl.PARENT_INGRESS),
                 lambda: nl.xdp_set(1 << 32, -1, 0)):
        with pytest.raises(nl.NetlinkError) as exc:
            call()
        assert exc.value.errno == errno.ENODEV


# -- netlink replies of unexpected lengths ----------------------------------------------------

def _ifinfo(index: int, *attrs: bytes) -> bytes:
    return struct.pack("=BxHiII", 0, 1, index, 0, 0) + b"".join(attrs)


def test_netlink_empty_xdp_attached_attribute() -> None:
    # Was: IndexError from x[IFLA_XDP_ATTACHED][0] on a zero-length attribute.
    payload = _ifinfo(7, nl.attr_str(nl.IFLA_IFNAME, "eth7"),
                      nl.nested(nl.IFLA_XDP, nl.attr(nl.IFLA_XDP_ATTACHED, b""),
                                nl.attr(nl.IFLA_XDP_PROG_ID, b"\1")))
    i = nl._interface(payload)
    assert (i.index, i.name, i.xdp.attached, i.xdp.prog_id) == (7, "eth7", 0, 0)


@pytest.mark.parametrize("parse", [nl._interface, nl._filter], ids=["link", "filter"])
def test_netlink_short_messages_are_eproto(parse: object) -> None:
    # Was: struct.error "unpack_from requires a buffer of at least 16 bytes".
    for payload in (b"", b"\0" * 7):
        with pytest.raises(nl.NetlinkError) as exc:
            parse(payload)  # type: ignore[operator]
        assert exc.value.errno == errno.EPROTO
        assert "malformed rtnetlink reply" in str(exc.value)


def test_netlink_attributes_with_lengths_past_the_data() -> None:
    # rta_len past the end, below the header, and a nested IFLA_XDP cut short: parsed up to
    # what is whole, no exception.
    bad = struct.pack("=HH", 200, nl.IFLA_IFNAME) + b"x" * 8
    assert nl.parse_attrs(bad) == {}
    assert nl.parse_attrs(struct.pack("=HH", 2, 1) + b"\0" * 8) == {}
    i = nl._interface(_ifinfo(3, nl.attr(nl.IFLA_XDP, struct.pack("=HH", 64, 4) + b"\1")))
    assert i.xdp.prog_id == 0


# -- tracing inputs ---------------------------------------------------------------------------

@pytest.mark.parametrize("cookie", [1 << 64, -1], ids=["2^64", "-1"])
def test_cookie_out_of_u64(tracing: purebpf.Collection, cookie: int) -> None:
    # Was: struct.error "argument out of range" from the BPF_LINK_CREATE union.
    with pytest.raises(InvalidArgumentError, match=f"cookie={cookie} does not fit") as exc:
        attach_tracepoint(tracing.programs["tp_any"], "syscalls", "sys_enter_getpid",
                          cookie=cookie)
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        attach_raw_tracepoint(tracing.programs["raw_sys_enter"], "sys_enter", cookie=cookie)
    _no_links_of(tracing)


def test_raw_tracepoint_name_with_nul_attaches_nothing(tracing: purebpf.Collection) -> None:
    # Was: attached to 'sys_enter' (the kernel reads the name up to the NUL).
    with pytest.raises(InvalidArgumentError, match="not a raw tracepoint name") as exc:
        attach_raw_tracepoint(tracing.programs["raw_sys_enter"], "sys_enter\0whatever")
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(TypeError, match="attach raw tracepoint 5: the raw tracepoint name "
                       "must be a str"):
        attach_raw_tracepoint(tracing.programs["raw_sys_enter"], 5)  # type: ignore[arg-type]
    _no_links_of(tracing)


def test_tracepoint_category_not_a_str(tracing: purebpf.Collection) -> None:
    with pytest.raises(TypeError, match="tracepoint category must be a str"):
        attach_tracepoint(tracing.programs["tp_any"], 5, "x")  # type: ignore[arg-type]


def test_uprobe_offset_past_u64_attaches_nothing(tracing: purebpf.Collection) -> None:
    # Was: ctypes kept the low 64 bits: a uprobe at file offset 0 of the binary.
    with pytest.raises(InvalidArgumentError, match="offset=18446744073709551616 does not "
                       "fit") as exc:
        attach_uprobe(tracing.programs["on_call"], "/bin/true", 1 << 64)
    assert exc.value.errno == errno.EINVAL
    _no_links_of(tracing)


@pytest.mark.parametrize("pid", [1 << 32, 1 << 40, -2], ids=["2^32", "2^40", "-2"])
def test_uprobe_pid_out_of_range_attaches_nothing(tracing: purebpf.Collection,
                                                  pid: int) -> None:
    # Was: 2^32 reached perf_event_open as pid 0 (this process) and attached.
    with pytest.raises(InvalidArgumentError, match=f"pid={pid} is not a process id"):
        attach_uprobe(tracing.programs["on_call"], "/bin/true", 0x1000, pid=pid)
    _no_links_of(tracing)


def test_uprobe_path_with_nul(tracing: purebpf.Collection) -> None:
    # Was: ValueError "embedded null byte" from open() (by symbol); by offset the perf
    # event would get the path up to the NUL.
    for symbol in ("main", 0x1000):
        with pytest.raises(InvalidArgumentError, match="the path contains a NUL byte") as exc:
            attach_uprobe(tracing.programs["on_call"], "/bin/true\0/x", symbol)
        assert exc.value.errno == errno.EINVAL
    _no_links_of(tracing)


def test_uprobe_pid_not_an_int(tracing: purebpf.Collection) -> None:
    with pytest.raises(TypeError, match="pid must be an int"):
        attach_uprobe(tracing.programs["on_call"], "/bin/true", 0x1000,
                      pid="1")  # type: ignore[arg-type]


# -- fds ---------------------------------------------------------------------------------------

def test_cgroup_and_netns_fd_past_c_int() -> None:
    # Was: OverflowError "signed integer is greater than maximum" from os.dup.
    with purebpf.load(TESTDATA / "attach_cgroup.o") as cg, \
            purebpf.load(TESTDATA / "attach_sock.o") as sk:
        prog = next(p for p in cg.programs.values())
        with pytest.raises(BPFError, match=r"fd 1099511627776 is not open") as exc:
            attach_cgroup(prog, 1 << 40)
        assert exc.value.errno == errno.EBADF
        lookup = next(p for p in sk.programs.values() if p.type.name == "SK_LOOKUP")
        with pytest.raises(BPFError, match=r"fd 1099511627776 is not open") as exc:
            attach_netns(lookup, 1 << 40)
        assert exc.value.errno == errno.EBADF


def test_netns_path_to_a_fifo_does_not_block(tmp_path: pathlib.Path) -> None:
    # Was: os.open of a FIFO with no writer blocked forever.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with purebpf.load(TESTDATA / "attach_sock.o") as sk:
        lookup = next(p for p in sk.programs.values() if p.type.name == "SK_LOOKUP")
        with pytest.raises(InvalidArgumentError, match="is not a network namespace") as exc:
            attach_netns(lookup, fifo)
        assert exc.value.errno == errno.EINVAL


# -- events: close() while several threads are in poll() ---------------------------------------

def _close_under_queued_polls(obj: Any, poll: Callable[[], object], waker: Any) -> None:
    """Threads call ``poll(None)`` (one waits in epoll holding the lock, the others queue
    for the lock), then another thread closes ``obj``: every poll and the close must end.
    On a hang, ``waker`` is woken until the threads end, and the test fails."""
    started: list[int] = []
    errors: list[BaseException] = []

    def poller() -> None:
        started.append(1)
        try:
            poll()
        except ClosedError:
            pass  # the close came first
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=poller) for _ in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(started) == len(threads))
    time.sleep(0.02)  # let them reach poll(): one in epoll, the rest queued on the lock
    closer = threading.Thread(target=obj.close)
    closer.start()
    closer.join(30)
    hung = closer.is_alive()
    while closer.is_alive():
        waker.wake()  # rescue a hung run so that the test can report and clean up
        closer.join(0.1)
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a poll() did not end after close()"
    assert not hung, "close() hung: a poll() that queued for the lock waits forever"
    assert not errors


@pytest.mark.parametrize("kind", ["ring buffer", "perf event array"])
def test_close_while_threads_queue_in_poll(kind: str) -> None:
    # Was: close() wakes once; the poll holding the lock took the wake and returned, the
    # next queued poll got the lock before close() and waited in epoll forever (timeout
    # None), and close() waited for the lock forever.
    with purebpf.load(TESTDATA / "events.o") as coll:
        for _ in range(20):
            obj: Any = RingBuffer(coll.maps["events"]) if kind == "ring buffer" else \
                PerfEventArray(coll.maps["perf"])
            with obj:
                _close_under_queued_polls(obj, lambda: obj.poll(None), obj._waiter)


def test_poller_close_while_threads_queue_in_poll() -> None:
    with purebpf.load(TESTDATA / "events.o") as coll, \
            RingBuffer(coll.maps["events"]) as rb:
        for _ in range(20):
            with Poller(rb) as p:
                _close_under_queued_polls(p, lambda: p.poll(None), p._waiter)


def test_closing_one_perf_event_array_leaves_anothers_rings() -> None:
    # Was: close() deleted every map entry at its CPUs, also those a second
    # PerfEventArray on the same map had stored since: the second got no samples.
    with purebpf.load(TESTDATA / "events.o") as coll:
        coll.maps["cfg"][0] = 3
        first = PerfEventArray(coll.maps["perf"])
        with PerfEventArray(coll.maps["perf"]) as second:
            first.close()
            coll.programs["perf_output"].test_run(bytes(64))
            assert len(second.drain()) == 3
        # and the last one closed still removes its entries
        with PerfEventArray(coll.maps["perf"]) as third:
            pass
        assert third.closed
        failed = int(coll.maps["stats"][2])  # ST_PERF_FAIL of events.c
        coll.programs["perf_output"].test_run(bytes(64))
        assert int(coll.maps["stats"][2]) == failed + 3  # no entry: output fails


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, 1 << 70],
                         ids=["inf", "1e300", "2^70"])
def test_poll_with_a_timeout_past_epoll(timeout: float) -> None:
    # Was: OverflowError from epoll.poll; such a timeout means "no limit".
    with purebpf.load(TESTDATA / "events.o") as coll, \
            RingBuffer(coll.maps["events"]) as rb, Poller() as p:
        coll.maps["cfg"][0] = 2
        coll.programs["rb_output"].test_run(bytes(64))
        assert rb.poll(timeout) == 2
        assert len(rb.drain()) == 2
        p.add(rb)
        coll.programs["rb_output"].test_run(bytes(64))
        assert p.poll(timeout) == 2
        assert len(rb.drain()) == 2


def test_poll_with_a_bad_timeout() -> None:
    # Was: ValueError (NaN) or a TypeError from comparing with a float.
    with purebpf.load(TESTDATA / "events.o") as coll, \
            RingBuffer(coll.maps["events"]) as rb, Poller(rb) as p:
        for poll, what in ((rb.poll, "poll ring buffer (map 'events')"),
                           (p.poll, "poll poller")):
            with pytest.raises(InvalidArgumentError, match=r"timeout is NaN") as exc:
                poll(float("nan"))
            assert str(exc.value).startswith(what) and exc.value.errno == errno.EINVAL
            for bad in ("1", True):
                with pytest.raises(TypeError, match="timeout must be a number"):
                    poll(bad)  # type: ignore[arg-type]


def test_events_refuse_what_is_not_a_map() -> None:
    # Was: AttributeError "'int' object has no attribute 'type'" / "... 'fileno'".
    with pytest.raises(TypeError, match="open ring buffer: expected a purebpf.Map, not int"):
        RingBuffer(5)
    with pytest.raises(TypeError, match="open perf event array: expected a purebpf.Map"):
        PerfEventArray(None)
    with pytest.raises(TypeError, match="add to poller: expected a RingBuffer or "
                       "PerfEventArray, not int"):
        Poller(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("section", ["kprobe/f+zz", "kprobe/f+", "kretprobe/f+0x"])
def test_auto_attach_bad_kprobe_offset_in_section(section: str) -> None:
    # Was: ValueError "invalid literal for int() with base 0" from the section's offset.
    spec = purebpf.CollectionSpec.from_file(TESTDATA / "tracing.o")
    for n, p in spec.programs.items():
        p.autoload = n == "kprobe_getpgid"
    spec.programs["kprobe_getpgid"].section = section
    with purebpf.Collection.load(spec) as coll:
        with pytest.raises(InvalidArgumentError, match="is not an offset") as exc:
            coll.programs["kprobe_getpgid"].attach()
        assert exc.value.errno == errno.EINVAL


# -- disconnect() -----------------------------------------------------------------------------

def test_update_after_disconnect_stays_disconnected(net: purebpf.Collection,
                                                    veth: VethPair) -> None:
    # Was: update() put the real undo back, so close() after disconnect() + update()
    # detached the program that was meant to outlive the object.
    a, b = net.programs["xdp_a"], net.programs["xdp_b"]
    att = attach_xdp(a, veth.host, mechanism="netlink")
    att.disconnect()
    att.update(b)
    att.close()
    assert xdp_prog_ids(veth.host) == [b.id]  # removed with the veth pair by the fixture


def test_detach_after_disconnect_detaches(net: purebpf.Collection, veth: VethPair) -> None:
    # Was: detach() ran the disconnected no-op: it reported success and left it attached.
    with attach_xdp(net.programs["xdp_a"], veth.host, mechanism="netlink") as att:
        att.disconnect()
        att.detach()
        assert xdp_prog_ids(veth.host) == []


def test_disconnected_cgroup_attachment_closes_its_cgroup_fd() -> None:
    # Was: close() of a disconnected CgroupAttachment never closed the cgroup fd it kept.
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 mount in /proc/self/mounts (cgroup2_mount() is None)")
    path = os.path.join(mount, "purebpf-review-" + uuid.uuid4().hex[:10])
    os.mkdir(path)
    try:
        with purebpf.load(TESTDATA / "attach_cgroup.o") as coll:
            prog = next(p for p in coll.programs.values() if p.type.name == "CGROUP_SOCK_ADDR")
            before = open_fds()
            att = attach_cgroup(prog, path, mechanism="prog_attach")
            att.disconnect()
            att.close()
            assert open_fds() == before
            assert [p.program_id for p in query_cgroup(path)] == [prog.id]
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                L.prog_detach(fd, prog.fd, int(query_cgroup(path)[0].attach_type))
            finally:
                os.close(fd)
    finally:
        os.rmdir(path)


@pytest.mark.parametrize("mechanism", ["bpf_link", "netlink"])
def test_update_with_what_is_not_a_program(net: purebpf.Collection, veth: VethPair,
                                           mechanism: str) -> None:
    # Was: AttributeError "'int' object has no attribute 'fd'" (Link) / "... 'id'".
    a = net.programs["xdp_a"]
    with attach_xdp(a, veth.host, mechanism=mechanism) as att:
        for args, kw in (((5,), {}), ((None,), {}), ((a,), {"expected": 5})):
            with pytest.raises(TypeError, match=r"^update .*: (program|expected) must be a "
                               "purebpf.Program"):
                att.update(*args, **kw)
        assert att.info().program_id == a.id


def test_list_as_mode_or_direction_is_a_type_error() -> None:
    from purebpf.link import attach_tc, attach_xdp

    a = asm.assemble([asm.Mov(asm.R0, 2), asm.Exit()])
    with purebpf.Program.load(a.spec("x", ProgramType.XDP, license="GPL")) as x, \
            purebpf.Program.load(a.spec("c", ProgramType.SCHED_CLS, license="GPL")) as c:
        with pytest.raises(TypeError, match="mode must be a str, not list"):
            attach_xdp(x, "lo", mode=["native"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="direction must be a str, not list"):
            attach_tc(c, "lo", ["ingress"])  # type: ignore[arg-type]


def test_kprobe_list_with_bad_names_is_refused_before_the_kernel() -> None:
    from purebpf.link import attach_kprobe

    a = asm.assemble([asm.Mov(asm.R0, 0), asm.Exit()])
    with purebpf.Program.load(a.spec("k", ProgramType.KPROBE, license="GPL")) as k:
        with pytest.raises(TypeError, match="function names must be str, not int"):
            attach_kprobe(k, ["vfs_read", 3])  # type: ignore[list-item]
        with pytest.raises(InvalidArgumentError, match="empty or contains a NUL byte"):
            attach_kprobe(k, ["vfs_read", "a\0b"])


def test_collection_close_closes_everything_even_when_a_link_fails() -> None:
    import pathlib

    obj = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "attach_net.o"
    coll = purebpf.load(obj)

    class Broken:
        def close(self) -> None:
            raise RuntimeError("boom")

    coll._links = {"broken": Broken()}  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="boom"):
        coll.close()
    assert all(p.closed for p in coll.programs.values())
    assert all(m.closed for m in coll.maps.values())
