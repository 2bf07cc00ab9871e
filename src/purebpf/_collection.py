"""Collection: the live maps, programs and variables of one BPF object.

Loading order: BTF, plain maps (inner maps first, as C declares them), global-data maps,
outer maps (their templates come from the declaration), the declared slots of outer maps
(one batch per outer map: one RCU grace period, not one per slot), programs, then program
array slots. Any failure closes everything created so far: no fd and no kernel object stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import TYPE_CHECKING, Any

from . import features
from ._map import Map, MmapArray
from ._mapofmaps import MapOfMaps
from ._program import Program
from ._sys import ops
from ._sys.ops import possible_cpus
from ._spec import CollectionSpec, MapSpec, Template, VariableSpec
from .errors import (BPFError, BPFPermissionError, ClosedError, InnerMapMismatchError,
                     InvalidArgumentError, MapMismatchError, NotSupportedError)
from .types import MapFlags, MapType

if TYPE_CHECKING:
    from .events import PerfEventArray, RingBuffer
    from .link._link import BaseLink
    from .link.auto import Attached

DEFAULT_PIN_ROOT = "/sys/fs/bpf"


class Variable:
    """A global variable of a loaded object: ``size`` bytes at ``offset`` in its data map.

    Reads and writes touch only the variable's own bytes, through the data map's shared
    mmap (the loader creates data maps with BPF_F_MMAPABLE, 5.5+): a program updating
    another variable of the same section at the same time loses nothing. Without the mmap
    the only write is the whole section, which would undo such updates, so :meth:`set`
    refuses; reads then take the whole value and slice it.
    """

    def __init__(self, spec: VariableSpec, data_map: Map, btf: Any = None) -> None:
        self.spec = spec
        self._btf = btf
        self.name = spec.name
        self.size = spec.size
        self.offset = spec.offset
        self.readonly = spec.readonly
        self._map = data_map

    @property
    def raw(self) -> bytes:
        """The variable's bytes as the program sees them now."""
        if isinstance(self._map, MmapArray):
            return self._map.read(0, self.offset, self.size)
        whole = bytes(self._map[0])
        return whole[self.offset:self.offset + self.size]

    def get(self) -> int:
        """The value as an unsigned int."""
        return int.from_bytes(self.raw, sys.byteorder)

    @property
    def value(self) -> Any:
        """The value decoded by its BTF type: an int (signed for signed types), a str for a
        char array holding a string, a dict for a struct, a list for an array (the bytes
        without BTF). :meth:`set` takes the same back."""
        raw = self.raw
        if self._btf is None or not self.spec.type_id:
            return raw
        from .btf.values import decode

        return decode(self._btf, self.spec.type_id, raw)

    def set(self, value: Any) -> None:
        """Write the variable, and only its bytes: what :attr:`value` returns (an int, a str
        for a char array, a dict for a struct, a list for an array) or bytes of its size.

        Raises BPFPermissionError (EPERM) for a ``.rodata`` constant (frozen at load) or a
        frozen data map; InvalidArgumentError (EINVAL) for a value its type cannot hold,
        writing nothing; NotSupportedError when the data map is not BPF_F_MMAPABLE (before
        5.5); ClosedError once the collection is closed.
        """
        what = f"set variable {self.name!r}"
        if self.readonly:
            raise BPFPermissionError(errno.EPERM, f"{what}: it is in .rodata, frozen at load",
                                     hint="set it in the CollectionSpec before loading")
        self._map.fd  # noqa: B018 - raises ClosedError once closed
        if not isinstance(self._map, MmapArray):
            raise NotSupportedError(
                errno.EOPNOTSUPP, f"{what}: its data map {self._map._desc} is not "
                "BPF_F_MMAPABLE, and writing the whole section would undo the program's "
                "writes to the other variables in it", feature="BPF_F_MMAPABLE",
                hint="set it in the CollectionSpec before loading, or write the map's "
                     "element 0 whole if no program writes that section")
        data = self._encode(value, what)
        try:
            self._map.write(0, self.offset, data)
        except BPFPermissionError:
            raise BPFPermissionError(errno.EPERM, f"{what}: its data map "
                                     f"{self._map._desc} is frozen") from None

    def _encode(self, value: Any, what: str) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        elif self._btf is not None and self.spec.type_id:
            from .btf.errors import BTFError
            from .btf.values import encode

            try:
                data = encode(self._btf, self.spec.type_id, value)
            except BTFError as exc:
                raise InvalidArgumentError(errno.EINVAL, f"{what}: {exc}") from None
        elif isinstance(value, int):
            try:
                data = value.to_bytes(self.size, sys.byteorder, signed=value < 0)
            except OverflowError:
                raise InvalidArgumentError(errno.EINVAL, f"{what}: {value} does not fit in "
                                           f"{self.size} bytes") from None
        else:
            raise TypeError(f"{what}: expected an int or {self.size} bytes (the variable has "
                            f"no BTF type to encode a {type(value).__name__} by)")
        if len(data) != self.size:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: it is {self.size} bytes, got "
                                       f"{len(data)}")
        return data

    def __repr__(self) -> str:
        try:
            shown = f"value={self.get()}"
        except ClosedError:
            shown = "closed"
        return f"<Variable {self.name!r} size={self.size} {shown}>"


