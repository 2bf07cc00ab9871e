"""Map: a live kernel map that owns one file descriptor, with a dict-like element API.

Subclasses by behaviour: :class:`MapOfMaps` (ARRAY_OF_MAPS / HASH_OF_MAPS, in _mapofmaps.py)
and :class:`MmapArray` (BPF_F_MMAPABLE arrays, read and written through an mmap).
:meth:`Map.create` and the other constructors pick the class from the map's type.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import functools
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from . import _sys
from ._introspect import check_kind, fdinfo
from ._object import KernelObject, iter_ids, open_pinned
from ._spec import ACCESS_FLAGS, MapSpec, Template
from ._sys import ops
from ._sys.syscall import ElemIO, close_fd, last_errno
from .codec import Codec, PerCPUCodec, round8
from .errors import (ENOTSUPP, BPFError, BPFPermissionError, ClosedError, IndexOutOfRangeError,
                     InvalidArgumentError, KeyExistsError, KeyNotFoundError, MapFullError,
                     NotSupportedError, error_for)
from .types import MapFlags, MapType, UpdateFlags

class _Missing:
    def __repr__(self) -> str:
        return "<no default>"


_MISSING: Any = _Missing()
_BATCH_CHUNK = 4096
_BATCH_BYTES = 64 << 20  # the most one lookup_batch syscall's buffers take


@dataclasses.dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: MapType
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: MapFlags
    map_extra: int = 0
    btf_id: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    ifindex: int = 0

    def to_spec(self) -> MapSpec:
        """A MapSpec that recreates a map like this one (without BTF or inner template)."""
        return MapSpec(type=self.type, key_size=self.key_size, value_size=self.value_size,
                       max_entries=self.max_entries, flags=self.flags, name=self.name,
                       map_extra=self.map_extra)

    @property
    def template(self) -> Template:
        """The fields compared when this map is inserted into an outer map."""
        return Template(self.type, self.key_size, self.value_size,
                        int(self.flags) & ~ACCESS_FLAGS, self.max_entries)


def _info_of(fd: int) -> MapInfo:
    i = ops.map_info(fd)
    try:
        mtype = MapType(i.type)
    except ValueError:
        mtype = i.type  # a type newer than this library: keep the number
    return MapInfo(id=i.id, type=mtype, name=i.name.decode(errors="replace"),
                   key_size=i.key_size, value_size=i.value_size, max_entries=i.max_entries,
                   flags=MapFlags(i.map_flags), map_extra=i.map_extra, btf_id=i.btf_id,
                   btf_key_type_id=i.btf_key_type_id, btf_value_type_id=i.btf_value_type_id,
                   ifindex=i.ifindex)


class Map(KernelObject):
    """A live BPF map. Create with :meth:`create`, open with :meth:`from_id`,
    :meth:`from_pin` or :meth:`from_fd`.

    Elements behave like a dict: ``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``,
    ``m.get(k)``, ``keys()``, ``values()``, ``items()``, ``len(m)``. Closing is idempotent;
    ``with`` closes; a map that is garbage-collected while open is closed with a
    ``ResourceWarning``.
    """

    _by_type: ClassVar[dict[MapType, type[Map]]] = {}
    _info: MapInfo

    def __init__(self, fd: int, spec: MapSpec, info: MapInfo, *, quiet: bool = False) -> None:
        """Wrap ``fd`` (ownership passes to the Map). Use the classmethods instead."""
        self.spec = spec
        self._info = info
        self._lock = threading.RLock()  # the element buffers and the fd (see __getitem__)
        self._fd, self._desc = fd, _describe(info)
        self._setup()
        # Only now does the object own fd: if _setup raised, the caller closes it, and a
        # finalizer registered earlier would close the same number again later.
        self._own(fd, self._desc, quiet)

    def _setup(self) -> None:
        """Bind element buffers and codecs (subclasses change what values are)."""
        info, spec = self._info, self.spec
        key_type = spec.key_type
        if key_type is None and isinstance(info.type, MapType) and info.type.is_indexed \
                and info.key_size == 4:
            key_type = int  # array keys are indexes
        self._key = Codec(info.key_size, key_type, what=f"key of {self._desc}")
        plain = Codec(info.value_size, spec.value_type, what=f"value of {self._desc}")
        value: Codec | PerCPUCodec = plain
        if isinstance(info.type, MapType) and info.type.is_percpu:
            value = PerCPUCodec(plain, ops.possible_cpus())
        self._value = value
        self._io = io = ElemIO(self._fd, info.key_size, value.size, gil=self._gil)
        self._kbuf, self._vbuf = io.key, io.value
        self._kpack = self._key.pack_into
        self._vpack = value.pack_into
        self._vunpack: Callable[..., Any] = value.unpack
        self._lookup, self._update_any, self._delete = io.lookup, io.update_any, io.delete
        # The hot path: zero- and one-argument callables implemented in C (functools.partial
        # over struct and ctypes), so m[k] runs no Python frame besides __getitem__ itself.
        # A key the fast packer refuses (struct.error) goes through the general codec.
        self._kset = _packer(self._key, self._kbuf)
        self._vset = _packer(value, self._vbuf)
        self._vget = _getter(value, self._vbuf)

    _gil: ClassVar[bool] = True

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def create(cls, spec: MapSpec, *, inner_map: Map | None = None) -> Map:
        """Create a map from ``spec`` (BPF_MAP_CREATE).

        For ARRAY_OF_MAPS / HASH_OF_MAPS the inner-map template comes from ``inner_map``
        (a live map, left open) or else from ``spec.inner`` (a temporary map created and
        closed again). Raises InvalidArgumentError / NotSupportedError before the syscall
        for specs the kernel would refuse, BPFPermissionError without CAP_BPF.
        """
        from ._mapofmaps import create_outer

        if spec.type.is_map_in_map:
            return create_outer(spec, inner_map)
        if inner_map is not None:
            raise InvalidArgumentError(errno.EINVAL, f"create {spec.describe()}: inner_map is "
                                       "only for ARRAY_OF_MAPS and HASH_OF_MAPS",
                                       hint=f"a {spec.type.name} map has no inner-map template")
        spec.check()
        return cls._create_plain(spec)

    @classmethod
    def _create_spec(cls, spec: MapSpec, *, btf_fd: int = 0) -> Map:
        """Create with the BTF object ``btf_fd`` describing key and value (loader use)."""
        from ._mapofmaps import create_outer

        if spec.type.is_map_in_map:
            return create_outer(spec, None, btf_fd=btf_fd)
        spec.check()
        return cls._create_plain(spec, btf_fd=btf_fd)

    @classmethod
    def _create_plain(cls, spec: MapSpec, *, inner_map_fd: int = 0, btf_fd: int = 0) -> Map:
        key_id = value_id = 0
        if btf_fd and spec.btf_value_type_id and not spec.type.is_map_in_map:
            key_id, value_id = spec.btf_key_type_id, spec.btf_value_type_id
        else:
            btf_fd = 0  # outer maps refuse key/value BTF (ENOTSUPP)
        try:
            fd = ops.map_create(int(spec.type), spec.key_size, spec.value_size, spec.max_entries,
                                int(spec.flags), inner_map_fd=inner_map_fd,
                                numa_node=spec.numa_node, name=spec.name, btf_fd=btf_fd,
                                btf_key_type_id=key_id, btf_value_type_id=value_id,
                                map_extra=spec.map_extra)
        except BPFError as exc:
            raise _create_error(spec, exc) from None
        return cls._adopt(fd, spec)

    @classmethod
    def _adopt(cls, fd: int, spec: MapSpec | None = None, *, quiet: bool = False,
               like: MapSpec | None = None) -> Map:
        """Wrap an fd we own, picking the class for its type; closes fd on failure.

        Without ``spec``, the spec comes from the kernel's info, taking key/value types from
        ``like`` where its sizes agree.
        """
        try:
            check_kind(fd, "map", "open map")
            info = _info_of(fd)
            if spec is None:
                spec = info.to_spec()
                if like is not None:
                    if like.key_type is not None and like.key_size == info.key_size:
                        spec.key_type = like.key_type
                    if like.value_type is not None and like.value_size == info.value_size:
                        spec.value_type = like.value_type
            klass = cls._class_for(info)
            return klass(fd, spec, info, quiet=quiet)
        except BaseException:
            close_fd(fd)
            raise

    @staticmethod
    def _class_for(info: MapInfo) -> type[Map]:
        if info.flags & MapFlags.MMAPABLE and info.type == MapType.ARRAY:
            return MmapArray
        return Map._by_type.get(info.type, Map)

    @classmethod
    def from_id(cls, map_id: int) -> Map:
        """Open the map with kernel id ``map_id`` (BPF_MAP_GET_FD_BY_ID; needs CAP_SYS_ADMIN)."""
        try:
            fd = ops.map_fd_by_id(map_id)
        except BPFError as exc:
            if exc.errno == errno.ENOENT:
                raise BPFError(errno.ENOENT, f"open map id {map_id}: no such map") from None
            raise error_for(exc.errno, f"open map id {map_id}: {exc.strerror}") from None
        return cls._adopt(fd)

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str]) -> Map:
        """Open the map pinned at ``path`` in a bpffs (BPF_OBJ_GET)."""
        p = os.fspath(path)
        m = cls._adopt(open_pinned(p, "map"))
        m._pin_path = p  # so unpin() knows where
        return m

    @classmethod
    def from_fd(cls, fd: int) -> Map:
        """Wrap a duplicate of ``fd`` (the caller keeps and closes its own fd)."""
        try:
            info = _info_of(fd)
        except BPFError as exc:
            # BPF_OBJ_GET_INFO_BY_FD reports an fd that is not open as EBADFD, not EBADF.
            why = "the fd is not open" if exc.errno in (errno.EBADF, errno.EBADFD) else \
                "not a BPF map"
            raise error_for(exc.errno, f"open map from fd {fd}: {why} "
                                       f"({exc.strerror})") from None
        del info
        return cls._adopt(ops.dup(fd))

    @staticmethod
    def ids() -> Iterator[int]:
        """Every map id in the system (BPF_MAP_GET_NEXT_ID), ascending."""
        return iter_ids(ops.map_next_id)

    # -- identity and lifetime --------------------------------------------------------------
    @property
    def type(self) -> MapType:
        return self._info.type

    @property
    def key_size(self) -> int:
        return self._info.key_size

    @property
    def value_size(self) -> int:
        return self._info.value_size

    @property
    def max_entries(self) -> int:
        return self._info.max_entries

    @property
    def flags(self) -> MapFlags:
        return self._info.flags

    def clone(self) -> Map:
        """Another Map object for the same kernel map, with its own fd, buffers and lock
        (one Map may be shared between threads; a clone never waits for the other's lock)."""
        with self._lock:  # the fd number stays ours until dup() has it
            fd = ops.dup(self.fd)
        return Map._adopt(fd, self.spec)

    def info(self) -> MapInfo:
        """Fresh BPF_OBJ_GET_INFO_BY_FD data for this map."""
        with self._lock:
            self._info = _info_of(self.fd)
        return self._info

    def fdinfo(self) -> dict[str, str]:
        """The kernel's /proc fdinfo fields for this map: ``frozen``, ``memlock`` (bytes
        charged), ``map_type``, ... as strings; empty when /proc is not mounted."""
        with self._lock:
            return fdinfo(self.fd)

    def btf(self) -> Any:
        """The BTF describing this map's key and value (a :class:`purebpf.btf.Spec`), fetched
        from the kernel by the map's ``btf_id`` (BPF_BTF_GET_FD_BY_ID, 5.0+) and parsed once;
        None for a map created without BTF. ``info().btf_key_type_id`` and
        ``btf_value_type_id`` are type ids in it (decode with :mod:`purebpf.btf.values`)."""
        cached = self.__dict__.get("_btf_spec", _MISSING)
        if cached is not _MISSING:
            return cached
        spec = None
        if self._info.btf_id:
            from .btf.handle import BTFHandle

            with BTFHandle.from_id(self._info.btf_id) as handle:
                spec = handle.spec()
        self.__dict__["_btf_spec"] = spec
        return spec

    def close(self) -> None:
        """Close the fd (idempotent). The kernel map lives on while pinned or referenced.

        Waits for a call another thread is in the middle of (elements, batches, freeze,
        info, pin), so that no call reaches a reused fd number."""
        if self._fd < 0:
            return
        with self._lock:
            super().close()

    def _release(self) -> None:
        self._io.invalidate()

    def __enter__(self) -> Map:
        return self

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        tname = getattr(self.type, "name", str(self.type))
        state = f"fd={self._fd}" if self._fd >= 0 else "closed"
        return f"<{type(self).__name__} {tname}{name} id={self.id} {state}>"

    def __eq__(self, other: object) -> bool:
        """Two Map objects are equal when they refer to the same kernel map (same id)."""
        return isinstance(other, Map) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("bpf-map", self.id))

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE, 5.2+); programs may still write."""
        with self._lock:
            fd = self.fd  # a ClosedError, not wrapped below
            try:
                ops.map_freeze(fd)
            except BPFError as exc:
                raise self._freeze_error(exc) from None

    def _freeze_error(self, exc: BPFError) -> BPFError:
        """Explain a refused BPF_MAP_FREEZE. Freezing a frozen map is EBUSY on older
        kernels (6.1) and EPERM on newer ones (6.18 checks write permission first, and a
        frozen map has none): fdinfo's ``frozen`` tells that case from the others on both."""
        code = exc.errno or errno.EIO
        what = f"freeze {self._desc}"
        if code in (errno.EBUSY, errno.EPERM) and self.fdinfo().get("frozen") == "1":
            return BPFPermissionError(code, f"{what}: the map is already frozen", hint="")
        if code == errno.EPERM:
            return BPFPermissionError(code, f"{what}: not permitted",
                                      hint="the fd is read-only (BPF_F_RDONLY), or the "
                                           "process lacks CAP_BPF")
        if code == errno.EBUSY:
            hint = ("a writable mmap of the map is open (another MmapArray object, or "
                    "another process)" if self.flags & MapFlags.MMAPABLE else "")
            return error_for(code, f"{what}: the map is busy", hint=hint)
        return error_for(code, f"{what}: {exc.strerror}")

    # -- errors -----------------------------------------------------------------------------
    def _elem_error(self, op: str, key: Any, code: int | None = None) -> BPFError:
        code = last_errno() if code is None else code
        what = f"{op} {self._desc}"
        is_array = isinstance(self.type, MapType) and self.type.is_array
        indexed = isinstance(self.type, MapType) and self.type.is_indexed
        if code == errno.ENOENT:
            if not self.key_size:
                return KeyNotFoundError(code, f"{what}: the map is empty")
            return KeyNotFoundError(code, f"{what}: key {key!r} not found")
        if code == errno.EEXIST:
            return KeyExistsError(code, f"{what}: key {key!r} already exists (NOEXIST given)")
        if code == errno.ENOSPC and self.type == MapType.LPM_TRIE:
            return MapFullError(code, f"{what}: the trie is full (max_entries "
                                f"{self.max_entries})", hint="delete prefixes or create the "
                                "map with a larger max_entries")
        if code == errno.E2BIG:
            if indexed:
                return IndexOutOfRangeError(code, f"{what}: index {key!r} out of range "
                                            f"(max_entries {self.max_entries})")
            return MapFullError(code, f"{what}: map is full (max_entries {self.max_entries})",
                                hint="delete entries or create the map with a larger "
                                     "max_entries")
        if code == errno.EBADF:
            if self._fd >= 0:
                return ClosedError(code, f"{what}: a file descriptor given as the value is "
                                   "not open (a closed map or program?)")
            return ClosedError(code, f"{what}: the map is closed")
        if code == errno.EPERM:
            return BPFPermissionError(code, f"{what}: not permitted",
                                      hint="the map may be frozen or opened read-only")
        if code == errno.EINVAL and op == "delete" and is_array:
            return InvalidArgumentError(code, f"{what}: {self.type.name} elements cannot be "
                                        "deleted", hint="store a zero value instead")
        if code in (ENOTSUPP, errno.EOPNOTSUPP):
            return NotSupportedError(code, f"{what}: not supported for {self._tname}",
                                     feature=f"{op} on {self._tname}")
        return error_for(code, f"{what}: key {key!r}: {os.strerror(code)}", element=True)

    @property
    def _tname(self) -> str:
        return getattr(self.type, "name", str(self.type))

    # -- elements ---------------------------------------------------------------------------
    # Every call that uses this object's key/value buffers (or its fd number) holds self._lock
    # from packing the key to decoding the value, so one Map object may be shared between
    # threads. A `with` block, not acquire()/try: a KeyboardInterrupt between acquire() and
    # try would leave the lock held, and every later call (close() too) would hang. It is an
    # RLock: a signal handler or a value codec of this thread may call into the same map
    # (close() from a handler then makes the interrupted call fail with ClosedError).
    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            try:
                self._kset(key)
            except struct.error:
                self._kpack(self._kbuf, key)
            if self._lookup() < 0:
                raise self._elem_error("lookup", key)
            return self._vget()

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            try:
                self._kset(key)
            except struct.error:
                self._kpack(self._kbuf, key)
            try:
                self._vset(value)
            except struct.error:
                self._vpack(self._vbuf, value)
            if self._update_any() < 0:
                raise self._elem_error("update", key)

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            try:
                self._kset(key)
            except struct.error:
                self._kpack(self._kbuf, key)
            if self._delete() < 0:
                raise self._elem_error("delete", key)

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            try:
                self._kset(key)
            except struct.error:
                self._kpack(self._kbuf, key)
            return self._found(key)

    def _found(self, key: Any) -> bool:
        """Run the lookup whose buffers are packed (lock held): True when it finds an
        element, False on ENOENT; any other errno raises."""
        if self._lookup() == 0:
            return True
        code = last_errno()
        if code == errno.ENOENT:
            return False
        raise self._elem_error("lookup", key, code)

    def get(self, key: Any, default: Any = None) -> Any:
        """``m[key]``, or ``default`` when the key is absent."""
        try:
            return self[key]
        except KeyNotFoundError:
            return default

    def update(self, key: Any, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Store ``value`` at ``key`` with BPF_ANY, BPF_NOEXIST, BPF_EXIST and/or BPF_F_LOCK.

        Raises KeyExistsError (NOEXIST, key present), KeyNotFoundError (EXIST, key absent),
        MapFullError (no room).
        """
        flags = _check_u64(flags, f"update {self._desc}: flags")
        with self._lock:
            self._kpack(self._kbuf, key)
            self._vpack(self._vbuf, value)
            if self._io.update(flags) < 0:
                raise self._elem_error("update", key)

    def pop(self, key: Any = _MISSING, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (BPF_MAP_LOOKUP_AND_DELETE_ELEM where the
        kernel has it for this type, else lookup then delete).

        Without a key, on a QUEUE or STACK: remove and return the next value (oldest or
        newest); KeyNotFoundError when empty."""
        if key is _MISSING:
            self._require_keyless("pop", "a key is needed (only QUEUE and STACK maps pop "
                                         "without one)")
            with self._lock:
                if self._io.lookup_and_delete() < 0:
                    raise self._elem_error("pop", None)
                return self._vget()
        with self._lock:
            self._kpack(self._kbuf, key)
            if self._io.lookup_and_delete() == 0:
                return self._vget()
            code = last_errno()
            if code == errno.ENOENT:
                if default is _MISSING:
                    raise self._elem_error("pop", key, code)
                return default
            if code not in (ENOTSUPP, errno.EOPNOTSUPP, errno.EINVAL):
                raise self._elem_error("pop", key, code)
        # No lookup-and-delete for this type: a lookup, then a delete (not atomic against
        # programs or other processes; each step holds the lock on its own).
        try:
            value = self[key]
            del self[key]
        except KeyNotFoundError:
            if default is _MISSING:
                raise
            return default
        return value

    # -- QUEUE, STACK (and BLOOM_FILTER): maps of values without keys ------------------------
    def _require_keyless(self, op: str, why: str = "") -> None:
        """Refuse ``op`` (push, peek, keyless pop) on maps that have keys: the kernel would
        take whatever key was last packed into this object's buffer."""
        if self.key_size:
            raise TypeError(f"{op} {self._desc}: " + (why or f"{op}() is for QUEUE, STACK "
                            "and BLOOM_FILTER maps, which have no keys; this map has "
                            f"{self.key_size}-byte keys (use m[key] = value)"))

    def push(self, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Add ``value`` to a QUEUE, STACK or BLOOM_FILTER map (BPF_MAP_UPDATE_ELEM, no key).

        A full QUEUE/STACK raises MapFullError, unless ``flags`` is BPF_EXIST, which makes
        room by dropping the oldest value. Raises TypeError on a map with keys."""
        self._require_keyless("push")
        flags = _check_u64(flags, f"push {self._desc}: flags")
        with self._lock:
            self._vpack(self._vbuf, value)
            if self._io.update(flags) < 0:
                raise self._elem_error("push", None)

    def peek(self) -> Any:
        """The next value of a QUEUE (oldest) or STACK (newest), left in place.

        Raises KeyNotFoundError when the map is empty, TypeError on a map with keys (and on
        a BLOOM_FILTER, which has nothing to peek at: test membership with ``value in m``)."""
        self._require_keyless("peek")
        if self.type == MapType.BLOOM_FILTER:
            raise TypeError(f"peek {self._desc}: a BLOOM_FILTER only answers membership; "
                            "use 'value in m'")
        with self._lock:
            if self._lookup() < 0:
                raise self._elem_error("peek", None)
            return self._vget()

    def _raw_keys(self) -> Iterator[bytes]:
        """Keys as bytes via BPF_MAP_GET_NEXT_KEY.

        If the current key is deleted during the walk, a hash map restarts from its first
        key; keys already yielded are then skipped, so the walk neither ends early nor
        repeats a key.
        """
        io, size = self._io, self.key_size
        if not size:
            raise TypeError(f"iterate {self._desc}: a {self._tname} map has no keys; use "
                            "push(), pop() and peek()")
        seen: set[bytes] = set()
        cur: bytes | None = None
        while True:
            with self._lock:
                if cur is None:
                    ret = io.first_key()
                else:
                    io.key[:size] = cur
                    ret = io.next_key_of()
                if ret < 0:
                    code = last_errno()
                    if code == errno.ENOENT:
                        return
                    raise self._elem_error("iterate", cur)
                nxt = io.next_key.raw[:size]
            if nxt in seen:
                cur = nxt
                if len(seen) > 4 * max(self.max_entries, 1) + 16:
                    return  # a map being rewritten faster than we read; stop, do not spin
                continue
            seen.add(nxt)
            cur = nxt
            yield nxt

    def keys(self) -> Iterator[Any]:
        """Iterate the keys (decoded like lookups return them)."""
        unpack = self._key.unpack
        for raw in self._raw_keys():
            yield unpack(raw)

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Iterate ``(key, value)``; keys deleted during the walk are skipped."""
        unpack = self._key.unpack
        for raw in self._raw_keys():
            try:
                value = self._lookup_raw(raw)
            except KeyNotFoundError:
                continue
            yield unpack(raw), value

    def values(self) -> Iterator[Any]:
        """Iterate the values."""
        for _, v in self.items():
            yield v

    def _lookup_raw(self, raw: bytes) -> Any:
        with self._lock:
            self._kbuf[:len(raw)] = raw
            if self._io.lookup() < 0:
                raise self._elem_error("lookup", raw)
            return self._vunpack(self._vbuf)

    def __len__(self) -> int:
        """Number of keys (a walk over the map; arrays: max_entries)."""
        if isinstance(self.type, MapType) and self.type.is_array:
            if self._fd < 0:
                raise ClosedError(errno.EBADF, f"len {self._desc}: the map is closed")
            return self.max_entries
        return sum(1 for _ in self._raw_keys())

    def clear(self) -> None:
        """Delete every key (not for arrays, whose elements always exist)."""
        for raw in list(self._raw_keys()):
            with self._lock:
                self._kbuf[:len(raw)] = raw
                if self._io.delete() < 0 and last_errno() != errno.ENOENT:
                    raise self._elem_error("delete", raw)

    # -- batches ----------------------------------------------------------------------------
    def _batch(self, capacity: int) -> ops.Batch:
        return ops.Batch(self.fd, self.key_size, self._value.size, capacity,
                         max(self.key_size, 4))

    def _run_batch(self, b: ops.Batch, cmd: int, count: int, *, first: bool = False,
                   elem_flags: int = 0) -> int:
        """One batch syscall, under the lock and only while the map is open: the batch's
        attr holds the fd number, which another thread's close() could free for reuse."""
        with self._lock:
            if self._fd < 0:
                raise ClosedError(errno.EBADF, f"batch on {self._desc}: the map is closed")
            return b.run(cmd, count, first=first, elem_flags=elem_flags)

    def _pack_value_for_batch(self, buf: Any, value: Any, offset: int) -> None:
        self._vpack(buf, value, offset)

    def update_batch(self, keys: Iterable[Any], values: Iterable[Any],
                     flags: UpdateFlags | int = UpdateFlags.ANY) -> int:
        """Store many elements with BPF_MAP_UPDATE_BATCH (5.6+); returns how many.

        Falls back to one update per element where the kernel has no batch support for
        this map type. Stops at the first failing element and raises for it.
        """
        keys, values = list(keys), list(values)
        flags = _check_u64(flags, f"update_batch {self._desc}: flags")
        if len(keys) != len(values):
            raise InvalidArgumentError(errno.EINVAL, f"update_batch {self._desc}: "
                                       f"{len(keys)} keys but {len(values)} values")
        if not keys:
            return 0
        if flags & (UpdateFlags.NOEXIST | UpdateFlags.EXIST):
            # BPF_MAP_UPDATE_BATCH takes only BPF_F_LOCK in elem_flags (EINVAL otherwise):
            # NOEXIST/EXIST need one update per element.
            for k, v in zip(keys, values):
                self._update_one(k, v, flags)
            return len(keys)
        ks, vs = self.key_size, self._value.size
        done = 0
        for start in range(0, len(keys), _BATCH_CHUNK):
            ck, cv = keys[start:start + _BATCH_CHUNK], values[start:start + _BATCH_CHUNK]
            b = self._batch(len(ck))
            if not (_pack_all(self._key, b.keys, ck) and self._pack_values_all(b.values, cv)):
                for i, (k, v) in enumerate(zip(ck, cv)):
                    self._kpack(b.keys, k, i * ks)
                    self._pack_value_for_batch(b.values, v, i * vs)
            ret = self._run_batch(b, _sys.constants.Cmd.BPF_MAP_UPDATE_BATCH, len(ck),
                                  first=True, elem_flags=flags)
            if ret in (-ENOTSUPP, -errno.EOPNOTSUPP):
                # No batch op for this type: the kernel processed nothing and left count as
                # we set it, so go one by one from the start of this chunk.
                for k, v in zip(keys[start:], values[start:]):
                    self._update_one(k, v, flags)
                return len(keys)
            done += b.count
            if ret < 0:
                bad = ck[b.count] if b.count < len(ck) else None
                raise self._elem_error("update_batch", bad, -ret)
        return done

    def _update_one(self, key: Any, value: Any, flags: int) -> None:
        self.update(key, value, flags)

    def delete_batch(self, keys: Iterable[Any]) -> int:
        """Delete many keys with BPF_MAP_DELETE_BATCH (falls back per element); returns how many."""
        keys = list(keys)
        if not keys:
            return 0
        ks = self.key_size
        done = 0
        for start in range(0, len(keys), _BATCH_CHUNK):
            ck = keys[start:start + _BATCH_CHUNK]
            b = self._batch(len(ck))
            if not _pack_all(self._key, b.keys, ck):
                for i, k in enumerate(ck):
                    self._kpack(b.keys, k, i * ks)
            ret = self._run_batch(b, _sys.constants.Cmd.BPF_MAP_DELETE_BATCH, len(ck), first=True)
            if ret in (-ENOTSUPP, -errno.EOPNOTSUPP):
                for k in keys[start:]:  # nothing was deleted; count is still ours
                    del self[k]
                return len(keys)
            done += b.count
            if ret < 0:
                raise self._elem_error("delete_batch", ck[b.count] if b.count < len(ck)
                                       else None, -ret)
        return done

    def lookup_batch(self, chunk: int = 1024) -> list[tuple[Any, Any]]:
        """All ``(key, value)`` pairs via BPF_MAP_LOOKUP_BATCH, ``chunk`` per syscall."""
        return self._walk_batch(_sys.constants.Cmd.BPF_MAP_LOOKUP_BATCH, chunk)

    def lookup_and_delete_batch(self, chunk: int = 1024) -> list[tuple[Any, Any]]:
        """Remove and return all ``(key, value)`` pairs (BPF_MAP_LOOKUP_AND_DELETE_BATCH)."""
        return self._walk_batch(_sys.constants.Cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH, chunk)

    def _pack_values_all(self, buf: Any, values: list[Any]) -> bool:
        return isinstance(self._value, Codec) and _pack_all(self._value, buf, values)

    def _walk_batch(self, cmd: int, chunk: int) -> list[tuple[Any, Any]]:
        if isinstance(chunk, bool) or not isinstance(chunk, int):
            raise TypeError(f"batch on {self._desc}: chunk must be an int, got "
                            f"{type(chunk).__name__}")
        if chunk < 1:
            raise InvalidArgumentError(errno.EINVAL, f"batch on {self._desc}: chunk must be >= 1")
        # chunk sizes one syscall's buffers: more than the map holds, or than _BATCH_BYTES
        # of keys and values, buys nothing (and 2**40 would not fit the u32 count).
        per = self.key_size + self._value.size
        chunk = min(chunk, max(self.max_entries, 1), max(_BATCH_BYTES // max(per, 1), 1))
        deleting = cmd == _sys.constants.Cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH
        ks, vs = self.key_size, self._value.size
        kunpack = self._key.unpack
        out: list[tuple[Any, Any]] = []
        b = self._batch(chunk)
        first = True
        while True:
            ret = self._run_batch(b, cmd, b.capacity, first=first)
            if ret < 0 and ret not in (-errno.ENOENT, -errno.ENOSPC):
                # Refused (no batch op for this type, bad attr, ...): the kernel copied
                # nothing and left count as we set it, so there is nothing to unpack.
                if ret in (-ENOTSUPP, -errno.EOPNOTSUPP) and first:
                    return self._walk_fallback(deleting)
                raise self._elem_error("lookup_batch", None, -ret)
            n = b.count
            if n:
                keys = _unpack_all(self._key, b.keys, n)
                values = _unpack_all(self._value, b.values, n) \
                    if isinstance(self._value, Codec) else None
                if keys is not None and values is not None:
                    out.extend(zip(keys, values))
                else:
                    for i in range(n):
                        out.append((kunpack(b.keys, i * ks),
                                    self._vunpack(b.values, i * vs)))
            if ret == -errno.ENOENT:
                return out
            if ret == -errno.ENOSPC and n == 0:
                # a hash bucket holds more elements than fit: retry it with room for more
                bigger = self._batch(b.capacity * 2)
                bigger.in_token[:] = b.in_token.raw
                b = bigger
                continue
            if ret < 0:
                raise self._elem_error("lookup_batch", None, -ret)
            b.advance()
            first = False

    def _walk_fallback(self, deleting: bool) -> list[tuple[Any, Any]]:
        out = list(self.items())
        if deleting:
            for k, _ in out:
                with contextlib.suppress(KeyNotFoundError):
                    del self[k]
        return out


_NATIVE_INT = {(1, True): (ctypes.c_int8, "b"), (1, False): (ctypes.c_uint8, "B"),
               (2, True): (ctypes.c_int16, "h"), (2, False): (ctypes.c_uint16, "H"),
               (4, True): (ctypes.c_int32, "i"), (4, False): (ctypes.c_uint32, "I"),
               (8, True): (ctypes.c_int64, "q"), (8, False): (ctypes.c_uint64, "Q")}


def _native_int(st: struct.Struct | None) -> tuple[Any, str] | None:
    """For a one-integer struct format in native byte order, the ctypes type and the
    memoryview cast code of the same size and signedness; None otherwise.

    Chosen by the format's size, not its letter: ``"=l"`` is 4 bytes (standard size) where
    a native ``long`` and memoryview's ``"l"`` are 8."""
    if st is None:
        return None
    fmt = st.format
    order, code = (fmt[0], fmt[1:]) if fmt[:1] in "=@<>!" else ("@", fmt)
    native = "<" if sys.byteorder == "little" else ">"
    if order not in ("=", "@", native) or len(code) != 1 or code not in "bBhHiIlLqQ":
        return None
    return _NATIVE_INT.get((st.size, code.islower()))


def _packer(codec: Codec | PerCPUCodec, buf: Any) -> Any:
    """``f(obj)`` writing obj into buf; raises struct.error when the general codec must."""
    fast = getattr(codec, "fast", None)
    if fast is not None:
        return functools.partial(fast.pack_into, buf, 0)
    return functools.partial(codec.pack_into, buf)


def _getter(codec: Codec | PerCPUCodec, buf: Any) -> Any:
    """``f()`` decoding buf: an int read through a ctypes view where the value is a native
    integer, else the codec's decoder."""
    native = _native_int(getattr(codec, "ints", None))
    if native is not None:
        view = native[0].from_buffer(buf)
        return functools.partial(getattr, view, "value")
    return functools.partial(codec.unpack, buf)


def _pack_all(codec: Codec, buf: Any, objs: list[Any]) -> bool:
    """Pack a whole batch with one struct call when every element is a plain int; False
    (nothing guaranteed written) when the general per-element path must do it."""
    fast = codec.fast
    if fast is None:
        return False
    try:
        struct.pack_into(fast.format[:1] + str(len(objs)) + fast.format[1:], buf, 0, *objs)
    except struct.error:
        return False
    return True


def _unpack_all(codec: Codec, buf: Any, n: int) -> list[Any] | None:
    """Decode n consecutive elements at once: ints through one memoryview cast, bytes by
    slicing; None when the per-element decoder must do it."""
    size = codec.size
    raw = memoryview(buf).cast("B")[:n * size]
    native = _native_int(codec.ints)
    if native is not None:
        out: list[Any] = raw.cast(native[1]).tolist()  # type: ignore[call-overload]
        return out
    if codec.type is None or codec.type is bytes:
        data = raw.tobytes()
        return [data[i:i + size] for i in range(0, n * size, size)]
    return None


def _check_u64(flags: Any, what: str) -> int:
    """``flags`` as an int that fits the kernel's u64 flags field (ctypes would truncate)."""
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"{what} must be an int (UpdateFlags), got {type(flags).__name__}")
    if not 0 <= flags < 1 << 64:
        raise InvalidArgumentError(errno.EINVAL, f"{what} {flags:#x} out of range")
    return int(flags)


def _describe(info: MapInfo) -> str:
    tname = getattr(info.type, "name", str(info.type))
    name = f"{info.name!r} " if info.name else ""
    return f"map {name}({tname} id={info.id})"


def _create_error(spec: MapSpec, exc: BPFError) -> BPFError:
    """Explain a failed BPF_MAP_CREATE."""
    code = exc.errno
    what = f"create {spec.describe()}"
    if code == errno.EPERM:
        return error_for(code, f"{what}: not permitted")
    if code == errno.EINVAL:
        from . import features

        if not features.has_map_type(spec.type):
            return NotSupportedError(code, f"{what}: this kernel does not know map type "
                                     f"{spec.type.name}", feature=f"map type {spec.type.name}")
        return InvalidArgumentError(
            code, f"{what}: the kernel refused the definition (key_size={spec.key_size}, "
            f"value_size={spec.value_size}, max_entries={spec.max_entries}, "
            f"flags={spec.flags!r})",
            hint="check the sizes and flags this map type allows")
    if code == errno.E2BIG:
        return InvalidArgumentError(code, f"{what}: key, value or max_entries too large for "
                                    "this type")
    if code == errno.ENOMEM:
        return error_for(code, f"{what}: out of memory for max_entries={spec.max_entries}")
    if code in (ENOTSUPP, errno.EOPNOTSUPP):
        return NotSupportedError(code, f"{what}: not supported by this kernel",
                                 feature=f"map type {spec.type.name}")
    return error_for(code, f"{what}: {exc.strerror}")


class MmapArray(Map):
    """An ARRAY created with BPF_F_MMAPABLE: elements are read and written through a shared
    mmap of the map's values, with no syscall per element (5.5+).

    Frozen maps are mapped read-only. Element values sit at a stride of
    ``round8(value_size)``, as the kernel lays them out.
    """

    def _setup(self) -> None:
        super()._setup()
        self._stride = round8(self.value_size)
        page = os.sysconf("SC_PAGE_SIZE")
        self._mm_len = (self._stride * self.max_entries + page - 1) // page * page
        self._mm: Any = None
        self._map_memory()

    def _map_memory(self) -> None:
        try:
            self._mm = ops.mmap_map(self._fd, self._mm_len, writable=True)
            self._writable = True
        except PermissionError:  # frozen, or RDONLY_PROG: the kernel refuses writable maps
            self._mm = ops.mmap_map(self._fd, self._mm_len, writable=False)
            self._writable = False
        # Native integer values: index a typed memoryview of the mapping directly.
        self._n = self.max_entries
        self._view: Any = None
        ints = self._value.ints if isinstance(self._value, Codec) else None
        native = _native_int(ints)
        if ints is not None and native is not None and self._stride % ints.size == 0:
            self._view = memoryview(self._mm).cast(native[1])  # type: ignore
            self._step = self._stride // ints.size

    def _unmap(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._mm is not None and not self._mm.closed:
            try:
                self._mm.close()
            except BufferError:
                # Another thread's codec still holds a pointer into it: leave the mapping
                # to be freed with its last user (it holds its own reference to the map).
                pass
        self._mm = None
        self._n = 0  # closed: every access takes the checked path

    def _index(self, key: Any, op: str = "lookup") -> int:
        if self._fd < 0:
            raise ClosedError(errno.EBADF, f"{op} {self._desc}: the map is closed")
        if type(key) is not int:
            buf = bytearray(4)
            self._kpack(buf, key)
            key = int.from_bytes(buf, sys.byteorder)
        if not 0 <= key < self.max_entries:
            # As the syscall path reports it: lookup ENOENT, update E2BIG.
            if op in ("update", "write"):
                raise IndexOutOfRangeError(errno.E2BIG, f"{op} {self._desc}: index {key} "
                                           f"out of range (max_entries {self.max_entries})")
            raise KeyNotFoundError(errno.ENOENT, f"{op} {self._desc}: index {key} out of "
                                   f"range (max_entries {self.max_entries})")
        return int(key)

    # The fast paths index a typed view of the mapping with no lock (one C-level operation
    # each). Everything else takes the lock, as close() and freeze() do: they unmap, and a
    # view released under a fast path makes it fall through to the locked path, which
    # raises ClosedError once the map is closed.
    def __getitem__(self, key: Any) -> Any:
        if type(key) is int and 0 <= key < self._n:
            view = self._view
            if view is not None:
                try:
                    return view[key * self._step]
                except ValueError:
                    pass  # released by close() or freeze() meanwhile
        with self._lock:
            i = self._index(key)
            return self._vunpack(self._mm, i * self._stride)

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(key) is int and type(value) is int and 0 <= key < self._n and self._writable:
            view = self._view
            if view is not None:
                try:
                    view[key * self._step] = value
                    return
                except (ValueError, TypeError):
                    pass  # out of range for the type (the codec explains), or released
        with self._lock:
            i = self._index(key, "update")  # raises ClosedError once closed
            if not self._writable:
                # Mapped read-only (frozen, or BPF_F_RDONLY_PROG, which refuses writable
                # mappings): write through the syscall, which the kernel refuses if frozen.
                Map.__setitem__(self, key, value)
                return
            self._vpack(self._mm, value, i * self._stride)

    def __contains__(self, key: Any) -> bool:
        """Whether ``key`` is an index of this array: any key that ``m[key]`` accepts
        (an int, or bytes/ctypes of the key size) and that is below max_entries."""
        if type(key) is int and 0 <= key < self._n:
            return True
        try:
            self._index(key)
        except KeyNotFoundError:
            return False
        return True

    def read(self, index: int, offset: int = 0, size: int | None = None) -> bytes:
        """``size`` bytes (default: to the end of the value) at ``offset`` in element
        ``index``'s value, copied out of the mapping (no syscall)."""
        with self._lock:
            start, end = self._span(index, offset, size, "read")
            return bytes(self._mm[start:end])

    def write(self, index: int, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` in element ``index``'s value, touching no other byte:
        through the mapping (no syscall). BPFPermissionError on a frozen map.

        A BPF_F_RDONLY_PROG array is mapped read-only (the kernel refuses writable
        mappings of it); its element is then read and written back with syscalls, which
        cannot undo a program's writes, since programs cannot write to it."""
        with self._lock:
            start, end = self._span(index, offset, len(data), "write")
            if self._writable:
                self._mm[start:end] = bytes(data)
                return
            if self.fdinfo().get("frozen") == "1":
                raise BPFPermissionError(errno.EPERM, f"write {self._desc}: the map is "
                                         "frozen", hint="")
            io, size = self._io, self.value_size
            io.key[:4] = (start // self._stride).to_bytes(4, sys.byteorder)
            if io.lookup() < 0:
                raise self._elem_error("write", index)
            whole = bytearray(io.value.raw[:size])
            whole[offset:offset + len(data)] = data
            io.value[:size] = bytes(whole)
            if io.update_any() < 0:
                raise self._elem_error("write", index)

    def _span(self, index: int, offset: int, size: int | None, op: str) -> tuple[int, int]:
        i = self._index(index, op)
        if size is None:
            size = self.value_size - offset
        if not (0 <= offset and 0 <= size and offset + size <= self.value_size):
            raise InvalidArgumentError(errno.EINVAL, f"{op} {self._desc}: bytes {offset}.."
                                       f"{offset + size} are outside the {self.value_size}-"
                                       "byte value")
        start = i * self._stride + offset
        return start, start + size

    def keys(self) -> Iterator[Any]:
        self.fd  # noqa: B018 - raises ClosedError once closed
        return iter(range(self.max_entries))

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        for i in range(self.max_entries):
            yield i, self[i]

    def freeze(self) -> None:
        """Freeze, then remap read-only (the kernel refuses to freeze a writable mapping).
        Element calls of other threads wait meanwhile."""
        with self._lock:
            if self._fd < 0:
                raise ClosedError(errno.EBADF, f"freeze {self._desc}: the map is closed")
            self._unmap()
            try:
                super().freeze()
            finally:
                self._map_memory()

    def _release(self) -> None:
        self._unmap()
        super()._release()


class KeylessMap(Map):
    """QUEUE, STACK and BLOOM_FILTER maps: values without keys (``push``, ``pop``, ``peek``;
    a BLOOM_FILTER answers ``value in m``). Indexing by key is a TypeError."""

    def _no_keys(self, op: str) -> TypeError:
        return TypeError(f"{op} {self._desc}: a {self._tname} map has no keys; use push(), "
                         "pop() and peek()" + (" or 'value in m'"
                                               if self.type == MapType.BLOOM_FILTER else ""))

    def __getitem__(self, key: Any) -> Any:
        raise self._no_keys("lookup")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise self._no_keys("update")

    def __delitem__(self, key: Any) -> None:
        raise self._no_keys("delete")

    def update(self, key: Any, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        raise self._no_keys("update")

    def __contains__(self, value: Any) -> bool:
        """For a BLOOM_FILTER: whether ``value`` may be in the set (False: surely not)."""
        if self.type != MapType.BLOOM_FILTER:
            raise TypeError(f"'in' {self._desc}: a {self._tname} map has no membership test; "
                            "use peek()")
        with self._lock:
            # The kernel reads the probed value from the value buffer (map_peek_elem).
            self._vpack(self._vbuf, value)
            return self._found(value)


for _t in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
    Map._by_type[_t] = KeylessMap
