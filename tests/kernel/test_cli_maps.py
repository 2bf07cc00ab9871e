"""``purebpf map ...`` against the real kernel, in-process through ``purebpf.cli.main``."""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from purebpf import BPFError, InnerMapMismatchError, Map, MapOfMaps
from purebpf.cli import main

import cli_helpers
from cli_helpers import BPFTOOL, fails, pins, run  # noqa: F401 (pins: a fixture)

# The fields `bpftool -j map show` prints for a map without pids or pins.
BPFTOOL_MAP_FIELDS = {"id", "type", "name", "flags", "bytes_key", "bytes_value", "max_entries",
                      "bytes_memlock", "frozen"}

# Here a command that succeeds must also print nothing on stderr.
ok = functools.partial(cli_helpers.ok, quiet=True)
js = functools.partial(cli_helpers.js, quiet=True)


def map_id(capsys: pytest.CaptureFixture[str], ref: str) -> int:
    d = js(capsys, "map", "show", ref)
    assert isinstance(d, dict)
    return int(d["id"])


def gone(*ids: int) -> bool:
    """True once no map with these ids exists (inner maps go after an RCU grace period)."""
    deadline = time.monotonic() + 5
    while True:
        alive = []
        for i in ids:
            try:
                Map.from_id(i).close()
                alive.append(i)
            except BPFError as exc:
                assert exc.errno == errno.ENOENT
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.02)


def create(capsys: pytest.CaptureFixture[str], pins: str, name: str, *args: str) -> str:
    path = os.path.join(pins, name)
    out = ok(capsys, "map", "create", name, "--pin", path, *args)
    assert f"pinned at {path}" in out
    return path


HASH48 = ("--type", "hash", "--key-size", "4", "--value-size", "8", "--max-entries", "16")


