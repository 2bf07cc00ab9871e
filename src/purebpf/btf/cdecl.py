"""Rendering single BTF types as C: declarators, struct/union/enum bodies, functions."""

from __future__ import annotations

from . import layout
from .errors import BTFError
from .spec import Spec
from .types import (
    Array, Const, Datasec, DeclTag, Enum, Enum64, Float, Func, FuncLinkage, FuncProto,
    Fwd, Int, Member, Ptr, Restrict, Struct, Type, Typedef, TypeTag, Union, Var, VarLinkage,
    Void, Volatile,
)

_QUALIFIER = {Const: "const", Volatile: "volatile", Restrict: "restrict"}
# GCC machine modes give an enum a size other than int's (1, 2 or 8 bytes).
_ENUM_MODE = {1: "QI", 2: "HI", 8: "DI"}
# Unnamed bitfields used to pad a struct out to the offsets BTF records, widest first.
_PAD_TYPES = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))
_MAX_CHAIN = 64  # pointer/array/qualifier hops in one declarator before we call it a loop
# Prototypes inside parameter lists and anonymous types inside anonymous types: deeper
# nesting than this is malformed BTF (the running kernel's deepest is under 10).
_MAX_NESTING = 64
# Members of anonymous structs/unions written inline by one renderer: BTF that shares
# anonymous types between many users could otherwise ask for exponentially long text.
_MAX_INLINE = 1 << 16
# Gaps longer than this many bytes become one char array instead of a run of bitfields.
_MAX_PAD_BITFIELD_BYTES = 64


