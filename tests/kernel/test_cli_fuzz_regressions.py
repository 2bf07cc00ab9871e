"""The CLI on malformed input: one ``purebpf: ...`` line naming the file and the type ids at
fault, exit status 1, never a traceback; and arguments the demo cannot use."""

from __future__ import annotations

import pathlib
import re

import pytest

from purebpf.btf import FuncProto, Int, IntEncoding, Member, Param, Ptr, Spec, Struct, Typedef

from cli_helpers import fails, run

S32 = Int("int", 4, IntEncoding.SIGNED, 32)
MALFORMED = {
    "self-struct": (Spec([S32, Struct("loop", 4, (Member("self", 2, 0),))]),
                    r"type id 2 \(STRUCT 'loop'\) contains itself by value"),
    "self-typedef": (Spec([Typedef("loop_t", 1)]),
                     r"type id 1 \(TYPEDEF 'loop_t'\) is defined in terms of itself"),
    "self-proto": (Spec([S32, FuncProto(1, (Param("f", 3),)), Ptr(2), Typedef("cb_t", 3)]),
                   r"type id 2 \(FUNC_PROTO\) refers to itself"),
    "zero-size-bitfield": (Spec([Int("z", 0, IntEncoding.NONE, 0),
                                 Struct("s", 4, (Member("x", 1, 0, 3),))]),
                           r"member 0 \('x'\) is a 3-bit bitfield of type id 1 \(INT 'z'\), "
                           "which is 0 bytes"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_btf_dump_c_of_malformed_btf(capsys: pytest.CaptureFixture[str],
                                     tmp_path: pathlib.Path, case: str) -> None:
    spec, why = MALFORMED[case]
    path = tmp_path / f"{case}.btf"
    path.write_bytes(spec.encode())
    line = fails(capsys, "btf", "dump", str(path), "--format", "c")
    assert line.startswith(f"purebpf: {path}: malformed BTF: ")
    assert re.search(why, line), line


def test_btf_dump_raw_of_a_type_that_fails_to_decode(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: pathlib.Path) -> None:
    raw = bytearray(Spec([S32, Ptr(1)]).encode())
    raw[24 + 16 + 8:24 + 16 + 12] = (99).to_bytes(4, "little")  # the PTR's target: id 99
    path = tmp_path / "dangling.btf"
    path.write_bytes(bytes(raw))
    line = fails(capsys, "btf", "dump", str(path))
    assert line == (f"purebpf: {path}: malformed BTF: type id 2 (PTR) at offset 40: pointer "
                       "refers to type id 99, past the last type id 2")


@pytest.mark.parametrize("packets", ["-1", "-600"])
def test_demo_refuses_a_negative_packet_count(capsys: pytest.CaptureFixture[str],
                                              packets: str) -> None:
    line = fails(capsys, "demo", "--packets", packets)
    assert line == f"purebpf: --packets {packets}: the number of packets cannot be negative"


FUZZ = sorted((pathlib.Path(__file__).resolve().parents[1] / "testdata" / "fuzz").glob("*.*"))


@pytest.mark.parametrize("path", FUZZ, ids=[p.name for p in FUZZ])
@pytest.mark.parametrize("fmt", ["raw", "c"])
def test_btf_dump_of_every_fuzz_crasher(capsys: pytest.CaptureFixture[str],
                                        path: pathlib.Path, fmt: str) -> None:
    # Either a dump, or one line naming the file: never a traceback.
    rc, out, err = run(capsys, "btf", "dump", str(path), "--format", fmt)
    if rc:
        assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"purebpf: {path}: "), err
    else:
        assert err == "" and out
