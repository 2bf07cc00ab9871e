"""MapOfMaps: ARRAY_OF_MAPS and HASH_OF_MAPS as a dict of live maps.

The kernel takes an inner map's fd on write and hands back its id on read; this class hides
both. Inner maps are checked against the outer map's template before every insert, so a
mismatch names the differing field instead of a bare EINVAL.

Writes to an outer map wait one RCU grace period in the kernel (synchronize_rcu, ~8 ms on
this class of machine) so that no running program still sees the old inner map; a batch
waits once. Element calls on outer maps therefore release the GIL.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from ._map import _MISSING, Map, _describe
from ._spec import MapSpec, Template, check_template
from ._sys import ops
from ._sys.syscall import ElemIO, last_errno
from .codec import Codec
from .errors import (BPFError, ClosedError, InvalidArgumentError,
                     KeyNotFoundError, errno_name, error_for)
from .types import MapType, UpdateFlags, flag_names

# Inner maps opened by lookups, by (thread, kernel id). Weak: a looked-up inner map lives as
# long as the caller holds it, so repeated lookups share one fd and a dropped one closes its
# fd at once. Per thread, because a Map object's element calls belong to one thread.
_opened: weakref.WeakValueDictionary[tuple[int, int], Map] = weakref.WeakValueDictionary()


def open_inner(map_id: int, like: MapSpec | None = None) -> Map:
    """The inner map with ``map_id``: this thread's cached open Map, or a newly opened one.

    A newly opened map takes its key/value types from ``like`` (the outer map's template
    spec) when the sizes agree, so its elements decode as the template's do. Raises
    KeyNotFoundError if the map went away since its id was read.
    """
    key = (threading.get_ident(), map_id)
    m = _opened.get(key)
    if m is not None and not m.closed:
        return m
    fd = ops.map_fd_by_id_errno(map_id)
    if fd < 0:
        raise error_for(-fd, f"open inner map id {map_id}: " + (
            "it was removed meanwhile" if fd == -errno.ENOENT else errno_name(-fd)),
            element=True)
    m = Map._adopt(fd, quiet=True, like=like)
    m._shared = True
    _opened[key] = m
    return m


def create_outer(spec: MapSpec, inner_map: Map | None, *, btf_fd: int = 0) -> MapOfMaps:
    """Create an outer map; the template is ``inner_map`` or a temporary map from spec.inner."""
    what = f"create {spec.describe()}"
    if inner_map is not None:
        if inner_map.closed:
            raise ClosedError(errno.EBADF, f"{what}: the template map is closed")
        tmpl_spec = inner_map.spec if inner_map.spec.type == inner_map.type else \
            inner_map._info.to_spec()
        check_template(tmpl_spec.replace(type=inner_map.type), what)
        if spec.inner is None:
            spec = spec.replace(inner=tmpl_spec)
    spec.check()
    assert spec.inner is not None
    with contextlib.ExitStack() as stack:
        if inner_map is None:
            try:
                tmpl = Map._create_spec(spec.inner, btf_fd=btf_fd)
            except BPFError as exc:
                exc.message = f"{what}: inner-map template: {exc.message}"
                raise
            stack.callback(tmpl.close)
        else:
            tmpl = inner_map
        template = tmpl._info.template
        outer = Map._create_plain(spec, inner_map_fd=tmpl.fd)
        assert isinstance(outer, MapOfMaps)
        outer._template = template
        outer._template_btf_id = tmpl._info.btf_id
        outer._inner_spec = spec.inner.replace(
            type=template.type, key_size=template.key_size, value_size=template.value_size,
            flags=template.map_flags, max_entries=template.max_entries)
        return outer


class MapOfMaps(Map):
    """An ARRAY_OF_MAPS or HASH_OF_MAPS map: values are live :class:`Map` objects.

    ``outer[k] = inner`` stores a map (its fd goes to the kernel); ``outer[k]`` returns a live
    Map for the inner map (the kernel returns its id; purebpf opens it, and repeated lookups
    of one inner map share one fd); ``outer.inner_id(k)`` gives the id alone.
    """

    _gil = False  # writes wait for an RCU grace period: let other threads run

    def _setup(self) -> None:
        super()._setup()
        self._value = Codec(4, int, what=f"inner map id in {self._desc}")
        self._vunpack = self._value.unpack
        self._template: Template | None = None
        self._inner_spec: MapSpec | None = None
        self._template_btf_id = 0  # the BTF object describing the template's key and value
        # Writes get their own buffers and lock: a write holds its lock through the kernel's
        # RCU wait (~8 ms), and lookups on this object need not queue behind it.
        self._wio = ElemIO(self._fd, self.key_size, 4, gil=False)
        self._wlock = threading.RLock()

    def _release(self) -> None:
        self._wio.invalidate()
        super()._release()

    @classmethod
    def create(cls, spec: MapSpec, *, inner_map: Map | None = None) -> MapOfMaps:
        """:meth:`Map.create` for an outer map, typed as one (for type checkers).

        Raises InvalidArgumentError for a spec that is not ARRAY_OF_MAPS or HASH_OF_MAPS."""
        if not spec.type.is_map_in_map:
            raise InvalidArgumentError(errno.EINVAL, f"create {spec.describe()}: MapOfMaps "
                                       "creates ARRAY_OF_MAPS and HASH_OF_MAPS maps only",
                                       hint="use Map.create for other types")
        return create_outer(spec, inner_map)

    def clone(self) -> MapOfMaps:
        """Another object for the same outer map, keeping the known template."""
        other = super().clone()
        assert isinstance(other, MapOfMaps)
        other._template, other._inner_spec = self._template, self._inner_spec
        return other

    # -- the template -----------------------------------------------------------------------
    @property
    def inner_spec(self) -> MapSpec | None:
        """The inner-map template as a MapSpec.

        Known from creation; for a map opened by id, pin or fd it is recovered from the first
        inner map present (the kernel does not report templates), else None.
        """
        if self._inner_spec is None:
            self._recover_template()
        return self._inner_spec

    @property
    def template(self) -> Template | None:
        """The fields the kernel compares on insertion (None if unknown)."""
        if self._template is None:
            self._recover_template()
        return self._template

    def _recover_template(self) -> None:
        for raw in self._raw_keys():
            try:
                inner = self._open_raw(raw)
            except (KeyNotFoundError, BPFError):
                continue
            info = inner._info
            self._template = info.template
            self._inner_spec = info.to_spec().replace(
                name="", btf_key_type_id=info.btf_key_type_id,
                btf_value_type_id=info.btf_value_type_id)
            self._template_btf_id = info.btf_id
            return

    def new_inner(self, **overrides: Any) -> Map:
        """Create a new map matching the template (``overrides`` change fields, e.g.
        ``max_entries=`` for an inner ARRAY with BPF_F_INNER_MAP)."""
        spec = self.inner_spec
        if spec is None:
            raise InvalidArgumentError(errno.EINVAL, f"new_inner for {self._desc}: the template "
                                       "is unknown (the map is empty and was not created here)")
        spec = spec.replace(**overrides)
        if self._template_btf_id and spec.btf_value_type_id:
            # The template's value has BTF (a declaration in C, maybe with a bpf_spin_lock or
            # bpf_timer, which the kernel compares): create the map with the same BTF.
            from .btf.handle import BTFHandle

            try:
                btf = BTFHandle.from_id(self._template_btf_id)
            except BPFError:
                pass  # gone with the maps that used it: create without
            else:
                with btf:
                    return Map._create_spec(spec, btf_fd=btf.fd)
        return Map.create(spec)

    def check_inner(self, inner: Map, op: str = "insert into") -> None:
        """Raise InnerMapMismatchError if ``inner`` does not fit this outer map's template."""
        if not isinstance(inner, Map):
            raise TypeError(f"{op} {self._desc}: values are Map objects, got "
                            f"{type(inner).__name__} (pass the inner Map, not its fd or id)")
        if inner.closed:
            raise ClosedError(errno.EBADF, f"{op} {self._desc}: the inner map is closed")
        if isinstance(inner, MapOfMaps):
            raise InvalidArgumentError(errno.EINVAL, f"{op} {self._desc}: {inner._desc} is "
                                       "itself a map-in-map; one level of nesting is supported")
        tmpl = self.template
        if tmpl is not None:
            err = tmpl.diff(inner._info.template, f"{op} {self._desc}")
            if err is not None:
                raise err

    # -- elements ---------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Map:
        return open_inner(self.inner_id(key), self._inner_spec)

    def inner_id(self, key: Any) -> int:
        """The id of the inner map at ``key`` (no fd is opened)."""
        with self._lock:
            self._kpack(self._kbuf, key)
            if self._io.lookup() < 0:
                raise self._elem_error("lookup", key)
            return int(self._vunpack(self._vbuf))

    def _open_raw(self, raw: bytes) -> Map:
        return open_inner(self._lookup_raw(raw), self._inner_spec)

    def __setitem__(self, key: Any, inner: Map) -> None:
        self.update(key, inner)

    def update(self, key: Any, inner: Map, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Store ``inner`` at ``key`` (HASH_OF_MAPS honours NOEXIST/EXIST; ARRAY_OF_MAPS
        takes only ANY). Waits one RCU grace period in the kernel."""
        self._check_flags(flags, "update")
        self.check_inner(inner)
        with self._wlock:
            self._kpack(self._wio.key, key)
            self._wio.value[:4] = inner.fd.to_bytes(4, "little" if _LE else "big")
            if self._wio.update(int(flags)) < 0:
                raise self._insert_error("update", key, inner, last_errno())

    def _check_flags(self, flags: UpdateFlags | int, op: str) -> None:
        if int(flags) not in (UpdateFlags.ANY, UpdateFlags.NOEXIST, UpdateFlags.EXIST):
            raise InvalidArgumentError(
                errno.EINVAL, f"{op} {self._desc}: flags {int(flags):#x} are not valid for an "
                "outer map", hint="use ANY, NOEXIST or EXIST (an outer map has no spin lock "
                "for BPF_F_LOCK)")
        if self.type == MapType.ARRAY_OF_MAPS and int(flags) != 0:
            raise InvalidArgumentError(
                errno.EINVAL, f"{op} {self._desc}: ARRAY_OF_MAPS accepts only BPF_ANY, got "
                f"{UpdateFlags(int(flags)).name or int(flags)}", hint="every slot always exists; use "
                "HASH_OF_MAPS for insert-only (NOEXIST) or replace-only (EXIST) semantics")

    def _insert_error(self, op: str, key: Any, inner: Map, code: int) -> BPFError:
        if code == errno.EINVAL and self._template is None:
            return InvalidArgumentError(
                code, f"{op} {self._desc}: the kernel refused {inner._desc} as inner map",
                hint="the template is unknown here (the map was opened, not created, and is "
                "empty); the inner map must match it in type, key/value size, flags and, for "
                "ARRAY without BPF_F_INNER_MAP, max_entries")
        if code == errno.EINVAL:
            # We checked the template fields; what remains is what info cannot show.
            return InvalidArgumentError(
                code, f"{op} {self._desc}: the kernel refused {inner._desc} as inner map",
                hint="type, sizes, flags and max_entries match the template, so the value "
                "BTF's special fields (bpf_spin_lock, bpf_timer, kptrs) probably differ; "
                "create inner maps with the same value type as the template")
        if code == errno.EBADF:
            if self.closed:
                return self._elem_error(op, key, code)
            return ClosedError(code, f"{op} {self._desc}: the inner map's fd is not open")
        return self._elem_error(op, key, code)

    def swap(self, key: Any, new: Map) -> Map | None:
        """Put ``new`` at ``key`` in one update and return the previous inner map (or None).

        Programs see the old map or the new one, never a mix; when this returns, no running
        program still uses the old one (the kernel waited a grace period).
        """
        old: Map | None
        with self._wlock:  # no other write through this object between lookup and update
            try:
                old = self[key]
            except KeyNotFoundError:
                old = None
            self.update(key, new)
        return old

    def pop(self, key: Any = _MISSING, default: Any = _MISSING) -> Any:
        """Remove the inner map at ``key`` and return it (open, so still usable).

        The kernel has no lookup-and-delete for outer maps: this is a lookup and a delete,
        made atomic against other callers of this object."""
        with self._wlock:
            try:
                inner = self[key]
            except KeyNotFoundError:
                if default is _MISSING:
                    raise
                return default
            del self[key]
            return inner

    @contextlib.contextmanager
    def staged(self, key: Any, *, copy: bool = False, **overrides: Any) -> Iterator[Map]:
        """Build a replacement inner map, then swap it in at ``key`` on success.

        ``with outer.staged(k) as new: new[1] = 2`` creates ``new`` from the template
        (``overrides`` change fields such as ``max_entries``); ``copy=True`` first copies
        the current inner map's elements. If the block raises, ``new`` is discarded and the
        old map stays in place. ``new`` is closed when the block ends (the outer map keeps
        the kernel object alive).
        """
        new = self.new_inner(**overrides)
        try:
            if copy:
                try:
                    current = self[key]
                except KeyNotFoundError:
                    pass
                else:
                    items = list(current.items())
                    if items:
                        new.update_batch([k for k, _ in items], [v for _, v in items])
            yield new
            self.update(key, new)
        finally:
            new.close()

    def __delitem__(self, key: Any) -> None:
        with self._wlock:
            self._kpack(self._wio.key, key)
            if self._wio.delete() < 0:
                raise self._elem_error("delete", key)

    def __contains__(self, key: Any) -> bool:
        try:
            self.inner_id(key)
        except KeyNotFoundError:
            return False
        return True

    def _raw_keys(self) -> Iterator[bytes]:
        if self.type != MapType.ARRAY_OF_MAPS:
            yield from super()._raw_keys()
            return
        # GET_NEXT_KEY lists empty array slots too; only filled slots are keys here.
        for raw in super()._raw_keys():
            with self._lock:
                self._kbuf[:4] = raw
                if self._io.lookup() == 0:
                    yield raw

    def items(self) -> Iterator[tuple[Any, Map]]:
        """``(key, inner Map)`` for each filled slot."""
        unpack = self._key.unpack
        for raw in self._raw_keys():
            try:
                yield unpack(raw), self._open_raw(raw)
            except KeyNotFoundError:
                continue

    def inner_ids(self) -> Iterator[tuple[Any, int]]:
        """``(key, inner map id)`` for each filled slot (no fds opened)."""
        unpack = self._key.unpack
        for raw in self._raw_keys():
            try:
                yield unpack(raw), int(self._lookup_raw(raw))
            except KeyNotFoundError:
                continue

    def __len__(self) -> int:
        return sum(1 for _ in self._raw_keys())

    # -- batches: Map objects in, Map objects out -------------------------------------------
    def update_batch(self, keys: Iterable[Any], values: Iterable[Any],
                     flags: UpdateFlags | int = UpdateFlags.ANY) -> int:
        """Store many inner maps with one BPF_MAP_UPDATE_BATCH (5.19+): one RCU grace period
        for the whole batch instead of one per map (BPF_ANY only: the kernel's batch takes
        no NOEXIST/EXIST, so those go one map and one grace period at a time).

        Every map is checked against the template first: if one does not fit, nothing is
        written. A kernel error midway (a full HASH_OF_MAPS) leaves the maps before it
        stored."""
        keys, maps = list(keys), list(values)
        self._check_flags(flags, "update_batch")
        for m in maps:
            self.check_inner(m, "update_batch")
        return super().update_batch(keys, maps, flags)

    def _pack_value_for_batch(self, buf: Any, value: Any, offset: int) -> None:
        buf[offset:offset + 4] = value.fd.to_bytes(4, "little" if _LE else "big")

    def _update_one(self, key: Any, value: Any, flags: int) -> None:
        self.update(key, value, flags)

    def lookup_and_delete_batch(self, chunk: int = 1024) -> list[tuple[Any, Any]]:
        """Remove every inner map and return ``(key, Map)`` pairs.

        Not the kernel's BPF_MAP_LOOKUP_AND_DELETE_BATCH: it releases each inner map as it
        deletes the slot, so a map nobody else holds would be gone before its id could be
        opened. purebpf opens them all first (lookup batch), then deletes the keys (delete
        batch: one RCU grace period). A slot written by someone else in between is deleted
        without being returned."""
        with self._wlock:
            pairs = self.lookup_batch(chunk)
            self.delete_batch([k for k, _ in pairs])
            return pairs

    def _unpack_batch_value(self, buf: Any, offset: int) -> Any:
        return open_inner(self._vunpack(buf, offset), self._inner_spec)

    def _pack_values_all(self, buf: Any, values: list[Any]) -> bool:
        return False  # inner maps: their fds, one by one (_pack_value_for_batch)

    def _unpack_values_all(self, buf: Any, n: int) -> list[Any] | None:
        ids = super()._unpack_values_all(buf, n)
        return None if ids is None else [open_inner(i, self._inner_spec) for i in ids]

    # -- the tree ---------------------------------------------------------------------------
    def to_dict(self, deep: bool = True) -> dict[Any, Any]:
        """``{key: inner}``; with ``deep``, each inner map as a dict of its elements."""
        out: dict[Any, Any] = {}
        for k, inner_id in self.inner_ids():
            try:
                inner = open_inner(inner_id, self._inner_spec)
            except KeyNotFoundError:
                continue  # removed meanwhile
            out[_hashable(k)] = dict((_hashable(ik), iv) for ik, iv in _elements(inner)) \
                if deep else inner
        return out

    def tree(self, values: bool = True, limit: int = 16) -> str:
        """A text tree of this outer map and every inner map under it."""
        lines = [f"{self._desc} max_entries={self.max_entries}"]
        tmpl = self.template
        if tmpl is not None:
            lines.append(f"  template: {tmpl.type.name} key={tmpl.key_size} "
                         f"value={tmpl.value_size} max_entries={tmpl.max_entries} "
                         f"flags={flag_names(tmpl.map_flags)}")
        entries = list(self.inner_ids())  # ids only: one inner map is open at a time
        try:
            entries.sort(key=lambda kv: kv[0])
        except TypeError:
            pass  # keys without an order (bytes of structs are fine; ctypes objects are not)
        for k, inner_id in entries:
            try:
                inner = open_inner(inner_id, self._inner_spec)
            except KeyNotFoundError:
                continue  # removed meanwhile
            elements = _elements(inner)
            count = f" entries={len(elements)}" if inner.key_size else ""
            lines.append(f"  [{k!r}] -> {_describe(inner._info)} max_entries={inner.max_entries}"
                         f"{count}")
            if values:
                for ik, iv in elements[:limit]:
                    lines.append(f"      {ik!r}: {iv!r}")
                if len(elements) > limit:
                    lines.append(f"      ... {len(elements) - limit} more")
            del inner
        return "\n".join(lines)


def _elements(inner: Map) -> list[tuple[Any, Any]]:
    """An inner map's (key, value) pairs; none for keyless types (ring buffers, queues,
    stacks, bloom filters), whose contents are not addressable by key."""
    if not inner.key_size:
        return []
    return list(inner.items())


def _hashable(k: Any) -> Any:
    try:
        hash(k)
        return k
    except TypeError:
        return bytes(memoryview(k).cast("B"))


_LE = sys.byteorder == "little"

Map._by_type[MapType.ARRAY_OF_MAPS] = MapOfMaps
Map._by_type[MapType.HASH_OF_MAPS] = MapOfMaps
