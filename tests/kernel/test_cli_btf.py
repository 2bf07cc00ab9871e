"""``purebpf btf dump``, BTF objects fetched from the kernel, and BTF-typed value decoding."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import struct
import subprocess

import pytest

import purebpf
from purebpf import BPFError, BTFHandle, Map, MapSpec, MapType
from purebpf.btf import (Array, Datasec, Enum, EnumValue, Int, IntEncoding, Member, Spec, Struct, Typedef,
                         Union, Var, VarSecinfo, parse)
from purebpf.btf.raw import dump_raw, raw_types
from purebpf.btf.values import decode
from purebpf.elf import read_elf

from cli_helpers import BPFTOOL, fails, ok

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
VMLINUX = "/sys/kernel/btf/vmlinux"


def bpftool(*argv: str) -> str:
    assert BPFTOOL is not None
    return subprocess.run([BPFTOOL, *argv], check=True, capture_output=True, text=True).stdout


def obj_btf(name: str) -> Spec:
    sec = read_elf(DATA / name).section(".BTF")
    assert sec is not None
    return parse(sec.data)


# -- btf dump ----------------------------------------------------------------------------------
@pytest.mark.parametrize("obj", ["globals.o", "map_in_map.o", "btf/kinds.o", "core.o"])
def test_raw_dump_of_an_object_matches_bpftool(capsys: pytest.CaptureFixture[str],
                                               obj: str) -> None:
    out = ok(capsys, "btf", "dump", str(DATA / obj))
    assert out.startswith("[1] ")
    if BPFTOOL:
        assert out == bpftool("btf", "dump", "file", str(DATA / obj))
        theirs = json.loads(bpftool("-j", "btf", "dump", "file", str(DATA / obj)))
        ours = json.loads(ok(capsys, "--json", "btf", "dump", str(DATA / obj)))
        assert len(ours["types"]) == len(theirs["types"])
        for a, b in zip(ours["types"], theirs["types"]):
            if a["kind"] in ("ENUM", "ENUM64"):  # bpftool's JSON sign-extends some values
                a, b = dict(a, values=None), dict(b, values=None)
            assert a == b


def test_c_dump_of_an_object(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "btf", "dump", str(DATA / "globals.o"), "--format", "c")
    assert out.startswith("#ifndef __VMLINUX_H__")
    assert "struct xdp_md {\n\t__u32 data;" in out
    assert "--json is only for --format raw" in fails(capsys, "--json", "btf", "dump",
                                                      str(DATA / "globals.o"), "--format", "c")


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_vmlinux_raw_and_c(capsys: pytest.CaptureFixture[str]) -> None:
    raw = ok(capsys, "btf", "dump", "vmlinux")
    assert raw.startswith("[1] ") and "STRUCT 'task_struct' size=" in raw
    if BPFTOOL:
        assert raw == bpftool("btf", "dump", "file", VMLINUX)
    c = ok(capsys, "btf", "dump", "vmlinux", "--format", "c")
    assert "struct task_struct {" in c and c.rstrip().endswith("#endif /* __VMLINUX_H__ */")


def test_dump_by_kernel_id(capsys: pytest.CaptureFixture[str]) -> None:
    with purebpf.load(DATA / "globals.o") as coll:
        btf_id = coll.maps["results"].info().btf_id
        assert btf_id
        out = ok(capsys, "btf", "dump", str(btf_id))
        assert "[1] PTR '(anon)' type_id=3" in out and "DATASEC '.bss'" in out
        if BPFTOOL:
            assert out == bpftool("btf", "dump", "id", str(btf_id))
    assert fails(capsys, "btf", "dump", "4294967295") == \
        "purebpf: open BTF id 4294967295: no such BTF object [ENOENT]"
    assert "not readable as BTF" in fails(capsys, "btf", "dump", __file__)
    assert "no such file" in fails(capsys, "btf", "dump", "/no/such/file")


def test_module_btf_is_split_on_vmlinux(capsys: pytest.CaptureFixture[str]) -> None:
    mods = [m for m in os.listdir("/sys/kernel/btf") if m != "vmlinux"] \
        if os.path.isdir("/sys/kernel/btf") else []
    if not mods:
        pytest.skip("no kernel module has BTF here")
    path = f"/sys/kernel/btf/{mods[0]}"
    out = ok(capsys, "btf", "dump", path)
    first = int(out.split("]", 1)[0].lstrip("["))
    assert first > 1  # ids continue vmlinux's
    if BPFTOOL:
        assert out == bpftool("btf", "dump", "file", path, "-B", VMLINUX)


# -- BTF objects from the kernel -----------------------------------------------------------------
def test_btf_handle_from_id() -> None:
    with purebpf.load(DATA / "globals.o") as coll:
        m = coll.maps["results"]
        info = m.info()
        with BTFHandle.from_id(info.btf_id) as h:
            assert h.id == info.btf_id
            assert h.info().kernel_btf is False and h.info().size == len(h.data())
            assert info.btf_id in set(BTFHandle.ids())
            spec = h.spec()
            assert spec.type_by_id(info.btf_value_type_id).name == "__u64"
            assert repr(h).startswith(f"<BTFHandle id={info.btf_id} fd=")
        assert m.btf() is m.btf()  # fetched once
        assert decode(m.btf(), info.btf_value_type_id, struct.pack("<Q", 5)) == 5
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=1)) as plain:
        assert plain.btf() is None
    with pytest.raises(BPFError) as exc:
        BTFHandle.from_id(4294967295)
    assert exc.value.errno == errno.ENOENT and "no such BTF object" in str(exc.value)


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_vmlinux_btf_object_is_the_file() -> None:
    for btf_id in BTFHandle.ids():
        try:
            h = BTFHandle.from_id(btf_id)
        except BPFError:
            continue  # freed meanwhile
        with h:
            if h.info().kernel_btf and h.info().name == "vmlinux":
                with open(VMLINUX, "rb") as f:
                    assert h.data() == f.read()
                assert len(h.spec().types) > 1000
                return
    pytest.fail("no vmlinux BTF object")


# -- decoding values -----------------------------------------------------------------------------
def _spec() -> Spec:
    s = Spec()
    u32 = s.add(Int("unsigned int", 4, IntEncoding.NONE, 32))          # 1
    i16 = s.add(Int("short", 2, IntEncoding.SIGNED, 16))               # 2
    char = s.add(Int("char", 1, IntEncoding.SIGNED, 8))                # 3
    boolean = s.add(Int("_Bool", 1, IntEncoding.BOOL, 8))              # 4
    name = s.add(Array(char, u32, 6))                                  # 5
    color = s.add(Enum("color", 4, False, (EnumValue("RED", 0), EnumValue("BLUE", 7))))  # 6
    inner = s.add(Union("", 4, (Member("word", u32, 0), Member("half", i16, 0))))  # 7
    bits = s.add(Struct("bits", 4, (Member("a", u32, 0, 3), Member("b", i16, 3, 5))))  # 8
    top = s.add(Struct("top", 24, (                                     # 9
        Member("n", u32, 0), Member("name", name, 32), Member("ok", boolean, 80),
        Member("col", color, 96), Member("", inner, 128), Member("bits", bits, 160))))
    td = s.add(Typedef("top_t", top))                                   # 10
    v = s.add(Var("cfg", td))                                           # 11
    s.add(Datasec(".data", 24, (VarSecinfo(v, 0, 24),)))                # 12
    return s


def _raw() -> bytes:
    return (struct.pack("<I", 9) + b"hello\0" + b"\x01\x00" + struct.pack("<I", 7)
            + struct.pack("<I", 0xFFFF0005) + struct.pack("<I", 0b11110_101))


@pytest.mark.parametrize("type_id,expected", [
    (9, {"n": 9, "name": "hello", "ok": True, "col": "BLUE", "word": 0xFFFF0005, "half": 5,
         "bits": {"a": 5, "b": -2}}),
    (10, {"n": 9, "name": "hello", "ok": True, "col": "BLUE", "word": 0xFFFF0005, "half": 5,
          "bits": {"a": 5, "b": -2}}),
    (12, {"cfg": {"n": 9, "name": "hello", "ok": True, "col": "BLUE", "word": 0xFFFF0005,
                  "half": 5, "bits": {"a": 5, "b": -2}}}),
], ids=["struct", "typedef", "datasec"])
def test_decode_typed_values(type_id: int, expected: object) -> None:
    assert decode(_spec(), type_id, _raw()) == expected


def test_decode_edge_cases() -> None:
    s = _spec()
    assert decode(s, 6, struct.pack("<I", 3)) == 3            # no enumerator: the number
    assert decode(s, 5, b"hi\0\0x\0") == [104, 105, 0, 0, 120, 0]  # not a C string: a list
    assert decode(s, 2, b"\xff\xff") == -1
    with pytest.raises(ValueError, match="too short"):
        decode(s, 9, b"\0" * 4)


def test_decode_big_endian_bitfields() -> None:
    be = obj_btf("btf/kinds.bpfeb.o")
    le = obj_btf("btf/kinds.o")
    raw_le = bytes([0b10101011, 0xFF, 0x0F, 0, 0, 0, 0, 0, 0x41] + [0] * 7)
    assert decode(le, le.find_id("flags"), raw_le) == {"a": 3, "b": 21, "c": -1, "d": 0,
                                                       "tail": 65}
    raw_be = bytes([0b10101011, 0xFF, 0x00, 0, 0, 0, 0, 0, 0x41] + [0] * 7)
    assert decode(be, be.find_id("flags"), raw_be) == {"a": 5, "b": 11, "c": -16, "d": 0,
                                                       "tail": 65}


def test_raw_listing_api() -> None:
    s = _spec()
    text = dump_raw(s)
    assert text.splitlines()[0] == "[1] INT 'unsigned int' size=4 bits_offset=0 nr_bits=32 " \
                                   "encoding=(none)"
    assert "\t'b' type_id=2 bits_offset=3 bitfield_size=5" in text
    assert "[12] DATASEC '.data' size=24 vlen=1\n\ttype_id=11 offset=0 size=24 (VAR 'cfg')" \
        in text
    types = raw_types(s)
    assert types[5]["values"] == [{"name": "RED", "val": 0}, {"name": "BLUE", "val": 7}]
    assert [t["id"] for t in types] == list(range(1, 13))
