"""Every ```python block in README.md and docs/*.md runs, in order, one namespace per file,
and prints what the page says it prints.

The convention: a comment after a ``print(...)`` call (on the line that closes the call) is
the output that call shows, ``...`` standing for anything (ids, fds). Each time that print
runs, its output must match. A print without a comment (a tree, a disassembly: output
of several lines) is run but not compared.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import pathlib
import re
import sys
import tokenize
from dataclasses import dataclass, field
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@dataclass
class Block:
    code: str
    line: int  # the block's first code line in the page, 1-based


def _blocks(path: pathlib.Path) -> list[Block]:
    text = path.read_text()
    return [Block(m.group(1), text.count("\n", 0, m.start(1)) + 1)
            for m in _BLOCK.finditer(text)]


@dataclass
class Shown:
    """A print call in a block and the output the page shows for it."""

    first: int  # the call's lines in the block, 1-based
    last: int
    expected: str
    printed: list[str] = field(default_factory=list)


def _shown_outputs(code: str) -> list[Shown]:
    comments = {tok.start[0]: tok.string[1:].strip()
                for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                if tok.type == tokenize.COMMENT}
    shown = []
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "print" and node.end_lineno in comments):
            assert node.end_lineno is not None
            shown.append(Shown(node.lineno, node.end_lineno, comments[node.end_lineno]))
    return shown


def _matches(expected: str, printed: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, printed.rstrip("\n"), re.S) is not None


def test_matches_treats_dots_as_a_wildcard() -> None:
    assert _matches("<Map DEVMAP 'devmap3' id=... fd=...>", "<Map DEVMAP 'devmap3' id=42 fd=7>\n")
    assert not _matches("<Map DEVMAP id=... fd=...>", "<Map HASH id=42 fd=7>")
    assert _matches("[10, 11]", "[10, 11]\n") and not _matches("[10, 11]", "[10, 11, 12]")
    assert _matches("map_flags 0 1", "map_flags 0 1")


def test_shown_outputs_reads_the_comment_closing_a_print() -> None:
    code = ("x = 1  # not a print\n"
            "print(x)   # 1\n"
            "print(x,\n"
            "      x)   # 1 1\n"
            "print(x)\n")
    assert [(s.first, s.last, s.expected) for s in _shown_outputs(code)] == \
        [(2, 2, "1"), (3, 4, "1 1")]


def _run(path: pathlib.Path) -> list[str]:
    """Run the page's blocks; return one line per print whose output differs from the page."""
    ns: dict[str, Any] = {"__name__": f"doc:{path.name}"}
    out = io.StringIO()
    problems = []
    for i, block in enumerate(_blocks(path)):
        filename = f"{path.name}[block {i}]"
        shown = _shown_outputs(block.code)

        def recording_print(*args: Any, file: Any = None, **kw: Any) -> None:
            if file is not None:
                builtins.print(*args, file=file, **kw)
                return
            buf = io.StringIO()
            builtins.print(*args, file=buf, **kw)
            out.write(buf.getvalue())
            caller = sys._getframe(1)
            if caller.f_code.co_filename == filename:
                for s in shown:
                    if s.first <= caller.f_lineno <= s.last:
                        s.printed.append(buf.getvalue())

        ns["print"] = recording_print
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, filename, "exec"), ns)
        for s in shown:
            where = f"{path.name}:{block.line + s.last - 1}"
            if not s.printed:
                problems.append(f"{where}: shows {s.expected!r}, but the print never ran")
            for printed in s.printed:
                if not _matches(s.expected, printed):
                    problems.append(f"{where}: shows {s.expected!r}, "
                                    f"printed {printed.rstrip(chr(10))!r}")
    return problems


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run_and_print_what_they_show(path: pathlib.Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the repository
    problems = _run(path)
    assert not problems, "the page shows other output than its code prints:\n" + \
        "\n".join(problems)


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "python3 -m pip install . && purebpf demo" in text
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in ci
