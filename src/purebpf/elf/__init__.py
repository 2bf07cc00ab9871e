"""Relocatable BPF ELF objects -> CollectionSpec. Pure: no syscalls."""

from __future__ import annotations

import errno
import os
import struct
import sys

from .. import btf as B
from .._spec import CollectionSpec, MapSpec, VariableSpec
from ..btf.ext import parse_ext
from ..errors import InvalidArgumentError, NotSupportedError
from ..types import MapFlags, MapType
from .kconfig import extern_sections, read_kconfig
from .link import ExtInfo, Linker
from .maps import data_map_name, read_maps
from .reader import ElfObject, Section, read_elf

__all__ = ["read_collection", "read_elf", "ElfObject"]


def _is_data(sec: Section) -> bool:
    n = sec.name
    return (n in (".data", ".rodata", ".bss") or n.startswith((".data.", ".rodata.", ".bss.")))


def read_collection(source: str | os.PathLike[str] | bytes, name: str | None = None
                    ) -> CollectionSpec:
    """Parse a BPF object into maps, programs and variables, ready to edit and load.

    Raises InvalidArgumentError or NotSupportedError naming what is wrong; a corrupt object
    (offsets past the data) is an InvalidArgumentError too, never a stray IndexError.
    """
    obj = read_elf(source, name)
    if obj.little_endian != (sys.byteorder == "little"):
        raise NotSupportedError(
            errno.EOPNOTSUPP, f"read {obj.name}: built for "
            f"{'little' if obj.little_endian else 'big'}-endian BPF, but this machine is "
            f"{sys.byteorder}-endian", feature="foreign byte order",
            hint="compile with -target bpf (the host's byte order); purebpf.elf.read_elf "
            "still reads the object")
    try:
        return _read(obj)
    except (struct.error, IndexError, OverflowError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: corrupt object ({exc})") \
            from None


_MAX_SECTION = 1 << 30  # .bss sizes come from the header alone: refuse absurd ones


def _read(obj: ElfObject) -> CollectionSpec:
    spec = _btf(obj)
    maps: dict[str, MapSpec] = {}
    maps_sec = obj.section(".maps")
    if obj.section("maps") is not None:
        raise NotSupportedError(errno.EOPNOTSUPP, f"read {obj.name}: legacy 'maps' section "
                                "(struct bpf_map_def) is not supported",
                                feature="legacy maps section",
                                hint="declare maps in SEC(\".maps\") with __uint/__type")
    if maps_sec is not None:
        if spec is None:
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: .maps needs BTF",
                                       hint="compile with clang -g")
        maps = read_maps(obj, spec, maps_sec)
    variables: dict[str, VariableSpec] = {}
    data_maps: dict[int, str] = {}
    for sec in obj.sections:
        if not _is_data(sec) or sec.size == 0:
            continue
        if sec.size > _MAX_SECTION:
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: section {sec.name} is "
                                       f"{sec.size} bytes: a corrupt object?")
        # .data, .rodata, .bss: "<object>.<section>" (cut to 15 characters); a custom
        # section (.data.foo) is known by its own name, cut only for the kernel (as libbpf).
        standard = sec.name in (".data", ".rodata", ".bss")
        mname = data_map_name(obj.name, sec.name) if standard else sec.name
        if mname in maps:
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: map name {mname!r} "
                                       "is used twice")
        readonly = sec.name.startswith(".rodata")
        body = sec.data if sec.type != "SHT_NOBITS" else bytes(sec.size)
        ms = MapSpec(MapType.ARRAY, key_size=4, value_size=sec.size, max_entries=1,
                     flags=MapFlags.RDONLY_PROG if readonly else MapFlags(0), name=mname[:15],
                     contents=[(0, body)])
        ds_id = _datasec_id(spec, sec.name)
        if ds_id:
            ms.btf, ms.btf_key_type_id, ms.btf_value_type_id = spec, 0, ds_id
        maps[mname] = ms
        data_maps[sec.index] = mname
        for sym in obj.symbols_in(sec.index):
            # Global variables only (static ones, such as -O0's helper pointers, stay hidden).
            if sym.type == "STT_OBJECT" and sym.name and sym.bind != "STB_LOCAL":
                variables[sym.name] = VariableSpec(sym.name, mname, sym.value, sym.size,
                                                   _initial(sec, body, sym.value, sym.size),
                                                   readonly, _var_type(spec, sym.name))

    kconfig, kconfig_map = read_kconfig(obj, spec)
    if kconfig_map is not None:
        if kconfig_map.name in maps:
            raise InvalidArgumentError(errno.EINVAL, f"read {obj.name}: map name "
                                       f"{kconfig_map.name!r} is used twice")
        maps[kconfig_map.name] = kconfig_map
    externs = {n: (e.map, e.offset) for n, e in kconfig.items()}

    def resolve(tsec: Section, sym_name: str, sym_value: int, imm: int
                ) -> tuple[str, str, int] | None:
        if maps_sec is not None and tsec.index == maps_sec.index:
            if sym_name in maps:
                return ("map", sym_name, 0)
            return None
        if tsec.index in data_maps:
            return ("map_value", data_maps[tsec.index], sym_value + imm)
        return None

    data = {data_maps[i]: obj.sections[i].data for i in data_maps}
    programs = Linker(obj, resolve, _ext(obj, spec), data, externs,
                      extern_sections(spec)).programs()
    if spec is not None:
        for p in programs.values():
            p.btf = spec
    return CollectionSpec(obj.name, maps, programs, variables, spec, kconfig)


