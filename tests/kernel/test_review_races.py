"""Signals, closes and fd reuse around a Map's lock (found in review of the threading change)."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from purebpf import (BPFPermissionError, ClosedError, IndexOutOfRangeError, Map, MapFlags,
                     MapOfMaps, MapSpec, MapType)

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def run_child(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter; a hang fails the test instead of hanging it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        os.path.abspath(SRC), os.environ.get("PYTHONPATH")])))
    try:
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("the child hung (a lock left held?)")
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_ctrl_c_during_element_calls_never_leaves_the_lock_held() -> None:
    out = run_child("""
        import signal
        from purebpf import Map, MapSpec, MapType
        armed = [False]
        def interrupt(*_):
            if armed[0]:  # one interrupt per trial, inside its try
                armed[0] = False
                raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, interrupt)
        m = Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4,
                               key_type=int, value_type=int))
        m[1] = 1
        hits = 0
        for _ in range(40):
            try:
                armed[0] = True
                signal.setitimer(signal.ITIMER_REAL, 0.0005)  # one shot
                while True:
                    m[1]
                    m[1] = 2
            except KeyboardInterrupt:
                hits += 1
            armed[0] = False
            m[1] = 1  # would wait forever on a lock left held
        m.close()
        print(hits, m.closed)
    """)
    assert out.split() == ["40", "True"]


def test_a_signal_handler_may_close_the_map_the_main_thread_is_using() -> None:
    out = run_child("""
        import signal
        from purebpf import ClosedError, Map, MapSpec, MapType
        m = Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4,
                               key_type=int, value_type=int))
        m[1] = 1
        signal.signal(signal.SIGALRM, lambda *_: m.close())
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        try:
            while True:
                m[1]
        except ClosedError as exc:
            print("closed" in str(exc), m.closed)
    """)
    assert out.split() == ["True", "True"]


def test_a_batch_never_reaches_another_map_after_a_close() -> None:
    """A closes X and creates Y (which may get X's fd number) while B drains X in batches
    of one: B must stop with ClosedError, and Y must keep every entry."""
    spec = MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4096, key_type=int,
                   value_type=int)
    for _ in range(5):
        x = Map.create(spec)
        x.update_batch(range(2000), range(2000))
        seen: list[BaseException] = []
        started = threading.Event()

        def drain() -> None:
            started.set()
            try:
                x.lookup_and_delete_batch(chunk=1)
            except ClosedError as exc:
                seen.append(exc)

        t = threading.Thread(target=drain)
        t.start()
        started.wait()
        x.close()
        with Map.create(spec) as y:
            y.update_batch(range(5000, 5100), range(100))
            t.join()
            assert len(y) == 100
        assert all(isinstance(e, ClosedError) for e in seen)


def test_mmap_array_closed_while_another_thread_writes_closes_its_fd() -> None:
    from conftest import open_fds

    before = open_fds()
    for _ in range(20):
        a = Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=64,
                               value_type=ctypes.c_double, flags=MapFlags.MMAPABLE))
        stop = threading.Event()
        errors: list[BaseException] = []

        def writer(m: Map = a) -> None:
            while not stop.is_set():
                try:
                    m[3] = 1.5
                    m[3]
                except ClosedError:
                    return
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        t = threading.Thread(target=writer)
        t.start()
        a.close()
        stop.set()
        t.join()
        assert a.closed and not errors, errors
    assert open_fds() == before


def test_mmap_array_write_past_the_end_and_on_a_rdonly_prog_array() -> None:
    with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=2,
                            flags=MapFlags.MMAPABLE | MapFlags.RDONLY_PROG)) as a:
        with pytest.raises(IndexOutOfRangeError, match="write .* index 5 out of range"):
            a.write(5, 0, b"x")
        a[1] = b"abcdefgh"  # mapped read-only: the syscall path, as before
        a.write(1, 2, b"XY")  # read and written back by syscall: programs cannot write it
        assert a[1] == b"abXYefgh"
        a.freeze()
        with pytest.raises(BPFPermissionError, match="the map is frozen") as info:
            a.write(1, 0, b"x")
        assert info.value.errno == errno.EPERM
        assert a[1] == b"abXYefgh"


@pytest.mark.parametrize("flags", [1.5, True, "1"], ids=["float", "bool", "str"])
def test_outer_map_flags_must_be_ints(flags: object) -> None:
    inner = MapSpec(MapType.ARRAY, value_size=4, max_entries=2)
    with Map.create(MapSpec(MapType.HASH_OF_MAPS, key_size=4, max_entries=2,
                            inner=inner)) as outer:
        assert isinstance(outer, MapOfMaps)
        with outer.new_inner() as m:
            with pytest.raises(TypeError, match="flags must be an int"):
                outer.update(1, m, flags)  # type: ignore[arg-type]
        assert len(outer) == 0


def test_probes_without_privileges_say_so_rather_than_no() -> None:
    out = run_child("""
        import os
        from purebpf import BPFPermissionError, features
        import purebpf.asm, purebpf.btf
        os.setgid(65534); os.setuid(65534)
        for probe in (features.has_isa_v4, features.has_may_goto, features.has_load_acquire,
                      features.has_spin_lock_inner_map):
            try:
                print(probe.__name__, probe())
            except BPFPermissionError as exc:
                print(probe.__name__, "EPERM" if "not permitted" in str(exc) else exc)
    """)
    assert out.split() == ["has_isa_v4", "EPERM", "has_may_goto", "EPERM",
                           "has_load_acquire", "EPERM", "has_spin_lock_inner_map", "EPERM"]
