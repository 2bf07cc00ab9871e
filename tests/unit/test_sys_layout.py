"""ctypes attr layouts and uapi constants checked against the C compiler's view of
<linux/bpf.h>.

The installed header may be older than the running kernel (here 6.1 vs 6.18): a field or
constant it lacks must be a known newer addition, and a newer field may only occupy bytes no
field of the header uses (appended at the end, or in a former padding hole): that is how the
bpf ABI grows.
"""

from __future__ import annotations

import ctypes
import enum
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from purebpf._sys import attrs
from purebpf._sys import constants as C

HEADER = Path("/usr/include/linux/bpf.h")
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")

# ctypes class name -> (C aggregate, member prefix, renamed members)
LAYOUTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "MapCreateAttr": ("union bpf_attr", "", {}),
    "MapElemAttr": ("union bpf_attr", "", {}),
    "MapBatchAttr": ("union bpf_attr", "batch.", {}),
    "ObjAttr": ("union bpf_attr", "", {}),
    "GetIdAttr": ("union bpf_attr", "", {"id": "start_id"}),
    "InfoAttr": ("union bpf_attr", "info.", {}),
    "MapFdAttr": ("union bpf_attr", "", {}),
    "BpfMapInfo": ("struct bpf_map_info", "", {}),
    "ProgLoadAttr": ("union bpf_attr", "", {}),
    "ProgTestRunAttr": ("union bpf_attr", "test.", {}),
    "BtfLoadAttr": ("union bpf_attr", "", {}),
    "BpfProgInfo": ("struct bpf_prog_info", "", {}),
    "BpfBtfInfo": ("struct bpf_btf_info", "", {}),
}

# Fields newer than the oldest header we build against (kernel version that added them).
KNOWN_NEWER_FIELDS = {
    "MapCreateAttr.value_type_btf_obj_fd": "6.9",
    "MapCreateAttr.map_token_fd": "6.9",
    "ObjAttr.path_fd": "6.5",
    "GetIdAttr.fd_by_id_token_fd": "6.16",
    "BpfMapInfo.btf_vmlinux_id": "6.5 (a padding hole before)",
    "ProgLoadAttr.log_true_size": "6.4",
    "ProgLoadAttr.prog_token_fd": "6.9",
    "ProgLoadAttr.fd_array_cnt": "6.14",
    "BtfLoadAttr.btf_log_true_size": "6.4",
    "BtfLoadAttr.btf_flags": "6.9",
    "BtfLoadAttr.btf_token_fd": "6.9",
}
KNOWN_NEWER_CONSTANTS = {
    "BPF_MAP_TYPE_ARENA": "6.9",
    "BPF_F_PATH_FD": "6.5",
    "BPF_F_VTYPE_BTF_OBJ_FD": "6.9",
    "BPF_F_TOKEN_FD": "6.9",
    "BPF_F_SEGV_ON_FAULT": "6.9",
    "BPF_F_NO_USER_CONV": "6.9",
    "BPF_TOKEN_CREATE": "6.9",
    "BPF_F_LINK": "6.4",
    "BPF_MAP_TYPE_CGRP_STORAGE": "6.2",
    "BPF_F_ACCESS_MASK": "kernel-internal mask, not uapi",
}

pytestmark = pytest.mark.skipif(CC is None or not HEADER.exists(),
                                reason="needs a C compiler and <linux/bpf.h>")


def _compile_and_run(lines: list[str], tmp: Path) -> tuple[dict[int, str], str]:
    """Compile one printf per line; drop lines the header cannot compile, retrying.

    Returns ({line index: error text} for dropped lines, program output).
    """
    dropped: dict[int, str] = {}
    head = ["#include <stddef.h>", "#include <stdio.h>", "#include <linux/bpf.h>",
            "int main(void) {"]
    for _ in range(5):
        body = [ln if i not in dropped else "" for i, ln in enumerate(lines)]
        src = tmp / "layout.c"
        src.write_text("\n".join(head + body + ["return 0; }"]) + "\n")
        exe = tmp / "layout"
        res = subprocess.run([CC, "-w", "-o", str(exe), str(src)], capture_output=True,
                             text=True)
        if res.returncode == 0:
            out = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
            return dropped, out.stdout
        new = False
        for m in re.finditer(r"layout\.c:(\d+):\d+: error: (.*)", res.stderr):
            idx = int(m.group(1)) - len(head) - 1
            if 0 <= idx < len(lines) and idx not in dropped:
                dropped[idx] = m.group(2)
                new = True
        assert new, f"cannot compile the layout probe:\n{res.stderr[:2000]}"
    raise AssertionError("layout probe did not converge")


