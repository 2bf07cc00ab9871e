"""Maps declared in ``.maps`` (BTF-defined, as libbpf's bpf_helpers.h writes them).

``__uint(name, N)`` is a pointer to an array of N elements, ``__type(name, T)`` a pointer to
T, ``__array(values, T)`` a zero-length array of pointers to T: the loader reads the numbers
back from BTF. Outer maps take their inner template from ``values`` (a named or anonymous
struct), and ``.values = { [i] = &m }`` initialisers arrive as relocations in ``.rel.maps``.
"""

from __future__ import annotations

import errno

from typing import Any

from .. import btf as B
from ..btf.values import BTFValue
from .._spec import MapSpec, check_template
from ..errors import InvalidArgumentError, NotSupportedError
from ..types import MapFlags, MapType
from .reader import ElfObject, Section

_INT_FIELDS = ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size",
               "pinning")


def _fail(name: str, why: str, hint: str = "") -> InvalidArgumentError:
    return InvalidArgumentError(errno.EINVAL, f"map {name!r} in .maps: {why}", hint=hint)


class _Def:
    """One parsed map definition (outer or inner)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ints: dict[str, int] = {}
        self.key: int | None = None
        self.value: int | None = None
        self.map_extra = 0
        self.inner: _Def | None = None
        self.values_offset: int | None = None  # byte offset of the values member
        self.prog_values = False


def _uint(spec: B.Spec, tid: int, name: str, field: str) -> int:
    t = spec.type_by_id(tid)
    if not isinstance(t, B.Ptr):
        raise _fail(name, f"field {field!r} should be __uint(...) (a pointer), found "
                    f"{t.kind.name}")
    arr = spec.type_by_id(t.target)
    if not isinstance(arr, B.Array):
        raise _fail(name, f"field {field!r} should be __uint(...) (pointer to array), found "
                    f"pointer to {arr.kind.name}")
    return arr.nelems


def _ulong(spec: B.Spec, tid: int, name: str) -> int:
    t = spec.resolve(tid)
    if isinstance(t, B.Enum | B.Enum64) and len(t.values) == 1:
        return t.values[0].value
    return _uint(spec, tid, name, "map_extra")


def parse_def(spec: B.Spec, struct_id: int, name: str, *, inner: bool = False) -> _Def:
    """Read a map definition struct (by BTF id) into a _Def."""
    st = spec.resolve(struct_id)
    if not isinstance(st, B.Struct):
        raise _fail(name, f"a map definition must be a struct, found {st.kind.name}")
    d = _Def(name)
    for i, m in enumerate(st.members):
        if m.name in _INT_FIELDS:
            d.ints[m.name] = _uint(spec, m.type, name, m.name)
        elif m.name in ("key", "value"):
            t = spec.type_by_id(m.type)
            if not isinstance(t, B.Ptr):
                raise _fail(name, f"field {m.name!r} should be __type(...) (a pointer)")
            setattr(d, m.name, t.target)
        elif m.name == "map_extra":
            d.map_extra = _ulong(spec, m.type, name)
        elif m.name == "values":
            if inner:
                raise NotSupportedError(errno.EOPNOTSUPP, f"map {name!r} in .maps: an inner "
                                        "map has its own values: multi-level nesting is not "
                                        "supported by the kernel", feature="nested map-in-map")
            if i != len(st.members) - 1:
                raise _fail(name, "'values' must be the last field")
            d.values_offset = m.bit_offset // 8
            arr = spec.type_by_id(m.type)
            if not isinstance(arr, B.Array) or arr.nelems != 0:
                raise _fail(name, "'values' must be __array(values, ...)")
            ptr = spec.resolve(arr.elem)
            if not isinstance(ptr, B.Ptr):
                raise _fail(name, "'values' must be an array of pointers")
            target = spec.resolve(ptr.target)
            if isinstance(target, B.FuncProto):
                d.prog_values = True
            elif isinstance(target, B.Struct):
                d.inner = parse_def(spec, spec.resolve_id(ptr.target), f"{name}.inner",
                                    inner=True)
            else:
                raise _fail(name, f"'values' points to {target.kind.name}; expected a map "
                            "definition struct or a function prototype")
        else:
            raise NotSupportedError(errno.EOPNOTSUPP, f"map {name!r} in .maps: unknown field "
                                    f"{m.name!r}", feature=f"map field {m.name}")
    if "type" not in d.ints:
        raise _fail(name, "the map type isn't specified (__uint(type, BPF_MAP_TYPE_...))")
    if inner and d.ints.get("pinning"):
        raise _fail(name, "an inner map definition cannot be pinned",
                    hint="pin the outer map; inner maps live as long as they are stored in it")
    return d


def _size(spec: B.Spec, tid: int, name: str, what: str) -> int:
    try:
        return spec.sizeof(tid)
    except B.BTFError as exc:
        raise _fail(name, f"can't determine the {what} size ({exc})",
                    hint=f"declare the {what} type completely (not only a forward declaration)"
                    ) from None


def to_spec(spec: B.Spec, d: _Def) -> MapSpec:
    """A MapSpec for a parsed definition (inner definitions become ``MapSpec.inner``)."""
    try:
        mtype = MapType(d.ints["type"])
    except ValueError:
        raise NotSupportedError(errno.EOPNOTSUPP, f"map {d.name!r}: unknown map type "
                                f"{d.ints['type']}", feature=f"map type {d.ints['type']}") \
            from None
    key_size, value_size = d.ints.get("key_size", 0), d.ints.get("value_size", 0)
    if d.key is not None:
        ks = _size(spec, d.key, d.name, "key")
        if key_size and key_size != ks:
            raise _fail(d.name, f"conflicting key size: key_size {key_size}, key type {ks}")
        key_size = ks
    if d.value is not None:
        vs = _size(spec, d.value, d.name, "value")
        if value_size and value_size != vs:
            raise _fail(d.name, f"conflicting value size: value_size {value_size}, value "
                        f"type {vs}")
        value_size = vs
    if d.inner is not None or d.prog_values:
        if value_size not in (0, 4):
            raise _fail(d.name, f"an outer map's values are 4-byte fds; value size is "
                        f"{value_size}")
        value_size = 4
    inner = to_spec(spec, d.inner) if d.inner is not None else None
    out = MapSpec(type=mtype, key_size=key_size, value_size=value_size,
                  max_entries=d.ints.get("max_entries", 0),
                  flags=MapFlags(d.ints.get("map_flags", 0)), name=d.name[:15],
                  inner=inner, numa_node=d.ints.get("numa_node"), map_extra=d.map_extra,
                  pinning=d.ints.get("pinning", 0))
    if out.numa_node is not None and not out.flags & MapFlags.NUMA_NODE:
        out.numa_node = None
    if d.key is not None:
        out.btf_key_type_id = d.key
        out.key_type = python_type(spec, d.key)
    if d.value is not None:
        out.btf_value_type_id = d.value
        if inner is None and not d.prog_values:
            out.value_type = python_type(spec, d.value)
    if inner is not None:
        check_template(inner, f"map {d.name!r} in .maps")
    return out


_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


def python_type(spec: B.Spec, tid: int) -> Any:
    """How elements of BTF type ``tid`` decode: a struct format for integers (and enums),
    so they decode to ints; a BTFValue for structs, unions and arrays (dicts and lists)."""
    t = spec.resolve(tid)
    if isinstance(t, B.Int) and t.size in _INT_FORMATS and not t.bits % 8 and not t.offset:
        fmt = _INT_FORMATS[t.size]
        return "=" + (fmt if t.encoding & B.IntEncoding.SIGNED else fmt.upper())
    if isinstance(t, B.Enum | B.Enum64) and t.size in _INT_FORMATS:
        fmt = _INT_FORMATS[t.size]
        return "=" + (fmt if t.signed else fmt.upper())
    if isinstance(t, B.Struct | B.Union | B.Array):
        return BTFValue(spec, tid)
    return None


def read_maps(obj: ElfObject, spec: B.Spec, maps_sec: Section) -> dict[str, MapSpec]:
    """Every map in ``.maps``, in section order, with initial slots for outer maps."""
    ds = next((t for t in spec.types if isinstance(t, B.Datasec) and t.name == ".maps"), None)
    if ds is None:
        raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: .maps has no BTF DATASEC",
                                   hint="compile with -g so clang emits BTF")
    syms = {s.name: s for s in obj.symbols if s.section == maps_sec.index}
    out: dict[str, MapSpec] = {}
    defs: dict[str, tuple[_Def, int, int]] = {}
    order = []
    for vsi in ds.vars:
        var = spec.type_by_id(vsi.type)
        if not isinstance(var, B.Var):
            continue
        if var.linkage != B.VarLinkage.GLOBAL:
            raise _fail(var.name, "map definitions must be global variables (not static, "
                        "not extern)")
        sym = syms.get(var.name)
        if sym is None:
            raise _fail(var.name, "no ELF symbol for this map")
        order.append((sym.value, var.name, var.type, sym.size))
    for offset, name, tid, size in sorted(order):
        d = parse_def(spec, tid, name)
        ms = to_spec(spec, d)
        ms.btf = spec
        if ms.inner is not None:
            ms.inner.btf = spec
        out[name] = ms
        defs[name] = (d, offset, max(size, spec.sizeof(tid)))
    _read_slots(obj, maps_sec, out, defs)
    return out


def _read_slots(obj: ElfObject, maps_sec: Section, out: dict[str, MapSpec],
                defs: dict[str, tuple[_Def, int, int]]) -> None:
    for rel in obj.relocations.get(maps_sec.index, []):
        owner = next((n for n, (_, off, size) in defs.items() if off <= rel.offset < off + size),
                     None)
        if owner is None:
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: relocation at "
                                       f"{rel.offset} in .maps belongs to no map")
        d, off, _ = defs[owner]
        ms = out[owner]
        if d.values_offset is None:
            raise _fail(owner, "has initial values but no 'values' field")
        moff = rel.offset - off - d.values_offset
        if moff < 0 or moff % 8:
            raise _fail(owner, f"initial value at offset {moff} is not a pointer slot")
        slot = moff // 8
        target = rel.symbol.name
        if d.prog_values:
            ms.contents.append((slot, target))
            continue
        if rel.symbol.section != maps_sec.index or target not in out:
            raise _fail(owner, f"slot [{slot}] points to {target!r}, which is not a map in "
                        ".maps")
        if ms.type == MapType.HASH_OF_MAPS and d.key is not None and \
                not isinstance(ms.key_type, str):
            raise _fail(owner, f"slot [{slot}] is initialised in C, but the key type is not "
                        "an integer: the slot index would be the key",
                        hint="use an integer key (__u32, __u64) for declared slots")
        if slot >= ms.max_entries and ms.type == MapType.ARRAY_OF_MAPS:
            raise _fail(owner, f"slot [{slot}] is past max_entries {ms.max_entries}")
        ms.contents.append((slot, target))


def data_map_name(obj_name: str, section: str) -> str:
    """Kernel name for a global-data section's map: as much of the object name as fits
    before the section name, within the kernel's 15 characters (``globals.rodata``)."""
    room = 15 - len(section)
    clean = "".join(c if c.isalnum() or c == "_" else "_" for c in obj_name)
    name = (clean[:room] if room > 0 else "") + section
    return name[:15] if len(name) > 15 else name
