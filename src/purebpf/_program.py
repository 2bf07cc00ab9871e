"""Program: a loaded BPF program that owns one fd; loading, verifier errors, test runs."""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import struct
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ._introspect import check_kind, fdinfo
from ._map import Map
from .asm.instruction import NATIVE, ByteOrder
from .asm.opcodes import LD_IMM64, Pseudo
from .elf.link import insn_at
from ._object import KernelObject, iter_ids, open_pinned
from ._spec import ProgramSpec
from ._sys import ops, progs
from .errors import (BPFError, InvalidArgumentError, NotSupportedError, VerifierError,
                     error_for)
from .types import ProgramType

if TYPE_CHECKING:
    from .link._link import BaseLink

_LOG_START = 1 << 20
_LOG_MAX = progs.LOG_SIZE_MAX  # UINT_MAX >> 2: one byte more is EINVAL
_U32_MAX = (1 << 32) - 1
_CTX_ONLY = frozenset({ProgramType.RAW_TRACEPOINT, ProgramType.SYSCALL,
                       ProgramType.TRACING})


@dataclasses.dataclass(frozen=True)
class ProgramInfo:
    """What the kernel reports about a program (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: ProgramType | int
    name: str
    tag: str
    map_ids: tuple[int, ...]
    btf_id: int
    xlated_size: int
    jited_size: int
    verified_insns: int
    run_time_ns: int
    run_count: int
    gpl_compatible: bool = False
    load_time_ns: int = 0
    """When the program was loaded, in ns since boot (CLOCK_BOOTTIME)."""
    created_by_uid: int = 0


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Result of :meth:`Program.test_run`: return value, output packet/context, ns per run.

    Formerly ``TestRun``: ``purebpf.TestRun`` still works, with a DeprecationWarning.
    """

    __test__: ClassVar[bool] = False  # not a test class, however a test module imports it
    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""


def patch_references(spec: ProgramSpec, maps: Mapping[str, Map], *,
                     byteorder: ByteOrder = NATIVE) -> bytes:
    """The program's instructions with every ld_imm64 reference pointing at its map's fd.

    ``byteorder`` is the instructions' (the object's; a loadable object is in the host's):
    big-endian BPF swaps the register nibbles as well as the fields.
    """
    insns = bytearray(spec.insn_bytes())
    for ref in spec.references:
        at = ref.index * 8
        if at + 16 > len(insns) or insns[at] != LD_IMM64:
            raise InvalidArgumentError(
                errno.EINVAL, f"load program {spec.name!r}: reference to {ref.target!r} at "
                f"instruction {ref.index} is not an ld_imm64")
        target = maps.get(ref.target)
        if target is None:
            raise InvalidArgumentError(
                errno.EINVAL, f"load program {spec.name!r}: instruction {ref.index} uses map "
                f"{ref.target!r}, which was not given", hint=f"known maps: {sorted(maps)}")
        src = Pseudo.MAP_FD if ref.kind == "map" else Pseudo.MAP_VALUE
        first = insn_at(insns, ref.index, byteorder)._replace(src=src, imm=target.fd)
        second = insn_at(insns, ref.index + 1, byteorder)._replace(
            imm=ref.offset if ref.kind != "map" else 0)
        insns[at:at + 16] = first.pack(byteorder) + second.pack(byteorder)
    return bytes(insns)


