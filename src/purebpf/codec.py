"""Key and value encoding: Python objects to the bytes the kernel stores, and back.

Pure: no syscalls. A :class:`Codec` writes exactly ``size`` bytes into a buffer and reads
them back. What a map accepts and returns:

* always: ``bytes``/``bytearray``/``memoryview`` of exactly ``size`` bytes, and ctypes
  objects of exactly ``size`` bytes;
* ``int`` when ``size`` is 1, 2, 4, 8 or 16 (native byte order; negative values are stored
  in two's complement); ``bool`` is an int here (``True`` is 1), as for ``struct`` and
  dict keys;
* with a declared type, values decode to it:

  ==========================================  ==============================================
  declared type                               decodes to
  ==========================================  ==============================================
  none                                        ``bytes``
  ``int``                                     unsigned ``int`` of the map's size
  a ctypes scalar (``ctypes.c_int32``, ...)   ``int``/``float`` (``.value``)
  a ctypes Structure, Union or Array type     an instance (``from_buffer_copy``)
  a ``struct`` format or ``struct.Struct``    the value, or a tuple for several fields
  an object with ``size``/``encode``/``decode``  whatever its ``decode`` returns
  ==========================================  ==============================================
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .errors import BPFError

Buffer = Any  # a writable buffer: ctypes array, bytearray, memoryview

_UINT = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SINT = {1: "b", 2: "h", 4: "i", 8: "q"}


@runtime_checkable
class TypeCodec(Protocol):
    """A user-supplied (or BTF-derived) type: ``size`` bytes, ``encode``/``decode``."""

    size: int

    def encode(self, obj: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class Codec:
    """Encodes one Python object into ``size`` bytes of a buffer and decodes it back.

    ``what`` names the thing in error messages (``"key of map 'flows'"``).
    ``pack_into(buf, obj, offset=0)`` raises ``TypeError`` for an object of the wrong kind and
    ``ValueError`` for one of the wrong size or range; ``unpack(buf, offset=0)`` decodes.
    """

    __slots__ = ("size", "type", "what", "pack_into", "unpack", "fast", "ints")

    def __init__(self, size: int, type_: Any = None, what: str = "value") -> None:
        self.size = size
        self.type = type_
        self.what = what
        self.pack_into: Callable[..., None]
        self.unpack: Callable[..., Any]
        # For hot paths: ``fast.pack_into(buf, offset, obj)`` encodes the common case (an int)
        # and raises struct.error for anything else, which pack_into() then handles;
        # ``ints`` is set when values decode as ``ints.unpack_from(buf, offset)[0]``.
        self.fast: struct.Struct | None = None
        self.ints: struct.Struct | None = None
        self._build()

    # -- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        t, size = self.type, self.size
        slow = self._pack_slow
        if t is None or t is int or t is bytes:
            fmt = _UINT.get(size)
            if fmt is not None:
                st = struct.Struct("=" + fmt)
                pack = st.pack_into
                self.fast = st
                if t is int:
                    self.ints = st

                def pack_into(buf: Buffer, obj: Any, offset: int = 0) -> None:
                    try:
                        pack(buf, offset, obj)
                    except struct.error:
                        slow(buf, obj, offset)

                self.pack_into = pack_into
            else:
                self.pack_into = slow
            if t is int:
                self.unpack = self._int_unpacker(size)
            else:
                def unpack_bytes(buf: Buffer, offset: int = 0) -> bytes:
                    return bytes(memoryview(buf)[offset:offset + size])

                self.unpack = unpack_bytes
            return
        if isinstance(t, str | struct.Struct):
            st = t if isinstance(t, struct.Struct) else struct.Struct(t)
            if st.size != size:
                raise ValueError(f"{self.what}: struct format {st.format!r} is {st.size} bytes, "
                                 f"the map's size is {size}")
            single = len(st.unpack(bytes(st.size))) == 1
            s_pack, s_unpack = st.pack_into, st.unpack_from
            if single:
                self.fast = st
                if st.format.lstrip("=<>!@") in "bBhHiIlLqQ":
                    self.ints = st

            def pack_struct(buf: Buffer, obj: Any, offset: int = 0) -> None:
                try:
                    if single:
                        s_pack(buf, offset, obj)
                    else:
                        s_pack(buf, offset, *obj)
                except (struct.error, TypeError):
                    slow(buf, obj, offset)

            def unpack_struct(buf: Buffer, offset: int = 0) -> Any:
                v = s_unpack(buf, offset)
                return v[0] if single else v

            self.pack_into, self.unpack = pack_struct, unpack_struct
            return
        if isinstance(t, type) and issubclass(t, ctypes._SimpleCData):
            self._check_size(ctypes.sizeof(t))
            ct: Any = t

            def pack_simple(buf: Buffer, obj: Any, offset: int = 0) -> None:
                if isinstance(obj, int | float):
                    try:
                        ct.from_buffer(buf, offset).value = obj
                        return
                    except TypeError:
                        pass
                slow(buf, obj, offset)

            def unpack_simple(buf: Buffer, offset: int = 0) -> Any:
                return ct.from_buffer_copy(buf, offset).value

            self.pack_into, self.unpack = pack_simple, unpack_simple
            return
        if isinstance(t, type) and issubclass(t, ctypes.Structure | ctypes.Union | ctypes.Array):
            self._check_size(ctypes.sizeof(t))
            ct = t

            def pack_ctype(buf: Buffer, obj: Any, offset: int = 0) -> None:
                if isinstance(obj, dict):
                    obj = ct(**obj)
                elif isinstance(obj, tuple | list) and not issubclass(ct, ctypes.Array):
                    obj = ct(*obj)
                elif isinstance(obj, list):
                    obj = ct(*obj)
                slow(buf, obj, offset)

            def unpack_ctype(buf: Buffer, offset: int = 0) -> Any:
                return ct.from_buffer_copy(buf, offset)

            self.pack_into, self.unpack = pack_ctype, unpack_ctype
            return
        if isinstance(t, TypeCodec):
            self._check_size(t.size)
            tc = t

            def pack_typed(buf: Buffer, obj: Any, offset: int = 0) -> None:
                if isinstance(obj, bytes | bytearray | memoryview) or _is_ctypes(obj):
                    slow(buf, obj, offset)
                    return
                try:
                    data = tc.encode(obj)
                except ValueError as exc:  # name the map, keep the type's own reason
                    raise _naming(exc, self.what) from None
                slow(buf, data, offset)

            def unpack_typed(buf: Buffer, offset: int = 0) -> Any:
                return tc.decode(bytes(memoryview(buf)[offset:offset + size]))

            self.pack_into, self.unpack = pack_typed, unpack_typed
            return
        raise TypeError(f"{self.what}: unsupported declared type {t!r}; use int, a ctypes type, "
                        "a struct format, or an object with size/encode/decode")

    def _check_size(self, got: int) -> None:
        if got != self.size:
            raise ValueError(f"{self.what}: declared type {self.type!r} is {got} bytes, "
                             f"the map's size is {self.size}")

    @staticmethod
    def _int_unpacker(size: int) -> Callable[..., int]:
        fmt = _UINT.get(size)
        if fmt is not None:
            unpack_from = struct.Struct("=" + fmt).unpack_from

            def unpack_int(buf: Buffer, offset: int = 0) -> int:
                v: int = unpack_from(buf, offset)[0]
                return v

            return unpack_int

        def unpack_big(buf: Buffer, offset: int = 0) -> int:
            return int.from_bytes(memoryview(buf)[offset:offset + size], sys.byteorder)

        return unpack_big

    # -- the general path -------------------------------------------------------------------
    def _pack_slow(self, buf: Buffer, obj: Any, offset: int = 0) -> None:
        """Encode anything accepted (bytes-like, ctypes, int of a standard size)."""
        size = self.size
        if isinstance(obj, int):  # bool too: True is 1, as struct and dict keys have it
            if size not in (1, 2, 4, 8, 16):
                raise TypeError(f"{self.what} is {size} bytes: pass bytes or a ctypes object, "
                                f"not an int")
            lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size)) - 1
            if not lo <= obj <= hi:
                raise ValueError(f"{self.what}: {obj} does not fit in {size} bytes")
            data = obj.to_bytes(size, sys.byteorder, signed=obj < 0)
        elif isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
        elif _is_ctypes(obj):
            data = bytes(memoryview(obj).cast("B"))
        else:
            raise TypeError(f"{self.what}: expected an int, bytes or ctypes object of {size} "
                            f"bytes, got {type(obj).__name__}")
        if len(data) != size:
            raise ValueError(f"{self.what} must be {size} bytes, got {len(data)}")
        memoryview(buf).cast("B")[offset:offset + size] = data

    def encode(self, obj: Any) -> bytes:
        """``obj`` as ``size`` bytes."""
        buf = bytearray(self.size)
        self.pack_into(buf, obj)
        return bytes(buf)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Bytes back to the declared type (``bytes`` when none is declared)."""
        return self.unpack(data)