class Collection:
    """Live maps, programs and variables loaded from one object (or CollectionSpec)."""

    DEFAULT_PIN_ROOT = DEFAULT_PIN_ROOT  # where LIBBPF_PIN_BY_NAME maps go without pin_root

    def __init__(self, maps: dict[str, Map], programs: dict[str, Program],
                 variables: dict[str, Variable], spec: CollectionSpec) -> None:
        self.maps = maps
        self.programs = programs
        self.variables = variables
        self.spec = spec

    @classmethod
    def load(cls, source: CollectionSpec | str | os.PathLike[str],
             pin_root: str | os.PathLike[str] | None = None) -> Collection:
        """Load a BPF object file or a CollectionSpec into the kernel.

        Maps with ``pinning`` (LIBBPF_PIN_BY_NAME) are reused from ``pin_root`` (default
        /sys/fs/bpf) when a compatible map is pinned there, refused when an incompatible one
        is, and pinned there after creation otherwise.
        """
        spec = source if isinstance(source, CollectionSpec) else \
            CollectionSpec.from_file(source)
        root = os.fspath(pin_root) if pin_root is not None else DEFAULT_PIN_ROOT
        with contextlib.ExitStack() as stack:
            loader = _Loader(spec, root, stack)
            try:
                coll = loader.run()
            finally:
                loader.close_btf()  # maps and programs hold their own references to it
            stack.pop_all()
            return coll

    def attach_all(self, **kw: Any) -> Attached:
        """Attach every program whose section names its hook (see :func:`purebpf.link.attach`;
        ``kw`` such as ``iface=``/``cgroup=`` go to the programs that take them). Returns the
        links by program name; its ``skipped`` maps each program left alone to the keyword it
        needs. Programs attached by an earlier call keep their links (returned again). The
        collection closes these links when it closes (before its programs)."""
        from .link.auto import attach_all

        done: dict[str, BaseLink] = getattr(self, "_links", {})
        links = attach_all({n: p for n, p in self.programs.items() if n not in done}, **kw)
        self._links = {**done, **links}
        links.update(done)
        return links

    def ring_buffer(self, name: str, record: Any = None, *,
                    callback: Any = None) -> RingBuffer:
        """A :class:`purebpf.events.RingBuffer` over the RINGBUF map ``name``, whose records
        decode as ``record``: a type named in the object's BTF (``"struct event"``), a
        ctypes type, or None for bytes."""
        from .events import RingBuffer

        return RingBuffer(self._map_named(name), record=record, btf=self.spec.btf,
                          callback=callback)

    def perf_buffer(self, name: str, record: Any = None, *, callback: Any = None,
                    lost_callback: Any = None, pages: int = 8) -> PerfEventArray:
        """A :class:`purebpf.events.PerfEventArray` over the PERF_EVENT_ARRAY map ``name``
        (one perf ring of ``pages`` pages per CPU), decoding records as for
        :meth:`ring_buffer`."""
        from .events import PerfEventArray

        return PerfEventArray(self._map_named(name), record=record, btf=self.spec.btf,
                              callback=callback, lost_callback=lost_callback, pages=pages)

    def _map_named(self, name: str) -> Map:
        try:
            return self.maps[name]
        except KeyError:
            raise KeyError(f"{self!r} has no map {name!r} (maps: "
                           f"{', '.join(sorted(self.maps))})") from None

    def close(self) -> None:
        """Close every link made by :meth:`attach_all`, then every program and map fd
        (pinned maps stay in the kernel)."""
        first: BaseException | None = None
        closers = [*getattr(self, "_links", {}).values(), *self.programs.values(),
                   *self.maps.values()]
        for obj in closers:  # every one, even when one of them fails
            try:
                obj.close()
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Collection {self.spec.name!r} maps={sorted(self.maps)} "
                f"programs={sorted(self.programs)}>")


