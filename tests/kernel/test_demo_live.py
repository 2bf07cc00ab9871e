"""``purebpf demo --live``: the balancer on real packets through a veth pair, and its
cleanup (namespace, interfaces, link) on success, on Ctrl-C and on bad arguments."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from purebpf.cli import main
from purebpf.link import Link


def _netns() -> set[str]:
    try:
        return set(os.listdir("/var/run/netns"))
    except OSError:
        return set()


def test_live_demo_balances_real_packets_and_swaps_under_traffic(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--live", "--packets", "300"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"attached 'balance' to pbdemo\d+ \(ifindex \d+\) with XDP via "
                     r"bpf_link, link id \d+", out), out
    assert "300 UDP packets sent from purebpf-demo-" in out
    assert "the XDP program reported 300 through the ring buffer" in out
    assert re.search(r"service  80 +\d+ packets  201:", out)
    assert "packets that saw a half-built or missing table: 0" in out
    assert "to backends [201, 202, 203, 204, 205, 206]" in out  # the grown table served
    assert re.search(r"removed purebpf-demo-\d+ and pbdemo\d+", out)


def test_live_demo_cleans_up_on_ctrl_c() -> None:
    before_links, before_ns = set(Link.ids()), _netns()
    p = subprocess.Popen([sys.executable, "-c", "import sys; from purebpf.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", "demo", "--live", "--packets",
                          "100000000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                     signal.SIG_DFL))
    assert p.stdout is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "attached 'balance'" not in seen and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
    assert "attached 'balance'" in seen, seen
    time.sleep(0.5)  # packets are flowing
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 130, seen + rest
    assert re.search(r"removed purebpf-demo-\d+ and pbdemo\d+", rest), rest
    assert set(Link.ids()) <= before_links and _netns() == before_ns


def test_live_demo_refuses_pin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--live", "--pin", "/sys/fs/bpf/x"]) == 1
    assert "--pin does not go with --live" in capsys.readouterr().err
