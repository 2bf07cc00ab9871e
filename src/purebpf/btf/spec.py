"""``Spec``: a BTF type table indexed by type id, with name lookup and layout queries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

from . import layout
from ._wire import ByteOrder, Header
from .errors import BTFError, BTFNotFoundError
from .strings import StringTable
from .types import (
    MODIFIERS, VOID, Datasec, Func, FuncProto, Kind, Member, Ptr, Type, Var, refs,
)

if TYPE_CHECKING:
    from .decode import Source

TypeRef = int | Type
"""A type id, or a type object taken from the same spec."""

KindSpec = Kind | type | None
"""A kind filter for lookups: a ``Kind``, a type class such as ``Struct``, or None."""


def _kind_of(kind: KindSpec) -> Kind | None:
    if kind is None or isinstance(kind, Kind):
        return kind
    k = getattr(kind, "kind", None)
    if not isinstance(k, Kind):
        raise TypeError(f"not a BTF kind or type class: {kind!r}")
    return k


class Spec:
    """A BTF type table. ``types[id]`` is the type with that id; id 0 is ``void``.

    ``types`` given to the constructor get ids from 1 (or, for a split spec, from
    ``len(base.types)``). A parsed spec decodes each type the first time it is asked
    for. A split spec continues the ids of its base and sees the base's types too.
    """

    def __init__(self, types: Iterable[Type] = (), *, base: Spec | None = None,
                 byteorder: ByteOrder | None = None, flags: int = 0) -> None:
        self.base = base
        self.byteorder: ByteOrder = byteorder or (base.byteorder if base else "little")
        self.flags = flags
        self.start_id = len(base.types) if base is not None else 1
        self.strings: StringTable | None = None
        self._source: Source | None = None
        self._own: list[Type | None] = list(types)
        self._replaced: set[int] = set()
        self._off_index: dict[int, list[int]] | None = None
        self._str_index: dict[str, list[int]] = {}
        self._align_cache: dict[int, int] = {}
        for tid, t in enumerate(self._own, self.start_id):
            self._index_name(t, tid)  # type: ignore[arg-type]

    @classmethod
    def _parsed(cls, source: Source, strings: StringTable, hdr: Header, base: Spec | None) -> Spec:
        spec = cls(base=base, byteorder=hdr.byteorder, flags=hdr.flags)
        spec.strings = strings
        spec._source = source
        spec._own = [None] * source.count
        return spec

    # -- ids and types -------------------------------------------------------------------

    @property
    def types(self) -> TypeList:
        """All types by id, the base's included (decoding on access)."""
        return TypeList(self)

    @property
    def end_id(self) -> int:
        """One past the last type id."""
        return self.start_id + len(self._own)

    def type_by_id(self, tid: int) -> Type:
        """The type with id ``tid``; ``BTFError`` if there is none."""
        local = tid - self.start_id
        if local >= 0:
            try:
                t = self._own[local]
            except IndexError:
                raise BTFError(f"type id {tid} is out of range (last type id is "
                               f"{self.end_id - 1})") from None
            if t is None:
                assert self._source is not None
                t = self._own[local] = self._source.decode(local)
            return t
        if self.base is not None:
            return self.base.type_by_id(tid)
        if tid == 0:
            return VOID
        raise BTFError(f"type id {tid} is out of range (type ids are 0..{self.end_id - 1})")

    def items(self, *, include_base: bool = False) -> Iterator[tuple[int, Type]]:
        """``(id, type)`` for this spec's own types (and the base's if asked)."""
        if include_base and self.base is not None:
            yield from self.base.items(include_base=True)
        elif self.base is None and include_base:
            yield 0, VOID
        for tid in range(self.start_id, self.end_id):
            yield tid, self.type_by_id(tid)

    def add(self, t: Type) -> int:
        """Append ``t`` and return its new id."""
        self._own.append(t)
        tid = self.end_id - 1
        self._index_name(t, tid)
        return tid

    def replace(self, tid: int, t: Type) -> None:
        """Put ``t`` in place of this spec's own type ``tid``."""
        old = self.type_by_id(tid)
        local = tid - self.start_id
        if local < 0:
            raise BTFError(f"type id {tid} belongs to the base BTF and cannot be replaced here")
        ids = self._str_index.get(old.name)
        if ids is not None and tid in ids:
            ids.remove(tid)
        if self._source is not None and local < self._source.count:
            self._replaced.add(tid)
        self._own[local] = t
        self._index_name(t, tid)
        self._align_cache.clear()

    def validate(self) -> None:
        """Decode every own type and check that each referenced id exists."""
        end = self.end_id
        for tid in range(self.start_id, end):
            t = self.type_by_id(tid)
            for ref in refs(t):
                if not 0 <= ref < end:
                    raise BTFError(f"type id {tid} ({t.kind.name}): refers to type id {ref}, "
                                   f"past the last type id {end - 1}")
            if isinstance(t, Func) and not isinstance(self.type_by_id(t.proto), FuncProto):
                raise BTFError(f"type id {tid} (FUNC '{t.name}'): its prototype, type id "
                               f"{t.proto}, is not a FUNC_PROTO")
            if isinstance(t, Datasec):
                for v in t.vars:
                    if not isinstance(self.type_by_id(v.type), (Var, Func)):
                        raise BTFError(f"type id {tid} (DATASEC '{t.name}'): entry type id "
                                       f"{v.type} is not a VAR or FUNC")

    # -- names ---------------------------------------------------------------------------

    def _index_name(self, t: Type, tid: int) -> None:
        if t.name:
            self._str_index.setdefault(t.name, []).append(tid)

    def _ensure_index(self) -> dict[int, list[int]]:
        # Parsed types are indexed by name offset: finding a name then costs one search
        # of the string section instead of decoding every name up front.
        if self._off_index is None:
            idx: dict[int, list[int]] = {}
            if self._source is not None:
                get = idx.get
                for tid, off in enumerate(self._source.name_offs, self.start_id):
                    ids = get(off)
                    if ids is None:
                        idx[off] = [tid]
                    else:
                        ids.append(tid)
                idx.pop(0, None)  # anonymous types
            self._off_index = idx
        return self._off_index

    def find_ids(self, name: str, kind: KindSpec = None) -> list[int]:
        """Ids of every type called ``name`` (of ``kind`` if given), base ids first."""
        want = _kind_of(kind)
        found = self.base.find_ids(name, want) if self.base is not None else []
        if not name:
            return found
        idx = self._ensure_index()
        own: list[int] = []
        if self.strings is not None and idx:
            for off in self.strings.offsets_of(name):
                own.extend(i for i in idx.get(off, ()) if i not in self._replaced)
        own.extend(self._str_index.get(name, ()))
        own.sort()
        if want is not None:
            own = [i for i in own if self._kind_at(i) == want]
        return found + own

    def _kind_at(self, tid: int) -> Kind:
        local = tid - self.start_id
        if self._source is not None and 0 <= local < self._source.count and self._own[local] is None:
            return self._source.kind_of(local)
        return self.type_by_id(tid).kind

    def find_id(self, name: str, kind: KindSpec = None) -> int:
        """The id of the type called ``name``; the lowest if several of one kind match."""
        ids = self.find_ids(name, kind)
        if not ids:
            what = f"{_kind_of(kind).name} " if kind is not None else ""  # type: ignore[union-attr]
            raise BTFNotFoundError(f"no {what}type named {name!r} in BTF")
        if kind is None and len(ids) > 1:
            kinds = {self._kind_at(i) for i in ids}
            if len(kinds) > 1:
                found = ", ".join(f"{self._kind_at(i).name} [{i}]" for i in ids)
                raise BTFError(f"{name!r} names types of several kinds ({found}); pass kind=")
        return ids[0]

    def find(self, name: str, kind: KindSpec = None) -> Type:
        """The type called ``name`` (see ``find_id``)."""
        return self.type_by_id(self.find_id(name, kind))

    # -- layout --------------------------------------------------------------------------

    def _get(self, t: TypeRef) -> Type:
        return self.type_by_id(t) if isinstance(t, int) else t

    def resolve_id(self, tid: int) -> int:
        """Follow typedefs, qualifiers and type tags from ``tid`` to the underlying id."""
        return layout.resolve_id(self, tid)

    def resolve(self, t: TypeRef) -> Type:
        """``t`` with typedefs, qualifiers and type tags skipped."""
        t = self._get(t)
        return self.type_by_id(self.resolve_id(t.type)) if isinstance(t, MODIFIERS) else t

    def sizeof(self, t: TypeRef) -> int:
        """Size in bytes (pointers are 8 bytes, as in BPF); ``BTFError`` if unsized."""
        return layout.sizeof(self, t)

    def alignof(self, t: TypeRef) -> int:
        """Alignment in bytes, as the BTF's own layout implies (1 for packed structs)."""
        return layout.alignof(self, t)

    def field(self, t: TypeRef, path: str) -> Member:
        """The member at dotted ``path`` of a struct/union (or a variable of one);
        anonymous members are searched, and bit_offset counts from the start of ``t``."""
        return layout.field(self, t, path)

    def is_packed(self, t: TypeRef) -> bool:
        """Whether a struct/union's layout needs ``__attribute__((packed))`` in C."""
        return layout.is_packed(self, self._get(t))

    def pointer_to(self, target: int) -> int:
        """The id of a pointer to ``target``, adding one if this spec has none."""
        for tid, t in self.items():
            if isinstance(t, Ptr) and t.target == target:
                return tid
        return self.add(Ptr(target))

    # -- conversions ---------------------------------------------------------------------

    def encode(self) -> bytes:
        """Raw .BTF bytes for this spec's own types (see ``purebpf.btf.encode``)."""
        from .encode import encode
        return encode(self)

    def __repr__(self) -> str:
        split = f", base of {self.start_id} ids" if self.base is not None else ""
        return f"<Spec {len(self._own)} types, {self.byteorder}-endian{split}>"


class TypeList(Sequence[Type]):
    """A read-only view of a spec's types indexed by id (0 = void, base ids included)."""

    __slots__ = ("_spec",)

    def __init__(self, spec: Spec) -> None:
        self._spec = spec

    def __len__(self) -> int:
        return self._spec.end_id

    @overload
    def __getitem__(self, i: int) -> Type: ...
    @overload
    def __getitem__(self, i: slice) -> list[Type]: ...

    def __getitem__(self, i: int | slice) -> Type | list[Type]:
        if isinstance(i, slice):
            return [self._spec.type_by_id(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
            if i < 0:
                raise IndexError("type id out of range")
        try:
            return self._spec.type_by_id(i)
        except BTFError as exc:
            if i >= len(self):
                raise IndexError(str(exc)) from None
            raise

    def __iter__(self) -> Iterator[Type]:
        return (self._spec.type_by_id(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypeList):
            other = list(other)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]