class Program(KernelObject):
    """A loaded BPF program. Load with :meth:`load`; open with :meth:`from_id`/`from_pin`."""

    _info: ProgramInfo

    def __init__(self, fd: int, info: ProgramInfo, spec: ProgramSpec | None = None, *,
                 quiet: bool = False) -> None:
        self.spec = spec
        self._info = info
        tname = getattr(info.type, "name", str(info.type))
        self._own(fd, f"program {info.name!r} ({tname} id={info.id})", quiet)

    @classmethod
    def load(cls, spec: ProgramSpec, maps: Mapping[str, Map] | None = None, *,
             btf_fd: int = 0, log_level: int = 0) -> Program:
        """Load ``spec`` (BPF_PROG_LOAD), resolving its map references against ``maps``.

        On refusal raises :class:`VerifierError` with the whole verifier log (purebpf loads
        once without a log, as that is faster, and again with one to explain a failure).
        ``log_level`` > 0 keeps the log of a successful load in ``program.log``.
        """
        insns = patch_references(spec, maps or {})
        if not insns or len(insns) % 8:
            raise InvalidArgumentError(errno.EINVAL, f"load program {spec.name!r}: "
                                       f"{len(insns)} bytes is not a whole number of "
                                       "instructions")
        attach_btf_id = spec.attach_btf_id
        if spec.attach_to and not attach_btf_id:
            attach_btf_id = _resolve_attach(spec)
        kw: dict[str, Any] = dict(
            name=spec.name, expected_attach_type=int(spec.expected_attach_type),
            prog_flags=spec.flags, btf_fd=btf_fd if spec.func_info or spec.line_info or
            spec.core_relos else 0, attach_btf_id=attach_btf_id)
        if kw["btf_fd"]:
            kw.update(func_info=spec.func_info, func_info_rec_size=spec.func_info_rec_size,
                      line_info=spec.line_info, line_info_rec_size=spec.line_info_rec_size,
                      core_relos=spec.core_relos, core_relo_rec_size=spec.core_relo_rec_size)
        size = _LOG_START if log_level else 0
        res = progs.prog_load(int(spec.type), insns, spec.license, log_level=log_level,
                              log_size=size, **kw)
        while res.fd < 0 and res.fd != -errno.EPERM:
            # Refused: load again with a verifier log, growing it until the log fits.
            size = max(size, _LOG_START)
            res2 = progs.prog_load(int(spec.type), insns, spec.license,
                                   log_level=max(log_level, 1), log_size=size, **kw)
            if res2.fd == -errno.ENOSPC and size < _LOG_MAX:
                size = min(max(size * 4, res2.log_true_size + 1), _LOG_MAX)
                continue
            res = res2
            break
        if res.fd < 0:
            raise _load_error(spec, -res.fd, res.log)
        try:
            prog = cls(res.fd, _prog_info(res.fd), spec)
        except BaseException:
            os.close(res.fd)
            raise
        prog.log = res.log
        return prog

    log: str = ""

    @classmethod
    def _adopt(cls, fd: int, *, quiet: bool = False, what: str = "open program") -> Program:
        """Wrap an fd we own, checked to be a program; closes fd on failure."""
        try:
            check_kind(fd, "program", what)
            return cls(fd, _prog_info(fd), quiet=quiet)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open the program with kernel id ``prog_id`` (needs CAP_SYS_ADMIN).

        Raises BPFError (ENOENT) when there is no such program, InvalidArgumentError
        (EINVAL) for an id outside the kernel's u32 range."""
        if not 0 <= prog_id <= _U32_MAX:
            raise InvalidArgumentError(errno.EINVAL, f"open program id {prog_id}: program ids "
                                       f"are 1..{_U32_MAX}")
        try:
            fd = progs.fd_by_id("prog", prog_id)
        except BPFError as exc:
            raise error_for(exc.errno, f"open program id {prog_id}: "
                            + ("no such program" if exc.errno == errno.ENOENT
                               else str(exc.strerror))) from None
        return cls._adopt(fd)

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str]) -> Program:
        """Open the program pinned at ``path`` (BPF_OBJ_GET); :meth:`unpin` removes that pin.

        Raises InvalidArgumentError (EINVAL) when something other than a program is pinned
        there."""
        p = os.fspath(path)
        prog = cls._adopt(open_pinned(p, "program"))
        prog._pin_path = p  # so unpin() knows where
        return prog

    @classmethod
    def from_fd(cls, fd: int) -> Program:
        """Wrap a duplicate of ``fd`` (the caller keeps and closes its own fd).

        Raises BPFError (EBADF/EBADFD) when ``fd`` is not open, InvalidArgumentError
        (EINVAL) when it is not a BPF program (a map, a link, a pipe, ...)."""
        what = f"open program from fd {fd}"
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"{what}: the fd must be an int, not {type(fd).__name__}")
        if fd < 0:
            raise error_for(errno.EBADF, f"{what}: the fd is not open (a negative fd)")
        try:
            progs.prog_info(fd, map_ids=False)
        except BPFError as exc:
            # BPF_OBJ_GET_INFO_BY_FD reports an fd that is not open as EBADFD, not EBADF.
            why = "the fd is not open" if exc.errno in (errno.EBADF, errno.EBADFD) else \
                "not a BPF program"
            raise error_for(exc.errno, f"{what}: {why} ({exc.strerror})") from None
        # The info call succeeds on a map or link fd too (it fills in that object's info):
        # only the fd's kind tells them apart.
        check_kind(fd, "program", what)
        return cls._adopt(ops.dup(fd), what=what)

    @staticmethod
    def ids() -> Iterator[int]:
        """Every program id in the system, ascending."""
        return iter_ids(lambda cur: progs.next_id("prog", cur))

    @property
    def type(self) -> ProgramType | int:
        return self._info.type

    def info(self) -> ProgramInfo:
        """Fresh kernel info for this program."""
        self._info = _prog_info(self.fd)
        return self._info

    def fdinfo(self) -> dict[str, str]:
        """The kernel's /proc fdinfo fields for this program (``memlock``, ``prog_jited``,
        ``verified_insns``, ...) as strings; empty when /proc is not mounted."""
        return fdinfo(self.fd)

    def xlated(self) -> bytes:
        """The instructions as the kernel rewrote them (for disassembly)."""
        return progs.prog_xlated(self.fd, self._info.xlated_size)

    def test_run(self, data: bytes | bytearray | memoryview = b"",
                 ctx: bytes | bytearray | memoryview | None = None, repeat: int = 1, *,
                 data_out_size: int | None = None) -> RunResult:
        """Run the program in the kernel on ``data`` (BPF_PROG_TEST_RUN).

        Returns the return value, the output data (the packet after the program ran, at most
        ``data_out_size`` bytes: default ``len(data) + 256``) and the mean duration per run
        in ns. Supported for the program types the kernel can test (socket filters, XDP, tc,
        cgroup_skb, flow dissector, raw tracepoints, syscall, ...).

        Raises TypeError when ``data``/``ctx`` are not bytes or a count is not an int,
        :class:`InvalidArgumentError` when ``repeat`` is outside 1..2**32-1 or
        ``data_out_size`` outside 1..64 MiB (before calling the kernel), and a
        :class:`BPFError` with errno ENOSPC when the output is larger than ``data_out_size``.
        """
        what = f"test_run {self._desc}"
        data = _test_bytes(what, "data", data)
        ctx = _test_bytes(what, "ctx", ctx) if ctx is not None else None
        _test_count(what, "repeat", repeat, _U32_MAX)
        if data_out_size is not None:
            _test_count(what, "data_out_size", data_out_size, progs.TEST_RUN_MAX,
                        hint="leave it None for len(data) + 256")
        kw: dict[str, Any] = {}
        if self.type in _CTX_ONLY:
            # These types run once on a context only: the kernel wants repeat and ctx_out 0
            # (syscall programs get their context written back in place).
            kw = dict(repeat=0, ctx_out_size=0, ctx_in_place=self.type == ProgramType.SYSCALL)
        else:
            kw = dict(repeat=repeat, data_out_size=data_out_size)
        r = progs.prog_test_run(self.fd, data, ctx, **kw)
        if r.error == errno.ENOSPC:
            have = len(data) + 256 if data_out_size is None else data_out_size
            raise error_for(r.error, f"{what}: the output is {r.data_size_out} bytes, more "
                            f"than data_out_size={have}",
                            hint=f"pass data_out_size={r.data_size_out} or more")
        if r.error:
            hint = ""
            if r.error in (errno.EINVAL, errno.ENOTSUP, 524):
                hint = ("the kernel cannot test-run this program type with this input: "
                        "packet programs need at least an Ethernet header (14 bytes); "
                        "raw tracepoint and syscall programs take ctx= only")
            raise error_for(r.error, f"{what}: {os.strerror(r.error)}", hint=hint)
        return RunResult(r.retval, r.data, r.duration_ns, r.ctx)

    def attach(self, **kw: Any) -> BaseLink:
        """Attach the program where its section name says (``tp/sched/sched_switch``,
        ``kprobe/do_unlinkat``, ``uprobe/PATH:SYMBOL``, ``iter/task`` ...) and return the
        link; ``xdp``, ``tc`` and ``cgroup/...`` programs need ``iface=`` / ``cgroup=``.
        See :func:`purebpf.link.attach`."""
        from .link.auto import attach

        return attach(self, **kw)

    def __repr__(self) -> str:
        tname = getattr(self.type, "name", str(self.type))
        state = f"fd={self._fd}" if self._fd >= 0 else "closed"
        return f"<Program {tname} {self.name!r} id={self.id} {state}>"


