"""The purebpf command, run in-process through its public entry point."""

from __future__ import annotations

import filecmp
import pathlib
import shutil
import subprocess

import pytest

from purebpf.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--packets", "200"]) == 0
    out = capsys.readouterr().out
    assert "stored 3 backend tables in one batch update" in out
    assert "runs that saw a half-built or missing table: 0" in out
    assert "backends used after the swap: [201, 202, 203, 204, 205, 206]" in out
    assert "map 'services' (HASH_OF_MAPS" in out and "[443] -> map" in out


def test_errors_print_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2  # no command: usage
    capsys.readouterr()


@pytest.mark.skipif(shutil.which("clang-19") is None, reason="clang-19 is not installed")
def test_shipped_demo_object_matches_its_source(tmp_path: pathlib.Path) -> None:
    for f in ("lb.c", "snoop.c", "Makefile"):
        shutil.copy(ROOT / "examples" / f, tmp_path)
    subprocess.run(["make", "-s", "-C", str(tmp_path), f"OUT={tmp_path}"], check=True,
                   capture_output=True)
    assert filecmp.cmp(tmp_path / "lb.bpf.o", ROOT / "src/purebpf/data/lb.bpf.o",
                       shallow=False), "rebuild with make -C examples"
    assert filecmp.cmp(tmp_path / "snoop.bpf.o", ROOT / "examples/snoop.bpf.o",
                       shallow=False), "rebuild with make -C examples"


def test_demo_maps_can_be_pinned_and_shown_as_a_tree(capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import subprocess

    base = pathlib.Path("/sys/fs/bpf")
    if not os.path.ismount(base):
        subprocess.run(["mount", "-t", "bpf", "bpf", str(base)], check=True)
    root = base / f"purebpf-demo-test-{os.getpid()}"
    try:
        assert main(["demo", "--packets", "50", "--pin", str(root)]) == 0
        capsys.readouterr()
        assert main(["map", "tree", str(root / "services"), "--values"]) == 0
        out = capsys.readouterr().out
        assert "hash_of_maps 'services'" in out and "[80] ->" in out
        assert "key: 6  value: 206" in out  # the grown table
    finally:
        shutil.rmtree(root, ignore_errors=True)
