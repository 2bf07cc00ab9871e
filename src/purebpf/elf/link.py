"""Turn the functions of an ELF object into loadable programs.

Each function in a program section becomes a program; the subprograms it calls (static and
global functions in ``.text``, and callbacks whose address it takes, e.g. for bpf_loop) are
appended after it, as the kernel expects one instruction stream per program. ld_imm64
instructions that name maps or global data become :class:`Reference` entries resolved at load
time. func_info, line_info and CO-RE relocations from .BTF.ext follow their instructions.

Instructions and records are read and written in the object's byte order (bpfeb objects
swap the register nibbles as well as the multi-byte fields), so the output is in the same
byte order as the input.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .._spec import ProgramSpec, Reference
from ..asm.instruction import NATIVE, ByteOrder, Fields
from ..asm.opcodes import BPF_X, LD_IMM64, CallKind, Class, JumpOp, Mode, Pseudo, Size
from ..types import ProgramType
from ..errors import InvalidArgumentError, NotSupportedError
from .reader import ElfObject, Section
from .sections import section_def

# Instruction encodings the linker looks at (the assembler's constants).
_CALL = Class.JMP | JumpOp.CALL
_CALLX = _CALL | BPF_X
_LD_IMM64 = LD_IMM64
_LDX_DW = Class.LDX | Mode.MEM | Size.U64.code
_PSEUDO_CALL = CallKind.LOCAL
_PSEUDO_KFUNC_CALL = CallKind.KFUNC
_PSEUDO_FUNC = Pseudo.FUNC
_PREFIX = {"little": "<", "big": ">"}


def insn_at(insns: bytes | bytearray, slot: int, byteorder: ByteOrder) -> Fields:
    """The fields of instruction slot ``slot``, decoded in ``byteorder``."""
    code, regs, off, imm = struct.unpack_from(_PREFIX[byteorder] + "BBhi", insns, slot * 8)
    if byteorder == "little":
        return Fields(code, regs & 0x0F, regs >> 4, off, imm)
    return Fields(code, regs >> 4, regs & 0x0F, off, imm)


def _put(insns: bytearray, slot: int, fields: Fields, byteorder: ByteOrder) -> None:
    insns[slot * 8:slot * 8 + 8] = fields.pack(byteorder)


@dataclasses.dataclass
class ExtInfo:
    """.BTF.ext records of one section, instruction offsets in bytes from the section start."""

    func_info: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    line_info: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
    core_relos: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Func:
    name: str
    section: Section
    start: int   # first instruction, counted from the section start
    length: int  # in 8-byte slots

    @property
    def key(self) -> tuple[int, int]:
        return (self.section.index, self.start)


@dataclasses.dataclass
class _Site:
    """Something in a function's instructions that the linker must fix up."""

    at: int             # slot within the function
    kind: str           # "call", "func_addr", "map", "map_value"
    target: object      # function key, or map name
    offset: int = 0


# map_for(symbol_section_index, symbol_name, symbol_value, addend) -> (kind, map name, offset)
MapResolver = Callable[[Section, str, int, int], tuple[str, str, int] | None]