@pytest.fixture(scope="module")
def header_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    fields: list[tuple[str, str, str]] = []  # (class, field, C member)
    lines: list[str] = []
    for cls in attrs.EXPECTED_SIZES:
        if cls.__name__ not in LAYOUTS:
            continue
        agg, prefix, rename = LAYOUTS[cls.__name__]
        for name, *_ in cls._fields_:
            member = prefix + rename.get(name, name)
            fields.append((cls.__name__, name, member))
            lines.append(f'printf("F {cls.__name__}.{name} %zu %zu\\n", '
                         f"offsetof({agg}, {member}), sizeof((({agg} *)0)->{member}));")
    consts = sorted({n for n in dir(C) if n.startswith("BPF_") and
                     isinstance(getattr(C, n), int)} | {m.name for m in C.Cmd})
    for n in consts:
        lines.append(f'printf("C {n} %lld\\n", (long long)({n}));')
    dropped, out = _compile_and_run(lines, tmp_path_factory.mktemp("layout"))
    present: dict[str, tuple[int, int]] = {}
    values: dict[str, int] = {}
    for ln in out.splitlines():
        kind, key, *nums = ln.split()
        if kind == "F":
            present[key] = (int(nums[0]), int(nums[1]))
        else:
            values[key] = int(nums[0])
    missing_fields = {}
    missing_consts = {}
    for idx, err in dropped.items():
        if idx < len(fields):
            cls_name, name, _ = fields[idx]
            missing_fields[f"{cls_name}.{name}"] = err
        else:
            missing_consts[consts[idx - len(fields)]] = err
    return {"present": present, "missing_fields": missing_fields, "values": values,
            "missing_consts": missing_consts, "consts": consts}


@pytest.mark.parametrize("cls", list(attrs.EXPECTED_SIZES), ids=lambda c: c.__name__)
def test_ctypes_size_matches_expected(cls: type[ctypes.Structure]) -> None:
    assert ctypes.sizeof(cls) == attrs.EXPECTED_SIZES[cls]


@pytest.mark.parametrize("cls", list(attrs.EXPECTED_SIZES), ids=lambda c: c.__name__)
def test_every_attr_struct_is_mapped_to_the_header(cls: type) -> None:
    assert cls.__name__ in LAYOUTS, \
        f"add {cls.__name__} to LAYOUTS so its offsets are checked against the uapi header"


@pytest.mark.parametrize("cls", [c for c in attrs.EXPECTED_SIZES if c.__name__ in LAYOUTS],
                         ids=lambda c: c.__name__)
def test_field_offsets_and_sizes_match_the_header(cls: type[ctypes.Structure],
                                                  header_layout: dict[str, object]) -> None:
    present: dict[str, tuple[int, int]] = header_layout["present"]  # type: ignore[assignment]
    missing: dict[str, str] = header_layout["missing_fields"]  # type: ignore[assignment]
    used: list[tuple[int, int]] = []
    checked = 0
    for name, *_ in cls._fields_:
        key = f"{cls.__name__}.{name}"
        desc = getattr(cls, name)
        if key in present:
            assert (desc.offset, desc.size) == present[key], \
                f"{key}: ctypes (offset, size) {(desc.offset, desc.size)} != header " \
                f"{present[key]}"
            used.append((desc.offset, desc.offset + desc.size))
            checked += 1
    assert checked >= len(cls._fields_) // 2, f"{cls.__name__}: most fields should be known"
    for name, *_ in cls._fields_:
        key = f"{cls.__name__}.{name}"
        if key in present:
            continue
        err = missing[key]
        desc = getattr(cls, name)
        if "bit-field" not in err:
            assert key in KNOWN_NEWER_FIELDS, \
                f"{key} is not in {HEADER} ({err}); a typo, or add it to KNOWN_NEWER_FIELDS"
        lo, hi = desc.offset, desc.offset + desc.size
        clash = [r for r in used if lo < r[1] and r[0] < hi]
        assert not clash, f"{key} at [{lo}, {hi}) overlaps header fields at {clash}"


def test_header_field_probe_finds_the_known_fields(header_layout: dict[str, object]) -> None:
    present: dict[str, tuple[int, int]] = header_layout["present"]  # type: ignore[assignment]
    # Anchors that every header since 5.x has: the probe itself must work.
    assert present["MapCreateAttr.map_type"] == (0, 4)
    assert present["MapElemAttr.key"] == (8, 8)
    assert present["MapBatchAttr.count"] == (32, 4)
    assert present["BpfMapInfo.name"] == (24, 16)


def test_constants_match_the_header(header_layout: dict[str, object]) -> None:
    values: dict[str, int] = header_layout["values"]  # type: ignore[assignment]
    missing: dict[str, str] = header_layout["missing_consts"]  # type: ignore[assignment]
    assert len(values) > 60
    for name, v in values.items():
        ours = getattr(C, name) if hasattr(C, name) else C.Cmd[name]
        assert int(ours) == v, f"{name}: ours {int(ours)} != header {v}"
    for name, err in missing.items():
        assert name in KNOWN_NEWER_CONSTANTS, \
            f"{name} is not in {HEADER} ({err}); a typo, or add it to KNOWN_NEWER_CONSTANTS"


def test_cmd_enum_has_no_gaps() -> None:
    values = sorted(int(m) for m in C.Cmd)
    assert values == list(range(len(values)))
    assert isinstance(C.Cmd.BPF_MAP_CREATE, enum.IntEnum)
