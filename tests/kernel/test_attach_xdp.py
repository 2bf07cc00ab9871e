"""attach_xdp on a real veth pair: frames sent from a network namespace run the program.

Both mechanisms run on every kernel that has them: "bpf_link" (BPF_LINK_CREATE, 5.9+) and
"netlink" (IFLA_XDP, forced with mechanism="netlink").
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import wait_for
from helpers import bpffs  # noqa: F401  (fixture)
from net_helpers import VethPair, ifb_interface, veth, xdp_prog_ids  # noqa: F401  (veth: fixture)

import purebpf
from purebpf import BPFError, Collection
from purebpf.errors import (BPFPermissionError, InvalidArgumentError, NotSupportedError)
from purebpf.link import Link, XdpAttachment, attach_xdp, net_show

OBJ = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "attach_net.o"
SLOT_A, SLOT_B = 0, 1
MECHANISMS = ["bpf_link", "netlink"]


@pytest.fixture
def coll() -> Iterator[Collection]:
    with purebpf.load(OBJ) as c:
        yield c


def counted(coll: Collection, slot: int, n: int) -> bool:
    """Wait until the program counted ``n`` test frames in ``slot`` (veth runs native XDP
    from NAPI, after the send returns); True if it did."""
    counts = coll.maps["counts"]
    return wait_for(lambda: counts[slot] >= n) and counts[slot] == n


def hooks(ifname: str) -> dict[str, object]:
    (rec,) = net_show(ifname)
    return rec.to_json()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_attach_runs_the_program_and_close_removes_it(coll: Collection, veth: VethPair,
                                                      mechanism: str) -> None:
    prog = coll.programs["xdp_a"]
    with attach_xdp(prog, veth.host, mechanism=mechanism) as att:
        info = att.info()
        assert info.mechanism == mechanism
        assert info.program_id == prog.id
        assert info.target["ifindex"] == veth.host_index
        assert info.target["mode"] == "native"  # veth has native XDP: auto picks it
        assert isinstance(att, Link if mechanism == "bpf_link" else XdpAttachment)
        link_id = att.id
        assert (link_id in set(Link.ids())) == (mechanism == "bpf_link")
        assert xdp_prog_ids(veth.host) == [prog.id]
        assert hooks(veth.host)["xdp"] == [{"mode": "native", "id": prog.id, "name": "xdp_a"}]
        veth.send_udp(5)
        assert counted(coll, SLOT_A, 5)
    assert xdp_prog_ids(veth.host) == []
    assert hooks(veth.host)["xdp"] == []
    if link_id:
        assert wait_for(lambda: link_id not in set(Link.ids()))
    veth.send_udp(3)
    assert coll.maps["counts"][SLOT_A] == 5  # nothing runs any more


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_generic_mode_and_ifindex(coll: Collection, veth: VethPair, mechanism: str) -> None:
    with attach_xdp(coll.programs["xdp_a"], veth.host_index, "generic",
                    mechanism=mechanism) as att:
        assert att.info().target["mode"] == "generic"
        assert att.info().target["ifname"] == veth.host
        assert hooks(veth.host)["xdp"][0]["mode"] == "generic"  # type: ignore[index]
        veth.send_udp(4)
        assert counted(coll, SLOT_A, 4)
    assert xdp_prog_ids(veth.host) == []


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_update_swaps_the_program_and_checks_the_expected_one(
        coll: Collection, veth: VethPair, mechanism: str) -> None:
    a, b = coll.programs["xdp_a"], coll.programs["xdp_b"]
    with attach_xdp(a, veth.host, mechanism=mechanism) as att:
        att.update(b, expected=a)
        assert att.info().program_id == b.id
        assert xdp_prog_ids(veth.host) == [b.id]
        veth.send_udp(3)
        assert counted(coll, SLOT_B, 3)
        assert coll.maps["counts"][SLOT_A] == 0
        with pytest.raises(BPFPermissionError) as exc:
            att.update(a, expected=a)  # it runs b now
        assert exc.value.errno == errno.EPERM
        assert "expected" in str(exc.value) and str(a.id) in str(exc.value)
        assert xdp_prog_ids(veth.host) == [b.id]  # unchanged
        with pytest.raises(InvalidArgumentError if mechanism == "netlink" else BPFError):
            att.update(coll.programs["tc_a"])
        assert xdp_prog_ids(veth.host) == [b.id]
    assert xdp_prog_ids(veth.host) == []


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_detach_twice(coll: Collection, veth: VethPair, mechanism: str) -> None:
    att = attach_xdp(coll.programs["xdp_a"], veth.host, mechanism=mechanism)
    try:
        att.detach()
        assert xdp_prog_ids(veth.host) == []
        with pytest.raises(BPFError) as exc:
            att.detach()
        assert exc.value.errno == errno.ENOLINK
        assert "already detached" in str(exc.value)
    finally:
        att.close()
    att.close()  # idempotent


@pytest.mark.parametrize("holder", MECHANISMS)
@pytest.mark.parametrize("mechanism", [None, *MECHANISMS])
def test_ebusy_names_the_holder(coll: Collection, veth: VethPair, holder: str,
                                mechanism: str | None) -> None:
    a, b = coll.programs["xdp_a"], coll.programs["xdp_b"]
    with attach_xdp(a, veth.host, mechanism=holder):
        for mode in ("auto", "native", "generic"):
            with pytest.raises(BPFError) as exc:
                attach_xdp(b, veth.host, mode, mechanism=mechanism)
            assert exc.value.errno == errno.EBUSY
            msg = str(exc.value)
            assert f"XDP program id {a.id} ('xdp_a') in native mode" in msg
            assert veth.host in msg and "detach it first" in msg
        assert xdp_prog_ids(veth.host) == [a.id]
    assert xdp_prog_ids(veth.host) == []


def test_replace_takes_over_a_netlink_program_and_close_never_removes_anothers(
        coll: Collection, veth: VethPair) -> None:
    a, b = coll.programs["xdp_a"], coll.programs["xdp_b"]
    first = attach_xdp(a, veth.host, mechanism="netlink")
    try:
        with attach_xdp(b, veth.host, replace=True) as second:
            assert second.info().mechanism == "netlink"
            assert xdp_prog_ids(veth.host) == [b.id]
            first.close()  # a is no longer attached: b (someone else's) must stay
            assert xdp_prog_ids(veth.host) == [b.id]
            veth.send_udp(2)
            assert counted(coll, SLOT_B, 2)
        assert xdp_prog_ids(veth.host) == []
    finally:
        first.close()


def test_replace_cannot_take_over_a_link(coll: Collection, veth: VethPair) -> None:
    a, b = coll.programs["xdp_a"], coll.programs["xdp_b"]
    with attach_xdp(a, veth.host, mechanism="bpf_link") as link:
        with pytest.raises(BPFError) as exc:
            attach_xdp(b, veth.host, replace=True)
        assert exc.value.errno == errno.EBUSY
        assert f"id {a.id}" in str(exc.value) and "update()" in str(exc.value)
        assert link.info().program_id == a.id


@pytest.mark.parametrize("iface", ["purebpf-none0", 999999], ids=["name", "ifindex"])
def test_missing_interface(coll: Collection, iface: str | int) -> None:
    with pytest.raises(BPFError) as exc:
        attach_xdp(coll.programs["xdp_a"], iface)
    assert exc.value.errno == errno.ENODEV
    assert str(iface) in str(exc.value) and "no interface" in str(exc.value)


def test_wrong_program_type(coll: Collection, veth: VethPair) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        attach_xdp(coll.programs["tc_a"], veth.host)
    assert exc.value.errno == errno.EINVAL
    assert "'tc_a' is SCHED_CLS" in str(exc.value) and "XDP" in str(exc.value)
    with pytest.raises(TypeError, match="expected a purebpf.Program"):
        attach_xdp(coll.maps["counts"], veth.host)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be"):
        attach_xdp(coll.programs["xdp_a"], veth.host, "fast")
    assert xdp_prog_ids(veth.host) == []


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_native_mode_on_a_driver_without_it(coll: Collection, mechanism: str) -> None:
    with ifb_interface() as ifb:
        with pytest.raises(NotSupportedError) as exc:
            attach_xdp(coll.programs["xdp_a"], ifb, "native", mechanism=mechanism)
        assert exc.value.errno == errno.EOPNOTSUPP
        assert "has no native XDP support" in str(exc.value)
        assert "mode='generic'" in str(exc.value)
        with attach_xdp(coll.programs["xdp_a"], ifb, mechanism=mechanism) as att:
            assert att.info().target["mode"] == "generic"  # auto fell back
            assert hooks(ifb)["xdp"][0]["mode"] == "generic"  # type: ignore[index]
        assert xdp_prog_ids(ifb) == []


def test_offload_mode_without_an_offload_nic(coll: Collection, veth: VethPair) -> None:
    with pytest.raises(NotSupportedError) as exc:
        attach_xdp(coll.programs["xdp_a"], veth.host, "offload")
    assert "offload" in str(exc.value) and "NIC" in str(exc.value)
    assert xdp_prog_ids(veth.host) == []


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_close_after_the_interface_is_gone(coll: Collection, veth: VethPair,
                                           mechanism: str) -> None:
    att = attach_xdp(coll.programs["xdp_a"], veth.host, mechanism=mechanism)
    try:
        subprocess.run(["ip", "link", "del", veth.host], check=True)
    finally:
        att.close()  # nothing left to remove, and no error


def test_netlink_attachment_cannot_be_pinned(coll: Collection, veth: VethPair) -> None:
    with attach_xdp(coll.programs["xdp_a"], veth.host, mechanism="netlink") as att:
        with pytest.raises(NotSupportedError, match="not a bpf_link"):
            att.pin("/sys/fs/bpf/purebpf-never")
        assert att.id == 0


def test_pinned_link_reopened_in_a_second_process(coll: Collection, veth: VethPair,
                                                  bpffs: str) -> None:  # noqa: F811
    prog = coll.programs["xdp_a"]
    path = os.path.join(bpffs, "xdp_link")
    with attach_xdp(prog, veth.host, mechanism="bpf_link") as link:
        link_id = link.id
        link.pin(path)
    # Our fd is closed; the pin keeps the program attached.
    assert xdp_prog_ids(veth.host) == [prog.id]
    veth.send_udp(2)
    assert counted(coll, SLOT_A, 2)
    code = ("import json, sys; from purebpf.link import Link\n"
            "with Link.from_pin(sys.argv[1]) as l:\n"
            "    print(json.dumps(l.info().to_json()))\n"
            "    l.detach()\n")
    res = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(pathlib.Path(purebpf.__file__)
                                                              .parents[1])})
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["id"] == link_id and seen["prog_id"] == prog.id
    assert seen["type"] == "xdp" and seen["ifindex"] == veth.host_index
    assert xdp_prog_ids(veth.host) == []  # the second process detached it
    os.unlink(path)
    assert wait_for(lambda: link_id not in set(Link.ids()))
