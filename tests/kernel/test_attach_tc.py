"""attach_tc on a real veth pair: tcx links (6.6+) and clsact + cls_bpf filters (forced with
mechanism="tc_filter" where tcx exists), ingress from the namespace, egress from the host."""

from __future__ import annotations

import errno
import pathlib
import subprocess
from collections.abc import Iterator

import pytest
from conftest import wait_for
from net_helpers import VethPair, tc_qdiscs, veth  # noqa: F401  (veth: fixture)

import purebpf
from purebpf import BPFError, Collection
from purebpf.errors import BPFPermissionError, InvalidArgumentError, NotSupportedError
from purebpf.link import Link, TcFilter, attach_tc, net_show
from purebpf.link.net import has_tcx
from purebpf.types import AttachType

OBJ = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "attach_net.o"
SLOT_A, SLOT_B = 2, 3
needs_tcx = pytest.mark.skipif(not has_tcx(), reason="no tcx links on this kernel "
                               "(purebpf.link.net.has_tcx() is False; Linux 6.6+)")
MECHANISMS = [pytest.param("tcx", marks=needs_tcx), "tc_filter"]


@pytest.fixture
def coll() -> Iterator[Collection]:
    with purebpf.load(OBJ) as c:
        yield c


def counted(coll: Collection, slot: int, n: int) -> bool:
    counts = coll.maps["counts"]
    return wait_for(lambda: counts[slot] >= n) and counts[slot] == n


def tc_ids(ifname: str, direction: str) -> list[int]:
    (rec,) = net_show(ifname)
    return [h.prog_id for h in getattr(rec, f"tc_{direction}")]


def no_clsact(ifname: str) -> bool:
    return "clsact" not in tc_qdiscs(ifname)


def test_default_mechanism_follows_the_probe(coll: Collection, veth: VethPair) -> None:
    with attach_tc(coll.programs["tc_a"], veth.host) as att:
        assert att.info().mechanism == ("bpf_link" if has_tcx() else "tc_filter")
        assert isinstance(att, Link if has_tcx() else TcFilter)
    assert no_clsact(veth.host)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_ingress_and_egress_run_and_close_removes_everything(
        coll: Collection, veth: VethPair, mechanism: str) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    with attach_tc(a, veth.host, "ingress", mechanism=mechanism) as ing, \
            attach_tc(b, veth.host, "egress", mechanism=mechanism) as eg:
        for att, prog, direction, attach in ((ing, a, "ingress", AttachType.TCX_INGRESS),
                                             (eg, b, "egress", AttachType.TCX_EGRESS)):
            info = att.info()
            assert info.mechanism == ("bpf_link" if mechanism == "tcx" else "tc_filter")
            assert info.program_id == prog.id and info.attach_type == attach
            assert info.target["ifindex"] == veth.host_index
            assert info.target["direction"] == direction
            assert tc_ids(veth.host, direction) == [prog.id]
        link_ids = [x.id for x in (ing, eg) if x.id]
        assert (no_clsact(veth.host)) == (mechanism == "tcx")
        (entry,) = [e for e in net_show(veth.host)[0].to_json()["tc"]
                    if e["kind"].endswith("/ingress")]
        assert entry["id"] == a.id and entry["name"] == "tc_a"
        assert entry["mechanism"] == mechanism
        if mechanism == "tc_filter":
            assert entry["prio"] == ing.info().target["priority"] and entry["da"] is True
        veth.send_udp(5)
        assert counted(coll, SLOT_A, 5)
        veth.send_udp_from_host(4)
        assert counted(coll, SLOT_B, 4)
    assert tc_ids(veth.host, "ingress") == [] and tc_ids(veth.host, "egress") == []
    assert no_clsact(veth.host)
    assert wait_for(lambda: not set(link_ids) & set(Link.ids()))


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_update_swaps_the_program_and_checks_the_expected_one(
        coll: Collection, veth: VethPair, mechanism: str) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    with attach_tc(a, veth.host, mechanism=mechanism) as att:
        att.update(b, expected=a)
        assert att.info().program_id == b.id
        assert tc_ids(veth.host, "ingress") == [b.id]
        veth.send_udp(3)
        assert counted(coll, SLOT_B, 3)
        assert coll.maps["counts"][SLOT_A] == 0
        with pytest.raises(BPFPermissionError) as exc:
            att.update(a, expected=a)
        assert exc.value.errno == errno.EPERM and "expected" in str(exc.value)
        assert tc_ids(veth.host, "ingress") == [b.id]
    assert tc_ids(veth.host, "ingress") == [] and no_clsact(veth.host)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_detach_twice(coll: Collection, veth: VethPair, mechanism: str) -> None:
    att = attach_tc(coll.programs["tc_a"], veth.host, mechanism=mechanism)
    try:
        att.detach()
        assert tc_ids(veth.host, "ingress") == [] and no_clsact(veth.host)
        with pytest.raises(BPFError) as exc:
            att.detach()
        assert exc.value.errno == errno.ENOLINK and "already detached" in str(exc.value)
    finally:
        att.close()
    att.close()


def test_filter_keeps_a_clsact_qdisc_it_did_not_create(coll: Collection,
                                                        veth: VethPair) -> None:
    subprocess.run(["tc", "qdisc", "add", "dev", veth.host, "clsact"], check=True)
    with attach_tc(coll.programs["tc_a"], veth.host, mechanism="tc_filter") as att:
        assert att.info().target["clsact_created"] is False
    assert not no_clsact(veth.host)
    subprocess.run(["tc", "qdisc", "del", "dev", veth.host, "clsact"], check=True)


