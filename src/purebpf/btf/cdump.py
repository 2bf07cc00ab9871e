"""Dumping a whole spec as a C header (vmlinux.h style), types in dependency order."""

from __future__ import annotations

from . import layout
from ._wire import MAX_RESOLVE_DEPTH
from .cdecl import CRenderer
from .errors import BTFError
from .spec import Spec
from .types import (
    Array, Enum, Enum64, FuncProto, Fwd, Ptr, Struct, Type, Typedef, TypeTag, Union, refs,
)
from .types import QUALIFIERS as _QUALIFIERS

# Definitions that must come before a definition, before that one, ...: deeper than this
# is malformed BTF (the running kernel's deepest chain is about 30).
_MAX_DEPTH = 128


def dump_c(spec: Spec, *, guard: str | None = "__VMLINUX_H__", type_tags: bool = False,
           preserve_access_index: bool = True) -> str:
    """Every named struct, union, enum and typedef (and unreferenced anonymous enums)
    of ``spec``, base included, as C that compiles on its own.

    A type is defined before anything that embeds it by value; a struct only reached
    through pointers before its definition gets a forward declaration. Clashing names
    are made unique with a ``___N`` suffix. ``guard`` wraps the text in an include
    guard; ``preserve_access_index`` adds the clang pragma that makes every struct a
    CO-RE relocatable one, as libbpf programs expect of vmlinux.h.

    Raises ``BTFError`` for BTF that no C can express (a struct that contains itself, a
    typedef of itself) or that is malformed, naming the type ids at fault.
    """
    body = _Dumper(spec, type_tags=type_tags).run()
    parts = []
    if guard:
        parts.append(f"#ifndef {guard}\n#define {guard}\n\n")
    if preserve_access_index:
        parts.append("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute push "
                     "(__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n")
    parts.append(body)
    if preserve_access_index:
        parts.append("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n")
    if guard:
        parts.append(f"#endif /* {guard} */\n")
    return "".join(parts)


