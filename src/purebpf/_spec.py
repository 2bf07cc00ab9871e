"""MapSpec: a plain description of a map. No fds, no syscalls.

:meth:`MapSpec.check` applies the kernel's creation rules for the cases purebpf can judge in
advance (see docs/design.md), so a bad spec fails with a named reason before any syscall.
"""

from __future__ import annotations

import dataclasses
import errno
import re
from typing import Any

from .errors import ENOTSUPP, InnerMapMismatchError, InvalidArgumentError, NotSupportedError
from .types import AttachType, MapFlags, MapType, ProgramType, flag_names

_NAME_RE = re.compile(r"[A-Za-z0-9_.]{0,15}")

# Types the kernel refuses as an inner-map template (no map_meta_equal op) -> ENOTSUPP.
REJECTED_INNER = frozenset({
    MapType.PROG_ARRAY, MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE,
    MapType.STRUCT_OPS,
})
# Inner types whose max_entries the kernel compares on insertion (array_map_meta_equal,
# xsk_map_meta_equal); for ARRAY only when the template lacks BPF_F_INNER_MAP.
_COMPARES_MAX_ENTRIES = frozenset({MapType.ARRAY, MapType.XSKMAP})


def _int_size(t: Any) -> int | None:
    """Byte size of a declared key/value type, when it tells one."""
    import ctypes
    import struct

    if isinstance(t, str):
        return struct.calcsize(t)
    if isinstance(t, struct.Struct):
        return t.size
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData | ctypes.Structure |
                                          ctypes.Union | ctypes.Array):
        return ctypes.sizeof(t)
    size = getattr(t, "size", None)
    return size if isinstance(size, int) else None