def test_filter_removes_its_qdisc_only_when_no_filter_is_left(coll: Collection,
                                                              veth: VethPair) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    creator = attach_tc(a, veth.host, mechanism="tc_filter")
    try:
        with attach_tc(b, veth.host, "egress", mechanism="tc_filter") as other:
            assert other.info().target["clsact_created"] is False
            creator.close()  # b's filter is still under the qdisc
            assert not no_clsact(veth.host) and tc_ids(veth.host, "egress") == [b.id]
    finally:
        creator.close()
    # The creator was gone first: the qdisc stays (nobody who created it is left).
    assert not no_clsact(veth.host) and tc_ids(veth.host, "egress") == []
    subprocess.run(["tc", "qdisc", "del", "dev", veth.host, "clsact"], check=True)


def test_filter_priority_and_handle(coll: Collection, veth: VethPair) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    with attach_tc(a, veth.host, priority=5, handle=7) as att:
        assert att.info().mechanism == "tc_filter"  # priority/handle mean a filter
        assert (att.info().target["priority"], att.info().target["handle"]) == (5, 7)
        hook = net_show(veth.host)[0].tc_ingress[0]
        assert (hook.priority, hook.handle, hook.prog_id) == (5, 7, a.id)
        with pytest.raises(BPFError) as exc:
            attach_tc(b, veth.host, priority=5, handle=7)
        assert exc.value.errno == errno.EEXIST
        assert "priority 5 handle 0x7 is already there" in str(exc.value)
        assert tc_ids(veth.host, "ingress") == [a.id]
    assert no_clsact(veth.host)


@needs_tcx
def test_tcx_before_and_after(coll: Collection, veth: VethPair) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    with attach_tc(a, veth.host) as la:
        with attach_tc(b, veth.host, before=la):
            assert tc_ids(veth.host, "ingress") == [b.id, a.id]
        with attach_tc(b, veth.host, after=a):
            assert tc_ids(veth.host, "ingress") == [a.id, b.id]
        with attach_tc(b, veth.host, before=a):
            assert tc_ids(veth.host, "ingress") == [b.id, a.id]
        with pytest.raises(BPFError) as exc:
            attach_tc(a, veth.host)
        assert exc.value.errno == errno.EEXIST and "already attached" in str(exc.value)
    with attach_tc(a, veth.host, "egress") as la:
        with pytest.raises(BPFError) as exc:
            attach_tc(b, veth.host, "ingress", before=la)
        assert exc.value.errno == errno.ENOENT
        assert "is not attached to this hook" in str(exc.value)
    assert tc_ids(veth.host, "ingress") == []


def test_before_after_need_tcx(coll: Collection, veth: VethPair) -> None:
    a, b = coll.programs["tc_a"], coll.programs["tc_b"]
    with pytest.raises(ValueError, match="priority"):
        attach_tc(b, veth.host, before=a, mechanism="tc_filter")
    with pytest.raises(ValueError, match="one kind"):
        attach_tc(b, veth.host, before=a, priority=1)
    if not has_tcx():
        with pytest.raises(NotSupportedError) as exc:
            attach_tc(b, veth.host, before=a)
        assert exc.value.feature == "tcx" and "6.6" in str(exc.value)


@pytest.mark.parametrize("name,type_name", [("xdp_a", "XDP"), ("act", "SCHED_ACT")])
def test_wrong_program_type(coll: Collection, veth: VethPair, name: str,
                            type_name: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        attach_tc(coll.programs[name], veth.host)
    assert exc.value.errno == errno.EINVAL
    assert f"'{name}' is {type_name}" in str(exc.value) and "SCHED_CLS" in str(exc.value)
    if type_name == "SCHED_ACT":
        assert "tc actions" in str(exc.value)
    assert tc_ids(veth.host, "ingress") == [] and no_clsact(veth.host)


def test_bad_arguments(coll: Collection, veth: VethPair) -> None:
    prog = coll.programs["tc_a"]
    with pytest.raises(ValueError, match="direction"):
        attach_tc(prog, veth.host, "sideways")
    with pytest.raises(ValueError, match="priority must be 1..65535"):
        attach_tc(prog, veth.host, priority=0x10000)
    with pytest.raises(ValueError, match="mechanism"):
        attach_tc(prog, veth.host, mechanism="ebpf")


@pytest.mark.parametrize("iface", ["purebpf-none0", 999999], ids=["name", "ifindex"])
def test_missing_interface(coll: Collection, iface: str | int) -> None:
    with pytest.raises(BPFError) as exc:
        attach_tc(coll.programs["tc_a"], iface)
    assert exc.value.errno == errno.ENODEV
    assert str(iface) in str(exc.value) and "no interface" in str(exc.value)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_close_after_the_interface_is_gone(coll: Collection, veth: VethPair,
                                           mechanism: str) -> None:
    att = attach_tc(coll.programs["tc_a"], veth.host, mechanism=mechanism)
    try:
        subprocess.run(["ip", "link", "del", veth.host], check=True)
    finally:
        att.close()


def test_filter_cannot_be_pinned(coll: Collection, veth: VethPair) -> None:
    with attach_tc(coll.programs["tc_a"], veth.host, mechanism="tc_filter") as att:
        with pytest.raises(NotSupportedError, match="not a bpf_link"):
            att.pin("/sys/fs/bpf/purebpf-never")


def test_net_show_lists_every_interface(coll: Collection, veth: VethPair) -> None:
    names = [r.ifname for r in net_show()]
    assert "lo" in names and veth.host in names
    assert veth.host not in [r.ifname for r in net_show(only_attached=True)]
    with attach_tc(coll.programs["tc_a"], veth.host, mechanism="tc_filter"):
        assert veth.host in [r.ifname for r in net_show(only_attached=True)]
    with pytest.raises(BPFError) as exc:
        net_show("purebpf-none0")
    assert exc.value.errno == errno.ENODEV