class Linker:
    """Links the programs of one object; ``resolve_map`` names maps for ld_imm64 relocations."""

    def __init__(self, obj: ElfObject, resolve_map: MapResolver,
                 ext: dict[str, ExtInfo] | None = None,
                 data: Mapping[str, bytes] | None = None,
                 externs: Mapping[str, tuple[str, int]] | None = None,
                 extern_sections: Mapping[str, str] | None = None) -> None:
        self.obj = obj
        self.externs = externs or {}  # resolved extern variables: name -> (map, offset)
        self.extern_sections = extern_sections or {}  # extern name -> its DATASEC
        self.data = data or {}
        self.resolve_map = resolve_map
        self.ext = ext or {}
        self.order: ByteOrder = "little" if obj.little_endian else "big"
        self.funcs: dict[tuple[int, int], _Func] = {}
        self.sites: dict[tuple[int, int], list[_Site]] = {}
        for sec in obj.sections:
            if sec.executable and sec.size:
                self._collect(sec)

    # -- scanning ---------------------------------------------------------------------------
    def _collect(self, sec: Section) -> None:
        syms = [s for s in self.obj.symbols_in(sec.index) if s.type == "STT_FUNC"]
        if not syms:
            return
        n = len(sec.data) // 8
        for i, sym in enumerate(syms):
            start = sym.value // 8
            end = (sym.value + sym.size) // 8 if sym.size else \
                (syms[i + 1].value // 8 if i + 1 < len(syms) else n)
            if sym.value % 8 or end > n or end <= start:
                raise InvalidArgumentError(
                    errno.EINVAL, f"read {self.obj.name}: function {sym.name!r} at "
                    f"{sym.value}+{sym.size} does not fit section {sec.name!r} "
                    f"({len(sec.data)} bytes): a corrupt object?")
            f = _Func(sym.name, sec, start, end - start)
            self.funcs[f.key] = f
        relocs = {r.offset // 8: r for r in self.obj.relocations.get(sec.index, [])}
        for f in [f for f in self.funcs.values() if f.section is sec]:
            self.sites[f.key] = self._scan(f, relocs)

    def _scan(self, f: _Func, relocs: Mapping[int, Any]) -> list[_Site]:
        data = f.section.data
        sites: list[_Site] = []
        for slot in range(f.start, f.start + f.length):
            op, _dst, src, _off, imm = insn_at(data, slot, self.order)
            rel = relocs.get(slot)
            local = slot - f.start
            # A call relocated against an undefined symbol is a kfunc, whatever src says
            # (clang marks it as a local call).
            if op == _CALL and (src == _PSEUDO_KFUNC_CALL or
                                rel is not None and rel.symbol.section == 0):
                name = rel.symbol.name if rel is not None else "?"
                if src != _PSEUDO_KFUNC_CALL and self.extern_sections.get(name) != ".ksyms":
                    raise InvalidArgumentError(
                        errno.EINVAL, f"link {f.name!r}: instruction {local} calls extern "
                        f"function {name!r}, which is defined nowhere in the object",
                        hint="define it (static or global) in this object, or declare it "
                        "__ksym if it is a kernel function (kfunc); purebpf links one object "
                        "and does not resolve other objects' symbols")
                raise NotSupportedError(errno.EOPNOTSUPP, f"link {f.name!r}: calls kernel "
                                        f"function {name!r} (kfunc), which purebpf does not "
                                        "resolve yet", feature="kfunc calls")
            elif op == _CALL and src == _PSEUDO_CALL:
                if rel is not None:
                    sym = rel.symbol
                    target = (sym.section, sym.value // 8 + imm + 1)
                else:
                    target = (f.section.index, slot + imm + 1)
                sites.append(_Site(local, "call", target))
            elif op == _LD_IMM64 and rel is not None:
                sym = rel.symbol
                if sym.section == 0:
                    sites.append(self._extern(f, local, sym.name, imm))
                    continue
                tsec = self.obj.sections[sym.section]
                if tsec.executable:
                    sites.append(_Site(local, "func_addr", (sym.section, (sym.value + imm) // 8)))
                    continue
                res = self.resolve_map(tsec, sym.name if sym.type != "STT_SECTION" else "",
                                       sym.value, imm)
                if res is None:
                    raise InvalidArgumentError(
                        errno.EINVAL, f"link {f.name!r}: instruction {local} refers to "
                        f"{sym.name or tsec.name!r} in section {tsec.name!r}, which is neither a "
                        "map nor global data")
                kind, target_name, offset = res
                sites.append(_Site(local, kind, target_name, offset))
        return sites

    def _extern(self, f: _Func, local: int, name: str, imm: int) -> _Site:
        """An ld_imm64 of an extern variable: a .kconfig one is an address in the .kconfig
        map (the relocation's addend, in imm, added as for global data)."""
        found = self.externs.get(name)
        if found is not None:
            return _Site(local, "map_value", found[0], found[1] + imm)
        where = self.extern_sections.get(name)
        if where == ".ksyms":
            raise NotSupportedError(
                errno.EOPNOTSUPP, f"link {f.name!r}: instruction {local} refers to kernel "
                f"symbol {name!r} (extern __ksym), which purebpf does not resolve yet",
                feature=".ksyms externs",
                hint="only .kconfig externs (extern ... __kconfig) are resolved so far")
        raise InvalidArgumentError(
            errno.EINVAL, f"link {f.name!r}: instruction {local} refers to extern {name!r}, "
            "which is defined nowhere in the object",
            hint="declare it __kconfig (a kernel config value) or define it; purebpf links "
            "one object and does not resolve other objects' symbols")

    # -- linking ----------------------------------------------------------------------------
    def programs(self) -> dict[str, ProgramSpec]:
        """Every entry function in a program section, linked with what it calls."""
        out: dict[str, ProgramSpec] = {}
        for f in self.funcs.values():
            if f.section.name == ".text" or f.section.name.startswith(".text."):
                continue
            autoload = not f.section.name.startswith("?")
            found = section_def(f.section.name.lstrip("?"))
            if found is None:
                raise NotSupportedError(
                    errno.EOPNOTSUPP, f"program {f.name!r}: unknown section name "
                    f"{f.section.name!r}", feature=f"section {f.section.name}",
                    hint="use a libbpf SEC() name such as \"xdp\", \"socket\", \"tc\", "
                    "\"kprobe/...\", \"fentry/...\"")
            d, rest = found
            out[f.name] = self._link(f).replace(
                type=d.type, expected_attach_type=d.attach, flags=d.flags,
                attach_to=d.target.format(rest) if d.target else "", section=f.section.name,
                autoload=autoload)
        return out

    def _link(self, entry: _Func) -> ProgramSpec:
        order: list[_Func] = [entry]
        placed: dict[tuple[int, int], int] = {entry.key: 0}
        total = entry.length
        i = 0
        while i < len(order):  # breadth-first: append each callee once
            for site in self.sites.get(order[i].key, []):
                if site.kind in ("call", "func_addr"):
                    key = site.target
                    assert isinstance(key, tuple)
                    if key not in placed:
                        callee = self.funcs.get(key)
                        if callee is None:
                            raise InvalidArgumentError(
                                errno.EINVAL, f"link {entry.name!r}: a call in "
                                f"{order[i].name!r} targets instruction {key[1]} of section "
                                f"{self.obj.sections[key[0]].name!r}, which starts no function")
                        placed[key] = total
                        total += callee.length
                        order.append(callee)
            i += 1
        insns = bytearray()
        refs: list[Reference] = []
        for f in order:
            base = placed[f.key]
            insns += f.section.data[f.start * 8:(f.start + f.length) * 8]
            for s in self.sites.get(f.key, []):
                at = base + s.at
                if s.kind in ("call", "func_addr"):
                    assert isinstance(s.target, tuple)
                    rel = placed[s.target] - at - 1
                    fields = insn_at(insns, at, self.order)._replace(imm=rel)
                    if s.kind == "func_addr":
                        fields = fields._replace(src=_PSEUDO_FUNC)
                        _put(insns, at + 1, insn_at(insns, at + 1, self.order)._replace(imm=0),
                             self.order)
                    _put(insns, at, fields, self.order)
                else:
                    refs.append(Reference(at, str(s.target), s.kind, s.offset))
        lower_indirect_helper_calls(insns, refs, self.data, self.order)
        spec = ProgramSpec(name=entry.name, type=ProgramType.UNSPEC, instructions=bytes(insns),
                           references=refs, license=self.license())
        return self._with_ext(spec, order, placed)

    def _with_ext(self, spec: ProgramSpec, order: list[_Func],
                  placed: dict[tuple[int, int], int]) -> ProgramSpec:
        fi, li, cr = bytearray(), bytearray(), bytearray()
        # The kernel reads these records in its own byte order, the object's.
        p = _PREFIX[self.order]
        for f in order:
            ext = self.ext.get(f.section.name)
            if ext is None:
                continue
            lo, hi, shift = f.start * 8, (f.start + f.length) * 8, placed[f.key] - f.start
            for off, tid in ext.func_info:
                if lo <= off < hi:
                    fi += struct.pack(p + "II", off // 8 + shift, tid)
            for off, file_off, line_off, col in ext.line_info:
                if lo <= off < hi:
                    li += struct.pack(p + "IIII", off // 8 + shift, file_off, line_off, col)
            for off, tid, access, kind in ext.core_relos:
                if lo <= off < hi:
                    cr += struct.pack(p + "IIII", off + shift * 8, tid, access, kind)
        return spec.replace(func_info=bytes(fi), func_info_rec_size=8 if fi else 0,
                            line_info=bytes(li), line_info_rec_size=16 if li else 0,
                            core_relos=bytes(cr), core_relo_rec_size=16 if cr else 0)

    def license(self) -> str:
        """The object's license string; none declared is no license (not GPL-compatible,
        as with libbpf), so GPL-only helpers are refused."""
        sec = self.obj.section("license")
        return sec.data.split(b"\0", 1)[0].decode(errors="replace") if sec else ""


_WRITES_DST = (0x00, 0x01, 0x04, 0x07)  # instruction classes LD, LDX, ALU, ALU64


def _jump_targets(insns: bytes | bytearray, byteorder: ByteOrder) -> set[int]:
    targets = set()
    n = len(insns) // 8
    for i in range(n):
        op = insns[i * 8]
        cls, code = op & 0x07, op & 0xF0
        if cls in (0x05, 0x06) and code not in (0x80, 0x90):  # not call, not exit
            _, _, _, off, imm = insn_at(insns, i, byteorder)
            targets.add(i + 1 + (imm if cls == 0x06 and code == 0x00 else off))
    return targets


def lower_indirect_helper_calls(insns: bytearray, refs: list[Reference],
                                data: Mapping[str, bytes], byteorder: ByteOrder = NATIVE
                                ) -> int:
    """Turn clang -O0's helper calls into direct ones; returns how many were rewritten.

    Without optimisation, clang calls a helper through the constant function pointer that
    bpf_helpers.h declares (``= (void *) 1``): it loads the pointer from global data and
    emits ``callx``, which the kernel does not accept. Within a basic block, a ``callx rN``
    whose rN was loaded from such a constant becomes ``call N``. ``insns`` and the global
    data are in ``byteorder`` (the object's).
    """
    addr = {r.index: r for r in refs if r.kind == "map_value"}
    targets = _jump_targets(insns, byteorder)
    known: dict[int, tuple[str, str, int] | tuple[str, int]] = {}
    done = 0
    i, n = 0, len(insns) // 8
    while i < n:
        if i in targets:
            known.clear()
        op, dst, src, off, _imm = insn_at(insns, i, byteorder)
        if op == _LD_IMM64:
            ref = addr.get(i)
            if ref is not None:
                known[dst] = ("addr", ref.target, ref.offset)
            else:
                known.pop(dst, None)
            i += 2
            continue
        if op == _LDX_DW and known.get(src, ("",))[0] == "addr":
            _, target, base = known[src]  # type: ignore[misc]
            blob = data.get(str(target), b"")
            at = int(base) + off
            value = int.from_bytes(blob[at:at + 8], byteorder) if at + 8 <= len(blob) else 0
            if 0 < value < 1 << 16:
                known[dst] = ("helper", value)
            else:
                known.pop(dst, None)
        elif op == _CALLX:
            helper = known.get(dst)
            if helper is not None and helper[0] == "helper":
                _put(insns, i, Fields(_CALL, 0, 0, 0, int(helper[1])), byteorder)
                done += 1
            for reg in range(6):
                known.pop(reg, None)
        elif op == _CALL:
            for reg in range(6):
                known.pop(reg, None)
        elif op & 0x07 in _WRITES_DST:
            known.pop(dst, None)
        elif op & 0x07 == 0x03 and op & 0xE0 == 0xC0:  # atomic: a fetch writes src
            known.pop(src, None)
        i += 1
    return done
