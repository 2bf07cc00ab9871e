"""Tracing hooks on the real kernel: tracepoints (perf link and the PERF_EVENT_IOC_SET_BPF
path), raw tracepoints, tp_btf, fentry/fexit, LSM, iterators; their info, their errors,
and nothing left behind.

The programs (tests/testdata/tracing.c) count this process's events in the "counts" array.
fentry/fexit/LSM programs cannot load on a kernel that refuses them (EPERM: lockdown on the
development machine); those tests skip there on that probe and run under 6.1 (kmatrix).
"""

from __future__ import annotations

import errno
import os
import pathlib
from collections.abc import Callable, Iterator

import pytest

import purebpf
from purebpf import (BPFError, BPFPermissionError, InvalidArgumentError, NotSupportedError,
                     ProgramType)
from purebpf.link import (Iterator as BPFIterator, Link, LinkType, PerfEventAttachment,
                          attach_iter, attach_lsm, attach_raw_tracepoint, attach_tracepoint,
                          attach_tracing)
from purebpf.link import _tracefs, tracing
from purebpf.types import AttachType

OBJ = pathlib.Path(__file__).parent.parent / "testdata" / "tracing.o"
TP, RAW_TP, TP_BTF, FENTRY, FEXIT, KPROBE, KRETPROBE, UPROBE, URETPROBE, LSM, GENERIC_TP = \
    range(11)
_REFUSABLE = {"enter_getpgid": "fentry", "exit_getpgid": "fexit", "deny_open": "lsm"}
ALWAYS = ["tp_getpid", "tp_any", "raw_sys_enter", "btf_sys_enter", "dump_maps", "dump_elems",
          "on_call", "on_return"]


def load(*names: str) -> purebpf.Collection:
    """tracing.o with only ``names`` loaded, counting this process."""
    spec = purebpf.CollectionSpec.from_file(OBJ)
    for n, p in spec.programs.items():
        p.autoload = n in names
    coll = purebpf.Collection.load(spec)
    coll.variables["target_pid"].set(os.getpid())
    return coll


def _refusal(name: str) -> str:
    """Why this kernel refuses to load program ``name``, or '' when it loads."""
    try:
        load(name).close()
    except BPFPermissionError as exc:
        return str(exc)
    return ""


def requires_load(name: str) -> pytest.MarkDecorator:
    why = _refusal(name)
    return pytest.mark.skipif(bool(why), reason=f"this kernel refuses {_REFUSABLE[name]} "
                              f"programs with EPERM (probe: loading {name!r}): {why}")


def count(coll: purebpf.Collection, slot: int) -> int:
    return int(coll.maps["counts"][slot])


@pytest.fixture
def coll() -> Iterator[purebpf.Collection]:
    with load(*ALWAYS) as c:
        yield c


def perf_fds() -> set[int]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]":
                out.add(int(fd))
        except OSError:
            pass
    return out


def calls(fn: Callable[[], object], n: int) -> None:
    for _ in range(n):
        fn()


# --- tracepoints --------------------------------------------------------------------------

def test_tracepoint_counts_getpid_and_stops_when_closed(coll: purebpf.Collection) -> None:
    before_fds = perf_fds()
    link = attach_tracepoint(coll.programs["tp_any"], "syscalls", "sys_enter_getpid")
    with link:
        calls(os.getpid, 7)
        assert count(coll, GENERIC_TP) == 7
        info = link.info()
        assert info.type == LinkType.PERF_EVENT
        assert info.program_id == coll.programs["tp_any"].id
        assert info.target["tracepoint"] == "sys_enter_getpid"
        assert info.target["perf_event_type"] == "tracepoint"
        if tracing.has_perf_link(coll.programs["tp_any"]):
            assert info.mechanism == "bpf_link" and isinstance(link, Link)
            assert info.id in set(Link.ids())
            assert perf_fds() == before_fds  # the link holds the perf event, not an fd of ours
        else:
            assert info.mechanism == "perf_event_ioctl"
    calls(os.getpid, 3)
    assert count(coll, GENERIC_TP) == 7
    assert info.id == 0 or info.id not in set(Link.ids())
    assert perf_fds() == before_fds


