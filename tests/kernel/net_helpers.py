"""Network fixtures for kernel tests: a network namespace with a veth pair, and crafted frames.

Use them from any test file::

    from net_helpers import VethPair, veth  # noqa: F401  (veth is a fixture)

    def test_something(veth: VethPair) -> None:
        ...                                  # attach to veth.host (name) / veth.host_index
        veth.send_udp(10)                    # 10 frames from the namespace -> host end

``veth`` (function-scoped fixture) gives a :class:`VethPair`: a fresh network namespace
``purebpf-test-<pid>-<n>`` holding the peer end ``pbp<pid><n>``, and the host end
``pbh<pid><n>`` in the test's own namespace. Both ends are up, have no addresses (IPv6 is
disabled on both so no link-local address appears) and no routes: traffic never leaves the
pair. ``VethPair.send_udp`` writes crafted Ethernet/IPv4/UDP frames (destination port
``TEST_PORT`` = 4242, what tests/testdata/attach_net.c counts) with an AF_PACKET socket opened
inside the namespace, so they arrive on the host end where XDP and tc ingress run;
``VethPair.send_udp_from_host`` sends them out of the host end (tc egress runs).

On teardown the namespace is deleted (which deletes both veth ends) and the fixture checks
that the namespace, the host interface and any clsact qdisc are gone. Needs root, ``ip``
(iproute2) and the veth driver.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

TEST_PORT = 4242
CLONE_NEWNET = 0x40000000
_counter = itertools.count()
T = TypeVar("T")

# The drivers and tc modules these fixtures use, loaded now, at import: where they are
# modules, loading one creates a module BTF object, which must not count as something a
# test left behind. (Nothing happens where they are built in or already loaded.)
MODULES = ("veth", "ifb", "sch_ingress", "cls_bpf")
try:
    subprocess.run(["modprobe", "-q", "-a", *MODULES], capture_output=True)
except OSError:  # no modprobe: the kernel loads them on demand, and a test may then fail
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(dst_mac: bytes, src_mac: bytes, *, src_ip: str = "10.199.0.2",
              dst_ip: str = "10.199.0.1", sport: int = 40000, dport: int = TEST_PORT,
              payload: bytes = b"purebpf") -> bytes:
    """One Ethernet/IPv4/UDP frame (IP checksum filled in, UDP checksum 0 = none)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return dst_mac + src_mac + struct.pack("!H", 0x0800) + ip + udp


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that entered network namespace ``netns`` (setns(2)); sockets
    it opens stay in that namespace and may be used from any thread afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    box: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=run, name=f"netns-{netns}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _mac(ifname: str, netns: str | None = None) -> bytes:
    args = ("-n", netns) if netns else ()
    out = _ip(*args, "-o", "link", "show", "dev", ifname).stdout
    return bytes.fromhex(out.split("link/ether ", 1)[1].split()[0].replace(":", ""))


@dataclass
class VethPair:
    """A veth pair: ``host`` in the test's namespace, ``peer`` inside ``netns``."""

    netns: str
    host: str
    peer: str
    host_index: int
    host_mac: bytes
    peer_mac: bytes

    def send_udp(self, count: int = 1, **fields: object) -> None:
        """Send ``count`` UDP frames from the namespace end; they arrive on ``host``."""
        frame = udp_frame(self.host_mac, self.peer_mac, **fields)  # type: ignore[arg-type]
        sock = in_netns(self.netns, lambda: _packet_socket(self.peer))
        with sock:
            for _ in range(count):
                sock.send(frame)

    def send_udp_from_host(self, count: int = 1, **fields: object) -> None:
        """Send ``count`` UDP frames out of ``host`` (through its egress hooks)."""
        frame = udp_frame(self.peer_mac, self.host_mac, **fields)  # type: ignore[arg-type]
        with _packet_socket(self.host) as sock:
            for _ in range(count):
                sock.send(frame)


def _packet_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    sock.bind((ifname, 0))
    return sock


def _disable_ipv6(ifname: str) -> None:
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    if os.path.exists(path):
        with open(path, "w") as f:
            f.write("1")


def make_veth() -> VethPair:
    """Create the namespace and the pair (the ``veth`` fixture's setup); see
    :func:`remove_veth`."""
    n = f"{os.getpid() % 100000}{next(_counter)}"
    netns, host, peer = f"purebpf-test-{n}", f"pbh{n}", f"pbp{n}"
    _ip("netns", "add", netns)
    try:
        _ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", netns)
        _disable_ipv6(host)
        in_netns(netns, lambda: _disable_ipv6(peer))
        _ip("link", "set", host, "up")
        _ip("-n", netns, "link", "set", peer, "up")
        return VethPair(netns, host, peer, socket.if_nametoindex(host), _mac(host),
                        _mac(peer, netns))
    except BaseException:
        _ip("netns", "del", netns, check=False)
        raise


def remove_veth(pair: VethPair) -> None:
    """Delete the pair and the namespace; check nothing is left. (The host end is deleted
    first, synchronously: a namespace's own teardown runs later, from a kernel workqueue.)"""
    _ip("link", "del", pair.host, check=False)
    _ip("netns", "del", pair.netns)
    assert pair.netns not in _ip("netns", "list").stdout.split(), "network namespace left"
    assert _ip("link", "show", "dev", pair.host, check=False).returncode != 0, \
        f"veth {pair.host} left behind"


@pytest.fixture
def veth() -> Iterator[VethPair]:
    """A fresh netns + veth pair (see the module docstring), removed after the test."""
    pair = make_veth()
    try:
        yield pair
    finally:
        remove_veth(pair)


def tc_qdiscs(ifname: str) -> str:
    """``tc qdisc show dev IFNAME`` (the reference tool's view, for checking cleanup)."""
    res = subprocess.run(["tc", "qdisc", "show", "dev", ifname], capture_output=True,
                         text=True, check=True)
    return res.stdout


@contextlib.contextmanager
def ifb_interface() -> Iterator[str]:
    """A throwaway ifb interface in the test's namespace (a driver with no native XDP),
    deleted afterwards."""
    name = f"pbi{os.getpid() % 100000}{next(_counter)}"
    _ip("link", "add", name, "type", "ifb")
    try:
        _disable_ipv6(name)
        _ip("link", "set", name, "up")
        yield name
    finally:
        _ip("link", "del", name)


def xdp_prog_ids(ifname: str) -> list[int]:
    """The XDP program ids ``ip link show dev IFNAME`` prints: the reference tool's view."""
    out = _ip("link", "show", "dev", ifname).stdout
    return [int(n) for n in re.findall(r"prog/xdp\S* id (\d+)", out)]
