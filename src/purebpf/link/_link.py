"""Link: a program attached to a hook, as a live object.

A kernel bpf_link (BPF_LINK_CREATE, 5.7+) is one fd: closing it detaches the program unless
the link is pinned. Hooks that have no bpf_link on the running kernel (netlink XDP, tc
filters, BPF_PROG_ATTACH cgroups, perf event ioctls) are served by :class:`Attachment`
subclasses with the same interface, whose ``close()`` detaches exactly what they attached.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._introspect import check_kind, fdinfo
from .._object import KernelObject, iter_ids, open_pinned
from .._sys import links as L
from .._sys import progs
from .._sys.syscall import close_fd
from ..errors import BPFError, ClosedError, InvalidArgumentError, NotSupportedError, error_for
from ..types import AttachType, LinkType

if TYPE_CHECKING:
    from .._program import Program

_U32_MAX = (1 << 32) - 1

_PERF_KINDS = {1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint",
               6: "event"}


def _enum(cls: Any, v: int) -> Any:
    try:
        return cls(v)
    except ValueError:
        return v


@dataclass
class LinkInfo:
    """What the kernel (or, for legacy attachments, purebpf) knows about a link.

    ``mechanism`` says how the program is attached: ``"bpf_link"`` for a kernel link, or
    ``"netlink"`` (XDP via IFLA_XDP), ``"tc_filter"`` (clsact + cls_bpf), ``"prog_attach"``
    (BPF_PROG_ATTACH), ``"perf_event_ioctl"`` (PERF_EVENT_IOC_SET_BPF). ``target`` holds the
    hook's coordinates: ``ifindex``, ``cgroup_id``, ``tracepoint``, ``func``, ``file``,
    ``netns_ino``, ``iter`` ... as the kernel reports them. ``id`` is 0 for legacy
    attachments (they are not kernel objects)."""

    id: int
    type: LinkType | int
    program_id: int
    attach_type: AttachType | int | None = None
    target: dict[str, Any] = field(default_factory=dict)
    mechanism: str = "bpf_link"

    def to_json(self) -> dict[str, Any]:
        """bpftool's field names (``id``, ``type``, ``prog_id``, ``attach_type`` ...)."""
        out: dict[str, Any] = {"id": self.id,
                               "type": getattr(self.type, "name", str(self.type)).lower(),
                               "prog_id": self.program_id}
        if self.attach_type is not None:
            out["attach_type"] = getattr(self.attach_type, "name", str(self.attach_type)).lower()
        out.update(self.target)
        out["mechanism"] = self.mechanism
        return out


def decode_info(raw: L.RawLinkInfo) -> LinkInfo:
    """Turn the kernel's bpf_link_info union into a LinkInfo (pure: struct only)."""
    t = _enum(LinkType, raw.type)
    x = raw.extra
    target: dict[str, Any] = {}
    attach: AttachType | int | None = None
    if t == LinkType.RAW_TRACEPOINT:
        target["tracepoint"] = raw.name
    elif t == LinkType.TRACING:
        a, obj, btf_id = struct.unpack_from("=III", x)
        attach = _enum(AttachType, a)
        target.update(target_obj_id=obj, target_btf_id=btf_id)
    elif t == LinkType.CGROUP:
        cg, a = struct.unpack_from("=QI", x)
        attach = _enum(AttachType, a)
        target["cgroup_id"] = cg
    elif t == LinkType.ITER:
        target["iter"] = raw.name
        (map_id,) = struct.unpack_from("=I", x, 12)
        if raw.name.startswith("bpf_map") and map_id:
            target["map_id"] = map_id
    elif t == LinkType.NETNS:
        ino, a = struct.unpack_from("=II", x)
        attach = _enum(AttachType, a)
        target["netns_ino"] = ino
    elif t == LinkType.XDP:
        attach = AttachType.XDP
        (target["ifindex"],) = struct.unpack_from("=I", x)
    elif t in (LinkType.TCX, LinkType.NETKIT):
        ifindex, a = struct.unpack_from("=II", x)
        attach = _enum(AttachType, a)
        target["ifindex"] = ifindex
    elif t == LinkType.PERF_EVENT:
        attach = AttachType.PERF_EVENT
        (kind,) = struct.unpack_from("=I", x)
        if kind:
            target["perf_event_type"] = _PERF_KINDS.get(kind, kind)
        if raw.name:
            key = {"tracepoint": "tracepoint", "kprobe": "func", "kretprobe": "func",
                   "uprobe": "file", "uretprobe": "file"}.get(str(_PERF_KINDS.get(kind)),
                                                              "name")
            target[key] = raw.name
    elif t == LinkType.KPROBE_MULTI:
        attach = AttachType.TRACE_KPROBE_MULTI
        _, count, flags = struct.unpack_from("=QII", x)
        target.update(count=count, retprobe=bool(flags & 1))
    elif t == LinkType.UPROBE_MULTI:
        attach = AttachType.TRACE_UPROBE_MULTI
    elif t == LinkType.NETFILTER:
        pf, hook, prio, flags = struct.unpack_from("=IIiI", x)
        attach = AttachType.NETFILTER
        target.update(pf=pf, hooknum=hook, priority=prio, flags=flags)
    elif t == LinkType.STRUCT_OPS:
        (target["map_id"],) = struct.unpack_from("=I", x)
    elif t == LinkType.SOCKMAP:
        map_id, a = struct.unpack_from("=II", x)
        attach = _enum(AttachType, a)
        target["map_id"] = map_id
    return LinkInfo(raw.id, t, raw.prog_id, attach, target)