class _Loader:
    def __init__(self, spec: CollectionSpec, pin_root: str, stack: contextlib.ExitStack) -> None:
        self.spec = spec
        self.pin_root = pin_root
        self.stack = stack
        self.maps: dict[str, Map] = {}
        self.reused: set[str] = set()  # pinned maps taken over as they are
        self.btf_fd = 0
        self.btf: Any = None
        self.btf_error: BPFError | None = None

    def run(self) -> Collection:
        self._load_btf()
        order = sorted(self.spec.maps.items(), key=lambda kv: kv[1].type.is_map_in_map)
        for name, ms in order:
            self._map(name, ms)
        programs: dict[str, Program] = {}
        for name, ps in self.spec.programs.items():
            if not ps.autoload:
                continue
            try:
                prog = Program.load(ps, self.maps, btf_fd=self.btf_fd)
            except BPFError as exc:
                if self.btf_error is not None:
                    exc.hint = "; ".join(filter(None, [exc.hint, "the kernel refused the "
                                                       f"object's BTF: {self.btf_error}"]))
                raise
            self.stack.callback(prog.close)
            programs[name] = prog
        for name, ms in self.spec.maps.items():
            # Refilled on reuse too: the programs are new with every load (libbpf does so).
            if ms.type == MapType.PROG_ARRAY and ms.contents:
                self._fill_prog_array(name, ms, programs)
        variables = {n: Variable(v, self.maps[v.map], self.spec.btf)
                     for n, v in self.spec.variables.items() if v.map in self.maps}
        return Collection(dict(self.maps), programs, variables, self.spec)

    def _load_btf(self) -> None:
        if self.spec.btf is None:
            return
        from .btf.handle import BTFHandle

        try:
            handle = BTFHandle.load(self.spec.btf)
        except BPFError as exc:
            # Maps and programs load without BTF (no typed map info, no line info); a
            # program that needs it (callbacks, CO-RE) then fails, and says why.
            self.btf_error = exc
            return
        self.btf = handle
        self.btf_fd = handle.fd

    def close_btf(self) -> None:
        if self.btf is not None:
            self.btf.close()

    def _create(self, name: str, ms: MapSpec) -> Map:
        ms = with_runtime_defaults(ms)
        btf_fd = self.btf_fd if ms.btf is not None else 0
        try:
            m = Map._create_spec(ms, btf_fd=btf_fd)
        except BPFError as exc:
            if not btf_fd or (isinstance(exc, NotSupportedError) and
                              exc.feature == "bpf_spin_lock in inner-map templates"):
                raise  # without BTF, the declared inner maps would not fit the template
            m = Map._create_spec(ms, btf_fd=0)  # the kernel refused the BTF: do without
        self.stack.callback(m.close)
        return m

    def _map(self, name: str, ms: MapSpec) -> None:
        path = os.path.join(self.pin_root, name) if ms.pinning else None
        if path is not None and os.path.exists(path):
            self.maps[name] = self._reuse(name, ms, path)
            self.reused.add(name)
            return
        if ms.contents and not ms.type.is_map_in_map and ms.type != MapType.PROG_ARRAY and \
                name in self._data_maps():
            m = self._data_map(name, ms)
        else:
            m = self._create(name, ms)
        self.maps[name] = m
        if isinstance(m, MapOfMaps) and ms.contents:
            keys = [k for k, _ in ms.contents]
            inners = [self._inner(name, target) for _, target in ms.contents]
            for k, target in ms.contents:
                m.check_inner(self.maps[target], f"declared slot [{k}] = {target!r} of")
            try:
                m.update_batch(keys, inners)
            except BPFError as exc:
                exc.message = f"load map {name!r}: filling its declared slots: {exc.message}"
                raise
        if path is not None:
            m.pin(path)
            self.stack.callback(_unlink_quietly, path)

    def _data_maps(self) -> set[str]:
        return {v.map for v in self.spec.variables.values()} | {
            n for n, ms in self.spec.maps.items()
            if ms.contents and isinstance(ms.contents[0][1], bytes)}

    def _data_map(self, name: str, ms: MapSpec) -> Map:
        body = bytearray(ms.contents[0][1])
        for v in self.spec.variables.values():
            if v.map == name:
                body[v.offset:v.offset + v.size] = v.value
        externs = [e for e in self.spec.kconfig.values() if e.map == name]
        if externs:  # the .kconfig map: this kernel's values (or the spec's overrides)
            from ._kconfig import fill

            fill(externs, body)
        spec = ms
        if features.has_mmapable_array():
            spec = ms.replace(flags=ms.flags | MapFlags.MMAPABLE)
        m = self._create(name, spec)
        m[0] = bytes(body)
        if ms.flags & MapFlags.RDONLY_PROG:  # .rodata*, .kconfig: frozen once written
            m.freeze()
        return m

    def _inner(self, outer: str, target: str) -> Map:
        m = self.maps.get(target)
        if m is None:
            raise InvalidArgumentError(errno.EINVAL, f"load map {outer!r}: its initial value "
                                       f"{target!r} is not a map of this object")
        return m

    def _reuse(self, name: str, ms: MapSpec, path: str) -> Map:
        m = Map._adopt(ops.obj_get(path), like=ms)  # decode as the declaration types it
        self.stack.callback(m.close)
        what = f"reuse pinned map {name!r} at {path!r}"
        want, got = Template.of(ms), m._info.template
        pairs = [(f, getattr(want, f), getattr(got, f)) for f in
                 ("type", "key_size", "value_size", "max_entries", "map_flags")]
        pairs.append(("map_extra", ms.map_extra, m._info.map_extra))
        for field, expected, actual in pairs:
            if expected != actual:
                raise MapMismatchError(
                    f"{what}: {field} {actual} != declared {expected}", field=field,
                    expected=expected, actual=actual,
                    hint=f"remove the stale pin (rm {path}) or change the declaration")
        if isinstance(m, MapOfMaps) and ms.inner is not None:
            pinned = m.template
            if pinned is not None:
                err = Template.of(ms.inner).diff(pinned, f"{what}: inner template")
                if err is not None:
                    raise InnerMapMismatchError(
                        f"{what}: the pinned map's inner maps do not match the declared inner "
                        f"template: {err.field} {err.expected} declared, "
                        f"{err.actual} pinned", field=f"inner.{err.field}",
                        expected=err.expected, actual=err.actual,
                        hint=f"remove the stale pin (rm {path}) or change the declaration")
        return m

    def _fill_prog_array(self, name: str, ms: MapSpec, programs: dict[str, Program]) -> None:
        m = self.maps[name]
        for slot, target in ms.contents:
            prog = programs.get(target)
            if prog is None:
                raise InvalidArgumentError(errno.EINVAL, f"load map {name!r}: slot [{slot}] "
                                           f"names program {target!r}, which was not loaded")
            m[slot] = prog.fd.to_bytes(4, sys.byteorder)


def with_runtime_defaults(ms: MapSpec) -> MapSpec:
    """Fill in what a declaration may leave to the loader, as libbpf does: a PERF_EVENT_ARRAY
    without max_entries gets one slot per possible CPU, and a ring buffer's size is rounded
    up to a power-of-two number of pages (the kernel accepts nothing else)."""
    changes: dict[str, Any] = {}
    if ms.type == MapType.PERF_EVENT_ARRAY and not ms.max_entries:
        changes["max_entries"] = possible_cpus()
    if ms.type in (MapType.RINGBUF, MapType.USER_RINGBUF) and ms.max_entries:
        size = max(os.sysconf("SC_PAGE_SIZE"), ms.max_entries)
        changes["max_entries"] = 1 << (size - 1).bit_length()
    if ms.inner is not None:
        inner = with_runtime_defaults(ms.inner)
        if inner is not ms.inner:
            changes["inner"] = inner
    return ms.replace(**changes) if changes else ms


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def load(path: str | os.PathLike[str], pin_root: str | os.PathLike[str] | None = None
         ) -> Collection:
    """Load a BPF object file: ``coll = purebpf.load("prog.o")``."""
    return Collection.load(path, pin_root=pin_root)