def test_tracepoint_through_the_perf_ioctl(coll: purebpf.Collection) -> None:
    """The pre-5.15 path (PERF_EVENT_IOC_SET_BPF), forced on this kernel."""
    prog = coll.programs["tp_any"]
    before_fds = perf_fds()
    tp_id = _tracefs.tracepoint_id("syscalls", "sys_enter_getpid")
    from purebpf._sys import perf
    pfd = perf.perf_event_open(type=perf.PERF_TYPE_TRACEPOINT, config=tp_id,
                               flags=perf.ATTR_DISABLED)
    att = tracing.attach_perf_event(prog, pfd, "attach tracepoint syscalls/sys_enter_getpid",
                                    {"tracepoint": "sys_enter_getpid"}, use_link=False)
    assert isinstance(att, PerfEventAttachment)
    with att:
        assert perf_fds() == before_fds | {pfd}
        calls(os.getpid, 4)
        assert count(coll, GENERIC_TP) == 4
        info = att.info()
        assert (info.id, info.mechanism, info.type) == (0, "perf_event_ioctl",
                                                         LinkType.PERF_EVENT)
        assert info.program_id == prog.id
        with pytest.raises(NotSupportedError, match="nothing to pin"):
            att.pin("/sys/fs/bpf/never")
        with pytest.raises(NotSupportedError, match="ends with its fd"):
            att.disconnect()
        att.detach()
        calls(os.getpid, 2)
        assert count(coll, GENERIC_TP) == 4
        assert perf_fds() == before_fds  # detaching closed the perf event
        with pytest.raises(BPFError) as e:
            att.detach()
        assert e.value.errno == errno.ENOLINK


def test_cookie_needs_a_perf_link(coll: purebpf.Collection) -> None:
    from purebpf._sys import perf
    pfd = perf.perf_event_open(type=perf.PERF_TYPE_TRACEPOINT,
                               config=_tracefs.tracepoint_id("syscalls", "sys_enter_getpid"),
                               flags=perf.ATTR_DISABLED)
    with pytest.raises(NotSupportedError, match="cookie needs a BPF_PERF_EVENT link"):
        tracing.attach_perf_event(coll.programs["tp_any"], pfd, "attach x", {}, cookie=5,
                                  use_link=False)


def test_missing_tracepoint_names_it_and_where_it_looked(coll: purebpf.Collection) -> None:
    with pytest.raises(BPFError) as e:
        attach_tracepoint(coll.programs["tp_any"], "syscalls", "sys_enter_nope")
    assert e.value.errno == errno.ENOENT
    text = str(e.value)
    assert "syscalls/sys_enter_nope" in text and "no such tracepoint" in text
    assert os.path.join(_tracefs.tracefs(), "events/syscalls/sys_enter_nope/id") in text
    assert "category 'syscalls' exists" in text
    with pytest.raises(BPFError, match="no category 'no_such_category'"):
        attach_tracepoint(coll.programs["tp_any"], "no_such_category", "x")


def test_wrong_program_type(coll: purebpf.Collection) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        attach_tracepoint(coll.programs["raw_sys_enter"], "syscalls", "sys_enter_getpid")
    assert e.value.errno == errno.EINVAL
    assert "RAW_TRACEPOINT" in str(e.value) and "runs TRACEPOINT programs" in str(e.value)
    with pytest.raises(InvalidArgumentError, match="runs RAW_TRACEPOINT"):
        attach_raw_tracepoint(coll.programs["tp_any"], "sys_enter")
    with pytest.raises(InvalidArgumentError, match="is an iterator"):
        attach_tracing(coll.programs["dump_maps"])
    with pytest.raises(InvalidArgumentError, match="runs LSM"):
        attach_lsm(coll.programs["btf_sys_enter"])
    with pytest.raises(TypeError, match="expected a purebpf.Program"):
        attach_tracepoint("tp_any", "syscalls", "sys_enter_getpid")


# --- raw tracepoints and BTF-typed hooks ---------------------------------------------------

def test_raw_tracepoint(coll: purebpf.Collection) -> None:
    prog = coll.programs["raw_sys_enter"]
    with attach_raw_tracepoint(prog, "sys_enter") as link:
        calls(os.getpid, 5)
        assert count(coll, RAW_TP) == 5
        info = link.info()
        assert (info.type, info.target["tracepoint"], info.program_id) == \
            (LinkType.RAW_TRACEPOINT, "sys_enter", prog.id)
        link_id = info.id
        assert link_id in set(Link.ids())
    calls(os.getpid, 2)
    assert count(coll, RAW_TP) == 5
    assert link_id not in set(Link.ids())


def test_missing_raw_tracepoint(coll: purebpf.Collection) -> None:
    with pytest.raises(BPFError) as e:
        attach_raw_tracepoint(coll.programs["raw_sys_enter"], "sys_enter_nope")
    assert e.value.errno == errno.ENOENT
    assert "'sys_enter_nope'" in str(e.value) and "no such tracepoint" in str(e.value)


def test_tp_btf(coll: purebpf.Collection) -> None:
    prog = coll.programs["btf_sys_enter"]
    with attach_tracing(prog) as link:
        calls(os.getpid, 6)
        assert count(coll, TP_BTF) == 6
        info = link.info()
        assert info.program_id == prog.id and info.target["tracepoint"] == "sys_enter"
    calls(os.getpid, 1)
    assert count(coll, TP_BTF) == 6


