"""``extern ... __kconfig`` variables: found in the object's BTF, laid out in a ``.kconfig``
data map. Pure: the values come from the running kernel at load time (purebpf._kconfig).

Clang leaves an extern undefined in the ELF symbol table and lists it as a VAR of extern
linkage in a ``.kconfig`` DATASEC of size 0. As libbpf does, the loader lays the externs
out itself (by alignment, largest first, then by size, then by name), rewrites that DATASEC
with their offsets and size (and the VARs as allocated globals, which the kernel accepts),
and points every ld_imm64 of an extern at its offset in the map.
"""

from __future__ import annotations

import errno

from .. import btf as B
from .._spec import KconfigExtern, MapSpec
from ..errors import InvalidArgumentError, NotSupportedError
from ..types import MapFlags, MapType
from .maps import data_map_name
from .reader import ElfObject

KCONFIG = ".kconfig"
KSYMS = ".ksyms"


def extern_sections(spec: B.Spec | None) -> dict[str, str]:
    """Extern name -> the DATASEC (``.kconfig``, ``.ksyms``) that declares it."""
    out: dict[str, str] = {}
    if spec is None:
        return out
    for _, t in spec.items():
        if isinstance(t, B.Datasec) and t.name in (KCONFIG, KSYMS):
            for v in t.vars:
                out[spec.type_by_id(v.type).name] = t.name
    return out


def _describe(spec: B.Spec, name: str, tid: int) -> tuple[str, str, bool, int]:
    """(kind, C spelling, signed, alignment) of an extern's type, by libbpf's rules."""
    t = spec.resolve(tid)  # through typedefs and const/volatile
    spelled = B.format_decl(spec, tid).replace(" [", "[")
    if isinstance(t, B.Int):
        if t.encoding & B.IntEncoding.BOOL:
            if t.size == 1:
                return "bool", spelled, False, 1
        elif t.size == 1:  # any other 1-byte integer is a char to libbpf
            return "char", spelled, t.signed, 1
        elif t.size in (1, 2, 4, 8):
            return "int", spelled, t.signed, t.size
    elif isinstance(t, B.Enum) and t.name == "libbpf_tristate":
        return "tristate", spelled, False, 4
    elif isinstance(t, B.Array) and t.nelems > 0:
        elem = spec.resolve(t.elem)
        if isinstance(elem, B.Int) and elem.size == 1 and not elem.encoding & B.IntEncoding.BOOL:
            return "char_array", spelled, False, 1
    raise NotSupportedError(
        errno.EOPNOTSUPP, f"read kconfig extern {name!r}: type {spelled!r} is not supported",
        feature="kconfig extern type",
        hint="use bool, enum libbpf_tristate, char, a 1/2/4/8-byte integer or a char array")


def read_kconfig(obj: ElfObject, spec: B.Spec | None
                 ) -> tuple[dict[str, KconfigExtern], MapSpec | None]:
    """The ``.kconfig`` externs, laid out, and the map that holds them (None without any).

    Fixes up the ``.kconfig`` DATASEC of ``spec`` in place. Raises NotSupportedError for
    a type libbpf does not accept either.
    """
    if spec is None:
        return {}, None
    found = [(tid, t) for tid, t in spec.items()
             if isinstance(t, B.Datasec) and t.name == KCONFIG and t.vars]
    if not found:
        return {}, None
    ds_id, ds = found[0]
    weak = {s.name for s in obj.symbols if s.section == 0 and s.bind == "STB_WEAK"}
    items = []
    for v in ds.vars:
        var = spec.type_by_id(v.type)
        if not isinstance(var, B.Var):
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: the .kconfig section "
                                       f"lists a {var.kind.name}, not a variable")
        kind, spelled, signed, align = _describe(spec, var.name, var.type)
        items.append((align, spec.sizeof(var.type), var.name, v.type, kind, spelled, signed))
    items.sort(key=lambda i: (-i[0], i[1], i[2]))
    mname = data_map_name(obj.name, KCONFIG)
    externs: dict[str, KconfigExtern] = {}
    offsets: dict[int, tuple[int, int]] = {}
    off = 0
    for align, size, name, var_id, kind, spelled, signed in items:
        off = (off + align - 1) // align * align
        externs[name] = KconfigExtern(name, spelled, kind, size, off, name in weak, signed,
                                      map=mname)
        offsets[var_id] = (off, size)
        var = spec.type_by_id(var_id)
        assert isinstance(var, B.Var)
        spec.replace(var_id, B.Var(var.name, var.type, B.VarLinkage.GLOBAL))
        off += size
    externs = dict(sorted(externs.items(), key=lambda kv: kv[1].offset))
    secinfos = sorted((B.VarSecinfo(tid, o, s) for tid, (o, s) in offsets.items()),
                      key=lambda v: v.offset)
    spec.replace(ds_id, B.Datasec(KCONFIG, off, tuple(secinfos)))
    ms = MapSpec(MapType.ARRAY, key_size=4, value_size=off, max_entries=1,
                 flags=MapFlags.RDONLY_PROG, name=mname, contents=[(0, bytes(off))])
    ms.btf, ms.btf_key_type_id, ms.btf_value_type_id = spec, 0, ds_id
    return externs, ms
