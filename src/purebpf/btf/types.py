"""The BTF type model: one frozen dataclass per BTF kind, referring to other types by id."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, TypeAlias


class Kind(enum.IntEnum):
    """BTF kind numbers, as stored in bits 24-28 of ``btf_type.info``."""

    VOID = 0  # "BTF_KIND_UNKN": only ever type id 0, never encoded
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(enum.IntFlag):
    """The BTF_INT_ENCODING bits of an INT: at most one is set in valid BTF."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class FuncLinkage(enum.IntEnum):
    """Linkage of a FUNC (stored in its vlen field)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(enum.IntEnum):
    """Linkage of a VAR (the ``btf_var`` word after it)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


@dataclass(frozen=True, slots=True)
class Void:
    """Type id 0: ``void``, or "no type" where an id is optional."""

    kind: ClassVar[Kind] = Kind.VOID
    name: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Int:
    """An integer: ``bits`` value bits starting ``offset`` bits into ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.INT
    name: str
    size: int
    encoding: IntEncoding
    bits: int
    offset: int = 0

    @property
    def signed(self) -> bool:
        """Whether the SIGNED encoding bit is set."""
        return bool(self.encoding & IntEncoding.SIGNED)


@dataclass(frozen=True, slots=True)
class Ptr:
    """A pointer to ``target`` (always 8 bytes for BPF)."""

    kind: ClassVar[Kind] = Kind.PTR
    name: ClassVar[str] = ""
    target: int


@dataclass(frozen=True, slots=True)
class Array:
    """``nelems`` elements of type ``elem``; ``index`` is the (int) index type."""

    kind: ClassVar[Kind] = Kind.ARRAY
    name: ClassVar[str] = ""
    elem: int
    index: int
    nelems: int


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; ``bitfield_size`` is 0 unless it is a bitfield."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class _Composite:
    """Shared shape of STRUCT and UNION."""

    name: str
    size: int
    members: tuple[Member, ...] = ()

    def member(self, name: str) -> Member:
        """The direct member called ``name`` (see ``Spec.field`` for nested lookups)."""
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Struct(_Composite):
    """A struct of ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.STRUCT


@dataclass(frozen=True, slots=True)
class Union(_Composite):
    """A union of ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.UNION


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum:
    """An enum of ``size`` bytes whose values fit 32 bits (kind_flag = signed)."""

    kind: ClassVar[Kind] = Kind.ENUM
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...] = ()


@dataclass(frozen=True, slots=True)
class Enum64:
    """An enum whose values need 64 bits (kind_flag = signed)."""

    kind: ClassVar[Kind] = Kind.ENUM64
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...] = ()


@dataclass(frozen=True, slots=True)
class Fwd:
    """A forward declaration of a struct (or, with ``union``, a union)."""

    kind: ClassVar[Kind] = Kind.FWD
    name: str
    union: bool = False


@dataclass(frozen=True, slots=True)
class Typedef:
    """``typedef <type> name``."""

    kind: ClassVar[Kind] = Kind.TYPEDEF
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Volatile:
    """The ``volatile`` qualifier on ``type``."""

    kind: ClassVar[Kind] = Kind.VOLATILE
    name: ClassVar[str] = ""
    type: int


@dataclass(frozen=True, slots=True)
class Const:
    """The ``const`` qualifier on ``type``."""

    kind: ClassVar[Kind] = Kind.CONST
    name: ClassVar[str] = ""
    type: int


@dataclass(frozen=True, slots=True)
class Restrict:
    """The ``restrict`` qualifier on ``type``."""

    kind: ClassVar[Kind] = Kind.RESTRICT
    name: ClassVar[str] = ""
    type: int


@dataclass(frozen=True, slots=True)
class Func:
    """A function (or subprogram) whose signature is the FUNC_PROTO ``proto``."""

    kind: ClassVar[Kind] = Kind.FUNC
    name: str
    proto: int
    linkage: FuncLinkage = FuncLinkage.STATIC


@dataclass(frozen=True, slots=True)
class Param:
    """A FUNC_PROTO parameter; a last ``Param("", 0)`` stands for ``...``."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto:
    """A function signature: return type ``ret`` (0 = void) and parameters."""

    kind: ClassVar[Kind] = Kind.FUNC_PROTO
    name: ClassVar[str] = ""
    ret: int
    params: tuple[Param, ...] = ()

    @property
    def variadic(self) -> bool:
        """Whether the prototype ends in ``...``."""
        return bool(self.params) and self.params[-1].type == 0


@dataclass(frozen=True, slots=True)
class Var:
    """A global or static variable."""

    kind: ClassVar[Kind] = Kind.VAR
    name: str
    type: int
    linkage: VarLinkage = VarLinkage.STATIC


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """Where the VAR (or extern FUNC) ``type`` lives inside a DATASEC."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec:
    """An ELF data section (.data, .bss, .rodata, .maps, .ksyms...) and its variables."""

    kind: ClassVar[Kind] = Kind.DATASEC
    name: str
    size: int
    vars: tuple[VarSecinfo, ...] = ()


@dataclass(frozen=True, slots=True)
class Float:
    """A floating point type of ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.FLOAT
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class DeclTag:
    """``__attribute__((btf_decl_tag(name)))`` on ``target`` or, if ``component_idx``
    is not -1, on that member / parameter of it; ``attr`` is the kind_flag variant."""

    kind: ClassVar[Kind] = Kind.DECL_TAG
    name: str
    target: int
    component_idx: int = -1
    attr: bool = False


@dataclass(frozen=True, slots=True)
class TypeTag:
    """``__attribute__((btf_type_tag(name)))`` on ``type``; ``attr`` is the kind_flag."""

    kind: ClassVar[Kind] = Kind.TYPE_TAG
    name: str
    type: int
    attr: bool = False


Type: TypeAlias = (
    Void | Int | Ptr | Array | Struct | Union | Enum | Fwd | Typedef | Volatile | Const
    | Restrict | Func | FuncProto | Var | Datasec | Float | DeclTag | TypeTag | Enum64
)
"""Any BTF type."""

VOID = Void()
"""The one instance of type id 0."""

QUALIFIERS = (Const, Volatile, Restrict)
"""Kinds that only qualify another type."""

MODIFIERS = (Typedef, Const, Volatile, Restrict, TypeTag)
"""Kinds that ``Spec.resolve`` looks through."""

CLASS_OF_KIND: dict[Kind, type] = {
    cls.kind: cls
    for cls in (Void, Int, Ptr, Array, Struct, Union, Enum, Fwd, Typedef, Volatile, Const,
                Restrict, Func, FuncProto, Var, Datasec, Float, DeclTag, TypeTag, Enum64)
}
"""The dataclass for each kind."""


def refs(t: Type) -> tuple[int, ...]:
    """The type ids that ``t`` refers to, in encoding order (0 = void included)."""
    if isinstance(t, (Void, Int, Float, Enum, Enum64, Fwd)):
        return ()
    if isinstance(t, Ptr):
        return (t.target,)
    if isinstance(t, Array):
        return (t.elem, t.index)
    if isinstance(t, (Struct, Union)):
        return tuple(m.type for m in t.members)
    if isinstance(t, Func):
        return (t.proto,)
    if isinstance(t, FuncProto):
        return (t.ret, *(p.type for p in t.params))
    if isinstance(t, Datasec):
        return tuple(v.type for v in t.vars)
    if isinstance(t, DeclTag):
        return (t.target,)
    return (t.type,)  # Typedef, qualifiers, Var, TypeTag