@requires_load("enter_getpgid")
def test_fentry_and_fexit() -> None:
    with load("enter_getpgid", "exit_getpgid") as c:
        with attach_tracing(c.programs["enter_getpgid"]) as a, \
                attach_tracing(c.programs["exit_getpgid"]) as b:
            calls(lambda: os.getpgid(0), 3)
            assert (count(c, FENTRY), count(c, FEXIT)) == (3, 3)
            assert a.info().type == LinkType.TRACING
            assert a.info().attach_type == AttachType.TRACE_FENTRY
            assert b.info().attach_type == AttachType.TRACE_FEXIT
            assert a.info().target["func"] == "__x64_sys_getpgid"
        os.getpgid(0)
        assert (count(c, FENTRY), count(c, FEXIT)) == (3, 3)


def _bpf_lsm_active() -> bool:
    lsms = _tracefs.active_lsms()
    return lsms is not None and "bpf" in lsms


@requires_load("deny_open")
@pytest.mark.skipif(not _bpf_lsm_active(), reason="the BPF LSM is not active (probe: "
                    f"/sys/kernel/security/lsm lists {_tracefs.active_lsms()})")
def test_lsm_denies_opening_one_file(tmp_path: pathlib.Path) -> None:
    denied, other = tmp_path / "denied", tmp_path / "other"
    denied.write_text("secret")
    other.write_text("fine")
    with load("deny_open") as c:
        c.variables["deny_ino"].set(denied.stat().st_ino)
        with attach_lsm(c.programs["deny_open"]) as link:
            with pytest.raises(PermissionError) as e:
                denied.read_text()
            assert e.value.errno == errno.EPERM
            assert other.read_text() == "fine"
            assert count(c, LSM) == 1
            info = link.info()
            assert info.attach_type == AttachType.LSM_MAC
            assert info.target["hook"] == "file_open"
        assert denied.read_text() == "secret"
        assert count(c, LSM) == 1


@pytest.mark.skipif(not _refusal("enter_getpgid"), reason="this kernel loads fentry "
                    "programs (probe: loading 'enter_getpgid'): no refusal to explain")
def test_refused_fentry_explains_lockdown() -> None:
    with pytest.raises(BPFPermissionError) as e:
        load("enter_getpgid")
    assert e.value.errno == errno.EPERM
    mode = _tracefs.lockdown()
    text = str(e.value)
    assert "'enter_getpgid'" in text and "not permitted" in text
    if mode in ("integrity", "confidentiality"):
        assert f"kernel lockdown ({mode}) is in force" in text
        assert "/sys/kernel/security/lockdown" in text and "fentry programs" in text
    else:
        assert "lockdown" in text  # the generic hint still names it


# --- iterators -------------------------------------------------------------------------------

def test_iterator_prints_every_map(coll: purebpf.Collection) -> None:
    with attach_iter(coll.programs["dump_maps"]) as it:
        assert isinstance(it, BPFIterator)
        first = it.text()
        ids = {int(line.split()[1]) for line in first.splitlines()}
        assert {coll.maps["counts"].id, coll.maps["shown"].id} <= ids
        assert b"".join(it) == it.read()  # each pass runs the program anew
        info = it.info()
        assert (info.type, info.target["iter"]) == (LinkType.ITER, "bpf_map")
        link_id = info.id
    assert link_id not in set(Link.ids())


def test_iterator_over_one_map(coll: purebpf.Collection) -> None:
    shown = coll.maps["shown"]
    shown[0], shown[2] = 5, 7
    with attach_iter(coll.programs["dump_elems"], map=shown) as it:
        assert it.text() == "0=5\n1=0\n2=7\n"
        assert it.info().target["map_id"] == shown.id
        shown[1] = 9
        assert it.read() == b"0=5\n1=9\n2=7\n"


def test_iterator_errors(coll: purebpf.Collection) -> None:
    with pytest.raises(BPFError) as e:
        attach_iter(coll.programs["dump_elems"])
    assert "pass map=" in str(e.value)
    with pytest.raises(BPFError, match="not an iterator"):
        attach_iter(coll.programs["btf_sys_enter"])
    with pytest.raises(InvalidArgumentError, match="runs TRACING"):
        attach_iter(coll.programs["tp_any"])


def test_program_type_of_tracing_object() -> None:
    spec = purebpf.CollectionSpec.from_file(OBJ)
    assert spec.programs["tp_any"].type == ProgramType.TRACEPOINT
    assert spec.programs["dump_maps"].expected_attach_type == AttachType.TRACE_ITER
