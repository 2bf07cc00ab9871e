#!/usr/bin/env python3
"""Generate docs/api.md from the public API's docstrings.

    python3 scripts/gen_api_docs.py          # rewrite docs/api.md
    python3 scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import argparse
import enum
import inspect
import pathlib
import sys
import types
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import purebpf  # noqa: E402

MODULES = ["purebpf", "purebpf.features", "purebpf.link", "purebpf.events", "purebpf.btf",
           "purebpf.asm"]


def _sig(obj: Any) -> str:
    try:
        return str(inspect.signature(obj)).replace("'", "")
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _class(name: str, cls: type) -> list[str]:
    out = [f"### class `{name}`", ""]
    if _doc(cls):
        out += [_doc(cls), ""]
    if issubclass(cls, enum.Enum):
        members = ", ".join(f"`{m.name}`" for m in cls)  # type: ignore[attr-defined]
        return out + [f"Members: {members}", ""]
    attrs: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):  # inherited purebpf methods too, overrides last
        if klass.__module__.startswith("purebpf"):
            attrs.update(vars(klass))
    for attr, value in sorted(attrs.items()):
        if attr.startswith("_") and attr not in ("__getitem__", "__setitem__", "__delitem__"):
            continue
        if isinstance(value, property):
            doc = _doc(value)
            out.append(f"- `{attr}` (property)" + (f": {doc.splitlines()[0]}" if doc else ""))
        elif isinstance(value, classmethod | staticmethod):
            fn = value.__func__
            out.append(f"- `{name}.{attr}{_sig(fn)}`" + _first(fn))
        elif inspect.isfunction(value):
            out.append(f"- `{attr}{_sig(value)}`" + _first(value))
    return out + [""]


def _first(fn: Any) -> str:
    doc = _doc(fn)
    return f": {doc.split(chr(10) + chr(10))[0].replace(chr(10), ' ')}" if doc else ""


def render() -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings by `scripts/gen_api_docs.py`; do not edit by hand.",
             ""]
    for modname in MODULES:
        try:
            mod = __import__(modname, fromlist=["_"])
        except ImportError:
            continue
        lines += [f"## `{modname}`", ""]
        if _doc(mod):
            lines += [_doc(mod).split("\n\n")[0], ""]
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in sorted(names):
            obj = getattr(mod, name, None)
            if obj is None or isinstance(obj, types.ModuleType):
                continue
            if modname != "purebpf" and getattr(obj, "__module__", "").startswith(
                    "purebpf") is False:
                continue
            if inspect.isclass(obj):
                lines += _class(name, obj)
            elif callable(obj):
                lines += [f"### `{name}{_sig(obj)}`", "", _doc(obj), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = render()
    target = ROOT / "docs" / "api.md"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print("docs/api.md is out of date: run python3 scripts/gen_api_docs.py")
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
