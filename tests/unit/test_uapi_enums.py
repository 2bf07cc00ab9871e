"""purebpf's kernel enums against the installed uapi header, /usr/include/linux/bpf.h.

The header comes from linux-libc-dev (.ci/run installs libbpf-dev, which pulls it in). It may
be older than purebpf's numbers (Linux 6.18): a member the header lacks must then come after
the header's last member, because uapi enums only ever grow at the end.
"""

from __future__ import annotations

import enum
import pathlib
import re

import pytest
from conftest import IN_CI

from purebpf import AttachType, MapType, ProgramType
from purebpf._sys.constants import Cmd

HEADER = pathlib.Path("/usr/include/linux/bpf.h")

# (purebpf enum, prefix its members drop, the header's enum)
ENUMS = [
    (MapType, "BPF_MAP_TYPE_", "bpf_map_type"),
    (ProgramType, "BPF_PROG_TYPE_", "bpf_prog_type"),
    (AttachType, "BPF_", "bpf_attach_type"),
    (Cmd, "", "bpf_cmd"),
]


def parse_enum(text: str, name: str) -> dict[str, int]:
    """The members of ``enum name { ... };`` in C source, with their values (C rules: a
    member without ``=`` is the previous one plus one; ``=`` takes a number or an earlier
    member)."""
    m = re.search(r"\benum\s+" + re.escape(name) + r"\s*\{(.*?)\}\s*;", text, re.S)
    if m is None:
        raise LookupError(f"no enum {name} in the header")
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(1), flags=re.S)
    members: dict[str, int] = {}
    nxt = 0
    for item in (i.strip() for i in body.split(",")):
        if not item:
            continue
        ident, _, expr = (s.strip() for s in item.partition("="))
        if expr:
            nxt = members[expr] if expr in members else int(expr, 0)
        members[ident] = nxt
        nxt += 1
    return members


@pytest.fixture(scope="module")
def header() -> str:
    if not HEADER.exists():
        why = f"{HEADER} is missing (install linux-libc-dev, or libbpf-dev which pulls it in)"
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    return HEADER.read_text()


def test_parse_enum_follows_c_rules() -> None:
    src = """
    enum other { X };
    enum e {
        A,            /* a comment, with a comma */
        B = 5,
        C,            // another, comma
        D = B,
        E = 0x10,
        __MAX_E
    };"""
    assert parse_enum(src, "e") == {"A": 0, "B": 5, "C": 6, "D": 5, "E": 16, "__MAX_E": 17}
    with pytest.raises(LookupError):
        parse_enum(src, "missing")


@pytest.mark.parametrize("ours,prefix,cname", ENUMS, ids=[e[2] for e in ENUMS])
def test_numbers_match_the_header(header: str, ours: type[enum.IntEnum], prefix: str,
                                  cname: str) -> None:
    theirs = parse_enum(header, cname)
    assert theirs, f"enum {cname} is empty in {HEADER}"
    # The header's last real member: __MAX_* sentinels and aliases (BPF_PROG_RUN =
    # BPF_PROG_TEST_RUN) do not count.
    end = max(v for k, v in theirs.items() if not k.startswith("__")) + 1
    wrong, misplaced = [], []
    for name, member in ours.__members__.items():
        cname_member = prefix + name
        if cname_member in theirs:
            if int(member) != theirs[cname_member]:
                wrong.append(f"{ours.__name__}.{name} = {int(member)}, "
                             f"{HEADER} says {cname_member} = {theirs[cname_member]}")
        elif int(member) < end:
            misplaced.append(f"{ours.__name__}.{name} = {int(member)} is not in {HEADER}, "
                             f"whose enum {cname} already numbers 0..{end - 1}")
    assert not wrong and not misplaced, "\n".join(wrong + misplaced)


@pytest.mark.parametrize("ours", [e[0] for e in ENUMS], ids=[e[2] for e in ENUMS])
def test_no_two_members_share_a_number(ours: type[enum.IntEnum]) -> None:
    """IntEnum turns a repeated number into a silent alias: a typo would hide a member."""
    aliases = {name: ours[name].name for name in ours.__members__ if ours[name].name != name}
    assert not aliases, f"{ours.__name__} aliases: {aliases}"
