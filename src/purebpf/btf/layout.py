"""Sizes, alignments and member offsets of BTF types, following the BPF target's C ABI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._wire import MAX_RESOLVE_DEPTH
from .errors import BTFError, BTFNotFoundError
from .types import (
    MODIFIERS, Array, Datasec, Enum, Enum64, Float, Int, Member, Ptr, Struct, Type, Union, Var,
)

if TYPE_CHECKING:
    from .spec import Spec, TypeRef

POINTER_SIZE = 8  # BPF is a 64-bit target, whatever the host
MAX_NESTING = 256  # deeper struct-in-struct nesting than this is taken as malformed

_SIZED = (Int, Enum, Enum64, Struct, Union, Float, Datasec)


def describe(t: Type, tid: int | None = None) -> str:
    """``type id 7 (STRUCT 'foo')``-style text for error messages."""
    what = f"{t.kind.name} '{t.name}'" if t.name else t.kind.name
    return f"type id {tid} ({what})" if tid is not None else f"{what} type"


def resolve_id(spec: Spec, tid: int) -> int:
    """Follow typedefs, qualifiers and type tags from ``tid``."""
    start = tid
    for _ in range(MAX_RESOLVE_DEPTH):
        t = spec.type_by_id(tid)
        if not isinstance(t, MODIFIERS):
            return tid
        tid = t.type
    raise BTFError(f"type id {start}: more than {MAX_RESOLVE_DEPTH} typedef/qualifier hops "
                   "(a reference loop?)")


def sizeof(spec: Spec, t: TypeRef) -> int:
    """Size in bytes, through modifiers, variables and arrays."""
    tid = t if isinstance(t, int) else None
    cur = spec.type_by_id(t) if isinstance(t, int) else t
    count = 1
    for _ in range(MAX_RESOLVE_DEPTH):
        if isinstance(cur, _SIZED):
            return count * cur.size
        if isinstance(cur, Ptr):
            return count * POINTER_SIZE
        if isinstance(cur, Array):
            count *= cur.nelems
            tid = cur.elem
        elif isinstance(cur, (*MODIFIERS, Var)):
            tid = cur.type
        else:
            raise BTFError(f"{describe(cur, tid)} has no size")
        cur = spec.type_by_id(tid)
    raise BTFError(f"{describe(cur, tid)}: more than {MAX_RESOLVE_DEPTH} array/typedef hops "
                   "(a reference loop?)")


def alignof(spec: Spec, t: TypeRef) -> int:
    """Alignment in bytes; a struct whose BTF layout is packed has alignment 1."""
    if isinstance(t, int):
        return _align_id(spec, t)
    for dep in _align_deps(t):
        _align_id(spec, dep)
    return _align_of(spec, t, None)


def _align_deps(t: Type) -> tuple[int, ...]:
    """The ids whose alignment ``t``'s alignment is computed from."""
    if isinstance(t, Array):
        return (t.elem,)
    if isinstance(t, (*MODIFIERS, Var)):
        return (t.type,)
    if isinstance(t, (Struct, Union)):
        return tuple(m.type for m in t.members)
    return ()


def _align_id(spec: Spec, tid: int) -> int:
    """The alignment of type ``tid``, computing (and caching) what it depends on first.

    A depth-first walk with an explicit stack: nesting depth costs no Python recursion,
    and a type met again while it is still being computed is a by-value loop.
    """
    cache = spec._align_cache
    cached = cache.get(tid)
    if cached is not None:
        return cached
    stack: list[tuple[int, bool]] = [(tid, False)]
    path: list[int] = []  # the ids being computed, outermost first
    on_path: set[int] = set()
    while stack:
        cur, done = stack.pop()
        if cur in cache:
            continue
        t = spec.type_by_id(cur)
        if done:
            path.pop()
            on_path.discard(cur)
            cache[cur] = _align_of(spec, t, cur)
            continue
        if len(path) >= MAX_NESTING:
            raise BTFError(f"{describe(spec.type_by_id(path[0]), path[0])}: types nest more "
                           f"than {MAX_NESTING} deep")
        path.append(cur)
        on_path.add(cur)
        stack.append((cur, True))
        for dep in _align_deps(t):
            if dep in on_path:
                loop = " -> ".join(str(i) for i in path[path.index(dep):] + [dep])
                raise BTFError(f"{describe(spec.type_by_id(dep), dep)} contains itself by "
                               f"value (type ids {loop}): a reference loop")
            if dep not in cache:
                stack.append((dep, False))
    return cache[tid]