class BaseLink:
    """The interface every attachment has, kernel link or not: ``info()``, ``update()``,
    ``detach()``, ``pin()``, ``close()`` and ``with``."""

    @property
    def id(self) -> int:
        """The kernel's link id (0 for attachments that are not bpf_links)."""
        return self.info().id

    def info(self) -> LinkInfo:
        raise NotImplementedError

    def update(self, program: Program, *, expected: Program | None = None) -> None:
        raise NotImplementedError

    def detach(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def pin(self, path: str | os.PathLike[str]) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Link(KernelObject, BaseLink):
    """A kernel bpf_link (BPF_LINK_CREATE, 5.7+): owns one fd. Closing it detaches the
    program, unless the link is pinned (then it lives until the pin is removed)."""

    def __init__(self, fd: int, info: LinkInfo, *, quiet: bool = False,
                 program: Program | None = None) -> None:
        self._info = info
        self._lock = threading.RLock()
        self.program = program
        self._own(fd, _describe(info), quiet)

    @classmethod
    def _adopt(cls, fd: int, what: str, *, program: Program | None = None,
               mechanism: str = "bpf_link", extra: dict[str, Any] | None = None) -> Link:
        """Wrap a new link fd we own; closes it on failure."""
        try:
            check_kind(fd, "link", what)
            info = decode_info(L.link_info(fd))
            info.mechanism = mechanism
            if extra:
                info.target.update(extra)
            link = cls(fd, info, program=program)
            link._extra = dict(extra or {})
            return link
        except BaseException:
            os.close(fd)
            raise

    _extra: dict[str, Any] = {}
    _detached = False

    @classmethod
    def from_id(cls, link_id: int) -> Link:
        """Open the link with kernel id ``link_id`` (needs CAP_SYS_ADMIN; 5.8+)."""
        what = f"open link id {link_id}"
        if isinstance(link_id, bool) or not isinstance(link_id, int):
            raise TypeError(f"{what}: the id must be an int, not {type(link_id).__name__}")
        if not 0 <= link_id <= _U32_MAX:
            raise InvalidArgumentError(errno.EINVAL, f"{what}: link ids are 1..{_U32_MAX}")
        try:
            fd = L.link_fd_by_id(link_id)
        except BPFError as exc:
            raise error_for(exc.errno, f"{what}: " + (
                "no such link" if exc.errno == errno.ENOENT else str(exc.strerror))) from None
        return cls._adopt(fd, what)

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str]) -> Link:
        """Open the link pinned at ``path`` (BPF_OBJ_GET); :meth:`unpin` removes the pin."""
        p = os.fspath(path)
        link = cls._adopt(open_pinned(p, "link"), f"open pinned link {p!r}")
        link._pin_path = p
        return link

    @classmethod
    def from_fd(cls, fd: int) -> Link:
        """Wrap a duplicate of ``fd`` (the caller keeps its own fd)."""
        from .._sys import ops

        what = f"open link from fd {fd}"
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"{what}: the fd must be an int, not {type(fd).__name__}")
        if fd < 0:
            raise error_for(errno.EBADF, f"{what}: the fd is not open (a negative fd)")
        check_kind(fd, "link", what)
        try:
            L.link_info(fd)
        except BPFError as exc:
            raise error_for(exc.errno, f"{what}: not a BPF link ({exc.strerror})") from None
        return cls._adopt(ops.dup(fd), what)

    @staticmethod
    def ids() -> Iterator[int]:
        """Every link id in the system, ascending (BPF_LINK_GET_NEXT_ID, 5.8+)."""
        return iter_ids(lambda cur: progs.next_id("link", cur))

    def info(self) -> LinkInfo:
        """Fresh kernel info: id, type, program id, attach type and target."""
        with self._lock:
            info = decode_info(L.link_info(self.fd))
        info.mechanism = self._info.mechanism
        info.target.update(self._extra)
        self._info = info
        return info

    @property
    def id(self) -> int:
        return int(self._info.id)

    @property
    def name(self) -> str:
        return ""

    def fdinfo(self) -> dict[str, str]:
        """The kernel's /proc fdinfo fields for this link (``link_type``, ``prog_id`` ...)."""
        return fdinfo(self.fd)

    def update(self, program: Program, *, expected: Program | None = None) -> None:
        """Atomically replace the link's program (BPF_LINK_UPDATE, 5.7+): the hook never
        runs without a program. With ``expected``, replace only if the link still runs that
        program (else BPFError EPERM). Link types that cannot be updated (tracing, perf
        event, ...) raise NotSupportedError."""
        what = f"update {self._desc}"
        _check_programs(program, expected, what)
        try:
            with self._lock:
                L.link_update(self.fd, program.fd, expected.fd if expected is not None else 0)
        except ClosedError:
            raise
        except BPFError as exc:
            hint = ""
            if exc.errno == errno.EPERM and expected is not None:
                raise error_for(exc.errno, f"{what}: the link no longer runs the expected "
                                f"program {expected.name!r} (id {expected.id})",
                                hint="nothing was changed") from None
            mismatch = self._type_mismatch(program)
            if exc.errno == errno.EINVAL and mismatch:
                raise InvalidArgumentError(exc.errno, f"{what}: {mismatch}") from None
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, 524):
                raise NotSupportedError(exc.errno, f"{what}: this kind of link "
                                        f"({_type_name(self._info.type)}) cannot change its "
                                        "program on this kernel; detach and attach the new "
                                        "one", feature="BPF_LINK_UPDATE") from None
            if exc.errno == errno.ENOLINK:
                hint = "the link was detached"
            raise error_for(exc.errno, f"{what}: {exc.strerror}", hint=hint) from None
        self.program = program

    def _type_mismatch(self, program: Program) -> str:
        """Why ``program`` cannot replace the link's program ('' if types agree or the
        link's program cannot be opened): the kernel wants the same type and attach type."""
        from .._program import Program as P

        try:
            with P.from_id(self.info().program_id) as cur:
                old_type = cur.type
        except BPFError:
            return ""
        if program.type != old_type:
            return (f"program {program.name!r} is {_type_name(program.type)}, and the link "
                    f"runs {_type_name(old_type)} programs; a link only takes programs of "
                    "its own type")
        return ""

    def detach(self) -> None:
        """Detach the program from the hook now (BPF_LINK_DETACH, 5.9+), even if the link
        is pinned or open elsewhere. The Link stays open, defunct, until closed."""
        what = f"detach {self._desc}"
        try:
            with self._lock:
                if self._detached or _defunct(decode_info(L.link_info(self.fd))):
                    raise error_for(errno.ENOLINK, f"{what}: it is already detached")
                L.link_detach(self.fd)
                self._detached = True
        except ClosedError:
            raise
        except BPFError as exc:
            if exc.errno == errno.ENOLINK:
                raise error_for(exc.errno, f"{what}: it is already detached") from None
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                raise NotSupportedError(exc.errno, f"{what}: this kind of link "
                                        f"({_type_name(self._info.type)}) cannot be detached "
                                        "while open; close it (and unpin it)",
                                        feature="BPF_LINK_DETACH") from None
            raise error_for(exc.errno, f"{what}: {exc.strerror}") from None

    def close(self) -> None:
        with self._lock:
            super().close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<Link {_type_name(self._info.type)} closed>"
        return f"<Link {_type_name(self._info.type)} id={self._info.id} " \
               f"prog_id={self._info.program_id} fd={self._fd}>"


