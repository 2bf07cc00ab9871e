"""The two-slot ld_imm64 (BPF_LD | BPF_IMM | BPF_DW): constants, maps, kernel symbols.

``src_reg`` tells the kernel what the 64-bit immediate means (:class:`Pseudo`): a constant,
a map (by fd or by fd_array index), an address inside a map's value, a kernel symbol by BTF
id, or the address of a subprogram. The first slot's imm holds the low 32 bits (or the fd,
index, BTF id), the second slot's imm the high 32 bits (or the value offset, module fd).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from . import instruction as I
from .instruction import Branch, Fields, Fmt, Instruction, Register
from .opcodes import LD_IMM64, Pseudo


def _pair(dst: Register, pseudo: int, lo: int, hi: int) -> tuple[Fields, ...]:
    return (Fields(LD_IMM64, dst.num, pseudo, 0, lo), Fields(0, 0, 0, 0, hi))


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _map_name(m: object) -> str:
    if isinstance(m, str):
        return repr(m)
    name = getattr(m, "name", "")
    return repr(name) if isinstance(name, str) and name else type(m).__name__


class _LdImm64(Instruction):
    """Shared shape: two slots, the destination register first."""

    slots: ClassVar[int] = 2
    pseudo: ClassVar[Pseudo] = Pseudo.IMM

    def _pseudo_text(self, f: Fmt) -> str:
        """llvm-objdump prints ld_imm64 with a pseudo source as ``ld_pseudo dst, src, imm``."""
        lo = self.fields()[0].imm
        return f"ld_pseudo {getattr(self, 'dst')}, {f.num(self.pseudo)}, {f.num(lo)}"

    def _kernel_imm(self) -> str:
        lo, hi = (f.imm & 0xFFFFFFFF for f in self.fields())
        return f"{getattr(self, 'dst')} = 0x{hi << 32 | lo:x}"


@dataclasses.dataclass(frozen=True)
class LoadImm64(_LdImm64):
    """``dst = imm ll``: load a 64-bit constant (values up to 2**64-1 wrap to negative)."""

    dst: Register
    imm: int

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, "LoadImm64 dst").r)
        n = I.as_int(self.imm, "LoadImm64 imm")
        if not -(1 << 63) <= n < (1 << 64):
            raise I.AssemblerError(f"LoadImm64 imm {n} does not fit in 64 bits")
        I.setattr_frozen(self, "imm", n - (1 << 64) if n >= (1 << 63) else n)

    def fields(self) -> tuple[Fields, ...]:
        return _pair(self.dst, Pseudo.IMM, _s32(self.imm), _s32(self.imm >> 32))

    def _text(self, f: Fmt) -> str:
        return self._kernel_imm() if f.kernel else f"{self.dst} = {f.num(self.imm)} ll"


class _MapRef(_LdImm64):
    """A map operand: a name or a live map object (references) or an fd (resolved)."""

    def _init_map(self) -> None:
        name = type(self).__name__
        I.setattr_frozen(self, "dst", I.reg(getattr(self, "dst"), f"{name} dst").r)
        m = getattr(self, "map")
        if isinstance(m, str) and m:
            return
        # Look for fd without reading it: a closed Map's fd property raises.
        has_fd = hasattr(type(m), "fd") or "fd" in getattr(m, "__dict__", {})
        if isinstance(m, bool) or not (isinstance(m, int) or has_fd):
            raise TypeError(f"{name} map must be a name, a map object (with an fd) or an fd, "
                            f"got {type(m).__name__} {m!r}")
        if isinstance(m, int):
            I.u32(m, f"{name} fd")

    @property
    def resolved(self) -> bool:
        """True when the map is an fd in the instruction, False for a reference."""
        return isinstance(getattr(self, "map"), int)


@dataclasses.dataclass(frozen=True)
class LoadMap(_MapRef):
    """``dst = map``: point a register at a map (BPF_PSEUDO_MAP_FD).

    ``map`` is a name (the loader resolves it against the maps given to
    :meth:`purebpf.Program.load`), a live map object (:func:`~purebpf.asm.assemble` names it
    and hands it back in ``Assembly.maps``) or an fd (encoded as is).
    """

    dst: Register
    map: Any
    pseudo: ClassVar[Pseudo] = Pseudo.MAP_FD

    def __post_init__(self) -> None:
        self._init_map()

    def fields(self) -> tuple[Fields, ...]:
        fd = _s32(self.map) if isinstance(self.map, int) else 0
        return _pair(self.dst, self.pseudo, fd, 0)

    def _text(self, f: Fmt) -> str:
        if not self.resolved:
            where = f"map[{_map_name(self.map)}]"
            return f"{self.dst} = {where}" if f.kernel else f"{self._pseudo_text(f)} ; {where}"
        return f"{self.dst} = map[id:{self.map}]" if f.kernel else self._pseudo_text(f)


@dataclasses.dataclass(frozen=True)
class LoadMapValue(_MapRef):
    """``dst = &map.value + offset``: an address in an array map's value (BPF_PSEUDO_MAP_VALUE).

    How global variables are reached. ``map`` is a name, a live map object or an fd, as in
    :class:`LoadMap`. Linux 5.2.
    """

    dst: Register
    map: Any
    offset: int = 0
    pseudo: ClassVar[Pseudo] = Pseudo.MAP_VALUE

    def __post_init__(self) -> None:
        self._init_map()
        I.u32(self.offset, f"{type(self).__name__} offset")

    def fields(self) -> tuple[Fields, ...]:
        fd = _s32(self.map) if isinstance(self.map, int) else 0
        return _pair(self.dst, self.pseudo, fd, _s32(self.offset))

    def _text(self, f: Fmt) -> str:
        if not isinstance(self.map, int):
            where = f"map[{_map_name(self.map)}]+{self.offset}"
            return f"{self.dst} = {where}" if f.kernel else f"{self._pseudo_text(f)} ; {where}"
        if f.kernel:
            return f"{self.dst} = map[id:{self.map}][0]+{self.offset}"
        return self._pseudo_text(f)


@dataclasses.dataclass(frozen=True)
class LoadMapIndex(_LdImm64):
    """``dst = fd_array[index]`` as a map (BPF_PSEUDO_MAP_IDX; Linux 5.14)."""

    dst: Register
    index: int
    pseudo: ClassVar[Pseudo] = Pseudo.MAP_IDX

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, f"{type(self).__name__} dst").r)
        I.u32(self.index, f"{type(self).__name__} index")

    def fields(self) -> tuple[Fields, ...]:
        return _pair(self.dst, self.pseudo, _s32(self.index), 0)

    def _text(self, f: Fmt) -> str:
        return self._kernel_imm() if f.kernel else self._pseudo_text(f)


@dataclasses.dataclass(frozen=True)
class LoadMapIndexValue(_LdImm64):
    """``dst = &fd_array[index].value + offset`` (BPF_PSEUDO_MAP_IDX_VALUE; Linux 5.14)."""

    dst: Register
    index: int
    offset: int = 0
    pseudo: ClassVar[Pseudo] = Pseudo.MAP_IDX_VALUE

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, f"{type(self).__name__} dst").r)
        I.u32(self.index, f"{type(self).__name__} index")
        I.u32(self.offset, f"{type(self).__name__} offset")

    def fields(self) -> tuple[Fields, ...]:
        return _pair(self.dst, self.pseudo, _s32(self.index), _s32(self.offset))

    def _text(self, f: Fmt) -> str:
        return self._kernel_imm() if f.kernel else self._pseudo_text(f)


@dataclasses.dataclass(frozen=True)
class LoadKsym(_LdImm64):
    """``dst = &ksym``: the address of a kernel variable by BTF id (BPF_PSEUDO_BTF_ID).

    ``module_fd`` is the fd of the module BTF that has the id (0: vmlinux). Linux 5.10.
    """

    dst: Register
    btf_id: int
    module_fd: int = 0
    pseudo: ClassVar[Pseudo] = Pseudo.BTF_ID

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, "LoadKsym dst").r)
        I.u32(self.btf_id, "LoadKsym btf_id")
        I.u32(self.module_fd, "LoadKsym module_fd")

    def fields(self) -> tuple[Fields, ...]:
        return _pair(self.dst, self.pseudo, _s32(self.btf_id), _s32(self.module_fd))

    def _text(self, f: Fmt) -> str:
        return self._kernel_imm() if f.kernel else self._pseudo_text(f)


@dataclasses.dataclass(frozen=True)
class LoadFunc(_LdImm64, Branch):
    """``dst = &subprog``: a subprogram's address, for callbacks (BPF_PSEUDO_FUNC).

    What ``bpf_loop`` and ``bpf_for_each_map_elem`` take as their callback. ``target`` is a
    label or an offset relative to the next instruction, like a local call. Linux 5.13.
    """

    dst: Register
    target: str | int
    pseudo: ClassVar[Pseudo] = Pseudo.FUNC
    offset_bits: ClassVar[int] = 32

    def __post_init__(self) -> None:
        I.setattr_frozen(self, "dst", I.reg(self.dst, "LoadFunc dst").r)
        I.setattr_frozen(self, "target", I.target(self.target, "LoadFunc", 32))

    def fields(self) -> tuple[Fields, ...]:
        return _pair(self.dst, self.pseudo, self.offset, 0)

    def _text(self, f: Fmt) -> str:
        if isinstance(self.target, str):
            return f"{self.dst} = {self.target} ll" if not f.kernel else \
                f"{self.dst} = {self.target}"
        return self._kernel_imm() if f.kernel else self._pseudo_text(f)


def decode(lo: Fields, hi: Fields) -> Instruction | None:
    """The ld_imm64 in two slots, or None if it is malformed (the verifier would refuse it)."""
    if hi.code or hi.dst or hi.src or hi.off or lo.off or lo.dst > 10:
        return None
    dst, a, b = Register(lo.dst), lo.imm & 0xFFFFFFFF, hi.imm & 0xFFFFFFFF
    src = lo.src
    if src == Pseudo.IMM:
        return LoadImm64(dst, b << 32 | a)
    if src == Pseudo.MAP_VALUE:
        return LoadMapValue(dst, a, b)
    if src == Pseudo.MAP_IDX_VALUE:
        return LoadMapIndexValue(dst, a, b)
    if src == Pseudo.BTF_ID:
        return LoadKsym(dst, a, b)
    if b:
        return None
    if src == Pseudo.MAP_FD:
        return LoadMap(dst, a)
    if src == Pseudo.MAP_IDX:
        return LoadMapIndex(dst, a)
    if src == Pseudo.FUNC:
        return LoadFunc(dst, lo.imm)
    return None
