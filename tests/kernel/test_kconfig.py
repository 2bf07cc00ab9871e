""".kconfig externs against the real kernel: the program reads what the running kernel says
(or what the spec overrides), from a read-only, frozen map; a missing strong extern fails
the load naming it."""

from __future__ import annotations

import errno
import gzip
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import purebpf
from purebpf import BPFPermissionError, CollectionSpec, InvalidArgumentError, MapFlags

from cli_helpers import js, ok  # noqa: F401

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"
PACKET = bytes(64)


def kernel_config() -> dict[str, str]:
    """The running kernel's config, read here independently of purebpf."""
    boot = f"/boot/config-{os.uname().release}"
    if os.path.exists(boot):
        with open(boot) as f:
            text = f.read()
    else:
        with gzip.open("/proc/config.gz", "rt") as g:
            text = g.read()
    return dict(line.split("=", 1) for line in text.splitlines()
                if line.startswith("CONFIG_"))


def expected_version() -> int:
    u = os.uname()
    m = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", u.version) or \
        re.match(r"(\d+)\.(\d+)\.(\d+)", u.release)
    assert m is not None
    a, b, c = map(int, m.groups())
    return (a << 16) | (b << 8) | min(c, 255)


def run(spec: CollectionSpec) -> dict[str, object]:
    with purebpf.load(spec) as coll:
        assert coll.programs["read_kconfig"].test_run(PACKET).retval == 2  # XDP_PASS
        return {n: v.value for n, v in coll.variables.items()}


def test_program_reads_this_kernels_values() -> None:
    cfg = kernel_config()
    got = run(CollectionSpec.from_file(DATA / "kconfig.o"))
    tristate = {"y": 1, "m": 2, "n": 0}
    assert got == {
        "out_version": expected_version(),
        "out_syscall_wrapper": 1,  # x86-64 kernels since 4.17: __x64_sys_bpf
        "out_bpf_cookie": 1,       # bpf_get_attach_cookie: 5.15+
        "out_bpf": tristate[cfg["CONFIG_BPF"]],
        "out_bpf_syscall": int(cfg["CONFIG_BPF_SYSCALL"] == "y"),
        "out_hz": int(cfg["CONFIG_HZ"]),
        "out_log_buf_shift": int(cfg["CONFIG_LOG_BUF_SHIFT"]),
        "out_nr_cpus": int(cfg["CONFIG_NR_CPUS"]),
        "out_hostname": cfg.get("CONFIG_DEFAULT_HOSTNAME", '""').strip('"')[:15],
        "out_not_a_thing": 0,      # __weak and unknown: 0 (the .data default was -1)
    }


def test_overrides_change_what_the_program_sees() -> None:
    spec = CollectionSpec.from_file(DATA / "kconfig.o")
    k = spec.kconfig
    k["CONFIG_HZ"].value = 1000
    k["CONFIG_BPF"].value = "m"
    k["LINUX_KERNEL_VERSION"].value = (5 << 16) | (10 << 8) | 7
    k["LINUX_HAS_BPF_COOKIE"].value = False
    k["CONFIG_NR_CPUS"].value = 1 << 40
    k["CONFIG_DEFAULT_HOSTNAME"].value = "a-very-long-host-name"
    k["CONFIG_PUREBPF_NOT_A_THING"].value = -42
    got = run(spec)
    assert (got["out_hz"], got["out_bpf"], got["out_version"], got["out_bpf_cookie"],
            got["out_nr_cpus"], got["out_hostname"], got["out_not_a_thing"]) == \
        (1000, 2, 0x050A07, 0, 1 << 40, "a-very-long-hos", -42)


def test_kconfig_map_is_read_only_and_frozen() -> None:
    with purebpf.load(DATA / "kconfig.o") as coll:
        m = coll.maps["kconfig.kconfig"]
        assert m.info().flags & MapFlags.RDONLY_PROG
        assert m.info().value_size == 45
        with pytest.raises(BPFPermissionError):
            m[0] = bytes(45)


def test_missing_strong_extern_fails_naming_it() -> None:
    with pytest.raises(InvalidArgumentError) as e:
        purebpf.load(DATA / "kconfig_missing.o")
    msg = str(e.value)
    assert e.value.errno == errno.ESRCH
    assert "'CONFIG_PUREBPF_MISSING'" in msg
    assert "/proc/config.gz" in msg or "/boot/config-" in msg
    assert "__weak" in msg  # the hint


def test_missing_strong_extern_loads_once_set() -> None:
    spec = CollectionSpec.from_file(DATA / "kconfig_missing.o")
    spec.kconfig["CONFIG_PUREBPF_MISSING"].value = 1
    with purebpf.load(spec) as coll:
        assert coll.programs["read_missing"].test_run(PACKET).retval == 2  # XDP_PASS
    spec.kconfig["CONFIG_PUREBPF_MISSING"].value = 0
    with purebpf.load(spec) as coll:
        assert coll.programs["read_missing"].test_run(PACKET).retval == 1  # XDP_DROP


