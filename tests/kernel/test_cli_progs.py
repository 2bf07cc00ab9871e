"""``purebpf prog ...`` and ``purebpf obj inspect`` against the real kernel."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import BPFError, InvalidArgumentError, Map, Program

from cli_helpers import BPFTOOL, fails, js, ok, pins, run  # noqa: F401 (pins: a fixture)

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
BPFTOOL_PROG_FIELDS = {"id", "type", "name", "tag", "gpl_compatible", "loaded_at", "uid",
                       "bytes_xlated", "jited", "bytes_jited", "bytes_memlock", "map_ids",
                       "btf_id"}


def gone(prog_ids: list[int], map_ids: list[int]) -> bool:
    """True once none of these programs and maps exists any more."""
    deadline = time.monotonic() + 5
    while True:
        alive = 0
        for ids, opener in ((prog_ids, Program.from_id), (map_ids, Map.from_id)):
            for i in ids:
                try:
                    opener(i).close()
                    alive += 1
                except BPFError as exc:
                    assert exc.errno == errno.ENOENT
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.02)


def request(slot: int, idx: int) -> bytes:
    body = struct.pack("<II", slot, idx)
    return body + bytes(64 - len(body))


@pytest.fixture
def loaded(capsys: pytest.CaptureFixture[str], pins: str) -> Iterator[dict[str, object]]:
    """map_in_map.o loaded by ``prog load --pin-root``; everything is gone after the test."""
    root = os.path.join(pins, "mim")
    d = js(capsys, "prog", "load", str(DATA / "map_in_map.o"), "--pin-root", root)
    assert isinstance(d, dict)
    yield {"root": root, **d}
    shutil.rmtree(root)
    assert gone([p["id"] for p in d["programs"]], [m["id"] for m in d["maps"]])


def test_load_pins_programs_and_maps(loaded: dict[str, object]) -> None:
    root = str(loaded["root"])
    progs = {p["name"]: p for p in loaded["programs"]}  # type: ignore[attr-defined]
    maps = {m["name"]: m for m in loaded["maps"]}  # type: ignore[attr-defined]
    assert set(progs) == {"read_table", "read_cookie", "has_devmap"}
    assert {"tables", "by_cookie", "outer_map", "small", "big"} <= set(maps)
    assert sorted(os.listdir(root)) == sorted(set(progs) | set(maps))
    assert progs["read_table"]["type"] == "xdp"
    assert maps["tables"] == {"name": "tables", "id": maps["tables"]["id"],
                              "type": "array_of_maps", "pinned": f"{root}/tables",
                              "reused": False}


def test_prog_show_list_and_bpftool_fields(capsys: pytest.CaptureFixture[str],
                                           loaded: dict[str, object]) -> None:
    pin = f"{loaded['root']}/read_table"
    d = js(capsys, "prog", "show", pin)
    assert isinstance(d, dict)
    assert BPFTOOL_PROG_FIELDS <= set(d)
    assert d["type"] == "xdp" and d["name"] == "read_table" and d["gpl_compatible"] is True
    tables = next(m for m in loaded["maps"] if m["name"] == "tables")  # type: ignore[attr-defined]
    assert d["map_ids"] == [tables["id"]]
    assert abs(d["loaded_at"] - time.time()) < 600 and d["uid"] == os.geteuid()
    if BPFTOOL:
        theirs = json.loads(subprocess.run([BPFTOOL, "-j", "prog", "show", "pinned", pin],
                                           check=True, capture_output=True, text=True).stdout)
        for field in BPFTOOL_PROG_FIELDS & set(theirs):
            if field != "loaded_at":  # rounding of boot time may differ by a second
                assert d[field] == theirs[field], field
        assert abs(d["loaded_at"] - theirs["loaded_at"]) <= 1
    text = ok(capsys, "prog", "show", str(d["id"]))
    assert text.startswith(f"{d['id']}: xdp  name read_table  tag {d['tag']}  gpl\n")
    assert f"map_ids {tables['id']}" in text
    listed = js(capsys, "prog", "list")
    assert isinstance(listed, list) and [p["id"] for p in listed].count(d["id"]) == 1
    assert f"{d['id']}: xdp  name read_table" in ok(capsys, "prog", "list")


def test_prog_run(capsys: pytest.CaptureFixture[str], loaded: dict[str, object],
                  tmp_path: pathlib.Path) -> None:
    root = loaded["root"]
    ok(capsys, "map", "update", f"{root}/big", "2", "41")
    pkt = tmp_path / "pkt"
    pkt.write_bytes(request(3, 2))
    d = js(capsys, "prog", "run", f"{root}/read_table", "--data", str(pkt), "--repeat", "5")
    assert isinstance(d, dict)
    assert d["retval"] == 42 and d["data_size_out"] == 64 and d["duration"] >= 0
    out = tmp_path / "out"
    text = ok(capsys, "prog", "run", "read_table", "--data", str(pkt), "--data-out", str(out))
    assert text.startswith("retval 42  duration ") and "data out 64B" in text
    assert out.read_bytes() == request(3, 2)
    # A swap from the command line changes what the program reads.
    ok(capsys, "map", "swap", f"{root}/tables", "3", f"{root}/small")
    assert js(capsys, "prog", "run", f"{root}/read_table", "--data",
              str(pkt))["retval"] == 0  # type: ignore[index]
    assert "No such file or directory" in fails(capsys, "prog", "run", f"{root}/read_table",
                                                "--data", str(tmp_path / "missing"))
    assert "--repeat must be at least 1" in fails(capsys, "prog", "run", f"{root}/read_table",
                                                  "--data", str(pkt), "--repeat", "0")


def test_tree_of_loaded_outer_map_decodes_btf(capsys: pytest.CaptureFixture[str],
                                              loaded: dict[str, object]) -> None:
    root = loaded["root"]
    ok(capsys, "map", "update", f"{root}/big", "5", "0x1234")
    d = js(capsys, "map", "tree", f"{root}/by_cookie", "--values")
    assert isinstance(d, dict)
    assert d["inner_template"]["flags"] == 0x1000  # BPF_F_INNER_MAP
    assert d["inner_template"]["max_entries_must_match"] is False
    kids = {c["key"]: c for c in d["inner_maps"]}
    assert set(kids) == {1, 5}
    assert kids[5]["name"] == "big" and kids[5]["btf_id"] > 0
    assert {"key": 5, "value": 0x1234} in [e["formatted"] for e in kids[5]["elements"]]
    text = ok(capsys, "map", "tree", f"{root}/by_cookie", "--values")
    assert "[5] -> " in text and "key: 5  value: 4660" in text


def test_mismatched_pin_kinds_are_refused(capsys: pytest.CaptureFixture[str],
                                         loaded: dict[str, object]) -> None:
    root = loaded["root"]
    assert "it is a BPF program, not a map" in fails(capsys, "map", "show",
                                                    f"{root}/read_table")
    assert "it is a BPF map, not a program" in fails(capsys, "prog", "show", f"{root}/tables")
    with pytest.raises(InvalidArgumentError) as info:
        Map.from_pin(f"{root}/read_table")
    assert info.value.errno == errno.EINVAL


def test_program_info_and_fdinfo(loaded: dict[str, object]) -> None:
    with Program.from_pin(f"{loaded['root']}/read_table") as p:
        info = p.info()
        assert info.gpl_compatible is True
        assert info.created_by_uid == os.geteuid()
        assert 0 < info.load_time_ns <= time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        assert int(p.fdinfo()["prog_id"]) == p.id
    with Map.from_pin(f"{loaded['root']}/tables") as m:
        fi = m.fdinfo()
        assert int(fi["map_id"]) == m.id and fi["frozen"] == "0" and int(fi["memlock"]) > 0


def test_load_globals_pins_data_maps_without_dots(capsys: pytest.CaptureFixture[str],
                                                  pins: str) -> None:
    root = os.path.join(pins, "g")
    d = js(capsys, "prog", "load", str(DATA / "globals.o"), "--pin-root", root)
    assert isinstance(d, dict)
    assert sorted(os.listdir(root)) == ["_data_tuning", "compute", "globals_bss",
                                        "globals_data", "globals_rodata", "results"]
    dumped = js(capsys, "map", "dump", f"{root}/globals_rodata")
    assert dumped[0]["formatted"]["value"] == {"multiplier": 3,  # type: ignore[index]
                                               "greeting": "hello"}
    assert ok(capsys, "map", "dump", f"{root}/globals_data").startswith(
        'key: 0  value: {"last_result": 7}\n')
    assert "frozen" in ok(capsys, "map", "show", f"{root}/globals_rodata")
    shutil.rmtree(root)
    assert gone([p["id"] for p in d["programs"]], [m["id"] for m in d["maps"]])


def test_load_without_pin_root_leaves_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    text = ok(capsys, "prog", "load", str(DATA / "globals.o"))
    assert "nothing was pinned" in text
    ids = [int(i) for i in re.findall(r" id (\d+) ", text)]
    assert len(ids) == 6
    with pytest.raises(BPFError):
        Program.from_id(ids[0]).close()
    assert gone([], ids[1:])


def test_failed_loads_leave_nothing(capsys: pytest.CaptureFixture[str], pins: str) -> None:
    root = os.path.join(pins, "r")
    line = fails(capsys, "prog", "load", str(DATA / "reject_outer_update.o"), "--pin-root", root)
    assert "the verifier refused it" in line and "--debug shows the whole log" in line
    assert not os.path.exists(root)
    assert "nesting" in fails(capsys, "prog", "load", str(DATA / "invalid" / "nested.o"),
                              "--pin-root", root)
    assert not os.path.exists(root)
    os.mkdir(root)
    open_pin = os.path.join(root, "compute")
    with Map.create(purebpf.MapSpec(purebpf.MapType.ARRAY, value_size=4, max_entries=1)) as m:
        m.pin(open_pin)
    line = fails(capsys, "prog", "load", str(DATA / "globals.o"), "--pin-root", root)
    assert line == f"purebpf: {open_pin} already exists (remove it, or choose another " \
                   "--pin-root)"
    assert os.listdir(root) == ["compute"]
    assert "no such file" in fails(capsys, "prog", "load", str(DATA / "missing.o"))
    assert "no such program" in fails(capsys, "prog", "show", "4294967295")


def test_obj_inspect_map_in_map(capsys: pytest.CaptureFixture[str]) -> None:
    d = js(capsys, "obj", "inspect", str(DATA / "map_in_map.o"))
    assert isinstance(d, dict)
    maps = {m["name"]: m for m in d["maps"]}
    assert maps["tables"]["inner_template"] == {"type": "array", "bytes_key": 4,
                                                "bytes_value": 8, "max_entries": 1,
                                                "flags": 0x1000}
    assert maps["tables"]["slots"] == [{"key": 0, "value": "small"},
                                       {"key": 3, "value": "big"}]
    assert maps["outer_map"]["inner_template"]["type"] == "devmap"
    progs = {p["name"]: p for p in d["programs"]}
    assert progs["read_table"]["type"] == "xdp" and progs["read_table"]["section"] == "xdp"
    assert progs["read_table"]["insns"] > 0 and progs["read_table"]["maps"] == ["tables"]
    text = ok(capsys, "obj", "inspect", str(DATA / "map_in_map.o"))
    assert "  tables: array_of_maps  key 4B  value 4B  max_entries 4" in text
    assert "      inner template: array  key 4B  value 8B  max_entries 1  flags INNER_MAP" \
        in text
    assert "      [3] = big" in text


def test_obj_inspect_variables(capsys: pytest.CaptureFixture[str]) -> None:
    d = js(capsys, "obj", "inspect", str(DATA / "globals.o"))
    assert isinstance(d, dict)
    values = {v["name"]: v for v in d["variables"]}
    assert values["multiplier"]["value"] == 3 and values["multiplier"]["readonly"] is True
    assert values["greeting"]["value"] == "hello"
    assert values["last_result"]["value"] == 7 and values["tuned"]["value"] == 11
    text = ok(capsys, "obj", "inspect", str(DATA / "globals.o"))
    assert '  greeting = "hello"  in globals.rodata at 4, 6B  (read-only)' in text
    assert "not an ELF object" in fails(capsys, "obj", "inspect", __file__)
