"""Turning a record's bytes into what the consumer asked for: the bytes themselves, a dict
decoded by a BTF struct (as :mod:`purebpf.btf.values` decodes map values), or a ctypes
structure."""

from __future__ import annotations

import ctypes
import errno
import functools
import struct
from collections.abc import Callable
from typing import Any

from ..btf.errors import BTFError
from ..btf.spec import Spec
from ..btf.types import Array, Int, IntEncoding, Struct, Union
from ..btf.values import decode as btf_decode
from ..errors import InvalidArgumentError

Decoder = Callable[[bytes], Any]

_KINDS: dict[str, Any] = {"struct": Struct, "union": Union}
_INT_FORMATS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
                (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}
_CHAR_NAMES = frozenset({"char", "signed char", "unsigned char"})
_MAX_VALUES = 256  # unpacked values of a struct that gets a decoder of its own


def find_record_type(btf: Spec, record: str, what: str) -> int:
    """The BTF type id for ``"struct NAME"``, ``"union NAME"`` or a typedef/struct ``NAME``."""
    word, _, rest = record.strip().partition(" ")
    kind = _KINDS.get(word) if rest else None
    name = rest.strip() if kind is not None else record.strip()
    try:
        ids = btf.find_ids(name, kind)
    except BTFError as exc:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: record type {record!r}: {exc}") \
            from None
    if not ids:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: no type {record!r} in the BTF",
                                   hint="name a type the object's C source defines and uses "
                                        "(clang only emits BTF for types something refers to)")
    return ids[0]


class RecordType:
    """How records are decoded: ``decode`` (None: records stay bytes), the ``size`` a record
    needs, and a description for messages."""

    __slots__ = ("decode", "size", "desc")

    def __init__(self, decode: Decoder | None, size: int, desc: str) -> None:
        self.decode = decode
        self.size = size
        self.desc = desc

    def decode_all(self, raws: list[bytes], what: str) -> list[Any]:
        """Every record decoded; on a record that cannot be, InvalidArgumentError naming it
        (``failed_index`` says which one)."""
        fn = self.decode
        if fn is None:
            return raws
        try:
            return list(map(fn, raws))
        except Exception:
            pass
        out = []
        for i, raw in enumerate(raws):
            try:
                out.append(fn(raw))
            except Exception as exc:
                err = self.error(raw, exc, what)
                err.failed_index = i  # type: ignore[attr-defined]
                raise err from exc
        return out

    def error(self, raw: bytes, exc: Exception, what: str) -> InvalidArgumentError:
        why = (f"it is shorter than {self.desc}" if len(raw) < self.size else str(exc))
        return InvalidArgumentError(errno.EINVAL, f"decode a record of {len(raw)} bytes from "
                                    f"{what} as {self.desc}: {why}; the record was dropped")


def make_record_type(record: Any, btf: Spec | None, what: str) -> RecordType:
    """The :class:`RecordType` for ``record``: None (bytes as they are), a BTF type name
    (needs ``btf``) or a ctypes type."""
    if record is None:
        return RecordType(None, 0, "bytes")
    if isinstance(record, str):
        if btf is None:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: record={record!r} needs BTF to look the type up",
                hint="pass btf= (a Collection's spec.btf, or a purebpf.btf.Spec) or a ctypes "
                     "type as record=")
        tid = find_record_type(btf, record, what)
        size = btf.sizeof(tid)
        fast = _compile(btf, tid)
        if fast is None:
            def general(raw: bytes) -> Any:
                return btf_decode(btf, tid, raw)
            fast = general
        return RecordType(fast, size, f"{record} ({size} bytes)")
    if isinstance(record, type) and issubclass(record, ctypes._SimpleCData | ctypes.Structure
                                                | ctypes.Union | ctypes.Array):
        size = ctypes.sizeof(record)
        return RecordType(record.from_buffer_copy, size, f"{record.__name__} ({size} bytes)")
    raise TypeError(f"{what}: record must be None, a BTF type name such as 'struct event', or "
                    f"a ctypes type, not {record!r}")