def _align_of(spec: Spec, t: Type, tid: int | None) -> int:
    """The alignment of ``t``, once every type it depends on is in the cache."""
    if isinstance(t, (Int, Float, Enum, Enum64)):
        # Scalars are naturally aligned on BPF, __int128 and long double included.
        return max(1, min(t.size, 16))
    if isinstance(t, Ptr):
        return POINTER_SIZE
    if isinstance(t, Array):
        return spec._align_cache[t.elem]
    if isinstance(t, (*MODIFIERS, Var)):
        return spec._align_cache[t.type]
    if isinstance(t, (Struct, Union)):
        natural = _natural_align(spec, t)
        return 1 if _packed(spec, t, natural) else natural
    raise BTFError(f"{describe(t, tid)} has no alignment")


def _natural_align(spec: Spec, t: Struct | Union) -> int:
    return max((_align_id(spec, m.type) for m in t.members), default=1)


def _packed(spec: Spec, t: Struct | Union, natural: int) -> bool:
    # A C compiler places each member at the next multiple of its alignment and rounds the
    # size up to the largest alignment; BTF that breaks either rule came from a packed type.
    if t.size % natural:
        return True
    for m in t.members:
        if not bitfield_bits(spec, m) and m.bit_offset % (8 * _align_id(spec, m.type)):
            return True
    return False


def is_packed(spec: Spec, t: Type) -> bool:
    """Whether a struct/union's BTF layout needs ``__attribute__((packed))``."""
    if not isinstance(t, (Struct, Union)):
        return False
    return _packed(spec, t, _natural_align(spec, t))


def bitfield_bits(spec: Spec, m: Member) -> int:
    """A member's bitfield width, or 0 if it is not a bitfield.

    Structs with kind_flag set record the width in the member; older BTF instead points
    the member at an INT whose ``bits`` are fewer than its size.
    """
    if m.bitfield_size:
        return m.bitfield_size
    t = spec.type_by_id(m.type)
    if isinstance(t, Int) and (t.bits != 8 * t.size or t.offset):
        return t.bits
    return 0


def field(spec: Spec, t: TypeRef, path: str) -> Member:
    """The member at dotted ``path``, with its bit offset counted from the start of ``t``."""
    cur: TypeRef = t
    total = 0
    hit: Member | None = None
    for part in path.split("."):
        comp = spec.resolve(cur)
        if isinstance(comp, Var):
            comp = spec.resolve(comp.type)
        if not isinstance(comp, (Struct, Union)):
            raise BTFError(f"cannot look up member {part!r} of path {path!r}: {describe(comp)} "
                           "is not a struct or union")
        found = _find_member(spec, comp, part, 0)
        if found is None:
            raise BTFNotFoundError(f"{describe(comp)} has no member {part!r}")
        hit, off = found
        total += off
        cur = hit.type
    assert hit is not None
    return Member(hit.name, hit.type, total, hit.bitfield_size)


def _find_member(spec: Spec, comp: Struct | Union, name: str,
                 depth: int) -> tuple[Member, int] | None:
    # Members of an anonymous struct/union member belong to the enclosing scope in C.
    if depth > MAX_NESTING:
        raise BTFError(f"{describe(comp)}: anonymous members nest more than {MAX_NESTING} deep")
    for m in comp.members:
        if m.name == name:
            return m, m.bit_offset
        if not m.name:
            inner = spec.resolve(m.type)
            if isinstance(inner, (Struct, Union)):
                found = _find_member(spec, inner, name, depth + 1)
                if found is not None:
                    return found[0], m.bit_offset + found[1]
    return None
