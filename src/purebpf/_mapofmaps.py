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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._map import _MISSING, Map, _describe
from ._spec import MapSpec, Template, check_template
from ._sys import ops
from ._sys.syscall import ElemIO, last_errno
from .codec import Codec
from .errors import (BPFError, ClosedError, InvalidArgumentError,
                     KeyNotFoundError, NotSupportedError, errno_name, error_for)
from .types import MapType, UpdateFlags, flag_names

# How often a lookup re-reads a slot whose inner map went away before it could be opened
# (replaced, and freed, in between) before giving up: each retry means another writer
# replaced the slot within microseconds, so this bound is reached only by a writer that
# never stops.
_OPEN_RETRIES = 1000


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
        try:
            outer = Map._create_plain(spec, inner_map_fd=tmpl.fd)
        except NotSupportedError as exc:
            raise _special_template_error(spec, tmpl, exc) from None
        assert isinstance(outer, MapOfMaps)
        outer._template = template
        outer._template_btf_id = tmpl._info.btf_id
        outer._inner_spec = spec.inner.replace(
            type=template.type, key_size=template.key_size, value_size=template.value_size,
            flags=template.map_flags, max_entries=template.max_entries)
        return outer


def _special_template_error(spec: MapSpec, tmpl: Map, exc: NotSupportedError
                            ) -> NotSupportedError:
    """Name the cause when the kernel refuses an outer map for its template: Linux 6.1 does
    so (ENOTSUPP) for a template whose value holds a bpf_spin_lock (or a timer, or kptrs)."""
    from . import features

    if not tmpl._info.btf_value_type_id or features.has_spin_lock_inner_map():
        return exc
    return NotSupportedError(
        exc.errno or errno.EOPNOTSUPP,
        f"create {spec.describe()}: this kernel refuses an inner-map template whose value "
        "holds a bpf_spin_lock (or a bpf_timer or kptr)",
        feature="bpf_spin_lock in inner-map templates",
        hint="Linux 6.1 does; newer kernels accept it. Keep the lock out of the inner map's "
             "value (a separate map of locks), or run a newer kernel")


