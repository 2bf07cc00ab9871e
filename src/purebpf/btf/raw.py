"""The raw listing of a BTF type table, one type per entry, as ``bpftool btf dump`` prints
it (text) and as ``bpftool -j btf dump`` does (dicts with bpftool's field names). Pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .spec import Spec
from .types import (
    Array, Datasec, DeclTag, Enum, Enum64, Float, Func, FuncLinkage, FuncProto, Fwd, Int,
    IntEncoding, Ptr, Struct, Type, TypeTag, Union, Var, VarLinkage, Void,
)


def _name(name: str) -> str:
    return name or "(anon)"


def _encoding(t: Int) -> str:
    if t.encoding & IntEncoding.SIGNED:
        return "SIGNED"
    if t.encoding & IntEncoding.CHAR:
        return "CHAR"
    if t.encoding & IntEncoding.BOOL:
        return "BOOL"
    return "(none)"


def _linkage(linkage: FuncLinkage | VarLinkage) -> str:
    return {0: "static", 1: "global", 2: "extern"}.get(int(linkage), str(int(linkage)))


def _enum_value(t: Enum | Enum64, value: int) -> int:
    return value if t.signed else value & ((1 << (64 if isinstance(t, Enum64) else 32)) - 1)


def raw_type(spec: Spec, tid: int, t: Type) -> dict[str, Any]:
    """One type as ``bpftool -j btf dump`` shows it: ``{"id", "kind", "name", ...}``."""
    d: dict[str, Any] = {"id": tid, "kind": t.kind.name, "name": _name(t.name)}
    if isinstance(t, Int):
        d.update(size=t.size, bits_offset=t.offset, nr_bits=t.bits, encoding=_encoding(t))
    elif isinstance(t, Ptr):
        d.update(type_id=t.target)
    elif isinstance(t, Array):
        d.update(type_id=t.elem, index_type_id=t.index, nr_elems=t.nelems)
    elif isinstance(t, (Struct, Union)):
        members = []
        for m in t.members:
            md: dict[str, Any] = {"name": _name(m.name), "type_id": m.type,
                                  "bits_offset": m.bit_offset}
            if m.bitfield_size:
                md["bitfield_size"] = m.bitfield_size
            members.append(md)
        d.update(size=t.size, vlen=len(t.members), members=members)
    elif isinstance(t, (Enum, Enum64)):
        d.update(encoding="SIGNED" if t.signed else "UNSIGNED", size=t.size,
                 vlen=len(t.values),
                 values=[{"name": v.name, "val": _enum_value(t, v.value)} for v in t.values])
    elif isinstance(t, Fwd):
        d.update(fwd_kind="union" if t.union else "struct")
    elif isinstance(t, Func):
        d.update(type_id=t.proto, linkage=_linkage(t.linkage))
    elif isinstance(t, FuncProto):
        d.update(ret_type_id=t.ret, vlen=len(t.params),
                 params=[{"name": _name(p.name), "type_id": p.type} for p in t.params])
    elif isinstance(t, Var):
        d.update(type_id=t.type, linkage=_linkage(t.linkage))
    elif isinstance(t, Datasec):
        d.update(size=t.size, vlen=len(t.vars),
                 vars=[{"type_id": v.type, "offset": v.offset, "size": v.size}
                       for v in t.vars])
    elif isinstance(t, Float):
        d.update(size=t.size)
    elif isinstance(t, DeclTag):
        d.update(type_id=t.target, component_idx=t.component_idx)
    elif isinstance(t, (TypeTag, Void)):
        if isinstance(t, TypeTag):
            d.update(type_id=t.type)
    else:  # Typedef, Volatile, Const, Restrict
        d.update(type_id=t.type)
    return d


def raw_types(spec: Spec) -> list[dict[str, Any]]:
    """Every type of ``spec`` (its own: a split spec leaves out its base) as
    :func:`raw_type` dicts."""
    return [raw_type(spec, tid, t) for tid, t in spec.items()]


def _line(spec: Spec, d: dict[str, Any]) -> Iterator[str]:
    head = f"[{d['id']}] {d['kind']} '{d['name']}'"
    kind = d["kind"]
    if kind == "INT":
        yield (f"{head} size={d['size']} bits_offset={d['bits_offset']} "
               f"nr_bits={d['nr_bits']} encoding={d['encoding']}")
    elif kind in ("STRUCT", "UNION"):
        yield f"{head} size={d['size']} vlen={d['vlen']}"
        for m in d["members"]:
            bf = f" bitfield_size={m['bitfield_size']}" if "bitfield_size" in m else ""
            yield f"\t'{m['name']}' type_id={m['type_id']} bits_offset={m['bits_offset']}{bf}"
    elif kind in ("ENUM", "ENUM64"):
        yield f"{head} encoding={d['encoding']} size={d['size']} vlen={d['vlen']}"
        suffix = "" if kind == "ENUM" else "LL" if d["encoding"] == "SIGNED" else "ULL"
        for v in d["values"]:
            yield f"\t'{v['name']}' val={v['val']}{suffix}"
    elif kind == "ARRAY":
        yield (f"{head} type_id={d['type_id']} index_type_id={d['index_type_id']} "
               f"nr_elems={d['nr_elems']}")
    elif kind == "FWD":
        yield f"{head} fwd_kind={d['fwd_kind']}"
    elif kind == "FUNC":
        yield f"{head} type_id={d['type_id']} linkage={d['linkage']}"
    elif kind == "FUNC_PROTO":
        yield f"{head} ret_type_id={d['ret_type_id']} vlen={d['vlen']}"
        for p in d["params"]:
            yield f"\t'{p['name']}' type_id={p['type_id']}"
    elif kind == "VAR":
        yield f"{head} type_id={d['type_id']}, linkage={d['linkage']}"
    elif kind == "DATASEC":
        yield f"{head} size={d['size']} vlen={d['vlen']}"
        for v in d["vars"]:
            target = spec.type_by_id(v["type_id"])
            yield (f"\ttype_id={v['type_id']} offset={v['offset']} size={v['size']} "
                   f"({target.kind.name} '{_name(target.name)}')")
    elif kind == "FLOAT":
        yield f"{head} size={d['size']}"
    elif kind == "DECL_TAG":
        yield f"{head} type_id={d['type_id']} component_idx={d['component_idx']}"
    elif "type_id" in d:
        yield f"{head} type_id={d['type_id']}"
    else:
        yield head


def iter_raw(spec: Spec) -> Iterator[str]:
    """The lines of :func:`dump_raw`, one type (and its members) at a time."""
    for tid, t in spec.items():
        yield from _line(spec, raw_type(spec, tid, t))


def dump_raw(spec: Spec) -> str:
    """The whole table as ``bpftool btf dump`` prints it: ``[1] INT 'int' size=4 ...``."""
    return "".join(line + "\n" for line in iter_raw(spec))


__all__ = ["dump_raw", "iter_raw", "raw_type", "raw_types"]