class CRenderer:
    """Turns types of one spec into C text.

    ``dump_c`` subclasses it to rename clashing names; on its own it uses BTF's names.
    """

    def __init__(self, spec: Spec, *, type_tags: bool = False,
                 max_inline: int = _MAX_INLINE) -> None:
        self.spec = spec
        self.type_tags = type_tags
        self.max_inline = max_inline
        self._open: list[int] = []  # prototypes and anonymous bodies being written
        self._inlined = 0  # members written inside anonymous bodies so far

    def _enter(self, tid: int, t: Type) -> None:
        """Start writing the body or parameters of ``tid``, refusing loops."""
        if tid in self._open:
            loop = " -> ".join(str(i) for i in self._open[self._open.index(tid):] + [tid])
            raise BTFError(f"{layout.describe(t, tid)} refers to itself (type ids {loop}): "
                           "a reference loop cannot be written as C")
        if len(self._open) >= _MAX_NESTING:
            raise BTFError(f"{layout.describe(t, tid)}: prototypes and anonymous types nest "
                           f"more than {_MAX_NESTING} deep")
        self._open.append(tid)

    # -- hooks for the whole-spec dumper ------------------------------------------------

    def type_name(self, tid: int, t: Type) -> str:
        """The C name of a named struct/union/enum/fwd/typedef."""
        return t.name

    def enumerator(self, tid: int, index: int, name: str) -> str:
        """The C name of an enumerator."""
        return name

    def anon_enum_inline(self, tid: int) -> bool:
        """Whether an anonymous enum may be defined inline here (a dump does it once)."""
        return True

    # -- declarations --------------------------------------------------------------------

    def decl(self, tid: int, declarator: str = "", indent: int = 0) -> str:
        """A C declaration of ``declarator`` (a name, or "" for a type name) of type ``tid``."""
        inner, quals, tags, after_ptr = declarator, [], [], False
        start, seen = tid, set[int]()
        for _ in range(_MAX_CHAIN):
            if tid in seen:
                t = self.spec.type_by_id(start)
                raise BTFError(f"{layout.describe(t, start)}: its declarator comes back to "
                               f"type id {tid}: a reference loop cannot be written as C")
            seen.add(tid)
            t = self.spec.type_by_id(tid)
            word = _QUALIFIER.get(type(t))
            if word is not None:
                if word not in quals:  # "const const" is legal BTF but warns in C
                    quals.append(word)
                tid = t.type  # type: ignore[union-attr]
            elif isinstance(t, TypeTag):
                if self.type_tags:
                    tags.append(f'__attribute__((btf_type_tag("{t.name}")))')
                tid = t.type
            elif isinstance(t, Ptr):
                # Qualifiers seen so far belong to the pointer itself: "int *const p".
                mods = " ".join(tags + quals)
                inner = f"*{mods} {inner}".rstrip() if mods else f"*{inner}"
                quals, tags, after_ptr = [], [], True
                tid = t.target
            elif isinstance(t, Array):
                # Qualifiers on an array type apply to its elements, so they carry on down.
                inner = f"({inner})" if after_ptr else inner
                inner, after_ptr = f"{inner}[{t.nelems}]", False
                tid = t.elem
            elif isinstance(t, FuncProto):
                inner = f"({inner})" if after_ptr else inner
                self._enter(tid, t)
                try:
                    params = self.params(t, indent)
                finally:
                    self._open.pop()
                inner, after_ptr = f"{inner}({params})", False
                quals, tags = [], []  # meaningless on function types
                tid = t.ret
            else:
                base = self.base(tid, t, indent)
                text = " ".join([*quals, base, *tags])
                return f"{text} {inner}" if inner else text
        raise BTFError(f"type id {start}: more than {_MAX_CHAIN} pointer/array/qualifier hops "
                       f"(a reference loop through type id {tid}?)")

    def params(self, proto: FuncProto, indent: int = 0) -> str:
        """The parameter list of a prototype, without parentheses."""
        if not proto.params:
            return "void"
        out = []
        for i, p in enumerate(proto.params):
            if p.type == 0 and i == len(proto.params) - 1:
                out.append("...")
            else:
                out.append(self.decl(p.type, p.name, indent))
        return ", ".join(out)

    def base(self, tid: int, t: Type, indent: int) -> str:
        """The type specifier for a type that ends a declarator chain."""
        if isinstance(t, (Int, Float)):
            return t.name
        if isinstance(t, Void):
            return "void"
        if isinstance(t, (Struct, Union)):
            kw = "struct" if isinstance(t, Struct) else "union"
            if t.name:
                return f"{kw} {self.type_name(tid, t)}"
            return self.composite_body(tid, t, indent)
        if isinstance(t, (Enum, Enum64)):
            if t.name:
                return f"enum {self.type_name(tid, t)}"
            if not self.anon_enum_inline(tid):
                return _enum_int(t)
            return self.enum_body(tid, t, indent)
        if isinstance(t, Fwd):
            return f"{'union' if t.union else 'struct'} {self.type_name(tid, t)}"
        if isinstance(t, Typedef):
            return self.type_name(tid, t)
        raise BTFError(f"{layout.describe(t, tid)} cannot be used as a C type")

    # -- bodies --------------------------------------------------------------------------

    def composite_body(self, tid: int, t: Struct | Union, indent: int = 0) -> str:
        """``struct name { ... } [packed]``: members, bitfields and explicit padding."""
        kw = "struct" if isinstance(t, Struct) else "union"
        head = f"{kw} {self.type_name(tid, t)} " if t.name else f"{kw} "
        if not t.members and t.size == 0:
            return head + "{}"
        if not t.name:
            self._inlined += len(t.members)
            if self._inlined > self.max_inline:
                raise BTFError(f"{layout.describe(t, tid)}: anonymous types written inline "
                               f"would take more than {self.max_inline} members (anonymous "
                               "types shared by many users?)")
        self._enter(tid, t)
        try:
            return head + self._members(tid, t, indent)
        finally:
            self._open.pop()

    def _members(self, tid: int, t: Struct | Union, indent: int) -> str:
        """The braces and members of a struct/union body, and its packed attribute."""
        tab = "\t" * (indent + 1)
        packed = layout.is_packed(self.spec, t)
        lines: list[str] = []
        pos = 0  # bit position a C compiler would reach after the members so far
        for i, m in enumerate(t.members):
            bits = layout.bitfield_bits(self.spec, m)
            if bits:
                self._check_bitfield(tid, t, i, m, bits)
            offset = m.bit_offset + self._int_offset(m.type, m.bitfield_size)
            if isinstance(t, Struct):
                if offset > self._natural(pos, m.type, bits, packed):
                    lines.extend(tab + p for p in _padding(pos, offset))
                pos = offset + (bits or 8 * self.spec.sizeof(m.type))
            text = self.decl(m.type, m.name, indent + 1)
            lines.append(f"{tab}{text}: {bits};" if bits else f"{tab}{text};")
        if isinstance(t, Struct) and t.members:
            align = self.spec.alignof(tid)  # 1 when packed
            end = -(-pos // (8 * align)) * 8 * align
            if 8 * t.size > end:
                lines.extend(tab + p for p in _padding(pos, 8 * t.size))
        elif not t.members:
            # In a union every member starts at 0: only one array gives it its size.
            lines.extend(tab + p for p in _padding(0, 8 * t.size, union=isinstance(t, Union)))
        close = "\t" * indent + "}"
        attr = " __attribute__((packed))" if packed else ""
        return "{\n" + "\n".join(lines) + "\n" + close + attr

    def _check_bitfield(self, tid: int, t: Struct | Union, index: int, m: Member,
                        bits: int) -> None:
        """Refuse a bitfield C cannot declare: on a type of no size, or wider than it."""
        size = self.spec.sizeof(m.type)
        if not 0 < bits <= 8 * size:
            what = f"member {index} ({m.name!r})" if m.name else f"member {index}"
            target = layout.describe(self.spec.type_by_id(m.type), m.type)
            raise BTFError(f"{layout.describe(t, tid)}: {what} is a {bits}-bit bitfield of "
                           f"{target}, which is {size} bytes")

    def _int_offset(self, tid: int, bitfield_size: int) -> int:
        # BTF without kind_flag may place a bitfield with the INT's own bit offset.
        if bitfield_size:
            return 0
        t = self.spec.type_by_id(tid)
        return t.offset if isinstance(t, Int) else 0

    def _natural(self, pos: int, tid: int, bits: int, packed: bool) -> int:
        """Where a C compiler would put this member after ``pos`` bits of struct."""
        if bits:
            unit = 8 * self.spec.sizeof(tid)
            if packed or pos // unit == (pos + bits - 1) // unit:
                return pos
            return -(-pos // unit) * unit
        align = 8 * (1 if packed else self.spec.alignof(tid))
        return -(-pos // align) * align

    def enum_body(self, tid: int, t: Enum | Enum64, indent: int = 0) -> str:
        """``enum name { A = 1, ... }``, with a mode attribute for non-int sizes; a named
        enum without values is the forward declaration ``enum name`` (``enum name {}`` is
        not C: kernels have such enums in their BTF, and bpftool writes them this way too)."""
        if t.name and not t.values:
            return f"enum {self.type_name(tid, t)}"
        head = f"enum {self.type_name(tid, t)} " if t.name else "enum "
        tab = "\t" * (indent + 1)
        lines = [f"{tab}{self.enumerator(tid, i, v.name)} = {_literal(v.value)},"
                 for i, v in enumerate(t.values)]
        body = head + "{\n" + "\n".join(lines) + "\n" + "\t" * indent + "}"
        mode = _ENUM_MODE.get(t.size)
        if mode and not (isinstance(t, Enum64) and t.size == 8):
            body += f" __attribute__((mode({mode})))"
        return body

    # -- whole types ---------------------------------------------------------------------

    def render(self, tid: int) -> str:
        """C text for type ``tid`` on its own: a definition, declaration or comment."""
        t = self.spec.type_by_id(tid)
        if isinstance(t, (Struct, Union)):
            return self.composite_body(tid, t) + ";"
        if isinstance(t, (Enum, Enum64)):
            return self.enum_body(tid, t) + ";"
        if isinstance(t, Fwd):
            return self.base(tid, t, 0) + ";"
        if isinstance(t, Typedef):
            return f"typedef {self.decl(t.type, self.type_name(tid, t))};"
        if isinstance(t, Func):
            proto = self.spec.type_by_id(t.proto)
            if not isinstance(proto, FuncProto):
                raise BTFError(f"type id {tid} (FUNC '{t.name}'): type id {t.proto} is not a "
                               "FUNC_PROTO")
            storage = {FuncLinkage.STATIC: "static ", FuncLinkage.EXTERN: "extern "}
            return storage.get(t.linkage, "") + self.decl(t.proto, t.name) + ";"
        if isinstance(t, Var):
            var_storage = {VarLinkage.STATIC: "static ", VarLinkage.EXTERN: "extern "}
            return var_storage.get(t.linkage, "") + self.decl(t.type, t.name) + ";"
        if isinstance(t, Datasec):
            names = ", ".join(self.spec.type_by_id(v.type).name for v in t.vars)
            return f"/* section {t.name} ({t.size} bytes): {names} */"
        if isinstance(t, DeclTag):
            target = self.spec.type_by_id(t.target).name or f"type id {t.target}"
            where = f", component {t.component_idx}" if t.component_idx >= 0 else ""
            return f'/* btf_decl_tag("{t.name}") on {target}{where} */'
        if isinstance(t, Void):
            return "void;"
        return self.decl(tid) + ";"


def _enum_int(t: Enum | Enum64) -> str:
    """An integer type as wide as an enum, for an anonymous enum already defined once."""
    unsigned = not t.signed and any(v.value >= 1 << (8 * t.size - 1) for v in t.values)
    base = {1: "char", 2: "short", 4: "int", 8: "long long"}.get(t.size, "int")
    return f"unsigned {base}" if unsigned else ("signed char" if base == "char" else base)


def _literal(value: int) -> str:
    # Values past long long's range need a suffix; its minimum has no literal of its own.
    if value == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    if value >= 1 << 63:
        return f"{value}ULL"
    if value >= 1 << 32 or value < -(1 << 31):
        return f"{value}LL"
    return str(value)


def _padding(pos: int, end: int, *, union: bool = False) -> list[str]:
    """Unnamed members that move a struct from bit ``pos`` to bit ``end``.

    A long gap (and any padding of a union, whose members all start at 0) is one char
    array, so the text stays short whatever size the BTF claims; the rest are bitfields.
    """
    first, last = -(-pos // 8), end // 8  # the whole bytes inside the gap
    if last > first and (union or last - first > _MAX_PAD_BITFIELD_BYTES):
        return [*_bitfields(pos, 8 * first), f"char __pad_{first}[{last - first}];",
                *_bitfields(8 * last, end)]
    return _bitfields(pos, end)


def _bitfields(pos: int, end: int) -> list[str]:
    """Unnamed bitfields from bit ``pos`` to bit ``end``.

    Each one sits inside a single storage unit of its type, so the compiler places it
    exactly where it begins.
    """
    out = []
    while pos < end:
        for width, ctype in _PAD_TYPES:
            if pos % width == 0 and end - pos >= width:
                out.append(f"{ctype}: {width};")
                pos += width
                break
        else:
            bits = min(end - pos, 8 - pos % 8)
            out.append(f"char: {bits};")
            pos += bits
    return out


def format_decl(spec: Spec, tid: int, name: str = "") -> str:
    """C declaration of ``name`` with type ``tid`` (``int (*name)[4]``), no semicolon."""
    return CRenderer(spec).decl(tid, name)


def format_type(spec: Spec, tid: int) -> str:
    """C text for one type: ``struct foo {...};``, ``typedef ...;``, ``int f(int a);``."""
    return CRenderer(spec).render(tid)