def _compile(btf: Spec, tid: int) -> Decoder | None:
    """A struct.Struct-based decoder giving what btf.values.decode gives, for structs whose
    members are byte-aligned integers (not bool), arrays of them, and char arrays; None for
    anything else (which the general decoder handles)."""
    t = btf.resolve(tid)
    if not isinstance(t, Struct) or btf.byteorder not in ("little", "big"):
        return None
    fmt = ["<" if btf.byteorder == "little" else ">"]
    pos = 0
    names: list[str] = []
    post: list[tuple[int, int, int]] = []  # (index in the unpacked tuple, count, kind)
    idx = 0
    for m in t.members:
        if not m.name or m.bitfield_size or m.bit_offset % 8:
            return None
        off = m.bit_offset // 8
        if off < pos:
            return None
        mt = btf.resolve(m.type)
        if off > pos:
            fmt.append(f"{off - pos}x")
        if isinstance(mt, Int):
            code = _int_code(mt)
            if code is None:
                return None
            fmt.append(code)
            post.append((idx, 1, 0))
            idx += 1
            pos = off + mt.size
        elif isinstance(mt, Array):
            et = btf.resolve(mt.elem)
            if not isinstance(et, Int) or mt.nelems == 0:
                return None
            if et.size == 1 and (et.encoding & IntEncoding.CHAR or et.name in _CHAR_NAMES):
                fmt.append(f"{mt.nelems}s")
                post.append((idx, 1, 3 if et.encoding & IntEncoding.SIGNED else 1))
                idx += 1
            else:
                code = _int_code(et)
                if code is None or btf.sizeof(mt.elem) != et.size:
                    return None
                fmt.append(f"{mt.nelems}{code}")
                post.append((idx, mt.nelems, 2))
                idx += mt.nelems
            pos = off + btf.sizeof(m.type)
        else:
            return None
        names.append(m.name)
    if not idx or len(set(names)) != len(names) or idx > _MAX_VALUES:
        return None  # no members, duplicate names or huge arrays: the general decoder
    # A function written for this struct (as namedtuple and dataclasses do): unpacking into
    # locals and building a dict display is several times faster than dict(zip()). Names go
    # in as string literals (repr), never as code.
    items = []
    for name, (i, n, kind) in zip(names, post):
        if kind == 0:
            expr = f"v{i}"
        elif kind == 2:
            expr = "[" + ", ".join(f"v{j}" for j in range(i, i + n)) + "]"
        else:
            expr = f"(c{i} if type(c{i} := chars(v{i}, {kind == 3})) is str else list(c{i}))"
        items.append(f"{name!r}: {expr}")
    src = (f"def decode(raw):\n"
           f"    {''.join(f'v{j}, ' for j in range(idx))}= unpack(raw)\n"
           f"    return {{{', '.join(items)}}}\n")
    scope: dict[str, Any] = {"unpack": struct.Struct("".join(fmt)).unpack_from,
                             "chars": _chars}
    exec(compile(src, f"<record decoder for {t.name or 'struct'}>", "exec"), scope)
    fn: Decoder = scope["decode"]
    return fn


def _int_code(t: Int) -> str | None:
    if t.offset or t.bits != t.size * 8 or t.encoding & IntEncoding.BOOL:
        return None
    return _INT_FORMATS.get((t.size, bool(t.encoding & IntEncoding.SIGNED)))


@functools.lru_cache(maxsize=4096)  # the same names (comm, ...) come again and again
def _chars(raw: bytes, signed: bool) -> str | tuple[int, ...]:
    """A char array as btf.values shows it: the text when it is a NUL-terminated printable
    string padded with NULs, else the byte values (a tuple: the caller makes the list)."""
    text = raw.rstrip(b"\0")
    if len(text) < len(raw) and b"\0" not in text and text.isascii():
        s = text.decode("ascii")
        if s.isprintable():
            return s
    return tuple(b - 256 if signed and b > 127 else b for b in raw)
