"""Exceptions raised by purebpf.

Every error the kernel reports is a :class:`BPFError`, an :class:`OSError` that keeps the
kernel's errno. Subclasses also inherit the builtin exception users already catch
(``KeyError``, ``PermissionError``, ``ValueError``). Messages read
``"<operation> <object>: <reason>"`` and add a hint only where the cause can be diagnosed.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

ENOTSUPP = 524
"""The kernel-internal "not supported" errno (user space sees 524, "Unknown error 524")."""

_ERRNO_NAMES = {ENOTSUPP: "ENOTSUPP"}


def errno_name(code: int) -> str:
    """Symbolic name of an errno value, including the kernel's ENOTSUPP (524)."""
    return _ERRNO_NAMES.get(code) or _errno.errorcode.get(code, str(code))


def strerror(code: int) -> str:
    """Text for an errno, naming ENOTSUPP instead of "Unknown error 524"."""
    if code == ENOTSUPP:
        return "operation not supported by this map or kernel"
    return os.strerror(code)


class BPFError(OSError):
    """An operation on a BPF object failed; ``errno`` is the kernel's errno.

    ``str()`` is the whole message: ``"update map 'outer' (ARRAY_OF_MAPS id=7): ..."``.
    """

    def __init__(self, code: int, message: str, *, hint: str = "") -> None:
        # OSError's strerror is the errno's text (as for any OSError); str() is the message.
        super().__init__(code, strerror(code) if code else message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.message} [{errno_name(self.errno)}]" if self.errno else self.message
        return f"{text}; {self.hint}" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # The state carries every attribute (hint, and a subclass's feature/field/...).
        return (type(self), (self.errno, self.message), dict(self.__dict__))


class KeyNotFoundError(BPFError, KeyError):
    """ENOENT from a lookup or delete: the key is not in the map (also a ``KeyError``)."""

    __str__ = BPFError.__str__


class KeyExistsError(BPFError):
    """EEXIST: BPF_NOEXIST was given and the key is already present."""


class MapFullError(BPFError):
    """The map has no room for another element: E2BIG from a hash-type map, ENOSPC from an
    LPM_TRIE. (An index past the end of an array-type map is :class:`IndexOutOfRangeError`.)"""


class IndexOutOfRangeError(BPFError, IndexError):
    """E2BIG from a map whose keys are indexes (ARRAY, PERCPU_ARRAY, PROG_ARRAY, DEVMAP,
    CPUMAP, XSKMAP, SOCKMAP, ...): the index is not below ``max_entries``."""


class PinExistsError(BPFError, FileExistsError):
    """EEXIST from BPF_OBJ_PIN: something is already at the path (also a ``FileExistsError``)."""


class PinNotFoundError(BPFError, FileNotFoundError):
    """ENOENT for a pin path: nothing is pinned there (also a ``FileNotFoundError``)."""


class BPFPermissionError(BPFError, PermissionError):
    """EPERM/EACCES: missing privileges, a read-only fd, or a frozen map."""


class NotSupportedError(BPFError):
    """The kernel (or this map type) does not support the operation; ``feature`` names it."""

    def __init__(self, code: int, message: str, *, feature: str = "", hint: str = "") -> None:
        super().__init__(code, message, hint=hint)
        self.feature = feature


class InvalidArgumentError(BPFError, ValueError):
    """EINVAL: the request is not valid for this map (also a ``ValueError``).

    Raised before the syscall when purebpf can tell the kernel would refuse.
    """


class MapMismatchError(InvalidArgumentError):
    """A map is not what it should be (a pinned map that differs from its declaration).

    ``field`` names the attribute, ``expected`` the wanted value, ``actual`` the map's.
    """

    def __init__(
        self, message: str, *, field: str, expected: Any, actual: Any, hint: str = ""
    ) -> None:
        super().__init__(_errno.EINVAL, message, hint=hint)
        self.field = field
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_mismatch, (type(self), self.message, self.field, self.expected,
                                 self.actual, self.hint))


