"""Every ```python block in README.md and docs/*.md runs, in order, one namespace per file."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(path: pathlib.Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run(path: pathlib.Path, map_leak_check: None,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the repository
    ns: dict[str, object] = {"__name__": f"doc:{path.name}"}
    out = io.StringIO()
    for i, block in enumerate(_blocks(path)):
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"{path.name}[block {i}]", "exec"), ns)


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "python3 -m pip install . && purebpf demo" in text
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in ci
