""".kconfig externs, pure parts: the layout in the spec, the config-file parser, the kernel
version computation (with Ubuntu's and Debian's quirks), value encoding."""

from __future__ import annotations

import errno
import pathlib
import sys

import pytest

from purebpf import CollectionSpec, InvalidArgumentError, KconfigExtern, NotSupportedError
from purebpf._kconfig import kernel_version, parse_config, parse_kernel_version
from purebpf.btf import Datasec, Var, VarLinkage
from purebpf.types import MapFlags, MapType

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"


def test_spec_lists_the_externs_laid_out_as_libbpf() -> None:
    spec = CollectionSpec.from_file(DATA / "kconfig.o")
    got = {n: (e.kind, e.type, e.size, e.offset, e.weak) for n, e in spec.kconfig.items()}
    # Largest alignment first, then smaller sizes, then by name.
    assert got == {
        "CONFIG_NR_CPUS": ("int", "__u64", 8, 0, False),
        "CONFIG_BPF": ("tristate", "enum libbpf_tristate", 4, 8, False),
        "CONFIG_HZ": ("int", "int", 4, 12, False),
        "CONFIG_PUREBPF_NOT_A_THING": ("int", "int", 4, 16, True),
        "LINUX_KERNEL_VERSION": ("int", "unsigned int", 4, 20, False),
        "CONFIG_LOG_BUF_SHIFT": ("int", "unsigned short", 2, 24, False),
        "CONFIG_BPF_SYSCALL": ("bool", "_Bool", 1, 26, False),
        "LINUX_HAS_BPF_COOKIE": ("bool", "_Bool", 1, 27, True),
        "LINUX_HAS_SYSCALL_WRAPPER": ("bool", "_Bool", 1, 28, True),
        "CONFIG_DEFAULT_HOSTNAME": ("char_array", "char[16]", 16, 29, True),
    }
    assert spec.kconfig["CONFIG_HZ"].signed and not spec.kconfig["CONFIG_NR_CPUS"].signed
    assert all(e.value is None and e.map == "kconfig.kconfig" for e in spec.kconfig.values())
    ms = spec.maps["kconfig.kconfig"]
    assert (ms.type, ms.key_size, ms.value_size, ms.max_entries, ms.flags) == \
        (MapType.ARRAY, 4, 45, 1, MapFlags.RDONLY_PROG)
    # The DATASEC the kernel will see: sized, offsets filled in, VARs allocated.
    ds = spec.btf.type_by_id(ms.btf_value_type_id)
    assert isinstance(ds, Datasec) and ds.name == ".kconfig" and ds.size == 45
    assert [v.offset for v in ds.vars] == sorted(e.offset for e in spec.kconfig.values())
    for v in ds.vars:
        var = spec.btf.type_by_id(v.type)
        assert isinstance(var, Var) and var.linkage == VarLinkage.GLOBAL
    refs = [r for r in spec.programs["read_kconfig"].references if r.target == ms.name]
    assert {r.offset for r in refs} == {e.offset for e in spec.kconfig.values()}


def test_ksyms_extern_is_refused_naming_it() -> None:
    with pytest.raises(NotSupportedError) as e:
        CollectionSpec.from_file(DATA / "ksyms.o")
    assert "'bpf_prog_active'" in str(e.value) and "__ksym" in str(e.value)
    assert e.value.feature == ".ksyms externs"


CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_BPF=y
CONFIG_HZ=250
CONFIG_MODULES_THING=m
# CONFIG_KPROBES is not set
CONFIG_ILLEGAL_POINTER_VALUE=0xdead000000000000
CONFIG_DEFAULT_HOSTNAME="(none)"
"""


def test_parse_config() -> None:
    assert parse_config(CONFIG) == {
        "CONFIG_CC_VERSION_TEXT": '"gcc (Debian 12.2.0-14) 12.2.0"', "CONFIG_BPF": "y",
        "CONFIG_HZ": "250", "CONFIG_MODULES_THING": "m",
        "CONFIG_ILLEGAL_POINTER_VALUE": "0xdead000000000000",
        "CONFIG_DEFAULT_HOSTNAME": '"(none)"'}


@pytest.mark.parametrize("line", ["CONFIG_X", "CONFIG_X="], ids=["no-equals", "no-value"])
def test_parse_config_refuses_broken_lines(line: str) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        parse_config(f"CONFIG_A=y\n{line}\n", "/boot/config-test")
    assert "/boot/config-test" in str(e.value) and "line 2" in str(e.value)


@pytest.mark.parametrize("release,version,signature,want", [
    ("6.18.44-fc-v657", "#1 SMP PREEMPT_DYNAMIC", "", (6, 18, 44)),
    ("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-01-02)", "",
     (6, 1, 192)),
    ("5.15.0-91-generic", "#101-Ubuntu SMP", "Ubuntu 5.15.0-91.101-generic 5.15.131\n",
     (5, 15, 131)),
    ("4.9.337", "", "", (4, 9, 255)),  # the patch level is capped at 255
    ("6.8.0", "Debian 6.1.5", "Ubuntu 6.8.0-1.1-generic 6.8.12", (6, 8, 12)),  # Ubuntu first
    ("6.2", "", "", None),
], ids=["plain", "debian", "ubuntu", "capped", "ubuntu-wins", "unparsable"])
def test_kernel_version(release: str, version: str, signature: str,
                        want: tuple[int, int, int] | None) -> None:
    expected = 0 if want is None else (want[0] << 16) | (want[1] << 8) | min(want[2], 255)
    assert parse_kernel_version(release, version, signature) == expected
    assert kernel_version(6, 1, 300) == (6 << 16) + (1 << 8) + 255


def ext(kind: str, size: int, signed: bool = False) -> KconfigExtern:
    return KconfigExtern("CONFIG_T", kind, kind, size, 0, signed=signed)


def le(v: int, n: int) -> bytes:
    return v.to_bytes(n, sys.byteorder, signed=v < 0)


@pytest.mark.parametrize("e,text,want", [
    (ext("tristate", 4), "y", le(1, 4)), (ext("tristate", 4), "m", le(2, 4)),
    (ext("tristate", 4), "n", le(0, 4)), (ext("bool", 1), "y", b"\x01"),
    (ext("bool", 1), "n", b"\x00"), (ext("char", 1), "m", b"m"),
    (ext("int", 4, True), "250", le(250, 4)), (ext("int", 4, True), "-5", le(-5, 4)),
    (ext("int", 8), "0xdead000000000000", le(0xdead000000000000, 8)),
    (ext("int", 2), "010", le(8, 2)),  # octal, as strtoull reads it
    (ext("char_array", 8), '"(none)"', b"(none)\0\0"),
    (ext("char_array", 4), '"toolong"', b"too\0"),  # cut, NUL kept
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_config_values_encode(e: KconfigExtern, text: str, want: bytes) -> None:
    assert e.encode(e.parse(text)) == want
    if e.kind != "char_array":  # a str for a char array is the string itself
        assert e.encode(text) == want  # an override may use the config spelling too


@pytest.mark.parametrize("e,value,code,words", [
    (ext("bool", 1), "m", errno.EINVAL, "implies a tristate or char"),
    (ext("int", 4), "y", errno.EINVAL, "implies a bool, tristate or char"),
    (ext("tristate", 4), "1", errno.EINVAL, "implies an integer"),
    (ext("int", 4), '"s"', errno.EINVAL, "char array"),
    (ext("int", 4), "12abc", errno.EINVAL, "not a valid integer"),
    (ext("int", 2), 70000, errno.ERANGE, "does not fit in 2 bytes"),
    (ext("int", 1, True), 200, errno.ERANGE, "does not fit in 1 bytes"),
    (ext("bool", 1), 2, errno.EINVAL, "not a boolean"),
    (ext("tristate", 4), 3, errno.EINVAL, "not a tristate"),
], ids=["bool-m", "int-y", "tristate-number", "int-string", "junk", "u16-range", "s8-range",
        "bool-2", "tristate-3"])
def test_bad_values_are_refused(e: KconfigExtern, value: object, code: int,
                                words: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        e.encode(value)
    assert exc.value.errno == code and words in str(exc.value)
    assert "'CONFIG_T'" in str(exc.value)


def test_wrong_python_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="CONFIG_T"):
        ext("int", 4).encode([1])
    with pytest.raises(TypeError, match="expected a str"):
        ext("char_array", 4).encode(5)


def test_kfunc_call_is_refused_naming_it() -> None:
    with pytest.raises(NotSupportedError) as e:
        CollectionSpec.from_file(DATA / "kfunc.o")
    assert "'bpf_rcu_read_lock'" in str(e.value) and "kfunc" in str(e.value)


def test_extern_function_call_is_refused_naming_it() -> None:
    # Not a kfunc (no __ksym), defined nowhere: named, not "instruction 0 of section ''".
    with pytest.raises(InvalidArgumentError) as e:
        CollectionSpec.from_file(DATA / "extern_call.o")
    msg = str(e.value)
    assert e.value.errno == errno.EINVAL
    assert "extern function 'helper_elsewhere'" in msg and "call_extern" in msg
    assert "section ''" not in msg


def test_unknown_virtual_externs() -> None:
    from purebpf import resolve_kconfig

    def k(name: str, weak: bool) -> KconfigExtern:
        return KconfigExtern(name, "int", "int", 4, 0, weak=weak)

    # An unknown LINUX_ extern is 0 when __weak (as with libbpf), an error otherwise; a
    # name that is neither CONFIG_ nor LINUX_ has no value at all, weak or not.
    assert resolve_kconfig([k("LINUX_NOT_KNOWN", True)]) == {"LINUX_NOT_KNOWN": 0}
    for name, weak in [("LINUX_NOT_KNOWN", False), ("MY_SETTING", True)]:
        with pytest.raises(InvalidArgumentError) as e:
            resolve_kconfig([k(name, weak)])
        assert e.value.errno == errno.ESRCH and f"'{name}'" in str(e.value)
    assert resolve_kconfig([k("MY_SETTING", False)], strict=False) == {"MY_SETTING": None}
    overridden = k("MY_SETTING", False)
    overridden.value = 7
    assert resolve_kconfig([overridden]) == {"MY_SETTING": 7}
