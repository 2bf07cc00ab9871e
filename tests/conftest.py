"""Test-suite-wide fixtures: the bpf() gate, fd and kernel-object leak checks."""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

from purebpf import BPFError, BTFHandle, Map, MapOfMaps, MapSpec, MapType, Program
from purebpf.link import Link

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _bpf_available() -> str | None:
    """None if bpf() map creation works here, else the reason it does not."""
    try:
        with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)):
            return None
    except (BPFError, OSError) as exc:
        return f"bpf() unavailable: {exc}"


_BPF_PROBLEM = _bpf_available()


def _is_kernel_test(item: pytest.Item) -> bool:
    return "tests/kernel" in str(item.fspath).replace(os.sep, "/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_kernel_test(item):
            item.add_marker(pytest.mark.kernel)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") and _BPF_PROBLEM:
        if IN_CI:
            pytest.fail(f"CI=true and {_BPF_PROBLEM}: kernel tests must run, not skip")
        pytest.skip(_BPF_PROBLEM)


def wait_for(pred: Callable[[], bool], timeout: float = 3.0, every: float = 0.01) -> bool:
    """Poll ``pred`` until true (inner maps are freed after an RCU grace period)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return bool(pred())


# --- file descriptors ------------------------------------------------------------------------

def open_fds() -> set[int]:
    """The fds open in this process (anonymous bpf-map fds included).

    Leaves out the fd os.listdir holds while listing /proc/self/fd (closed again by the time
    it is read): otherwise the number it had would count as open, and a leaked fd that later
    takes that number would go unnoticed.
    """
    fds = set()
    for n in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{n}")
        except OSError:
            continue
        fds.add(int(n))
    return fds


# What a leaked fd can point at and still count: every anonymous inode (anon_inode:bpf-map,
# anon_inode:bpf-prog, anon_inode:bpf_link, anon_inode:btf, anon_inode:[perf_event],
# anon_inode:bpf_iter, eventfds ...), sockets and pipes. Plain files and directories are left
# out: a Python file object left open already fails the test with a ResourceWarning, and
# libraries keep some open on purpose (hypothesis's example database, lazily opened logs).
_COUNTED_FD = re.compile(r"anon_inode:|socket:|pipe:")


def _fd_targets(fds: Iterable[int]) -> dict[int, str]:
    targets = {}
    for fd in fds:
        try:
            targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return targets


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Every test closes the fds it opened.

    Counted: an fd that was not open before the test, is open after it (and after a
    ``gc.collect()``, so objects a test merely dropped get their finalizers run), and points
    at an anonymous inode (every kind: bpf-map, bpf-prog, bpf_link, btf, [perf_event],
    bpf_iter, eventfd ...), a socket or a pipe. Not counted: plain files and directories
    (ResourceWarning covers Python's file objects; libraries cache some on purpose).
    """
    before = open_fds()
    yield
    if not open_fds() - before:
        return
    gc.collect()
    leaked = {fd: t for fd, t in _fd_targets(open_fds() - before).items()
              if _COUNTED_FD.match(t)}
    if leaked:
        pytest.fail(f"test leaked fds: {leaked}", pytrace=False)


# --- kernel objects --------------------------------------------------------------------------

# BPF_{MAP,PROG,BTF,LINK}_GET_NEXT_ID walks.
_ID_WALKS: dict[str, Callable[[], Iterator[int]]] = {
    "map": Map.ids,
    "prog": Program.ids,
    "btf": BTFHandle.ids,
    "link": Link.ids,
}


def live_ids() -> dict[str, set[int]]:
    """Every map, program, BTF and link id alive in the kernel now."""
    return {kind: set(walk()) for kind, walk in _ID_WALKS.items()}


def live_map_ids() -> set[int]:
    return set(Map.ids())


def _new_ids(before: dict[str, set[int]]) -> dict[str, set[int]]:
    now = live_ids()
    return {kind: ids - before[kind] for kind, ids in now.items() if ids - before[kind]}


_FDINFO_ID = re.compile(r"^(map|prog|btf|link)_id:\s*(\d+)$", re.M)


def _held_ids(pids: Iterable[str]) -> dict[str, set[int]]:
    """Ids named in the fdinfo of the given processes' fds (a link's fdinfo names its
    program too)."""
    held: dict[str, set[int]] = {kind: set() for kind in _ID_WALKS}
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/fdinfo/*"):
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                continue  # the fd or the process went away meanwhile
            for kind, n in _FDINFO_ID.findall(text):
                held[kind].add(int(n))
    return held


def _reachable(held: dict[str, set[int]]) -> dict[str, set[int]]:
    """``held`` plus what those objects keep alive without an fd of their own: a map's BTF
    and an outer map's inner maps, a program's maps and BTF."""
    out = {kind: set(ids) for kind, ids in held.items()}
    for map_id in held["map"]:
        with contextlib.suppress(BPFError), Map.from_id(map_id) as m:
            out["btf"].add(m.info().btf_id)
            if isinstance(m, MapOfMaps):
                out["map"].update(i for _, i in m.inner_ids())
    for prog_id in held["prog"]:
        with contextlib.suppress(BPFError), Program.from_id(prog_id) as p:
            info = p.info()
            out["map"].update(info.map_ids)
            out["btf"].add(info.btf_id)
    return out


def _held_elsewhere() -> dict[str, set[int]]:
    """Objects another process keeps alive (another test run on the same machine), minus
    any this process holds itself: those are never excused."""
    me = str(os.getpid())
    others = [p for p in os.listdir("/proc") if p.isdigit() and p != me]
    elsewhere = _reachable(_held_ids(others))
    mine = _reachable(_held_ids([me]))
    return {kind: elsewhere[kind] - mine[kind] for kind in elsewhere}


def _describe(kind: str, obj_id: int) -> str:
    opener = {"map": Map.from_id, "prog": Program.from_id, "btf": BTFHandle.from_id,
              "link": Link.from_id}.get(kind)
    if opener is None:
        return f"{kind} id {obj_id}"
    try:
        with opener(obj_id) as obj:
            return re.sub(r" fd=\d+", "", repr(obj))  # the fd is this lookup's own
    except BPFError:
        return f"{kind} id {obj_id} (gone)"


@pytest.fixture(autouse=True)
def no_kernel_object_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every kernel test leaves no new map, program, BTF or link alive in the kernel.

    Runs for every test under tests/kernel. Costs four id walks before and after a test.
    Only when something new is alive: poll briefly (inner maps, programs and the maps they
    used are freed after an RCU grace period or from a workqueue), then collect garbage and
    poll for up to 3 s, excusing objects another process holds (another test run on the same
    machine; in CI nothing else runs) but never one this process holds.
    """
    if not _is_kernel_test(request.node) or _BPF_PROBLEM:
        yield
        return
    before = live_ids()
    yield
    # Most leftovers are frees the kernel defers (RCU, workqueues): gone within ms, and
    # cheaper to wait for than a gc.collect() of the whole test session.
    if wait_for(lambda: not _new_ids(before), timeout=0.05, every=0.002):
        return
    gc.collect()
    excused: dict[str, set[int]] = {}
    scanned = 0.0

    def unexplained() -> dict[str, set[int]]:
        nonlocal excused, scanned
        new = _new_ids(before)
        if new and time.monotonic() - scanned > 0.2:  # a /proc scan costs a few ms
            excused, scanned = _held_elsewhere(), time.monotonic()
        left = {kind: ids - excused.get(kind, set()) for kind, ids in new.items()}
        return {kind: ids for kind, ids in left.items() if ids}

    if wait_for(lambda: not unexplained()):
        return
    left = unexplained()
    if left:
        names = [_describe(kind, i) for kind, ids in sorted(left.items()) for i in sorted(ids)]
        pytest.fail(f"kernel objects left behind: {', '.join(names)}", pytrace=False)


def _net_state() -> tuple[set[str], set[str]]:
    """The network interfaces of this namespace and the named network namespaces."""
    try:
        netns = set(os.listdir("/var/run/netns"))
    except OSError:
        netns = set()
    return {name for _, name in socket.if_nameindex()}, netns


@pytest.fixture(autouse=True)
def no_network_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every kernel test removes the interfaces (veth pairs) and network namespaces it
    made. (Links, and with them XDP and tcx programs, are checked by id above; tc filters
    and qdiscs by the attach tests themselves.)"""
    if not _is_kernel_test(request.node):
        yield
        return
    before = _net_state()
    yield
    ifaces, netns = _net_state()
    left = sorted(ifaces - before[0]) + [f"netns {n}" for n in sorted(netns - before[1])]
    if left and not _other_test_runs():
        pytest.fail(f"network objects left behind: {', '.join(left)}", pytrace=False)


def _other_test_runs() -> bool:
    """Whether another pytest process runs on this machine (its veth pairs and namespaces
    cannot be told from ours; in CI nothing else runs)."""
    me = {os.getpid(), os.getppid()}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"pytest" in cmd:
            return True
    return False


@pytest.fixture
def map_leak_check() -> Iterator[None]:
    """Kept for the tests that ask for it by name: ``no_kernel_object_leak`` now checks
    maps (and programs, BTF, links) after every kernel test."""
    yield