class MapOfMaps(Map):
    """An ARRAY_OF_MAPS or HASH_OF_MAPS map: values are live :class:`Map` objects.

    ``outer[k] = inner`` stores a map (its fd goes to the kernel); ``outer[k]`` returns a new
    live Map for the inner map (the kernel returns its id; purebpf opens it) that the caller
    owns: close it, or use ``with outer[k] as m:``. ``outer.inner_id(k)`` gives the id alone,
    opening nothing.
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

    def close(self) -> None:
        """Close the fd (idempotent), after a write in progress in another thread (which
        may be waiting out an RCU grace period) has finished."""
        if self._fd < 0:
            return
        with self._wlock:
            super().close()

    def _walk_fallback(self, deleting: bool) -> list[tuple[Any, Any]]:
        # No batch op for outer maps on this kernel (before 5.19): (key, id) pairs, as the
        # batch would give, for lookup_batch to open. (lookup_and_delete_batch never gets
        # here deleting: it is a lookup_batch, then a delete_batch.)
        return list(self.inner_ids())

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
        other._template_btf_id = self._template_btf_id
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
            except BPFError:
                continue
            with inner:
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
        """The inner map at ``key``, opened as a new Map that the caller owns (close it, or
        ``with outer[key] as m:``). KeyNotFoundError when the slot is empty."""
        return self._open_slot(lambda: self.inner_id(key), key)

    def inner_id(self, key: Any) -> int:
        """The id of the inner map at ``key`` (no fd is opened)."""
        with self._lock:
            self._kpack(self._kbuf, key)
            if self._io.lookup() < 0:
                raise self._elem_error("lookup", key)
            return int(self._vunpack(self._vbuf))

    def _open_slot(self, read_id: Callable[[], int], key: Any) -> Map:
        """Open the inner map a slot holds. ``read_id`` reads the slot's id (raising
        KeyNotFoundError when it is empty). Between reading an id and opening it, a writer
        may replace the slot and the old map may be freed: then the slot is read again, until
        the id read is one that opens or the slot is really empty."""
        for _ in range(_OPEN_RETRIES):
            map_id = read_id()
            fd = ops.map_fd_by_id_errno(map_id)
            if fd >= 0:
                return Map._adopt(fd, quiet=True, like=self._inner_spec)
            if fd != -errno.ENOENT:
                raise error_for(-fd, f"open the inner map at key {key!r} of {self._desc} "
                                f"(id {map_id}): {errno_name(-fd)}")
        raise BPFError(errno.EAGAIN, f"lookup {self._desc}: the inner map at key {key!r} was "
                       f"replaced {_OPEN_RETRIES} times before it could be opened",
                       hint="another writer replaces this slot without pause")

    def _open_raw(self, raw: bytes) -> Map:
        return self._open_slot(lambda: int(self._lookup_raw(raw)), raw)

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
        if isinstance(flags, bool) or not isinstance(flags, int):
            raise TypeError(f"{op} {self._desc}: flags must be an int (UpdateFlags), got "
                            f"{type(flags).__name__}")
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
        """Put ``new`` at ``key`` in one update and return the previous inner map (or None),
        as a handle the caller owns.

        Programs see the old map or the new one, never a mix; when this returns, no running
        program still uses the old one (the kernel waited a grace period).
        """
        old: Map | None
        with self._wlock:  # no other write through this object between lookup and update
            try:
                old = self[key]
            except KeyNotFoundError:
                old = None
            try:
                self.update(key, new)
            except BaseException:
                if old is not None:
                    old.close()
                raise
        return old

    def pop(self, key: Any = _MISSING, default: Any = _MISSING) -> Any:
        """Remove the inner map at ``key`` and return it (a handle the caller owns, so still
        usable).

        The kernel has no lookup-and-delete for outer maps: this is a lookup and a delete,
        made atomic against other callers of this object."""
        with self._wlock:
            try:
                inner = self[key]
            except KeyNotFoundError:
                if default is _MISSING:
                    raise
                return default
            try:
                del self[key]
            except BaseException:
                inner.close()
                raise
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
                    with current:
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
                filled = self._io.lookup() == 0
            if filled:  # yield with the lock released: the caller may look up meanwhile
                yield raw

    def items(self) -> Iterator[tuple[Any, Map]]:
        """``(key, inner Map)`` for each filled slot; each Map is the caller's to close (one
        closes when dropped, too)."""
        unpack = self._key.unpack
        for raw in self._raw_keys():
            try:
                inner = self._open_raw(raw)
            except KeyNotFoundError:
                continue  # the slot was emptied during the walk
            yield unpack(raw), inner

    def values(self) -> Iterator[Map]:
        """The inner maps (each one the caller's to close)."""
        for _, inner in self.items():
            yield inner

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

    def lookup_batch(self, chunk: int = 1024) -> list[tuple[Any, Any]]:
        """``(key, inner Map)`` for every filled slot, read with BPF_MAP_LOOKUP_BATCH; each
        Map is a new handle that the caller owns. A slot replaced between the batch and the
        open yields the map it holds now; one emptied meanwhile is left out."""
        return self._open_ids(super().lookup_batch(chunk))

    def lookup_and_delete_batch(self, chunk: int = 1024) -> list[tuple[Any, Any]]:
        """Remove every inner map and return ``(key, Map)`` pairs.

        Not the kernel's BPF_MAP_LOOKUP_AND_DELETE_BATCH: it releases each inner map as it
        deletes the slot, so a map nobody else holds would be gone before its id could be
        opened. purebpf opens them all first (lookup batch), then deletes the keys (delete
        batch: one RCU grace period). A slot written by someone else in between is deleted
        without being returned."""
        with self._wlock:
            pairs = self.lookup_batch(chunk)
            try:
                self.delete_batch([k for k, _ in pairs])
            except BaseException:
                for _, m in pairs:
                    m.close()
                raise
            return pairs

    def _open_ids(self, pairs: list[tuple[Any, int]]) -> list[tuple[Any, Map]]:
        """Open the inner map ids of ``(key, id)`` pairs; on failure close what was opened."""
        out: list[tuple[Any, Map]] = []
        with contextlib.ExitStack() as stack:
            for k, map_id in pairs:
                fd = ops.map_fd_by_id_errno(map_id)
                if fd >= 0:
                    inner = Map._adopt(fd, quiet=True, like=self._inner_spec)
                elif fd == -errno.ENOENT:
                    try:
                        inner = self[k]  # replaced since the batch read it
                    except KeyNotFoundError:
                        continue  # emptied since
                else:
                    raise error_for(-fd, f"lookup_batch {self._desc}: open inner map id "
                                    f"{map_id}: {errno_name(-fd)}")
                stack.callback(inner.close)
                out.append((k, inner))
            stack.pop_all()
        return out

    def _pack_values_all(self, buf: Any, values: list[Any]) -> bool:
        return False  # inner maps: their fds, one by one (_pack_value_for_batch)

    # -- the tree ---------------------------------------------------------------------------
    def _slots(self) -> Iterator[tuple[Any, bytes]]:
        """``(key, raw key)`` of each filled slot, sorted by key where keys have an order."""
        unpack = self._key.unpack
        entries = [(unpack(raw), raw) for raw in self._raw_keys()]
        try:
            entries.sort(key=lambda kv: kv[0])
        except TypeError:
            entries.sort(key=lambda kv: kv[1])  # keys without an order: by their bytes
        return iter(entries)

    def to_dict(self, deep: bool = True) -> dict[Any, Any]:
        """``{key: inner}``; with ``deep``, each inner map as a dict of its elements (keys
        that decode to something unhashable, such as a dict for a BTF struct, become
        their bytes). Without ``deep`` the values are inner Maps the caller owns."""
        out: dict[Any, Any] = {}
        with contextlib.ExitStack() as stack:
            for k, raw in self._slots():
                try:
                    inner = self._open_raw(raw)
                except KeyNotFoundError:
                    continue  # emptied during the walk
                if deep:
                    with inner:
                        out[_hashable(k, raw)] = {_hashable(ik, ir): iv
                                                  for ik, ir, iv in _elements(inner)}
                else:
                    stack.callback(inner.close)
                    out[_hashable(k, raw)] = inner
            stack.pop_all()
        return out

    def tree(self, values: bool = True, limit: int = 16) -> str:
        """A text tree of this outer map and every inner map under it."""
        lines = [f"{self._desc} max_entries={self.max_entries}"]
        tmpl = self.template
        if tmpl is not None:
            lines.append(f"  template: {tmpl.type.name} key={tmpl.key_size} "
                         f"value={tmpl.value_size} max_entries={tmpl.max_entries} "
                         f"flags={flag_names(tmpl.map_flags)}")
        for k, raw in self._slots():
            try:
                inner = self._open_raw(raw)  # one inner map open at a time
            except KeyNotFoundError:
                continue  # emptied during the walk
            with inner:
                elements = _elements(inner)
                count = f" entries={len(elements)}" if inner.key_size else ""
                lines.append(f"  [{k!r}] -> {_describe(inner._info)} "
                             f"max_entries={inner.max_entries}{count}")
            if values:
                for ik, _, iv in elements[:limit]:
                    lines.append(f"      {ik!r}: {iv!r}")
                if len(elements) > limit:
                    lines.append(f"      ... {len(elements) - limit} more")
        return "\n".join(lines)


def _elements(inner: Map) -> list[tuple[Any, bytes, Any]]:
    """An inner map's ``(key, raw key, value)`` triples; none for keyless types (ring
    buffers, queues, stacks, bloom filters), whose contents are not addressable by key."""
    if not inner.key_size:
        return []
    unpack = inner._key.unpack
    out = []
    for raw in inner._raw_keys():
        try:
            value = inner._lookup_raw(raw)
        except KeyNotFoundError:
            continue  # deleted during the walk
        out.append((unpack(raw), raw, value))
    return out


def _hashable(k: Any, raw: bytes) -> Any:
    """``k`` if it can be a dict key, else the key's bytes."""
    try:
        hash(k)
    except TypeError:
        return raw
    return k


_LE = sys.byteorder == "little"

Map._by_type[MapType.ARRAY_OF_MAPS] = MapOfMaps
Map._by_type[MapType.HASH_OF_MAPS] = MapOfMaps