def _naming(exc: ValueError, what: str) -> ValueError:
    """``exc`` with ``what`` (the map's key or value) in front of its message, keeping its
    type: a purebpf error keeps its errno and hint; a type whose constructor takes other
    arguments becomes a ValueError chained to it."""
    if isinstance(exc, BPFError):
        exc.message = f"{what}: {exc.message}"
        return exc
    try:
        new = type(exc)(f"{what}: {exc}")
    except Exception:
        new = ValueError(f"{what}: {exc}")
        new.__cause__ = exc
    return new


def _is_ctypes(obj: Any) -> bool:
    return isinstance(obj, ctypes._SimpleCData | ctypes.Structure | ctypes.Union | ctypes.Array)


def round8(n: int) -> int:
    """Round up to a multiple of 8 (per-CPU value stride, mmap element stride)."""
    return (n + 7) & ~7


class PerCPUCodec:
    """Values of per-CPU maps: a list with one value per possible CPU.

    The kernel lays them out at a stride of ``round8(value_size)``. Writing accepts a list of
    exactly ``ncpus`` values, or one value stored on every CPU.
    """

    __slots__ = ("inner", "ncpus", "stride", "size", "what", "_tuple_values")

    def __init__(self, inner: Codec, ncpus: int) -> None:
        self.inner = inner
        self.ncpus = ncpus
        self.stride = round8(inner.size)
        self.size = self.stride * ncpus
        self.what = inner.what
        # A struct format of several fields takes one value as a tuple: a list or tuple of
        # scalars is then that one value, not one value per CPU.
        t = inner.type
        st = t if isinstance(t, struct.Struct) else struct.Struct(t) if isinstance(t, str) \
            else None
        self._tuple_values = st is not None and len(st.unpack(bytes(st.size))) > 1

    def pack_into(self, buf: Buffer, obj: Any, offset: int = 0) -> None:
        """Store one value per CPU (a list of ``ncpus``) or the same value on each CPU."""
        stride, pack = self.stride, self.inner.pack_into
        if isinstance(obj, list | tuple) and not (
            self._tuple_values and obj and not isinstance(obj[0], list | tuple)
        ):
            if len(obj) != self.ncpus:
                raise ValueError(f"{self.what}: per-CPU map takes {self.ncpus} values "
                                 f"(one per possible CPU), got {len(obj)}")
            for i, v in enumerate(obj):
                pack(buf, v, offset + i * stride)
            return
        for i in range(self.ncpus):
            pack(buf, obj, offset + i * stride)

    def unpack(self, buf: Buffer, offset: int = 0) -> list[Any]:
        """A list of the per-CPU values."""
        unpack, stride = self.inner.unpack, self.stride
        return [unpack(buf, offset + i * stride) for i in range(self.ncpus)]
