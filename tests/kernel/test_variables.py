"""Variable: reads and writes of one global variable while the program runs."""

from __future__ import annotations

import errno
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import purebpf
from purebpf import (BPFPermissionError, ClosedError, Collection, InvalidArgumentError, Map,
                     MapSpec, MapType, NotSupportedError, Variable, VariableSpec)

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
PACKET = bytes(64)  # XDP test runs need at least an Ethernet header


@pytest.fixture
def race() -> Iterator[Collection]:
    with purebpf.load(DATA / "globals_race.o") as coll:
        yield coll


def _sections(coll: Collection) -> dict[str, bytes]:
    """Every data map's whole value, read through the syscall."""
    return {n: bytes(Map.__getitem__(m, 0)) for n, m in coll.maps.items()}


def test_set_does_not_lose_the_programs_writes_to_neighbours(race: Collection) -> None:
    # The program increments `hits` on every run; `knob`, its neighbour in .bss, is set from
    # another thread all along. Writing the whole section back would undo increments made
    # between its read and its write.
    hits, knob = race.variables["hits"], race.variables["knob"]
    assert knob.offset == hits.offset + hits.size and knob._map is hits._map
    count = race.programs["count"]
    stop, started = threading.Event(), threading.Event()
    sets = 0

    def setter() -> None:
        nonlocal sets
        while not stop.is_set():
            knob.set(sets & 0xFF)
            sets += 1
            started.set()

    thread = threading.Thread(target=setter)
    thread.start()
    try:
        assert started.wait(10)
        runs, each = 8, 100_000
        for _ in range(runs):
            count.test_run(PACKET, repeat=each)
    finally:
        stop.set()
        thread.join()
    assert sets > 0
    assert hits.value == runs * each
    assert knob.value == (sets - 1) & 0xFF


@pytest.mark.parametrize(("name", "new"), [
    pytest.param("bias", -7, id="signed-negative"),
    pytest.param("bias", 2**31 - 1, id="signed-max"),
    pytest.param("weights", [10, 20, 30, 40], id="array-list"),
    pytest.param("origin", {"x": -1, "y": 5, "tag": "z"}, id="struct-dict"),
    pytest.param("knob", 2**64 - 1, id="unsigned-max"),
])
def test_set_takes_what_value_returns(race: Collection, name: str, new: Any) -> None:
    var = race.variables[name]
    others = {n: v.raw for n, v in race.variables.items() if n != name}
    var.set(new)
    assert var.value == new
    assert {n: v.raw for n, v in race.variables.items() if n != name} == others
    var.set(var.value)  # symmetric: what value returns goes back unchanged
    assert var.value == new


def test_the_program_sees_set_values(race: Collection) -> None:
    v = race.variables
    sum_ = race.programs["sum"]
    assert sum_.test_run(PACKET).retval == -5 + 1 - 2 + ord("a") + 1 + 2 + 3 + 4
    v["bias"].set(-100)
    v["weights"].set([0, 0, 0, 50])
    v["origin"].set({"x": 7, "y": -3, "tag": "A"})
    assert sum_.test_run(PACKET).retval == -100 + 7 - 3 + ord("A") + 50
    v["knob"].set(42)
    assert race.programs["count"].test_run(PACKET).retval == 42
    assert v["hits"].get() == 1


def test_set_accepts_bytes_of_the_variables_size(race: Collection) -> None:
    bias = race.variables["bias"]
    bias.set((-2).to_bytes(4, "little", signed=True))
    assert bias.value == -2 and bias.get() == 2**32 - 2
    assert bias.raw == (-2).to_bytes(4, "little", signed=True)


@pytest.mark.parametrize(("name", "bad", "words"), [
    pytest.param("origin", [1, 2], "expected a dict", id="list-for-struct"),
    pytest.param("origin", {"x": 1, "nope": 2}, "no member 'nope'", id="unknown-member"),
    pytest.param("origin", {"x": 2**40}, "value.x: 1099511627776 does not fit",
                 id="member-too-big"),
    pytest.param("origin", {"tag": "toolong"}, "value.tag: string of 7 bytes", id="long-str"),
    pytest.param("weights", [1, 2, 3, 4, 5], "the array holds 4", id="array-too-long"),
    pytest.param("weights", {"a": 1}, "expected a list", id="dict-for-array"),
    pytest.param("bias", 2**40, "does not fit in 4 bytes", id="int-too-big"),
    pytest.param("bias", "x", "expected an int", id="str-for-int"),
    pytest.param("knob", b"\1\2\3", "is 8 bytes, got 3", id="short-bytes"),
])
def test_set_with_a_wrong_shape_changes_nothing(race: Collection, name: str, bad: Any,
                                                words: str) -> None:
    before = _sections(race)
    with pytest.raises(InvalidArgumentError) as info:
        race.variables[name].set(bad)
    assert info.value.errno == errno.EINVAL
    assert f"set variable {name!r}" in str(info.value) and words in str(info.value)
    assert _sections(race) == before


def test_set_refuses_rodata_and_leaves_it_unchanged() -> None:
    with purebpf.load(DATA / "globals.o") as coll:
        multiplier = coll.variables["multiplier"]
        with pytest.raises(BPFPermissionError, match="frozen at load") as info:
            multiplier.set(9)
        assert info.value.errno == errno.EPERM
        assert multiplier.value == 3 and coll.variables["greeting"].value == "hello"


def test_set_refuses_a_data_map_frozen_after_load(race: Collection) -> None:
    bias = race.variables["bias"]
    bias._map.freeze()
    with pytest.raises(BPFPermissionError, match="frozen") as info:
        bias.set(1)
    assert info.value.errno == errno.EPERM
    assert bias.value == -5


def test_closed_collection_variables_raise_closed_error(race: Collection) -> None:
    knob = race.variables["knob"]
    race.close()
    with pytest.raises(ClosedError):
        knob.set(1)
    with pytest.raises(ClosedError):
        knob.raw  # noqa: B018


def test_set_refuses_a_data_map_that_is_not_mmapable() -> None:
    # Without BPF_F_MMAPABLE the only write is the whole value, which would undo the
    # program's writes to the neighbours: refused. Reads still work (whole value, sliced).
    spec = VariableSpec("second", ".bss", offset=4, size=4, value=bytes(4))
    with Map.create(MapSpec(MapType.ARRAY, key_size=4, value_size=8, max_entries=1)) as m:
        m[0] = bytes([1, 0, 0, 0, 2, 0, 0, 0])
        var = Variable(spec, m)
        assert var.raw == bytes([2, 0, 0, 0]) and var.get() == 2
        with pytest.raises(NotSupportedError, match="BPF_F_MMAPABLE") as info:
            var.set(3)
        assert info.value.errno == errno.EOPNOTSUPP
        assert info.value.feature == "BPF_F_MMAPABLE"
        assert bytes(m[0]) == bytes([1, 0, 0, 0, 2, 0, 0, 0])


def test_without_btf_set_takes_ints_and_bytes(race: Collection) -> None:
    knob = race.variables["knob"]
    bare = Variable(knob.spec, knob._map)  # no BTF: value is the bytes
    bare.set(-1)
    assert bare.value == b"\xff" * 8 and knob.value == 2**64 - 1
    bare.set(bare.value)
    with pytest.raises(InvalidArgumentError, match="does not fit in 8 bytes"):
        bare.set(2**64)
    with pytest.raises(TypeError, match="no BTF type to encode a dict"):
        bare.set({"a": 1})
    assert knob.value == 2**64 - 1
