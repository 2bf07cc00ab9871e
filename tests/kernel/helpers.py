"""Helpers shared by kernel tests: a private bpffs fixture (import it into a test file to
use it) and a check for whether a kernel map still exists."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from purebpf import Map, features

needs_spin_lock_templates = pytest.mark.skipif(
    not features.has_spin_lock_inner_map(),
    reason="this kernel refuses bpf_spin_lock in inner-map templates "
           "(features.has_spin_lock_inner_map)")


def alive(map_id: int) -> bool:
    return map_id in set(Map.ids())


@pytest.fixture
def bpffs() -> Iterator[str]:
    """A private bpffs mount (pins need one; /sys/fs/bpf may not be mounted)."""
    d = tempfile.mkdtemp(prefix="purebpf-test-")
    try:
        res = subprocess.run(["mount", "-t", "bpf", "bpf", d], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.fail(f"cannot mount a bpffs at {d}: {res.stderr.strip()}")
        try:
            yield d
        finally:
            subprocess.run(["umount", d], check=True)
    finally:
        os.rmdir(d)