def _test_bytes(what: str, name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        extra = f"; for {value} zero bytes pass bytes({value})" if type(value) is int else ""
        raise TypeError(f"{what}: {name} must be bytes, bytearray or memoryview, not "
                        f"{type(value).__name__}{extra}")
    return bytes(value)


def _test_count(what: str, name: str, value: object, hi: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: {name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= hi:
        raise InvalidArgumentError(errno.EINVAL, f"{what}: {name} must be between 1 and {hi}, "
                                   f"got {value}", hint=hint)


def _prog_info(fd: int) -> ProgramInfo:
    i, map_ids = progs.prog_info(fd)
    try:
        ptype: ProgramType | int = ProgramType(i.type)
    except ValueError:
        ptype = i.type
    return ProgramInfo(id=i.id, type=ptype, name=i.name.decode(errors="replace"),
                       tag=bytes(i.tag).hex(), map_ids=tuple(map_ids), btf_id=i.btf_id,
                       xlated_size=i.xlated_prog_len, jited_size=i.jited_prog_len,
                       verified_insns=i.verified_insns, run_time_ns=i.run_time_ns,
                       run_count=i.run_cnt, gpl_compatible=bool(i.gpl_compatible & 1),
                       load_time_ns=i.load_time, created_by_uid=i.created_by_uid)


def _resolve_attach(spec: ProgramSpec) -> int:
    """The vmlinux BTF id of the function or tracepoint a tracing/LSM program attaches to."""
    from .btf.attach import attach_btf_id

    return attach_btf_id(spec.type, spec.attach_to, int(spec.expected_attach_type))


# What a verifier log says, and what the user can do about it.
_DIAGNOSES = [
    (("cannot pass map_type 12 into func", "cannot pass map_type 13 into func"),
     "programs may only look up in an outer map (ARRAY_OF_MAPS/HASH_OF_MAPS); update and "
     "delete its slots from user space"),
    (("unknown#195896080", "0xbad2310"),
     "a CO-RE relocation found nothing to match in this kernel (the kernel poisoned the "
     "instruction): a field or type the program reads does not exist here; guard it with "
     "bpf_core_field_exists()/bpf_core_type_exists()"),
    (("unknown opcode 8d",),
     "an indirect call (callx) is left: clang -O0 calls helpers through pointers; compile "
     "with -O1 or higher"),
    (("missing btf func_info",),
     "callbacks (bpf_loop, timers, for_each) and global functions need BTF: compile with "
     "-g, and check that the kernel accepted the object's BTF"),
    (("R1 type=map_value_or_null expected=map_ptr",),
     "check the outer-map lookup's result for NULL before using it as a map"),
    (("pointer arithmetic on map_ptr prohibited",),
     "an inner-map pointer is not memory: pass it to helpers unchanged"),
]


def _diagnose(log: str) -> str:
    hints = [hint for needles, hint in _DIAGNOSES if any(n in log for n in needles)]
    relos = [ln.strip() for ln in log.splitlines() if ln.lstrip().startswith("relo #")]
    if relos and ("195896080" in log or "bad2310" in log):
        hints.append("relocations: " + " | ".join(relos[-3:]))
    return "; ".join(hints)


_INSN_LINE = re.compile(r"(\d+): \(")


def _source_location(spec: ProgramSpec, log: str) -> str:
    """``file:line`` of the log's last source annotation, from the line info submitted with
    the program, when the kernel printed the source without it (6.1 does; 6.18 appends
    `` @ file:line`` itself). '' when the log has it already or nothing can say."""
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].startswith("; "):
            continue
        if " @ " in lines[i] or not spec.line_info or spec.btf is None:
            return ""
        for after in lines[i + 1:]:  # the annotation covers the instructions that follow
            m = _INSN_LINE.match(after)
            if m:
                return _line_of(spec, int(m.group(1)))
        return ""
    return ""


def _line_of(spec: ProgramSpec, insn: int) -> str:
    """``file:line`` of the line-info record covering instruction ``insn``."""
    size = spec.line_info_rec_size or 16
    data = spec.line_info
    best = None
    for at in range(0, len(data) - 15, size):
        off, file_off, _, line_col = struct.unpack_from("=IIII", data, at)
        if off <= insn and (best is None or off >= best[0]):
            best = (off, file_off, line_col)
    if best is None:
        return ""
    strings = getattr(spec.btf, "strings", None)
    try:
        name = strings.get(best[1]) if strings is not None else ""
    except Exception:  # a malformed string offset: say nothing rather than fail the error
        name = ""
    return f"{os.path.basename(name)}:{best[2] >> 10}" if name else ""


def _load_error(spec: ProgramSpec, code: int, log: str) -> BPFError:
    what = f"load program {spec.name!r} ({spec.type.name})"
    if code == errno.EPERM:
        hint = ""
        if os.geteuid() == 0:
            hint = ("already root: this kernel refuses the program type or its attach target "
                    "(fentry/fexit need CONFIG_FUNCTION_TRACER, lsm programs need lsm=bpf at "
                    "boot, kernel lockdown forbids tracing)")
            if spec.type in (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT):
                from .link._tracefs import lockdown_hint

                hint = lockdown_hint(f"{spec.section.split('/')[0] or spec.type.name} "
                                     "programs") or hint
        return error_for(code, f"{what}: not permitted", hint=hint)
    if log.strip():
        hint = ""
        hint = _diagnose(log)
        return VerifierError(code, f"{what}: the verifier refused it", log=log, hint=hint,
                             location=_source_location(spec, log))
    if code in (errno.EINVAL, 524, errno.EOPNOTSUPP):
        from . import features

        if not features.has_program_type(spec.type):
            return NotSupportedError(code, f"{what}: this kernel does not support program "
                                     f"type {spec.type.name}",
                                     feature=f"program type {spec.type.name}")
    return error_for(code, f"{what}: {os.strerror(code)} (no verifier log)")