# -- show, list --------------------------------------------------------------------------------
def test_show_uses_bpftool_field_names(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    path = create(capsys, pins, "shown", *HASH48, "--flags", "no_prealloc")
    d = js(capsys, "map", "show", path)
    assert isinstance(d, dict)
    assert BPFTOOL_MAP_FIELDS <= set(d)
    assert d["type"] == "hash" and d["name"] == "shown" and d["flags"] == 1
    assert (d["bytes_key"], d["bytes_value"], d["max_entries"]) == (4, 8, 16)
    text = ok(capsys, "map", "show", path)
    assert f"{d['id']}: hash  name shown  flags 0x1 (NO_PREALLOC)" in text
    assert "key 4B  value 8B  max_entries 16" in text
    if BPFTOOL:
        theirs = json.loads(subprocess.run([BPFTOOL, "-j", "map", "show", "pinned", path],
                                           check=True, capture_output=True, text=True).stdout)
        for field in BPFTOOL_MAP_FIELDS & set(theirs):
            assert d[field] == theirs[field], field


def test_list_shows_every_map(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    path = create(capsys, pins, "listed", *HASH48)
    mid = map_id(capsys, path)
    maps = js(capsys, "map", "list")
    assert isinstance(maps, list)
    mine = [m for m in maps if m["id"] == mid]
    assert len(mine) == 1 and mine[0]["name"] == "listed"
    assert all(BPFTOOL_MAP_FIELDS - {"bytes_memlock", "frozen"} <= set(m) for m in maps)
    assert f"{mid}: hash  name listed" in ok(capsys, "map", "list")


def test_json_after_the_subcommand_and_pretty(capsys: pytest.CaptureFixture[str],
                                              pins: str) -> None:
    path = create(capsys, pins, "pretty", *HASH48)
    a = json.loads(ok(capsys, "map", "show", path, "--json"))
    out = ok(capsys, "map", "show", path, "--pretty")
    assert "\n  " in out and json.loads(out) == a


# -- elements ----------------------------------------------------------------------------------
def test_update_lookup_delete_dump(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    path = create(capsys, pins, "elems", *HASH48)
    ok(capsys, "map", "update", path, "1", "100")
    ok(capsys, "map", "update", path, "0x2", "hex:2000000000000000")
    ok(capsys, "map", "update", path, "-1", "7")  # two's complement in 4 bytes
    assert ok(capsys, "map", "lookup", path, "2") == "key: 2  value: 32\n"
    rec = js(capsys, "map", "lookup", path, "hex:01000000")
    assert rec == {"key": ["0x01", "0x00", "0x00", "0x00"],
                   "value": ["0x64"] + ["0x00"] * 7,
                   "formatted": {"key": 1, "value": 100}}
    records = js(capsys, "map", "dump", path)
    assert isinstance(records, list)
    assert sorted(r["formatted"]["key"] for r in records) == [1, 2, 0xFFFFFFFF]
    assert ok(capsys, "map", "dump", path).endswith("Found 3 elements\n")
    ok(capsys, "map", "delete", path, "1")
    line = fails(capsys, "map", "lookup", path, "1")
    assert "key 1 not found" in line and "ENOENT" in line
    assert "already exists" in fails(capsys, "map", "update", path, "2", "1", "--flags",
                                     "noexist")
    assert "not found" in fails(capsys, "map", "update", path, "9", "1", "--flags", "exist")
    ok(capsys, "map", "update", path, "2", "5", "--flags", "exist")
    assert ok(capsys, "map", "lookup", path, "2") == "key: 2  value: 5\n"
    assert js(capsys, "map", "delete", path, "2") is None  # bpftool -j prints null too


def test_bad_keys_and_values_are_one_line(capsys: pytest.CaptureFixture[str],
                                          pins: str) -> None:
    path = create(capsys, pins, "badkeys", *HASH48)
    assert "is 3 bytes; this map's keys are 4 bytes" in fails(
        capsys, "map", "lookup", path, "hex:010203")
    assert "does not fit in 4 bytes" in fails(capsys, "map", "lookup", path, str(1 << 40))
    assert "is not a number" in fails(capsys, "map", "update", path, "1", "seven")
    assert "not hex bytes" in fails(capsys, "map", "lookup", path, "hex:zz")


def test_odd_sizes_show_hex_and_per_cpu_values(capsys: pytest.CaptureFixture[str],
                                               pins: str) -> None:
    odd = create(capsys, pins, "odd", "--type", "hash", "--key-size", "3", "--value-size", "5",
                 "--max-entries", "4")
    ok(capsys, "map", "update", odd, "0x030201", "hex:0102030405")
    assert ok(capsys, "map", "dump", odd).startswith("key: hex:010203  value: hex:0102030405\n")
    pcpu = create(capsys, pins, "pcpu", "--type", "percpu_array", "--value-size", "8",
                  "--max-entries", "2")
    ok(capsys, "map", "update", pcpu, "1", "9")  # one value: stored on every CPU
    rec = js(capsys, "map", "lookup", pcpu, "1")
    assert isinstance(rec, dict)
    ncpu = len(rec["values"])
    assert ncpu >= 1 and rec["values"][0] == {"cpu": 0, "value": ["0x09"] + ["0x00"] * 7}
    assert rec["formatted"]["values"] == [{"cpu": i, "value": 9} for i in range(ncpu)]
    assert "values (per CPU): [9" in ok(capsys, "map", "lookup", pcpu, "1")


# -- outer maps ----------------------------------------------------------------------------------
@pytest.fixture
def outer(capsys: pytest.CaptureFixture[str], pins: str) -> Iterator[dict[str, str]]:
    """A HASH_OF_MAPS made by the CLI with a HASH template, and a matching inner map."""
    tmpl = create(capsys, pins, "tmpl", *HASH48)
    inner = create(capsys, pins, "inner", *HASH48)
    out = create(capsys, pins, "outer", "--type", "hash_of_maps", "--max-entries", "8",
                 "--inner", tmpl)
    ok(capsys, "map", "update", inner, "1", "10")
    ok(capsys, "map", "update", inner, "2", "20")
    ok(capsys, "map", "insert", out, "7", inner)
    yield {"tmpl": tmpl, "inner": inner, "outer": out}


def test_show_outer_map_recovers_template_and_counts_slots(
        capsys: pytest.CaptureFixture[str], outer: dict[str, str]) -> None:
    d = js(capsys, "map", "show", outer["outer"])
    assert isinstance(d, dict)
    assert d["type"] == "hash_of_maps" and d["entries"] == 1
    assert d["inner_template"] == {"type": "hash", "bytes_key": 4, "bytes_value": 8,
                                   "max_entries": 16, "flags": 0,
                                   "max_entries_must_match": False}
    text = ok(capsys, "map", "show", outer["outer"])
    assert "inner template: hash  key 4B  value 8B" in text and "inner maps 1" in text


def test_insert_mismatch_names_the_field(capsys: pytest.CaptureFixture[str], pins: str,
                                         outer: dict[str, str]) -> None:
    bad = create(capsys, pins, "bad", "--type", "hash", "--key-size", "4", "--value-size", "4",
                 "--max-entries", "16")
    line = fails(capsys, "map", "insert", outer["outer"], "8", bad)
    # The library's InnerMapMismatchError, message and hint, on one line.
    with Map.from_pin(outer["outer"]) as m, Map.from_pin(bad) as b:
        assert isinstance(m, MapOfMaps)
        with pytest.raises(InnerMapMismatchError) as info:
            m.check_inner(b)
    assert info.value.field == "value_size"
    assert line == f"purebpf: {info.value}"
    assert "inner map value_size 4 != template 8" in line
    assert "not an outer map" in fails(capsys, "map", "insert", bad, "0", outer["inner"])


def test_swap_prints_old_inner_id(capsys: pytest.CaptureFixture[str],
                                  outer: dict[str, str]) -> None:
    old, new = map_id(capsys, outer["inner"]), map_id(capsys, outer["tmpl"])
    assert ok(capsys, "map", "swap", outer["outer"], "7", outer["tmpl"]) == \
        f"old inner map: {old}\n"
    assert js(capsys, "map", "swap", outer["outer"], "9", outer["inner"]) == \
        {"old_inner_map_id": None, "inner_map_id": old}
    assert js(capsys, "map", "lookup", outer["outer"], "7")["inner_map_id"] == new  # type: ignore[index]
    ok(capsys, "map", "update", outer["outer"], "7", outer["inner"], "--flags", "exist")
    assert "key: 7  inner_map_id: " + str(old) in ok(capsys, "map", "dump", outer["outer"])


def test_tree_shows_inner_maps_and_values(capsys: pytest.CaptureFixture[str],
                                          outer: dict[str, str]) -> None:
    inner_id = map_id(capsys, outer["inner"])
    text = ok(capsys, "map", "tree", outer["outer"], "--values")
    assert f"[7] -> {inner_id}: hash 'inner'  key 4B  value 8B  max_entries 16  entries 2" \
        in text
    assert "key: 1  value: 10" in text and "key: 2  value: 20" in text
    assert "key: 1" not in ok(capsys, "map", "tree", outer["outer"])  # no --values
    d = js(capsys, "map", "tree", outer["outer"], "--values", "--limit", "1")
    assert isinstance(d, dict)
    (child,) = d["inner_maps"]
    assert child["key"] == 7 and child["id"] == inner_id and child["entries"] == 2
    assert [e["formatted"] for e in child["elements"]] == [{"key": 1, "value": 10}]
    assert child["truncated"] == 1
    assert "not an outer map" in fails(capsys, "map", "tree", outer["inner"])


def test_tree_by_name_and_ambiguous_names(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    name = f"t{os.getpid() % 100000}x"
    tmpl = create(capsys, pins, "t1", *HASH48)
    a = create(capsys, pins, "a", "--type", "array_of_maps", "--max-entries", "2",
               "--inner", tmpl)
    ok(capsys, "map", "create", name, "--pin", os.path.join(pins, "n1"), *HASH48)
    assert "no map named 'nosuchmap_xyz'" in fails(capsys, "map", "tree", "nosuchmap_xyz")
    ok(capsys, "map", "create", name, "--pin", os.path.join(pins, "n2"), *HASH48)
    line = fails(capsys, "map", "show", name)
    assert f"2 maps are named {name!r}: ids " in line and "(hash)" in line
    aid = map_id(capsys, a)
    d = js(capsys, "map", "tree", f"id:{aid}")
    assert isinstance(d, dict) and d["inner_maps"] == [] and d["inner_template"] is None
    assert "inner template unknown" in ok(capsys, "map", "tree", str(aid))


@pytest.mark.skipif(BPFTOOL is None, reason="bpftool is not installed")
def test_tree_of_outer_map_created_by_bpftool(capsys: pytest.CaptureFixture[str],
                                              pins: str) -> None:
    assert BPFTOOL is not None
    inner = create(capsys, pins, "bt_inner", "--type", "array", "--value-size", "4",
                   "--max-entries", "4")
    ok(capsys, "map", "update", inner, "2", "42")
    inner_id = map_id(capsys, inner)
    x = os.path.join(pins, "x")
    name = f"bt{os.getpid() % 100000}"
    subprocess.run([BPFTOOL, "map", "create", x, "type", "array_of_maps", "inner_map", "id",
                    str(inner_id), "key", "4", "value", "4", "entries", "4", "name", name],
                   check=True, capture_output=True)
    subprocess.run([BPFTOOL, "map", "update", "pinned", x, "key", "3", "0", "0", "0", "value",
                    "pinned", inner], check=True, capture_output=True)
    for ref in (x, name, str(map_id(capsys, x))):
        text = ok(capsys, "map", "tree", ref, "--values")
        assert f"array_of_maps '{name}'  key 4B  value 4B  max_entries 4  inner maps 1 " \
               "of 4 slots" in text
        assert "inner template: array  key 4B  value 4B  max_entries 4  flags 0" in text
        assert f"[3] -> {inner_id}: array 'bt_inner'" in text and "key: 2  value: 42" in text
    d = js(capsys, "map", "tree", x, "--values")
    assert isinstance(d, dict)
    assert [(c["key"], c["id"], c["entries"]) for c in d["inner_maps"]] == [(3, inner_id, 4)]
    outer_id = d["id"]
    shutil.rmtree(pins)
    os.mkdir(pins)
    assert gone(outer_id, inner_id)


# -- create, pin, errors -------------------------------------------------------------------
def test_create_needs_inner_for_outer_and_pin_rules(capsys: pytest.CaptureFixture[str],
                                                    pins: str) -> None:
    assert "needs --inner" in fails(capsys, "map", "create", "o", "--type", "array_of_maps",
                                    "--max-entries", "2", "--pin", os.path.join(pins, "o"))
    assert "unknown map type 'hashh'" in fails(capsys, "map", "create", "h", "--type", "hashh",
                                               "--max-entries", "2", "--pin",
                                               os.path.join(pins, "h"))
    assert "'.' in names" in fails(capsys, "map", "create", "h", *HASH48, "--pin",
                                   os.path.join(pins, "a.b"))
    assert "unknown map flag 'fast'" in fails(capsys, "map", "create", "h", *HASH48,
                                              "--flags", "fast", "--pin",
                                              os.path.join(pins, "h"))
    assert os.listdir(pins) == []


def test_pin_an_existing_map(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    path = create(capsys, pins, "orig", *HASH48)
    mid = map_id(capsys, path)
    ok(capsys, "map", "pin", str(mid), os.path.join(pins, "again"))
    assert map_id(capsys, os.path.join(pins, "again")) == mid
    os.unlink(path)
    os.unlink(os.path.join(pins, "again"))
    assert gone(mid)


def test_unknown_id_is_one_line_and_debug_shows_the_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "map", "show", "4294967295")
    assert line == "purebpf: open map id 4294967295: no such map [ENOENT]"
    fails(capsys, "map", "dump", "/sys/fs/bpf/no/such/pin")
    with pytest.raises(BPFError):
        main(["--debug", "map", "show", "4294967295"])
    with pytest.raises(BPFError):
        main(["map", "show", "4294967295", "--debug"])


def test_commands_leave_no_fds_or_maps(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    path = create(capsys, pins, "gone", *HASH48)
    mid = map_id(capsys, path)
    for argv in (["map", "show", path], ["map", "dump", path], ["map", "list"]):
        ok(capsys, *argv)
    os.unlink(path)
    assert gone(mid)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
