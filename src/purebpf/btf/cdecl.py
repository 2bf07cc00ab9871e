"""Rendering single BTF types as C: declarators, struct/union/enum bodies, functions."""

from __future__ import annotations

from . import layout
from .errors import BTFError
from .spec import Spec
from .types import (
    Array, Const, Datasec, DeclTag, Enum, Enum64, Float, Func, FuncLinkage, FuncProto,
    Fwd, Int, Ptr, Restrict, Struct, Type, Typedef, TypeTag, Union, Var, VarLinkage, Void,
    Volatile,
)

_QUALIFIER = {Const: "const", Volatile: "volatile", Restrict: "restrict"}
# GCC machine modes give an enum a size other than int's (1, 2 or 8 bytes).
_ENUM_MODE = {1: "QI", 2: "HI", 8: "DI"}
# Unnamed bitfields used to pad a struct out to the offsets BTF records, widest first.
_PAD_TYPES = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))
_MAX_CHAIN = 64  # pointer/array/qualifier hops in one declarator before we call it a loop


class CRenderer:
    """Turns types of one spec into C text.

    ``dump_c`` subclasses it to rename clashing names; on its own it uses BTF's names.
    """

    def __init__(self, spec: Spec, *, type_tags: bool = False) -> None:
        self.spec = spec
        self.type_tags = type_tags

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
        for _ in range(_MAX_CHAIN):
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
                inner, after_ptr = f"{inner}({self.params(t, indent)})", False
                quals, tags = [], []  # meaningless on function types
                tid = t.ret
            else:
                base = self.base(tid, t, indent)
                text = " ".join([*quals, base, *tags])
                return f"{text} {inner}" if inner else text
        raise BTFError(f"type id {tid}: declarator longer than {_MAX_CHAIN} hops (a loop?)")

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
        tab = "\t" * (indent + 1)
        packed = layout.is_packed(self.spec, t)
        lines: list[str] = []
        pos = 0  # bit position a C compiler would reach after the members so far
        for m in t.members:
            bits = layout.bitfield_bits(self.spec, m)
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
            lines.extend(tab + p for p in _padding(0, 8 * t.size))
        close = "\t" * indent + "}"
        attr = " __attribute__((packed))" if packed else ""
        return head + "{\n" + "\n".join(lines) + "\n" + close + attr

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
        """``enum name { A = 1, ... }``, with a mode attribute for non-int sizes."""
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


def _padding(pos: int, end: int) -> list[str]:
    """Unnamed bitfields that move a struct from bit ``pos`` to bit ``end``.

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