def program_name(prog_id: int) -> str:
    """The kernel name of program ``prog_id`` ('' if it is gone or cannot be opened)."""
    try:
        fd = progs.fd_by_id("prog", prog_id)
    except BPFError:
        return ""
    try:
        info, _ = progs.prog_info(fd, map_ids=False)
        return bytes(info.name).split(b"\0", 1)[0].decode(errors="replace")
    except BPFError:
        return ""
    finally:
        close_fd(fd)


def dup_fd(fd: int, what: str) -> int:
    """A duplicate of a caller's fd naming a hook target (a cgroup, a netns), with our
    errors for one that is not open."""
    try:
        return os.dup(fd)
    except OSError as exc:
        raise error_for(exc.errno, f"{what}: fd {fd} is not open") from None
    except OverflowError:  # past a C int: no such fd
        raise error_for(errno.EBADF, f"{what}: fd {fd} is not open") from None


def _defunct(info: LinkInfo) -> bool:
    """Whether the kernel reports the link's target as gone (a detached XDP, tcx, netkit,
    cgroup or netns link reads back ifindex/cgroup_id/netns_ino 0)."""
    for key in ("ifindex", "cgroup_id", "netns_ino"):
        if key in info.target:
            return not info.target[key]
    return False


def check_program(program: Any, what: str, types: Any) -> None:
    """Refuse anything but an open Program of one of ``types`` (ProgramType members), with
    a message naming the hook and the types it takes."""
    from .._program import Program

    if not isinstance(program, Program):
        raise TypeError(f"{what}: expected a purebpf.Program, not {type(program).__name__}")
    if program.closed:
        raise ClosedError(errno.EBADF, f"{what}: {program!r} is closed")
    if program.type not in types:
        names = ", ".join(getattr(t, "name", str(t)) for t in types)
        raise InvalidArgumentError(errno.EINVAL, f"{what}: program {program.name!r} is "
                                   f"{getattr(program.type, 'name', program.type)}, this hook "
                                   f"runs {names} programs")


