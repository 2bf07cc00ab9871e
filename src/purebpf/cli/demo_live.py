"""``purebpf demo --live``: the load balancer on real packets.

A network namespace and a veth pair are made for the run: the balancer's XDP program
(``balance`` in examples/lb.c) is attached to the host end, and a sender process inside the
namespace writes crafted Ethernet/IPv4/UDP frames with an AF_PACKET socket on the other
end. The program reports each choice to a ring buffer and drops the frame, so the traffic
never leaves the pair. While traffic flows, one service's table is grown with ``staged()``;
every packet's record says which table it used. Everything made is removed at the end,
also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.resources
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import purebpf
from purebpf import MapOfMaps
from purebpf.events import RingBuffer
from purebpf.link import attach_xdp

from ._common import CLIError
from .demo import GROW_SERVICE, GROWN, SERVICES, fill_tables, table

# The sender runs inside the namespace (ip netns exec), as its own process: it needs
# nothing but the socket module. argv: interface, packets (0: until stdin closes), seed,
# then the destination ports to spread the packets over.
_SENDER = r"""
import random, socket, struct, sys, select
iface, count, seed, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    [int(p) for p in sys.argv[4:]]
rng = random.Random(seed)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
def frame(dport):
    saddr = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
    eth = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 1]) + struct.pack("!H", 0x0800)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, saddr,
                     bytes([192, 0, 2, 1]))
    udp = struct.pack("!HHHH", rng.randrange(1024, 65536), dport, 8, 0)
    f = eth + ip + udp
    return f + bytes(64 - len(f))
sent = 0
while count == 0 or sent < count:
    for _ in range(50 if count == 0 else min(50, count - sent)):
        s.send(frame(rng.choice(ports)))
        sent += 1
    # paced: at most ~50 frames per millisecond, so one consumer keeps up
    r, _, _ = select.select([sys.stdin], [], [], 0.001)
    if r and count == 0:
        break