class InnerMapMismatchError(MapMismatchError):
    """An inner map does not match its outer map's template.

    ``field`` names the attribute (``"type"``, ``"key_size"``, ``"value_size"``,
    ``"map_flags"``, ``"max_entries"``); ``expected`` is the template's value and
    ``actual`` the candidate's.
    """


def _make_mismatch(cls: type[MapMismatchError], message: str, field: str, expected: Any,
                   actual: Any, hint: str) -> MapMismatchError:
    return cls(message, field=field, expected=expected, actual=actual, hint=hint)


class ClosedError(BPFError, ValueError):
    """The object was closed (EBADF); it has no file descriptor any more."""


_BY_ERRNO: dict[int, type[BPFError]] = {
    _errno.ENOENT: KeyNotFoundError,
    _errno.EEXIST: KeyExistsError,
    _errno.E2BIG: MapFullError,
    _errno.EPERM: BPFPermissionError,
    _errno.EACCES: BPFPermissionError,
    _errno.EINVAL: InvalidArgumentError,
    _errno.EOPNOTSUPP: NotSupportedError,
    ENOTSUPP: NotSupportedError,
}

PERMISSION_HINT = (
    "run as root or grant CAP_BPF (plus CAP_NET_ADMIN or CAP_PERFMON for some map and "
    "program types); kernels before 5.11 also need a large enough RLIMIT_MEMLOCK"
)


def error_for(code: int | None, message: str, *, hint: str = "", element: bool = False
              ) -> BPFError:
    """The most specific BPFError for ``code``.

    ENOENT and EEXIST become :class:`KeyNotFoundError` and :class:`KeyExistsError` only for
    element operations (``element=True``); elsewhere they mean "no such object" and "already
    exists" and stay plain :class:`BPFError`.
    """
    code = code or _errno.EIO  # an OSError without errno (never from the kernel)
    cls = _BY_ERRNO.get(code, BPFError)
    if cls in (KeyNotFoundError, KeyExistsError) and not element:
        cls = BPFError  # "no such object" / "already exists" (a pin path, say), not a key
    if cls is BPFPermissionError and not hint:
        hint = PERMISSION_HINT if code == _errno.EPERM else ""
    if cls is NotSupportedError:
        return NotSupportedError(code, message, hint=hint)
    return cls(code, message, hint=hint)


class VerifierError(BPFError):
    """The kernel's verifier refused a program. ``log`` is the whole verifier log.

    ``str()`` shows the reason (the log's last lines) and, when the program carried line
    info, the C source line the verifier was at.
    """

    def __init__(self, code: int, message: str, *, log: str, hint: str = "",
                 location: str = "") -> None:
        super().__init__(code, message, hint=hint)
        self.log = log
        self.location = location
        """``file:line`` of the last source annotation, computed by purebpf from the line
        info it submitted, for kernels whose log does not print it (6.1); '' otherwise."""

    @property
    def source_line(self) -> str:
        """The last ``; source @ file:line`` annotation in the log ('' if none); ``@
        file:line`` is added from :attr:`location` where the kernel printed the source only."""
        for line in reversed(self.log.splitlines()):
            if line.startswith("; "):
                text = line[2:].strip()
                if self.location and " @ " not in text:
                    text = f"{text} @ {self.location}"
                return text
        return ""

    @property
    def reason(self) -> str:
        """The verifier's last meaningful lines (what it refused and why)."""
        lines = [ln for ln in self.log.splitlines() if ln.strip()]
        tail = [ln for ln in lines if not ln.startswith(("processed ", "verification time"))]
        return "\n".join(tail[-3:])

    def __str__(self) -> str:
        text = BPFError.__str__(self)
        parts = [text]
        if self.source_line:
            parts.append(f"  at: {self.source_line}")
        if self.reason:
            parts.append("  verifier: " + self.reason.replace("\n", "\n            "))
        return "\n".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_verifier_error, (self.errno, self.message, self.log, self.hint,
                                       self.location))


def _make_verifier_error(code: int, message: str, log: str, hint: str,
                         location: str = "") -> VerifierError:
    return VerifierError(code, message, log=log, hint=hint, location=location)