def _check_programs(program: Any, expected: Any, what: str) -> None:
    """update()'s arguments: an open Program, and None or an open Program."""
    from .._program import Program

    for name, p in (("program", program), ("expected", expected)):
        if p is None and name == "expected":
            continue
        if not isinstance(p, Program):
            raise TypeError(f"{what}: {name} must be a purebpf.Program, not "
                            f"{type(p).__name__}")
        if p.closed:
            raise ClosedError(errno.EBADF, f"{what}: {name} {p!r} is closed")


def _type_name(t: LinkType | int) -> str:
    return getattr(t, "name", str(t))


def _describe(info: LinkInfo) -> str:
    return f"link {_type_name(info.type)} id={info.id}"


class Attachment(BaseLink):
    """A program attached by a mechanism that has no bpf_link (netlink XDP, tc filters,
    BPF_PROG_ATTACH, perf ioctls): the same interface as :class:`Link`. It is not a kernel
    object: ``id`` is 0, it cannot be pinned, and ``close()`` detaches exactly what was
    attached. A forgotten one is detached when garbage-collected, with a ResourceWarning.

    Subclasses pass ``undo`` (a callable that detaches; it must not refer to the object)
    and may override ``_replace(program, expected)``, returning the new ``undo``."""

    mechanism = ""

    def __init__(self, info: LinkInfo, program: Program | None, desc: str,
                 undo: Callable[[], None]) -> None:
        self._info = info
        self._info.mechanism = self.mechanism
        self.program = program
        self._desc = desc
        self._closed = False
        self._detached = False
        self._lock = threading.RLock()
        # _undo[0] is what close() and garbage collection run (nothing once disconnected);
        # _detach_now is what detach() runs: always the real detach of what is attached.
        self._undo = [undo]
        self._detach_now = undo
        self._disconnected = False
        self._finalizer = weakref.finalize(self, _gc_detach, self._undo, desc)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def id(self) -> int:
        return 0

    def info(self) -> LinkInfo:
        if self._closed:
            raise ClosedError(errno.EBADF, f"{self._desc} is closed")
        return self._info

    def pin(self, path: str | os.PathLike[str]) -> None:
        raise NotSupportedError(errno.EOPNOTSUPP, f"pin {self._desc}: it is attached by "
                                f"{self.mechanism}, not a bpf_link, so there is nothing to "
                                "pin (this kernel has no link for the hook)",
                                feature=f"bpf_link for {self.mechanism} hooks")

    def update(self, program: Program, *, expected: Program | None = None) -> None:
        _check_programs(program, expected, f"update {self._desc}")
        with self._lock:
            if self._closed:
                raise ClosedError(errno.EBADF, f"{self._desc} is closed")
            if self._detached:
                raise error_for(errno.ENOLINK, f"update {self._desc}: it is already detached")
            new = self._replace(program, expected)
            self._detach_now = new
            if not self._disconnected:  # a disconnected attachment stays disconnected
                self._undo[0] = new
            self.program = program
            self._info.program_id = program.id

    def detach(self) -> None:
        with self._lock:
            if self._closed:
                raise ClosedError(errno.EBADF, f"{self._desc} is closed")
            if self._detached:
                raise error_for(errno.ENOLINK, f"detach {self._desc}: it is already detached")
            self._detach_now()
            self._detached = True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._finalizer.detach()
            self._closed = True
            if not self._detached:
                self._detached = True
                self._undo[0]()

    def disconnect(self) -> None:
        """Leave the program attached: after this, ``close()`` (and garbage collection)
        forget the attachment instead of detaching it (netlink XDP, tc filters and
        BPF_PROG_ATTACH outlive the process; perf event attachments cannot, and raise)."""
        if not self.persistent:
            raise NotSupportedError(errno.EOPNOTSUPP, f"disconnect {self._desc}: a "
                                    f"{self.mechanism} attachment ends with its fd; use a "
                                    "kernel with bpf_link for this hook and pin the link",
                                    feature="persistent attachment")
        with self._lock:
            self._disconnected = True
            self._undo[0] = _nothing

    persistent = True
    """Whether the attachment outlives this process when disconnected."""

    def _check_expected(self, expected: Program | None, what: str) -> None:
        """For ``_replace``: refuse (EPERM) when ``expected`` is not the program this
        attachment runs, by its own record (for mechanisms the kernel cannot check)."""
        if expected is not None and expected.id != self._info.program_id:
            raise error_for(errno.EPERM, f"{what}: the attachment runs program id "
                            f"{self._info.program_id}, not the expected {expected.name!r} "
                            f"(id {expected.id})",
                            hint="expected= names the program the attachment runs now")

    def _replace(self, program: Program, expected: Program | None) -> Callable[[], None]:
        raise NotSupportedError(errno.EOPNOTSUPP, f"update {self._desc}: not possible for "
                                f"{self.mechanism} attachments; detach and attach again",
                                feature="update")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "detached" if self._detached else \
            f"prog_id={self._info.program_id}"
        return f"<Attachment {self.mechanism} {state}>"


def _nothing() -> None:
    pass


def _gc_detach(undo: list[Callable[[], None]], desc: str) -> None:
    import warnings

    try:
        undo[0]()
    except Exception:  # the hook may be gone already (interface deleted, process exiting)
        pass
    warnings.warn(f"unclosed {desc}: detached it; close it or use 'with'", ResourceWarning,
                  stacklevel=2)