@dataclasses.dataclass
class MapSpec:
    """Everything needed to create a map; create it with :meth:`purebpf.Map.create`.

    ``key_size``/``value_size`` of 0 are filled in from ``key_type``/``value_type`` when those
    tell a size; outer maps (ARRAY_OF_MAPS, HASH_OF_MAPS) default to ``value_size=4`` and take
    their inner-map template from ``inner``. Array types default to ``key_size=4``.
    """

    type: MapType
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: MapFlags = MapFlags(0)
    name: str = ""
    inner: MapSpec | None = None
    numa_node: int | None = None
    map_extra: int = 0
    key_type: Any = None
    value_type: Any = None
    pinning: int = 0
    contents: list[tuple[Any, Any]] = dataclasses.field(default_factory=list)
    btf: Any = dataclasses.field(default=None, compare=False, repr=False)
    btf_key_type_id: int = dataclasses.field(default=0, compare=False, repr=False)
    btf_value_type_id: int = dataclasses.field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.type = MapType(self.type)
        self.flags = MapFlags(int(self.flags))
        if not self.key_size:
            self.key_size = _int_size(self.key_type) or (4 if self.type.is_array else 0)
        if not self.value_size:
            if self.type.is_map_in_map or self.type == MapType.PROG_ARRAY:
                self.value_size = 4
            else:
                self.value_size = _int_size(self.value_type) or 0

    # -- derived ----------------------------------------------------------------------------
    def replace(self, **changes: Any) -> MapSpec:
        """A copy with some fields changed (``spec.replace(max_entries=64)``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """``"map 'name' (HASH_OF_MAPS)"`` for messages."""
        return f"map {self.name!r} ({self.type.name})" if self.name else f"{self.type.name} map"

    def check(self) -> None:
        """Raise what the kernel would for this spec, before any syscall.

        Raises InvalidArgumentError (EINVAL) or NotSupportedError (ENOTSUPP) naming the field.
        """
        what = f"create {self.describe()}"
        if not _NAME_RE.fullmatch(self.name):
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: name {self.name!r} is invalid",
                hint="names are at most 15 characters of letters, digits, '_' and '.'")
        if self.type.is_map_in_map:
            self._check_outer(what)
        elif self.inner is not None:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: only ARRAY_OF_MAPS and HASH_OF_MAPS take an inner "
                "map template")
        if self.flags & MapFlags.INNER_MAP and self.type != MapType.ARRAY:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: BPF_F_INNER_MAP is only valid on ARRAY maps, not "
                f"{self.type.name}",
                hint="set it on the inner ARRAY template and on every inner array")
        if self.flags & MapFlags.MMAPABLE and self.type not in (MapType.ARRAY, MapType.ARENA):
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: BPF_F_MMAPABLE is only valid on ARRAY maps")
        if self.type.is_array and self.type != MapType.PROG_ARRAY and self.key_size != 4:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: key_size must be 4 for {self.type.name}, got "
                f"{self.key_size}")
        if self.type in _NEEDS_SIZES and (self.key_size <= 0 or self.value_size <= 0):
            field = "key_size" if self.key_size <= 0 else "value_size"
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: {field} must be at least 1 for {self.type.name}",
                hint=f"pass {field}= (or a {field.split('_')[0]}_type with a size)")
        if self.type in _NO_MAX_ENTRIES and self.max_entries != 0:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: max_entries must be 0 for {self.type.name} (the "
                f"kernel sizes it), got {self.max_entries}")
        if self.max_entries <= 0 and self.type not in _NO_MAX_ENTRIES and \
                self.type != MapType.STRUCT_OPS:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: max_entries must be at least 1, got {self.max_entries}")
        if self.map_extra and self.type not in (MapType.BLOOM_FILTER, MapType.ARENA):
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: map_extra is only used by BLOOM_FILTER and ARENA maps")
        if self.numa_node is not None and self.numa_node < 0:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: numa_node must be >= 0")

    def _check_outer(self, what: str) -> None:
        if self.value_size != 4:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: value_size must be 4 for {self.type.name} (values are "
                f"inner-map fds in, ids out), got {self.value_size}")
        if self.inner is None:
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: an outer map needs an inner-map template",
                hint="pass inner=MapSpec(...) or Map.create(spec, inner_map=existing_map)")
        check_template(self.inner, what)
        if self.type == MapType.ARRAY_OF_MAPS and self.flags & (
            MapFlags.NO_PREALLOC | MapFlags.RDONLY_PROG | MapFlags.WRONLY_PROG
        ):
            raise InvalidArgumentError(
                errno.EINVAL, f"{what}: flags {self.flags!r} are not valid on ARRAY_OF_MAPS",
                hint="ARRAY_OF_MAPS accepts only NUMA_NODE, RDONLY and WRONLY")


# Types that need both a key and a value of at least one byte.
_NEEDS_SIZES = frozenset({
    MapType.HASH, MapType.ARRAY, MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_HASH,
    MapType.LRU_PERCPU_HASH, MapType.LPM_TRIE,
})

# Types whose max_entries must be 0: the kernel sizes them itself.
_NO_MAX_ENTRIES = frozenset({
    MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE,
    MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE,
})


def check_template(inner: MapSpec, what: str) -> None:
    """Raise if ``inner`` cannot serve as an inner-map template (nesting, rejected type)."""
    if inner.type.is_map_in_map:
        raise InvalidArgumentError(
            errno.EINVAL, f"{what}: inner map {inner.type.name} is itself a map-in-map; the "
            "kernel supports one level of nesting")
    if inner.type in REJECTED_INNER:
        raise NotSupportedError(
            ENOTSUPP, f"{what}: {inner.type.name} cannot be an inner map",
            feature=f"inner map type {inner.type.name}",
            hint="the kernel refuses PROG_ARRAY, CGROUP_STORAGE, PERCPU_CGROUP_STORAGE and "
            "STRUCT_OPS as inner maps")


@dataclasses.dataclass(frozen=True)
class Template:
    """The parts of an inner-map template the kernel compares on insertion."""

    type: MapType
    key_size: int
    value_size: int
    map_flags: int
    max_entries: int

    @classmethod
    def of(cls, spec: MapSpec) -> Template:
        """The template a map created from ``spec`` will have (the kernel keeps
        BPF_F_NUMA_NODE, which purebpf sets for ``numa_node``, and drops RDONLY/WRONLY)."""
        flags = int(spec.flags) | (int(MapFlags.NUMA_NODE) if spec.numa_node is not None
                                   else 0)
        return cls(spec.type, spec.key_size, spec.value_size, flags & ~ACCESS_FLAGS,
                   spec.max_entries)

    def compares_max_entries(self) -> bool:
        """True when the kernel requires equal max_entries for this inner type."""
        if self.type == MapType.ARRAY:
            return not self.map_flags & MapFlags.INNER_MAP
        return self.type in _COMPARES_MAX_ENTRIES

    def diff(self, cand: Template, what: str) -> InnerMapMismatchError | None:
        """The first field in which ``cand`` differs from this template, as an error."""
        for field in ("type", "key_size", "value_size", "map_flags"):
            want, got = getattr(self, field), getattr(cand, field)
            if want != got:
                return _mismatch(what, field, want, got, self)
        if self.compares_max_entries() and self.max_entries != cand.max_entries:
            return _mismatch(what, "max_entries", self.max_entries, cand.max_entries, self)
        return None


# fd access-mode flags the kernel strips from map_flags (bpf_map_flags_retain_permanent)
ACCESS_FLAGS = int(MapFlags.RDONLY | MapFlags.WRONLY)


def _fmt(field: str, v: Any) -> str:
    if field == "type":
        return MapType(v).name
    if field == "map_flags":
        return flag_names(v)
    return str(v)


def _mismatch(what: str, field: str, want: Any, got: Any, tmpl: Template) -> InnerMapMismatchError:
    hint = ""
    if field == "max_entries" and tmpl.type == MapType.ARRAY:
        hint = ("create the template and every inner array with BPF_F_INNER_MAP "
                "(MapFlags.INNER_MAP) to allow different sizes")
    elif field == "map_flags":
        extra, missing = got & ~want, want & ~got
        parts = []
        if extra:
            parts.append(f"the inner map has {flag_names(extra)} which the template lacks")
        if missing:
            parts.append(f"the inner map lacks {flag_names(missing)}")
        hint = "; ".join(parts) + "; create it with the template's flags (outer.new_inner())"
    elif field == "type":
        hint = "an outer map holds inner maps of one type only"
    return InnerMapMismatchError(
        f"{what}: inner map {field} {_fmt(field, got)} != template {_fmt(field, want)}",
        field=field, expected=want, actual=got, hint=hint)


@dataclasses.dataclass(frozen=True)
class Reference:
    """An ld_imm64 instruction that must point at a map when the program is loaded.

    ``kind`` is ``"map"`` (the map itself: BPF_PSEUDO_MAP_FD) or ``"map_value"`` (an address
    ``offset`` bytes into the map's value: BPF_PSEUDO_MAP_VALUE, used for global data).
    ``index`` counts 8-byte instruction slots.
    """

    index: int
    target: str
    kind: str = "map"
    offset: int = 0


@dataclasses.dataclass
class ProgramSpec:
    """Everything needed to load a program; load it with :meth:`purebpf.Program.load`.

    ``instructions`` are raw 8-byte eBPF instructions (``bytes``) or objects with an
    ``encode()`` method (the assembler's). ``references`` name the maps that ld_imm64
    instructions must point at; they are resolved against the maps passed at load time.
    """

    name: str
    type: ProgramType
    instructions: Any = b""
    license: str = "GPL"
    expected_attach_type: AttachType | int = 0
    attach_to: str = ""
    attach_btf_id: int = 0
    flags: int = 0
    section: str = ""
    autoload: bool = True  # False for SEC("?...") programs: Collection.load skips them
    references: list[Reference] = dataclasses.field(default_factory=list)
    btf: Any = dataclasses.field(default=None, compare=False, repr=False)
    func_info: bytes = dataclasses.field(default=b"", repr=False)
    func_info_rec_size: int = 0
    line_info: bytes = dataclasses.field(default=b"", repr=False)
    line_info_rec_size: int = 0
    core_relos: bytes = dataclasses.field(default=b"", repr=False)
    core_relo_rec_size: int = 0

    def __post_init__(self) -> None:
        self.type = ProgramType(self.type)

    def insn_bytes(self) -> bytes:
        """The instructions as bytes (8 per slot, 16 for ld_imm64)."""
        if isinstance(self.instructions, bytes | bytearray | memoryview):
            return bytes(self.instructions)
        return b"".join(i.encode() for i in self.instructions)

    def replace(self, **changes: Any) -> ProgramSpec:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class VariableSpec:
    """A global variable of a BPF object: ``size`` bytes at ``offset`` in a data map.

    ``value`` is the initial content; change it before loading (``.rodata`` constants are a
    program's load-time configuration: the verifier sees their final values).
    """

    name: str
    map: str
    offset: int
    size: int
    value: bytes
    readonly: bool = False
    type_id: int = 0

    def set(self, value: int | bytes) -> None:
        """Set the initial value: an int (native byte order) or bytes of ``size``."""
        if isinstance(value, int):
            import sys

            value = value.to_bytes(self.size, sys.byteorder, signed=value < 0)
        if len(value) != self.size:
            raise InvalidArgumentError(errno.EINVAL, f"variable {self.name!r} is {self.size} "
                                       f"bytes, got {len(value)}")
        self.value = bytes(value)

    def get(self) -> int:
        """The initial value as an unsigned int."""
        import sys

        return int.from_bytes(self.value, sys.byteorder)

    def decoded(self, btf: Any) -> Any:
        """The initial value decoded by its BTF type (ints, strings, dicts for structs,
        lists for arrays), given the collection's BTF; the bytes without one."""
        if btf is None or not self.type_id:
            return self.value
        from .btf.values import decode

        return decode(btf, self.type_id, self.value)


@dataclasses.dataclass
class CollectionSpec:
    """Maps, programs and global variables of one BPF object, before loading.

    Everything is editable: change map sizes, variables (``.rodata`` configuration), or drop
    programs, then :meth:`purebpf.Collection.load` it. ``kconfig`` holds the object's
    ``extern ... __kconfig`` variables (:class:`KconfigExtern`): the loader fills them in
    from the running kernel unless their ``value`` is set
    (``spec.kconfig["CONFIG_HZ"].value = 1000``).
    """

    name: str
    maps: dict[str, MapSpec] = dataclasses.field(default_factory=dict)
    programs: dict[str, ProgramSpec] = dataclasses.field(default_factory=dict)
    variables: dict[str, VariableSpec] = dataclasses.field(default_factory=dict)
    btf: Any = dataclasses.field(default=None, repr=False)
    kconfig: dict[str, KconfigExtern] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Any) -> CollectionSpec:
        """Read a clang-compiled BPF object (``clang -O2 -g -target bpf -c x.c``). No syscalls."""
        from .elf import read_collection

        return read_collection(path)


# enum libbpf_tristate (bpf_helpers.h): what a tristate CONFIG_ extern holds.
TRISTATE = {"n": 0, "y": 1, "m": 2}


@dataclasses.dataclass
class KconfigExtern:
    """An ``extern ... __kconfig`` variable: the loader fills it in from the running kernel.

    ``kind`` is ``"bool"``, ``"tristate"`` (``enum libbpf_tristate``: n=0, y=1, m=2),
    ``"char"``, ``"int"`` (1, 2, 4 or 8 bytes, ``signed`` or not) or ``"char_array"``;
    ``type`` is its C spelling. It lives ``size`` bytes at ``offset`` in the read-only
    ``.kconfig`` data map ``map``. ``value`` None means "as this kernel says" at load
    (LINUX_KERNEL_VERSION, LINUX_HAS_SYSCALL_WRAPPER, LINUX_HAS_BPF_COOKIE, CONFIG_* from
    /boot/config-$(uname -r) or /proc/config.gz; an unknown ``weak`` one is 0); set it to
    override: an int, a bool, a str for a char array, or a config-file spelling such as
    ``"y"``, ``"m"``, ``"0x10"``.
    """

    name: str
    type: str
    kind: str
    size: int
    offset: int
    weak: bool = False
    signed: bool = False
    value: Any = None
    map: str = ""

    def parse(self, text: str) -> Any:
        """A config-file value (``y``/``m``/``n``, ``"quoted"``, decimal/hex/octal) as the
        Python value this extern takes, by libbpf's rules (``m`` is no bool, a number no
        tristate). Raises InvalidArgumentError naming the extern."""
        what = f"set kconfig extern {self.name!r} ({self.type})"
        if text in TRISTATE:
            if self.kind == "tristate":
                return TRISTATE[text]
            if self.kind == "bool" and text != "m":
                return text == "y"
            if self.kind == "char":
                return ord(text)
            wanted = "tristate or char" if self.kind == "bool" else "bool, tristate or char"
            raise InvalidArgumentError(errno.EINVAL, f"{what}: value {text!r} implies a "
                                       f"{wanted} type")
        if text.startswith('"'):
            if self.kind != "char_array" or len(text) < 2 or not text.endswith('"'):
                raise InvalidArgumentError(errno.EINVAL, f"{what}: value {text} is a string; "
                                           "it needs a char array extern, and closing quotes")
            return text[1:-1]
        try:
            number = int(text, 0) if not re.fullmatch(r"0[0-7]+", text) else int(text, 8)
        except ValueError:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: value {text!r} is not a valid "
                                       "integer") from None
        if self.kind not in ("int", "char", "bool"):
            raise InvalidArgumentError(errno.EINVAL, f"{what}: value {text!r} implies an "
                                       "integer type")
        return number

    def encode(self, value: Any) -> bytes:
        """``value`` as the ``size`` bytes the program reads. Raises InvalidArgumentError
        (a value the type cannot hold) or TypeError naming the extern."""
        import sys

        what = f"set kconfig extern {self.name!r} ({self.type})"
        if isinstance(value, str) and self.kind != "char_array":
            value = self.parse(value)
        if self.kind == "char_array":
            if isinstance(value, str):
                value = value.encode()
            if not isinstance(value, bytes | bytearray):
                raise TypeError(f"{what}: expected a str, got {type(value).__name__}")
            # Cut to fit with its NUL, as libbpf does with a long string.
            return bytes(value[:self.size - 1]).ljust(self.size, b"\0")
        if not isinstance(value, int):
            raise TypeError(f"{what}: expected an int, got {type(value).__name__}")
        if self.kind == "bool" and value not in (0, 1):
            raise InvalidArgumentError(errno.EINVAL, f"{what}: {value} is not a boolean")
        if self.kind == "tristate" and value not in TRISTATE.values():
            raise InvalidArgumentError(errno.EINVAL, f"{what}: {value} is not a tristate",
                                       hint="use 0 (n), 1 (y) or 2 (m), or 'n', 'y', 'm'")
        bits = self.size * 8
        # libbpf: a signed type takes -2^(bits-1)..2^(bits-1)-1, an unsigned one 0..2^bits-1;
        # an 8-byte one takes any 64-bit pattern.
        lo = -(1 << (bits - 1)) if self.signed or self.size == 8 else 0
        hi = (1 << bits) - 1 if not self.signed or self.size == 8 else (1 << (bits - 1)) - 1
        if not lo <= value <= hi:
            raise InvalidArgumentError(errno.ERANGE, f"{what}: {value} does not fit in "
                                       f"{self.size} bytes")
        number = int(value) + (1 << bits if value < 0 else 0)
        return number.to_bytes(self.size, sys.byteorder)