class _Dumper(CRenderer):
    """Walks the spec once, emitting each type after what it depends on."""

    def __init__(self, spec: Spec, *, type_tags: bool) -> None:
        self.types = list(spec.items(include_base=True))
        # Inline anonymous bodies may repeat (dedup shares them), but not beyond a few
        # times the members there are.
        members = sum(len(t.members) for _, t in self.types if isinstance(t, (Struct, Union)))
        super().__init__(spec, type_tags=type_tags, max_inline=max(1 << 16, 4 * members))
        self.out: list[str] = []
        self.names: dict[int, str] = {}
        self.counts: dict[tuple[str, str], int] = {}  # (namespace, name) -> uses so far
        self.enumerators: dict[tuple[int, int], str] = {}
        self.defined: set[int] = set()  # structs, unions, enums and typedefs emitted
        self.in_progress: dict[int, None] = {}  # definitions being prepared, in order
        self.protos_done: set[int] = set()
        self.depth = 0
        self.declared: set[str] = set()  # "struct foo" forward declarations emitted
        self.anon_done: set[int] = set()
        self.anon_enums: set[int] = set()  # anonymous enums defined once already
        self._assign_names()

    # -- names ---------------------------------------------------------------------------

    def _unique(self, namespace: str, name: str) -> str:
        # C has one namespace for struct/union/enum tags and one for typedefs,
        # enumerators and the like; a second use of a name there gets a ___N suffix.
        n = self.counts[namespace, name] = self.counts.get((namespace, name), 0) + 1
        return name if n == 1 else f"{name}___{n}"

    def _assign_names(self) -> None:
        first: dict[tuple[str, bool], str] = {}
        for tid, t in self.types:
            if isinstance(t, (Struct, Union, Enum, Enum64)) and t.name:
                self.names[tid] = self._unique("tag", t.name)
                if isinstance(t, (Struct, Union)):
                    first.setdefault((t.name, isinstance(t, Union)), self.names[tid])
            elif isinstance(t, Typedef):
                self.names[tid] = self._unique("ordinary", t.name)
                if t.name.startswith("__builtin_"):
                    # Compilers predefine these (__builtin_va_list): use theirs.
                    self.defined.add(tid)
        for tid, t in self.types:
            # A forward declaration names the same struct as a definition of that name.
            if isinstance(t, Fwd):
                self.names[tid] = first.get((t.name, t.union)) or self._unique("tag", t.name)

    def type_name(self, tid: int, t: Type) -> str:
        return self.names.get(tid, t.name)

    def enumerator(self, tid: int, index: int, name: str) -> str:
        key = (tid, index)
        if key not in self.enumerators:
            self.enumerators[key] = self._unique("ordinary", name)
        return self.enumerators[key]

    def anon_enum_inline(self, tid: int) -> bool:
        # An anonymous enum defined twice would define its enumerators twice.
        if tid in self.anon_enums:
            return False
        self.anon_enums.add(tid)
        return True

    # -- ordering ------------------------------------------------------------------------

    def run(self) -> str:
        referenced = {r for _, t in self.types for r in refs(t)}
        for tid, t in self.types:
            if isinstance(t, (Struct, Union)) and t.name:
                self._define(tid, t)
            elif isinstance(t, (Enum, Enum64)):
                if t.name:
                    self._enum(tid, t)
                elif tid not in referenced and tid not in self.anon_enums:
                    self.anon_enums.add(tid)
                    self._emit(self.enum_body(tid, t) + ";")
            elif isinstance(t, Typedef):
                self._typedef(tid, t)
            elif isinstance(t, Fwd):
                self._declare(tid, t)
        return "".join(self.out)

    def _emit(self, text: str) -> None:
        self.out.append(text + "\n\n")

    def _require(self, tid: int, complete: bool) -> None:
        """Emit what must precede a use of ``tid``: a full definition if ``complete``
        (used by value), else just a declaration (used through a pointer)."""
        if self.depth >= _MAX_DEPTH:
            t = self.spec.type_by_id(tid)
            raise BTFError(f"{layout.describe(t, tid)}: definitions depend on definitions "
                           f"more than {_MAX_DEPTH} deep")
        self.depth += 1
        try:
            self._require_chain(tid, complete)
        finally:
            self.depth -= 1

    def _require_chain(self, tid: int, complete: bool) -> None:
        for _ in range(MAX_RESOLVE_DEPTH * 2):
            t = self.spec.type_by_id(tid)
            if isinstance(t, Ptr):
                tid, complete = t.target, False
            elif isinstance(t, (*_QUALIFIERS, TypeTag)):
                tid = t.type
            elif isinstance(t, Array):
                tid, complete = t.elem, True  # array elements must be complete types
            elif isinstance(t, FuncProto):
                if tid not in self.protos_done:
                    self.protos_done.add(tid)  # once is enough, and ends loops
                    for r in (t.ret, *(p.type for p in t.params)):
                        self._require(r, False)
                return
            elif isinstance(t, Typedef):
                self._typedef(tid, t)
                if not complete:
                    return
                tid = t.type  # using the typedef by value needs its target complete
            elif isinstance(t, (Struct, Union)):
                if not t.name:
                    self._anon(tid, t)
                elif complete:
                    self._define(tid, t)
                else:
                    self._declare(tid, t)
                return
            elif isinstance(t, (Enum, Enum64)):
                if t.name:
                    self._enum(tid, t)
                return
            elif isinstance(t, Fwd):
                self._declare(tid, t)
                return
            else:
                return

    def _loop(self, tid: int, t: Type, how: str) -> BTFError:
        path = list(self.in_progress)
        loop = " -> ".join(str(i) for i in path[path.index(tid):] + [tid])
        return BTFError(f"{layout.describe(t, tid)} {how} (type ids {loop}): a reference loop "
                        "cannot be written as C")

    def _define(self, tid: int, t: Struct | Union) -> None:
        if tid in self.defined:
            return
        if tid in self.in_progress:
            raise self._loop(tid, t, "contains itself by value")
        self.in_progress[tid] = None
        for m in t.members:
            self._require(m.type, True)
        del self.in_progress[tid]
        self.defined.add(tid)
        self.declared.add(self._tag(tid, t))
        self._emit(self.composite_body(tid, t) + ";")

    def _anon(self, tid: int, t: Struct | Union) -> None:
        # An anonymous struct is defined inline, so what it needs, its user needs.
        if tid not in self.anon_done:
            self.anon_done.add(tid)
            for m in t.members:
                self._require(m.type, True)

    def _declare(self, tid: int, t: Struct | Union | Fwd) -> None:
        tag = self._tag(tid, t)
        if tag not in self.declared:
            self.declared.add(tag)
            self._emit(tag + ";")

    def _tag(self, tid: int, t: Struct | Union | Fwd) -> str:
        union = t.union if isinstance(t, Fwd) else isinstance(t, Union)
        return f"{'union' if union else 'struct'} {self.type_name(tid, t)}"

    def _enum(self, tid: int, t: Enum | Enum64) -> None:
        if tid not in self.defined:
            self.defined.add(tid)
            self._emit(self.enum_body(tid, t) + ";")

    def _typedef(self, tid: int, t: Typedef) -> None:
        if tid in self.defined:
            return
        if tid in self.in_progress:
            raise self._loop(tid, t, "is defined in terms of itself")
        self.in_progress[tid] = None
        self._require(t.type, False)
        del self.in_progress[tid]
        self.defined.add(tid)
        self._emit(f"typedef {self.decl(t.type, self.type_name(tid, t))};")
