"""Auto-attach of the hooks whose section does not name the target: xdp and tc with
``iface=``, cgroup programs with ``cgroup=`` (Program.attach and Collection.attach_all
dispatching to attach_xdp / attach_tc / attach_cgroup)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

import purebpf
from purebpf.link import LinkType
from purebpf.types import AttachType

from net_helpers import VethPair, veth  # noqa: F401  (fixture)
from test_attach_cgroup import cgroup  # noqa: F401  (fixture)

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
SLOT_XDP_A, SLOT_TC_A = 0, 2


@pytest.fixture
def net() -> Iterator[purebpf.Collection]:
    with purebpf.load(DATA / "attach_net.o") as coll:
        yield coll


def test_xdp_section_attaches_to_the_given_interface(net: purebpf.Collection,
                                                      veth: VethPair) -> None:  # noqa: F811
    with net.programs["xdp_a"].attach(iface=veth.host) as link:
        info = link.info()
        assert info.attach_type == AttachType.XDP
        assert info.target["ifindex"] == veth.host_index
        veth.send_udp(5)
        assert net.maps["counts"][SLOT_XDP_A] == 5
    veth.send_udp(5)
    assert net.maps["counts"][SLOT_XDP_A] == 5  # closed: detached


def test_tc_section_attaches_with_direction(net: purebpf.Collection,
                                            veth: VethPair) -> None:  # noqa: F811
    with net.programs["tc_a"].attach(iface=veth.host, direction="ingress") as link:
        assert link.info().target["ifindex"] == veth.host_index
        veth.send_udp(3)
        assert net.maps["counts"][SLOT_TC_A] == 3


def test_attach_all_gives_each_program_the_keywords_its_hook_takes(
        net: purebpf.Collection, veth: VethPair) -> None:  # noqa: F811
    # xdp_a and xdp_b cannot share the interface: attach_all is all or nothing, so ask
    # only for what fits by attaching one XDP program first and the rest by hand.
    with net.programs["xdp_b"].attach(iface=veth.host):
        with pytest.raises(purebpf.BPFError) as exc:
            net.attach_all(iface=veth.host, direction="ingress")
        assert "already runs XDP program" in str(exc.value)
    assert not getattr(net, "_links", [])  # nothing was kept from the failed attach_all


def test_cgroup_section_attaches_to_the_given_cgroup(cgroup: str) -> None:  # noqa: F811
    with purebpf.load(DATA / "attach_cgroup.o") as coll:
        with coll.programs["count_connect4"].attach(cgroup=cgroup) as link:
            info = link.info()
            assert info.type == LinkType.CGROUP
            assert info.attach_type == AttachType.CGROUP_INET4_CONNECT
            assert info.program_id == coll.programs["count_connect4"].id
