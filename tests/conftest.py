"""Test-suite-wide fixtures: the bpf() gate, fd and kernel-object leak checks."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator

import pytest

from purebpf import BPFError, Map, MapSpec, MapType

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _bpf_available() -> str | None:
    """None if bpf() map creation works here, else the reason it does not."""
    try:
        with Map.create(MapSpec(MapType.ARRAY, value_size=4, max_entries=1)):
            return None
    except (BPFError, OSError) as exc:
        return f"bpf() unavailable: {exc}"


_BPF_PROBLEM = _bpf_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kernel)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kernel") and _BPF_PROBLEM:
        if IN_CI:
            pytest.fail(f"CI=true and {_BPF_PROBLEM}: kernel tests must run, not skip")
        pytest.skip(_BPF_PROBLEM)


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


def live_map_ids() -> set[int]:
    return set(Map.ids())


def wait_for(pred, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``pred`` until true (inner maps are freed after an RCU grace period)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


@pytest.fixture(autouse=True)
def no_fd_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves the process's open fds as it found them."""
    before = open_fds()
    yield
    if not open_fds() - before:
        return
    gc.collect()  # objects a test dropped may still hold fds until collected
    leaked = open_fds() - before
    if leaked:
        targets = {}
        for fd in leaked:
            try:
                targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass
        if any("bpf" in t for t in targets.values()):
            pytest.fail(f"test leaked fds: {targets}")


@pytest.fixture
def map_leak_check() -> Iterator[None]:
    """The kernel's set of map ids is back to where it was after the test."""
    before = live_map_ids()
    yield
    if not live_map_ids() <= before:
        gc.collect()
    assert wait_for(lambda: live_map_ids() <= before), \
        f"kernel maps left behind: {sorted(live_map_ids() - before)}"