def test_bad_override_fails_before_the_kernel() -> None:
    spec = CollectionSpec.from_file(DATA / "kconfig.o")
    spec.kconfig["CONFIG_LOG_BUF_SHIFT"].value = 1 << 20
    with pytest.raises(InvalidArgumentError) as e:
        purebpf.load(spec)
    assert e.value.errno == errno.ERANGE and "'CONFIG_LOG_BUF_SHIFT'" in str(e.value)


def test_obj_inspect_shows_the_values(capsys: pytest.CaptureFixture[str]) -> None:
    d = js(capsys, "obj", "inspect", str(DATA / "kconfig.o"))
    assert isinstance(d, dict)
    ks = {k["name"]: k for k in d["kconfig"]}
    assert ks["CONFIG_HZ"]["value"] == int(kernel_config()["CONFIG_HZ"])
    assert ks["LINUX_KERNEL_VERSION"]["value"] == expected_version()
    assert ks["CONFIG_PUREBPF_NOT_A_THING"] == {
        "name": "CONFIG_PUREBPF_NOT_A_THING", "type": "int", "size": 4, "offset": 16,
        "weak": True, "overridden": False, "value": 0}
    text = ok(capsys, "obj", "inspect", str(DATA / "kconfig.o"))
    assert "kconfig externs" in text and "int CONFIG_HZ at 12, 4B = " in text
    missing = js(capsys, "obj", "inspect", str(DATA / "kconfig_missing.o"))
    assert isinstance(missing, dict)
    (k,) = missing["kconfig"]
    assert k["value"] is None and "CONFIG_PUREBPF_MISSING" in k["error"]


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool (libbpf) not installed")
def test_same_layout_and_values_as_libbpf() -> None:
    """bpftool loads the object with libbpf: same map, same layout, same values, except
    LINUX_HAS_SYSCALL_WRAPPER, which libbpf probes with a kprobe (see docs/design.md)."""
    pin = f"/sys/fs/bpf/purebpf_kconfig_{os.getpid()}"
    os.mkdir(pin)
    try:
        subprocess.run(["bpftool", "prog", "loadall", str(DATA / "kconfig.o"), pin],
                       check=True, capture_output=True)
        shown = json.loads(subprocess.run(
            ["bpftool", "-j", "map", "show", "name", "kconfig.kconfig"], check=True,
            capture_output=True, text=True).stdout)
        dumped = json.loads(subprocess.run(
            ["bpftool", "-j", "map", "dump", "name", "kconfig.kconfig"], check=True,
            capture_output=True, text=True).stdout)
    finally:
        shutil.rmtree(pin, ignore_errors=True)
    theirs = {k: v for d in dumped[0]["formatted"]["value"][".kconfig"] for k, v in d.items()} \
        if "formatted" in dumped[0] else \
        {k: v for d in dumped[0]["value"][".kconfig"] for k, v in d.items()}
    with purebpf.load(DATA / "kconfig.o") as coll:
        m = coll.maps["kconfig.kconfig"]
        info = m.info()
        assert (int(info.flags), info.value_size) == (shown["flags"], shown["bytes_value"])
        assert info.btf_id  # the kernel took the rewritten .kconfig DATASEC
        raw = bytes(purebpf.Map.__getitem__(m, 0))
    spec = CollectionSpec.from_file(DATA / "kconfig.o")
    tri = {0: "TRI_NO", 1: "TRI_YES", 2: "TRI_MODULE"}
    ours: dict[str, object] = {}
    for e in spec.kconfig.values():
        b = raw[e.offset:e.offset + e.size]
        if e.kind == "char_array":
            ours[e.name] = b.split(b"\0", 1)[0].decode()
        elif e.kind == "bool":
            ours[e.name] = bool(b[0])
        elif e.kind == "tristate":
            ours[e.name] = tri[int.from_bytes(b, sys.byteorder)]
        else:
            ours[e.name] = int.from_bytes(b, sys.byteorder, signed=e.signed)
    theirs.pop("LINUX_HAS_SYSCALL_WRAPPER")
    assert ours.pop("LINUX_HAS_SYSCALL_WRAPPER") is True
    if "Debian " in os.uname().version and theirs["LINUX_KERNEL_VERSION"] != \
            ours["LINUX_KERNEL_VERSION"]:
        # libbpf before 1.2 (bpftool 7.1 ships 1.1) lacks the Debian quirk: it reads
        # 6.1.0 from uname -r where uname -v says "Debian 6.1.192-3".
        release = re.match(r"(\d+)\.(\d+)\.(\d+)", os.uname().release)
        assert release is not None
        a, b, c = map(int, release.groups())
        assert theirs.pop("LINUX_KERNEL_VERSION") == (a << 16) | (b << 8) | min(c, 255)
        assert ours.pop("LINUX_KERNEL_VERSION") == expected_version()
    assert ours == theirs
    assert list(theirs) == [n for n in spec.kconfig if n in theirs]
