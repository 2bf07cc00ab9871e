"""Shared pieces of the ``purebpf`` subcommands: output, arguments, object references."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from purebpf import BPFError, Map, MapType, Program, ProgramType


class CLIError(Exception):
    """A problem with what the user asked for, reported as one line (exit status 1)."""


# -- output ---------------------------------------------------------------------------------
def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False) or getattr(args, "pretty", False))


def emit_json(args: argparse.Namespace, obj: Any) -> None:
    """Print ``obj`` as JSON: one line, like ``bpftool -j``; indented with ``--pretty``."""
    indent = 2 if getattr(args, "pretty", False) else None
    print(json.dumps(obj, indent=indent))


def show(value: Any) -> str:
    """A decoded key or value for human output: ints plain, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.startswith("hex:"):
        return value  # undecoded bytes, written as the command line takes them
    return json.dumps(value)


def type_name(t: MapType | ProgramType | int) -> str:
    """bpftool's spelling of a map or program type: ``array_of_maps``, ``xdp``."""
    name = getattr(t, "name", None)
    return name.lower() if name else str(int(t))


def hex_list(data: bytes) -> list[str]:
    """Bytes as bpftool's JSON shows them: ``["0x01", "0x00", ...]``."""
    return [f"0x{b:02x}" for b in data]


# -- arguments ------------------------------------------------------------------------------
def parse_int(text: str, what: str) -> int:
    """``7``, ``0x10``, ``-1``, ``0o17``, ``0b101``: an int, or a CLIError naming ``what``."""
    try:
        return int(text, 0)
    except ValueError:
        raise CLIError(f"{what} {text!r} is not a number") from None


def parse_data(text: str, size: int, what: str) -> int | bytes:
    """A key or value from the command line, sized to the map.

    Integers (``7``, ``0x10``, ``-1``) are stored in host byte order in ``size`` bytes
    (two's complement when negative); ``hex:0102...`` gives the bytes themselves, exactly
    ``size`` of them. Returns an int where the map takes ints as they are (1, 2, 4, 8 or 16
    bytes), so error messages show the number; bytes otherwise.
    """
    if text.startswith("hex:"):
        digits = text[4:].replace(" ", "").replace(":", "")
        try:
            data = bytes.fromhex(digits)
        except ValueError:
            raise CLIError(f"{what} {text!r}: not hex bytes (write hex:0a0b0c0d)") from None
        if len(data) != size:
            raise CLIError(f"{what} {text!r} is {len(data)} bytes; this map's {what}s are "
                           f"{size} bytes")
        return data
    n = parse_int(text, what)
    if size == 0:
        raise CLIError(f"this map has no {what}s (its {what} size is 0)")
    try:
        data = n.to_bytes(size, sys.byteorder, signed=n < 0)
    except OverflowError:
        raise CLIError(f"{what} {n} does not fit in {size} bytes") from None
    if size in (1, 2, 4, 8, 16):
        return int.from_bytes(data, sys.byteorder)
    return data


def as_bytes(obj: Any, size: int) -> bytes:
    """A key or value as the map returned it (int, bytes, ctypes object) back to bytes."""
    if isinstance(obj, int):
        return obj.to_bytes(size, sys.byteorder, signed=obj < 0)
    return bytes(memoryview(obj).cast("B"))


# -- object references ----------------------------------------------------------------------
def _split_ref(ref: str) -> tuple[str, str]:
    """("id" | "pinned" | "name", text) for ID, PIN, NAME or an explicit ``id:``,
    ``pinned:`` or ``name:`` prefix."""
    for prefix in ("id:", "pinned:", "name:"):
        if ref.startswith(prefix):
            return prefix[:-1], ref[len(prefix):]
    if ref.isdigit():
        return "id", ref
    if "/" in ref:
        return "pinned", ref
    return "name", ref


def _open(ref: str, cls: Any, what: str) -> Any:
    """The object of class ``cls`` named by ``ref``: a kernel id, a pinned path or a name."""
    kind, text = _split_ref(ref)
    if kind == "id":
        return cls.from_id(parse_int(text, f"{what} id"))
    if kind == "pinned":
        return cls.from_pin(text)
    return _by_name(what, text, cls.ids, cls.from_id)


def open_map(ref: str) -> Map:
    """The map named by ``ref``: a kernel id, a pinned path, or a kernel map name."""
    m: Map = _open(ref, Map, "map")
    return m


def open_program(ref: str) -> Program:
    """The program named by ``ref``: a kernel id, a pinned path, or a program name."""
    p: Program = _open(ref, Program, "program")
    return p


def emit(args: argparse.Namespace, d: Any, lines: Callable[[Any], list[str]]) -> None:
    """``d`` as JSON with --json, else as the text lines ``lines(d)`` makes."""
    if wants_json(args):
        emit_json(args, d)
    else:
        print("\n".join(lines(d)))


def each_open(ids: Iterable[int], opener: Callable[[int], Any]) -> Iterator[Any]:
    """Every object of ``ids`` opened with ``opener``, skipping those freed between the
    listing and the opening (ENOENT); the caller closes each (``with``)."""
    for obj_id in ids:
        try:
            obj = opener(obj_id)
        except BPFError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        yield obj


def emit_all(args: argparse.Namespace, records: list[Any],
             lines: Callable[[Any], list[str]]) -> None:
    """A ``list`` command's output: a JSON array with --json, else each record's lines."""
    if wants_json(args):
        emit_json(args, records)
    else:
        for d in records:
            print("\n".join(lines(d)))


def _by_name(what: str, name: str, ids: Callable[[], Iterator[int]],
             opener: Callable[[int], Any]) -> Any:
    """The one live object whose kernel name is ``name`` (names are cut at 15 bytes)."""
    want = name[:15]
    found: list[Any] = []
    try:
        for obj in each_open(ids(), opener):
            if obj.name == want:
                found.append(obj)
            else:
                obj.close()
    except BaseException:
        for obj in found:
            obj.close()
        raise
    if len(found) == 1:
        return found[0]
    listing = ", ".join(f"{o.id} ({type_name(o.type)})" for o in found)
    for obj in found:
        obj.close()
    if not found:
        raise CLIError(f"no {what} named {name!r} (give an id or a pinned path, or see "
                       f"'purebpf {'prog' if what == 'program' else what} list')")
    raise CLIError(f"{len(found)} {what}s are named {name!r}: ids {listing}; give an id")


def btf_spec_of(m: Map) -> Any:
    """The map's BTF, or None when it has none or it cannot be read."""
    try:
        return m.btf()
    except (BPFError, ValueError):
        return None


__all__ = [
    "CLIError", "as_bytes", "btf_spec_of", "each_open", "emit", "emit_all", "emit_json",
    "hex_list", "open_map", "open_program", "parse_data", "parse_int", "show", "type_name",
    "wants_json"
]
