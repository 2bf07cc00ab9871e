"""The attach side of the command line: prog attach, link list/show/pin/detach, net show,
events (run in-process through the public entry point)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
from collections.abc import Iterator

import pytest

import purebpf
from purebpf import ProgramType, asm
from purebpf.cli import main
from purebpf.link import Link

from helpers import bpffs  # noqa: F401  (fixture)
from net_helpers import VethPair, veth  # noqa: F401  (fixture)

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def xdp_prog() -> Iterator[purebpf.Program]:
    a = asm.assemble([asm.Mov(asm.R0, 2), asm.Exit()])
    with purebpf.Program.load(a.spec("cli_xdp", ProgramType.XDP, license="GPL")) as p:
        yield p


def test_attach_pin_show_list_detach(capsys: pytest.CaptureFixture[str],
                                     xdp_prog: purebpf.Program, veth: VethPair,
                                     bpffs: str) -> None:  # noqa: F811
    pin = os.path.join(bpffs, "xdp")
    assert main(["prog", "attach", str(xdp_prog.id), "xdp", veth.host, "--pin", pin]) == 0
    out = capsys.readouterr().out
    assert f"attached program 'cli_xdp' (id {xdp_prog.id}) to xdp" in out
    assert f"ifindex {veth.host_index}" in out and f"pinned at {pin}" in out
    with Link.from_pin(pin) as link:
        lid = link.id
    assert main(["--json", "link", "show", pin]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d == {"id": lid, "type": "xdp", "prog_id": xdp_prog.id, "attach_type": "xdp",
                 "ifindex": veth.host_index}
    assert main(["link", "list"]) == 0
    assert f"{lid}: xdp  prog {xdp_prog.id}" in capsys.readouterr().out
    assert main(["--json", "net", "show", veth.host]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["devname"] == veth.host and rec["xdp"][0]["id"] == xdp_prog.id
    assert main(["net", "show"]) == 0
    assert f"{veth.host}({veth.host_index}) native id {xdp_prog.id} name cli_xdp" in \
        capsys.readouterr().out
    assert main(["link", "detach", pin]) == 0
    assert f"detached link {lid}" in capsys.readouterr().out
    assert main(["link", "detach", pin]) == 1
    assert "it is already detached" in capsys.readouterr().err  # the kernel's view
    os.unlink(pin)
    assert lid not in set(Link.ids())


def test_attach_without_pin_is_refused_and_leaves_nothing(
        capsys: pytest.CaptureFixture[str], xdp_prog: purebpf.Program,
        veth: VethPair) -> None:  # noqa: F811
    before = set(Link.ids())
    assert main(["prog", "attach", str(xdp_prog.id), "xdp", veth.host]) == 1
    err = capsys.readouterr().err
    assert "ends with this command: give --pin PATH" in err
    assert set(Link.ids()) == before


@pytest.mark.parametrize("argv, words", [
    (["xdp"], "expected xdp IFACE"),
    (["tc", "lo"], "expected tc IFACE ingress|egress"),
    (["bogus", "x"], "unknown hook 'bogus'"),
], ids=["xdp-no-iface", "tc-no-direction", "unknown-hook"])
def test_attach_usage_errors(capsys: pytest.CaptureFixture[str], xdp_prog: purebpf.Program,
                             argv: list[str], words: str) -> None:
    assert main(["prog", "attach", str(xdp_prog.id), *argv]) == 1
    assert words in capsys.readouterr().err


def test_link_show_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["link", "show", "4294967295"]) == 1
    assert "no such link" in capsys.readouterr().err
    assert main(["link", "show", "foo"]) == 1
    assert "links have no names" in capsys.readouterr().err


def test_net_show_missing_interface(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["net", "show", "nosuch0"]) == 1
    assert "no interface 'nosuch0'" in capsys.readouterr().err


def test_events_from_an_object_attaches_and_prints_records(
        capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()

    def exec_true() -> None:
        while not stop.wait(0.05):
            subprocess.run(["true"])

    t = threading.Thread(target=exec_true)
    t.start()
    try:
        assert main(["--json", "events", str(ROOT / "examples/snoop.bpf.o"), "events",
                     "--record", "struct event", "--count", "3", "--timeout", "60"]) == 0
    finally:
        stop.set()
        t.join()
    lines = capsys.readouterr().out.splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == 3 and all(set(r) == {"pid", "comm"} for r in recs)


def test_events_refuses_a_map_of_another_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", str(ROOT / "examples/snoop.bpf.o"), "packets"]) == 1
    assert "is an ARRAY map; events come from RINGBUF and PERF_EVENT_ARRAY maps" in \
        capsys.readouterr().err


def test_map_tree_marks_what_an_attached_program_reaches(
        capsys: pytest.CaptureFixture[str], veth: VethPair) -> None:  # noqa: F811
    from purebpf.link import attach_xdp

    with purebpf.load(ROOT / "src/purebpf/data/lb.bpf.o") as coll:
        services = coll.maps["services"]
        assert isinstance(services, purebpf.MapOfMaps)
        with services.new_inner(max_entries=3) as t:
            t[0], t[1], t[2] = 2, 101, 102
            services[53] = t
        assert main(["map", "tree", str(services.id)]) == 0
        out = capsys.readouterr().out
        assert "'balance': not attached" in out and "  [53] -> " in out
        assert "reachable" not in out
        with attach_xdp(coll.programs["balance"], veth.host) as link:
            assert main(["map", "tree", str(services.id)]) == 0
            out = capsys.readouterr().out
            assert f"'balance': xdp link {link.id} (ifindex {veth.host_index}" in out
            assert "'pick_backend': not attached" in out
            assert "(* reachable by an attached program)" in out and "  * [53] -> " in out
            assert main(["--json", "map", "tree", str(services.id)]) == 0
            d = json.loads(capsys.readouterr().out)
            assert [c["reachable"] for c in d["inner_maps"]] == [True]
            by_name = {p["name"]: p for p in d["programs"]}
            assert by_name["balance"]["attached"] and not by_name["pick_backend"]["attached"]