def _initial(sec: Section, body: bytes, offset: int, size: int) -> bytes:
    """A variable's initial bytes; .bss ones are fresh zeros, never a copy of the section
    (whose size a corrupt header may make huge)."""
    if sec.type == "SHT_NOBITS":
        return bytes(max(0, min(size, sec.size - offset)))
    return body[offset:offset + size]


def _btf(obj: ElfObject) -> B.Spec | None:
    sec = obj.section(".BTF")
    if sec is None:
        return None
    spec = B.parse(sec.data)
    # Every DATASEC (.maps, .data*, .rodata*, .bss*, license, ...) gets its section's size
    # and its variables' symbol offsets.
    sizes = {s.name: s.size for s in obj.sections}
    offsets = {sym.name: sym.value for sym in obj.symbols
               if sym.type == "STT_OBJECT" and sym.section}
    B.fixup_datasecs(spec, sizes, offsets)
    _name_func_params(spec)
    return spec


def _name_func_params(spec: B.Spec) -> None:
    """Name the unnamed parameters of functions' prototypes (``arg0``...).

    The kernel refuses a FUNC whose prototype has an unnamed parameter ("Invalid arg#1"),
    and clang -O0 emits such prototypes for some functions.
    """
    for _, t in list(spec.items()):
        if not isinstance(t, B.Func):
            continue
        proto = spec.type_by_id(t.proto)
        if not isinstance(proto, B.FuncProto):
            continue
        params = list(proto.params)
        fixed = [p if p.name or (i == len(params) - 1 and p.type == 0) else
                 B.Param(f"arg{i}", p.type) for i, p in enumerate(params)]
        if fixed != params:
            spec.replace(t.proto, B.FuncProto(proto.ret, tuple(fixed)))


def _var_type(spec: B.Spec | None, name: str) -> int:
    """The BTF type id of global variable ``name`` (0 without BTF)."""
    if spec is None:
        return 0
    for tid in spec.find_ids(name, B.Var):
        var = spec.type_by_id(tid)
        assert isinstance(var, B.Var)
        return var.type
    return 0


def _datasec_id(spec: B.Spec | None, name: str) -> int:
    if spec is None:
        return 0
    for tid, t in spec.items():
        if isinstance(t, B.Datasec) and t.name == name:
            return tid
    return 0


def _ext(obj: ElfObject, spec: B.Spec | None) -> dict[str, ExtInfo]:
    sec = obj.section(".BTF.ext")
    if sec is None or spec is None:
        return {}
    ext = parse_ext(sec.data, spec)
    assert spec.strings is not None
    index = spec.strings.index()
    out: dict[str, ExtInfo] = {}

    def off(s: str) -> int:
        return index.get(s, 0)

    def get(name: str) -> ExtInfo:
        return out.setdefault(name, ExtInfo())

    for name, fis in ext.func_info.items():
        get(name).func_info = [(f.insn_off, f.type) for f in fis]
    for name, lis in ext.line_info.items():
        get(name).line_info = [(li.insn_off, off(li.file_name), off(li.line),
                                (li.line_num << 10) | li.column) for li in lis]
    for name, crs in ext.core_relos.items():
        get(name).core_relos = [(c.insn_off, c.type, off(c.access), int(c.kind)) for c in crs]
    return out