print(sent, flush=True)
"""

EVENT = struct.Struct("=III")  # struct event: service, backend, table_size


def run_live(args: argparse.Namespace) -> int:
    """Entry point of ``purebpf demo --live``."""
    if args.pin:
        raise CLIError("--pin does not go with --live: the live demo removes everything it "
                       "made when it ends")
    if os.geteuid() != 0:
        print("purebpf demo --live makes a network namespace and a veth pair and attaches "
              "an XDP program:\n  run it as root (sudo purebpf demo --live).")
        return 1
    if shutil.which("ip") is None:
        raise CLIError("purebpf demo --live needs the 'ip' command (iproute2) to make its "
                       "network namespace and veth pair")
    tag = f"{os.getpid() % 100000}"
    obj = importlib.resources.files("purebpf") / "data" / "lb.bpf.o"
    with contextlib.ExitStack() as stack:
        host, peer, ns = stack.enter_context(_veth_in_netns(tag))
        path = stack.enter_context(importlib.resources.as_file(obj))
        coll = stack.enter_context(purebpf.load(path))
        return _live(coll, host, peer, ns, args.packets, args.seed)
    raise AssertionError("unreachable")  # for mypy: ExitStack may swallow exceptions


@contextlib.contextmanager
def _veth_in_netns(tag: str) -> Iterator[tuple[str, str, str]]:
    """A namespace and a veth pair (host end here, peer end inside), removed on exit."""
    ns, host, peer = f"purebpf-demo-{tag}", f"pbdemo{tag}", f"pbdemo{tag}p"

    def ip(*argv: str) -> None:
        res = subprocess.run(["ip", *argv], capture_output=True, text=True)
        if res.returncode:
            raise CLIError(f"ip {' '.join(argv)}: {res.stderr.strip()}")

    ip("netns", "add", ns)
    try:
        ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
        try:
            ip("link", "set", host, "up")
            ip("-n", ns, "link", "set", peer, "up")
            print(f"made network namespace {ns} with veth pair {host} <-> {peer}")
            yield host, peer, ns
        finally:
            subprocess.run(["ip", "link", "del", host], capture_output=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        print(f"removed {ns} and {host}")


@contextlib.contextmanager
def _sender(ns: str, peer: str, count: int, seed: int,
            ports: list[int]) -> Iterator[subprocess.Popen[str]]:
    """The sender process; killed if the demo stops early (Ctrl-C, an error)."""
    s = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _SENDER, peer,
                          str(count), str(seed), *map(str, ports)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        yield s
    finally:
        if s.poll() is None:
            s.kill()
        s.communicate()


class _Records:
    """Consumes the ring buffer in a thread, keeping (service, backend, table_size)."""

    def __init__(self, rb: RingBuffer) -> None:
        self.rb = rb
        rb.callback = self.callback
        self.seen: list[tuple[int, int, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ringbuf")
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rb.poll(timeout=0.05)

    def callback(self, data: bytes) -> None:
        self.seen.append(EVENT.unpack_from(data))

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.seen) < n and time.monotonic() < end:
            time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.rb.consume()


def _live(coll: purebpf.Collection, host: str, peer: str, ns: str, n_packets: int,
          seed: int) -> int:
    services = coll.maps["services"]
    assert isinstance(services, MapOfMaps)
    fill_tables(services)
    prog = coll.programs["balance"]
    n_packets = n_packets or 600
    with attach_xdp(prog, host) as link:
        info = link.info()
        print(f"attached {prog.name!r} to {host} (ifindex {info.target.get('ifindex')}) "
              f"with XDP via {info.mechanism}, link id {info.id}")
        with RingBuffer(coll.maps["events"]) as rb:
            records = _Records(rb)
            try:
                return _traffic(services, records, ns, peer, n_packets, seed)
            finally:
                records.close()


def _traffic(services: MapOfMaps, records: _Records, ns: str, peer: str, n_packets: int,
             seed: int) -> int:
    # 1. A fixed number of packets, spread over the services.
    with _sender(ns, peer, n_packets, seed, list(SERVICES)) as s:
        out, _ = s.communicate(timeout=600)
    records.wait_for(n_packets)
    counts: dict[int, collections.Counter[int]] = {svc: collections.Counter()
                                                    for svc in SERVICES}
    for svc, backend, _ in records.seen:
        if svc in counts:
            counts[svc][backend] += 1
    print(f"{out.strip()} UDP packets sent from {ns}; the XDP program reported "
          f"{len(records.seen)} through the ring buffer:")
    for svc, c in counts.items():
        total = sum(c.values())
        spread = "  ".join(f"{b}:{c[b] * 100 // max(total, 1):>2}%" for b in SERVICES[svc])
        print(f"  service {svc:>3}  {total:>4} packets  {spread}")

    # 2. Grow one service's table with staged() while packets keep arriving.
    mark = len(records.seen)
    with _sender(ns, peer, 0, seed + 1, [GROW_SERVICE]) as s:
        records.wait_for(mark + 1000)  # traffic is flowing
        during = len(records.seen)
        with services.staged(GROW_SERVICE, max_entries=len(GROWN) + 1) as bigger:
            bigger.update_batch(range(len(GROWN) + 1), table(GROWN))
        records.wait_for(len(records.seen) + 1000)  # and goes on after the swap
        out, _ = s.communicate(timeout=30)  # closes its stdin: the sender stops
    sent = int(out.strip() or 0)
    records.wait_for(mark + sent, timeout=5)
    live = records.seen[mark:]
    ok = set(SERVICES[GROW_SERVICE]) | set(GROWN)
    bad = [r for r in live if r[1] not in ok]
    before = collections.Counter(b for _, b, size in live if size == len(SERVICES[GROW_SERVICE]))
    after = collections.Counter(b for _, b, size in live if size == len(GROWN))
    print(f"\ngrew service {GROW_SERVICE} from {len(SERVICES[GROW_SERVICE])} to "
          f"{len(GROWN)} backends with staged() while {sent} packets flowed "
          f"({during - mark} before the build started):")
    print(f"  old table: {sum(before.values())} packets to backends {sorted(before)}")
    print(f"  new table: {sum(after.values())} packets to backends {sorted(after)}")
    print(f"  packets that saw a half-built or missing table: {len(bad)}")
    lost = sent - len(live)
    if lost:
        print(f"  ({lost} records not read: the ring buffer was full)")
    print()
    print(services.tree(limit=8))
    return 1 if bad or not after else 0
