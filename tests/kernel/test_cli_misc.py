"""``purebpf features``, help texts, and the command run as a separate process."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from cli_helpers import run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_features_explains_each_probe(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "--json", "features")
    assert rc == 0, err
    results = json.loads(out)
    by_name = {r["feature"]: r for r in results}
    for r in results:
        assert set(r) == {"feature", "supported", "why"} and r["why"]
    assert by_name["map type ARRAY_OF_MAPS"]["supported"] is True
    assert by_name["map type HASH_OF_MAPS"]["supported"] is True
    assert {"BPF_F_INNER_MAP", "batch ops on outer maps", "BPF_F_MMAPABLE arrays",
            "program type XDP"} <= set(by_name)
    rc, out, _ = run(capsys, "features")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == len(results)
    assert any(ln.startswith("yes  map type ARRAY_OF_MAPS ") and "(4.12+)" in ln
               for ln in lines)


@pytest.mark.parametrize("argv", [
    [], ["map"], ["map", "tree"], ["map", "create"], ["map", "insert"], ["prog"],
    ["prog", "load"], ["prog", "run"], ["obj", "inspect"], ["btf", "dump"], ["features"],
], ids=lambda a: " ".join(a) or "top")
def test_help_for_every_command(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    rc, out, _ = run(capsys, *argv, "--help")
    assert rc == 0
    assert out.startswith("usage: purebpf")
    assert len(out.splitlines()) > 3


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "map", "nosuchcommand")
    assert rc == 2 and "invalid choice" in err
    rc, _, err = run(capsys, "map", "update", "1", "2", "3", "--flags", "sometimes")
    assert rc == 2 and "invalid choice: 'sometimes'" in err
    assert run(capsys)[0] == 2


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, "-m", "purebpf.cli", *argv], capture_output=True,
                          text=True, env=env, timeout=120)


def test_smoke_map_list_json_in_a_subprocess() -> None:
    p = _cli("--json", "map", "list")
    assert p.returncode == 0, p.stderr
    maps = json.loads(p.stdout)
    assert isinstance(maps, list)
    assert all({"id", "type", "name", "bytes_key", "bytes_value", "max_entries"} <= set(m)
               for m in maps)


def test_smoke_error_is_one_line_in_a_subprocess() -> None:
    p = _cli("map", "show", "4294967295")
    assert p.returncode == 1
    assert p.stderr == "purebpf: open map id 4294967295: no such map [ENOENT]\n"
    assert p.stdout == ""
    p = _cli("--debug", "map", "show", "4294967295")
    assert p.returncode == 1 and "Traceback" in p.stderr


def test_smoke_output_into_a_closed_pipe() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # vmlinux's listing is megabytes: far more than a pipe holds when head has gone.
    src = "vmlinux" if os.path.exists("/sys/kernel/btf/vmlinux") else \
        str(ROOT / "tests/testdata/btf/kinds.o")
    p = subprocess.run(f"'{sys.executable}' -m purebpf.cli btf dump '{src}' | head -1",
                       shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert p.stdout.startswith("[1] ") and p.stderr == ""
