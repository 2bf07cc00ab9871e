"""The exception hierarchy: errno kept, builtin bases users already catch, messages."""

from __future__ import annotations

import errno
import os
import pickle

import pytest

from purebpf import (BPFError, BPFPermissionError, ClosedError, IndexOutOfRangeError,
                     InnerMapMismatchError, InvalidArgumentError, KeyExistsError,
                     KeyNotFoundError, MapFullError, NotSupportedError)
from purebpf.errors import ENOTSUPP, PERMISSION_HINT, errno_name, error_for, strerror


@pytest.mark.parametrize("cls,bases", [
    (KeyNotFoundError, (BPFError, KeyError)),
    (BPFPermissionError, (BPFError, PermissionError)),
    (InvalidArgumentError, (BPFError, ValueError)),
    (InnerMapMismatchError, (InvalidArgumentError, ValueError)),
    (IndexOutOfRangeError, (BPFError, IndexError)),
    (ClosedError, (BPFError, ValueError)),
    (KeyExistsError, (BPFError,)),
    (MapFullError, (BPFError,)),
    (NotSupportedError, (BPFError,)),
    (BPFError, (OSError,)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_hierarchy(cls: type, bases: tuple[type, ...]) -> None:
    for b in bases:
        assert issubclass(cls, b)


def test_str_is_message_errno_name_and_hint() -> None:
    e = BPFError(errno.EINVAL, "update map 'o' (ARRAY_OF_MAPS id=7): bad", hint="try this")
    assert str(e) == "update map 'o' (ARRAY_OF_MAPS id=7): bad [EINVAL]; try this"
    assert e.errno == errno.EINVAL and e.message.endswith(": bad") and e.hint == "try this"
    assert str(BPFError(0, "no errno")) == "no errno"


def test_key_not_found_str_is_not_keyerror_repr() -> None:
    e = KeyNotFoundError(errno.ENOENT, "lookup map 'm' (HASH id=1): key 5 not found")
    assert str(e) == "lookup map 'm' (HASH id=1): key 5 not found [ENOENT]"


def test_catching_the_builtins() -> None:
    with pytest.raises(KeyError):
        raise KeyNotFoundError(errno.ENOENT, "x")
    with pytest.raises(PermissionError):
        raise BPFPermissionError(errno.EPERM, "x")
    with pytest.raises(IndexError):
        raise IndexOutOfRangeError(errno.E2BIG, "x")
    with pytest.raises(ValueError):
        raise InnerMapMismatchError("x", field="type", expected=1, actual=2)


@pytest.mark.parametrize("code,name", [(errno.ENOENT, "ENOENT"), (ENOTSUPP, "ENOTSUPP"),
                                       (errno.E2BIG, "E2BIG"), (99999, "99999")])
def test_errno_name(code: int, name: str) -> None:
    assert errno_name(code) == name


def test_strerror_explains_enotsupp() -> None:
    assert ENOTSUPP == 524
    assert "not supported" in strerror(ENOTSUPP)
    assert "Unknown error" not in strerror(ENOTSUPP)
    assert strerror(errno.EPERM) == os.strerror(errno.EPERM)


@pytest.mark.parametrize("code,element,cls", [
    (errno.ENOENT, True, KeyNotFoundError),
    (errno.ENOENT, False, BPFError),
    (errno.EEXIST, True, KeyExistsError),
    (errno.E2BIG, True, MapFullError),
    (errno.EPERM, False, BPFPermissionError),
    (errno.EACCES, False, BPFPermissionError),
    (errno.EINVAL, False, InvalidArgumentError),
    (errno.EOPNOTSUPP, False, NotSupportedError),
    (ENOTSUPP, False, NotSupportedError),
    (errno.ENOMEM, False, BPFError),
    (errno.EBADF, False, BPFError),
], ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_error_for_picks_the_most_specific_class(code: int, element: bool, cls: type) -> None:
    e = error_for(code, "op thing", element=element)
    assert type(e) is cls
    assert e.errno == code
    assert str(e).startswith("op thing [")


def test_error_for_adds_the_privilege_hint_only_for_eperm() -> None:
    assert error_for(errno.EPERM, "x").hint == PERMISSION_HINT
    assert "CAP_BPF" in PERMISSION_HINT
    assert error_for(errno.EACCES, "x").hint == ""
    assert error_for(errno.EPERM, "x", hint="frozen").hint == "frozen"


def test_inner_map_mismatch_carries_field_expected_actual() -> None:
    e = InnerMapMismatchError("insert: inner map key_size 8 != template 4", field="key_size",
                              expected=4, actual=8, hint="h")
    assert (e.errno, e.field, e.expected, e.actual) == (errno.EINVAL, "key_size", 4, 8)


@pytest.mark.parametrize("exc", [
    BPFError(errno.EIO, "a", hint="h"),
    KeyNotFoundError(errno.ENOENT, "lookup m: key 1 not found"),
    NotSupportedError(ENOTSUPP, "n", feature="inner map type PROG_ARRAY", hint="h"),
    InnerMapMismatchError("m", field="map_flags", expected=0, actual=1, hint="h"),
    ClosedError(errno.EBADF, "c"),
    BPFPermissionError(errno.EPERM, "p", hint="h"),
], ids=lambda e: type(e).__name__)
def test_pickle_roundtrip_keeps_everything(exc: BPFError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert (back.errno, back.message, back.hint, str(back)) == \
        (exc.errno, exc.message, exc.hint, str(exc))
    for attr in ("feature", "field", "expected", "actual"):
        assert getattr(back, attr, None) == getattr(exc, attr, None)
