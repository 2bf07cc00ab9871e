"""Helpers shared by the ``test_cli_*`` files: run ``purebpf.cli.main`` in-process and check
its exit code and output, and a ``pins`` fixture (import it into a test file to use it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from purebpf.cli import main

BPFFS = "/sys/fs/bpf"
BPFTOOL = shutil.which("bpftool")


@pytest.fixture
def pins(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh directory in a bpffs for this test's pins, removed (with its pins) after."""
    if not os.path.ismount(BPFFS):
        subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    path = os.path.join(BPFFS, f"purebpf_cli_{os.getpid()}_{name}")
    os.mkdir(path)
    yield path
    shutil.rmtree(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str, quiet: bool = False) -> str:
    """Run a command that must succeed (exit 0; with ``quiet``, also nothing on stderr)."""
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    if quiet:
        assert err == ""
    return out


def js(capsys: pytest.CaptureFixture[str], *argv: str, quiet: bool = False) -> object:
    return json.loads(ok(capsys, "--json", *argv, quiet=quiet))


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail: exit 1 and exactly one ``purebpf: ...`` line."""
    rc, out, err = run(capsys, *argv)
    assert rc == 1, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("purebpf: "), err
    assert "Traceback" not in err
    return lines[0]
