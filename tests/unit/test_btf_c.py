"""Rendering BTF as C: declarators, definitions, whole-spec dumps, and clang compiling them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from purebpf.btf import (
    Array, Const, CRenderer, Datasec, DeclTag, Enum, Enum64, EnumValue, Func, FuncLinkage,
    FuncProto, Fwd, Int, IntEncoding, Member, Param, Ptr, Restrict, Spec, Struct, TypeTag,
    Typedef, Union, Var, VarLinkage, VarSecinfo, Volatile, dump_c, format_decl, format_type,
    parse,
)
from purebpf.btf.layout import bitfield_bits

try:
    from . import test_btf_helpers as h
except ImportError:
    import test_btf_helpers as h  # type: ignore[no-redef]

S32 = Int("int", 4, IntEncoding.SIGNED, 32)
CHAR = Int("char", 1, IntEncoding.CHAR | IntEncoding.SIGNED, 8)


def decl_spec() -> Spec:
    return Spec([
        S32, CHAR, Ptr(1), Array(1, 1, 4), Ptr(4),                          # 1-5
        Const(2), Ptr(6), Const(7),                                          # 6-8
        FuncProto(1, (Param("a", 1), Param("b", 7))), Ptr(9), Array(10, 1, 2),  # 9-11
        FuncProto(0, ()), Ptr(12), Volatile(3), Restrict(3),                 # 12-15
        FuncProto(1, (Param("fmt", 7), Param("", 0))), Typedef("fn_t", 10),  # 16-17
        Struct("s", 8, (Member("x", 1, 0), Member("y", 1, 32))), Ptr(18),    # 18-19
        Fwd("f", union=True), Ptr(20), Enum("e", 4, False, (EnumValue("E0", 0),)),  # 20-22
        Array(4, 1, 3), TypeTag("user", 2), Ptr(24), Const(4), Ptr(13),      # 23-27
        FuncProto(13, (Param("", 1),)), Ptr(28),                             # 28-29
    ])


DECLS = [
    ("int", 1, "", "int"), ("ptr", 3, "p", "int *p"), ("abstract-ptr", 3, "", "int *"),
    ("array", 4, "a", "int a[4]"), ("ptr-to-array", 5, "pa", "int (*pa)[4]"),
    ("const-char-ptr", 7, "s", "const char *s"), ("const-ptr", 8, "s", "const char *const s"),
    ("function", 9, "f", "int f(int a, const char *b)"),
    ("func-ptr", 10, "fp", "int (*fp)(int a, const char *b)"),
    ("array-of-func-ptrs", 11, "fps", "int (*fps[2])(int a, const char *b)"),
    ("void-func-ptr", 13, "", "void (*)(void)"), ("volatile-ptr", 14, "v", "int *volatile v"),
    ("restrict-ptr", 15, "r", "int *restrict r"),
    ("variadic", 16, "printf", "int printf(const char *fmt, ...)"),
    ("typedef", 17, "cb", "fn_t cb"), ("struct-ptr", 19, "sp", "struct s *sp"),
    ("fwd-union-ptr", 21, "u", "union f *u"), ("enum", 22, "x", "enum e x"),
    ("matrix", 23, "m", "int m[3][4]"), ("type-tag-hidden", 25, "up", "char *up"),
    ("const-array", 26, "ca", "const int ca[4]"),
    ("func-returning-func-ptr", 29, "signal",
     "void (*(*signal)(int))(void)"),
]


@pytest.mark.parametrize(("tid", "name", "expected"),
                         [pytest.param(t, n, e, id=i) for i, t, n, e in DECLS])
def test_format_decl(tid: int, name: str, expected: str) -> None:
    assert format_decl(decl_spec(), tid, name) == expected


def test_type_tags_can_be_shown() -> None:
    text = CRenderer(decl_spec(), type_tags=True).decl(25, "up")
    assert text == 'char __attribute__((btf_type_tag("user"))) *up'


def def_spec() -> Spec:
    return Spec([
        S32, CHAR, Int("unsigned int", 4, IntEncoding.NONE, 32),            # 1-3
        Union("", 4, (Member("w", 3, 0), Member("c", 1, 0))),               # 4
        Struct("rec", 24, (Member("lo", 3, 0, 3), Member("hi", 3, 3, 5),
                           Member("", 4, 32), Member("name", 9, 64), Member("last", 2, 128))),  # 5
        Struct("pk", 5, (Member("c", 2, 0), Member("i", 1, 8))),             # 6
        Enum("sgn", 4, True, (EnumValue("NEG", -1), EnumValue("POS", 1))),   # 7
        Enum("tiny", 1, False, (EnumValue("T", 3),)),                        # 8
        Array(2, 1, 8),                                                      # 9
        Enum64("e64", 8, False, (EnumValue("BIG", 1 << 63), EnumValue("SM", 1 << 40))),  # 10
        FuncProto(1, (Param("a", 1),)), Ptr(11), Typedef("handler_t", 12),   # 11-13
        Func("handle", 11, FuncLinkage.STATIC), Func("ext", 11, FuncLinkage.EXTERN),  # 14-15
        Var("counter", 1, VarLinkage.EXTERN), Fwd("later"),                  # 16-17
        Datasec(".data", 4, (VarSecinfo(16, 0, 4),)), DeclTag("hot", 14, -1),  # 18-19
        Struct("empty", 0, ()),                                              # 20
    ])


DEFS = [
    ("struct", 5, "struct rec {\n\tunsigned int lo: 3;\n\tunsigned int hi: 5;\n\tunion {\n"
     "\t\tunsigned int w;\n\t\tint c;\n\t};\n\tchar name[8];\n\tchar last;\n\tchar: 8;\n"
     "\tshort: 16;\n\tint: 32;\n};"),
    ("packed", 6, "struct pk {\n\tchar c;\n\tint i;\n} __attribute__((packed));"),
    ("signed-enum", 7, "enum sgn {\n\tNEG = -1,\n\tPOS = 1,\n};"),
    ("byte-enum", 8, "enum tiny {\n\tT = 3,\n} __attribute__((mode(QI)));"),
    ("enum64", 10, "enum e64 {\n\tBIG = 9223372036854775808ULL,\n\tSM = 1099511627776LL,\n};"),
    ("typedef", 13, "typedef int (*handler_t)(int a);"),
    ("static-func", 14, "static int handle(int a);"), ("extern-func", 15, "extern int ext(int a);"),
    ("extern-var", 16, "extern int counter;"), ("fwd", 17, "struct later;"),
    ("datasec", 18, "/* section .data (4 bytes): counter */"),
    ("decl-tag", 19, '/* btf_decl_tag("hot") on handle */'),
    ("empty-struct", 20, "struct empty {};"), ("int", 1, "int;"),
]


@pytest.mark.parametrize(("tid", "expected"), [pytest.param(t, e, id=i) for i, t, e in DEFS])
def test_format_type(tid: int, expected: str) -> None:
    assert format_type(def_spec(), tid) == expected


# -- whole-spec dumps -------------------------------------------------------------------

def body(spec: Spec) -> str:
    return dump_c(spec, guard=None, preserve_access_index=False)


def test_dump_defines_embedded_types_first() -> None:
    spec = Spec([S32, Struct("outer", 4, (Member("in", 3, 0),)),
                 Struct("inner", 4, (Member("v", 1, 0),))])
    text = body(spec)
    assert text.index("struct inner {") < text.index("struct outer {")
    assert "struct inner;" not in text


def test_dump_forward_declares_pointer_cycles() -> None:
    spec = Spec([Struct("a", 8, (Member("b", 3, 0),)), Struct("b", 8, (Member("a", 4, 0),)),
                 Ptr(2), Ptr(1)])
    assert body(spec) == ("struct b;\n\nstruct a {\n\tstruct b *b;\n};\n\n"
                          "struct b {\n\tstruct a *a;\n};\n\n")


def test_dump_typedef_of_self_referencing_struct() -> None:
    spec = Spec([Typedef("node_t", 2), Struct("node", 8, (Member("next", 3, 0),)), Ptr(1)])
    assert body(spec) == ("struct node;\n\ntypedef struct node node_t;\n\n"
                          "struct node {\n\tnode_t *next;\n};\n\n")


def test_dump_renames_clashes_and_skips_builtins() -> None:
    spec = Spec([
        S32, Struct("dup", 4, (Member("a", 1, 0),)), Struct("dup", 8, (Member("b", 1, 32),)),
        Enum("e1", 4, False, (EnumValue("X", 0),)), Enum("e2", 4, False, (EnumValue("X", 1),)),
        Typedef("__builtin_va_list", 1), Enum("", 4, False, (EnumValue("FREE", 7),)),
        Struct("user", 12, (Member("d", 3, 0), Member("e", 9, 64))),
        Enum("", 4, False, (EnumValue("INLINE", 1),)), Fwd("dup"),
    ])
    text = body(spec)
    assert "struct dup {" in text and "struct dup___2 {" in text
    assert "\tstruct dup___2 d;" in text
    assert "\tX = 0," in text and "\tX___2 = 1," in text
    assert "__builtin_va_list" not in text
    assert "enum {\n\tFREE = 7,\n};" in text  # unreferenced anonymous enum: top level
    assert "\tenum {\n\t\tINLINE = 1,\n\t} e;" in text  # referenced: inline
    assert text.count("struct dup;") == 0  # the FWD names the defined struct


def test_enum_without_values_is_a_forward_declaration() -> None:
    """6.1's and 6.12's vmlinux BTF have named enums with no values: 'enum NAME {\n\n};'
    is not C (clang refuses it); bpftool writes 'enum NAME;'."""
    spec = Spec([S32, Enum("empty", 4, False, ()),
                 Struct("user", 4, (Member("e", 2, 0),))])
    text = body(spec)
    assert "enum empty;\n" in text and "enum empty {" not in text
    assert "\tenum empty e;" in text


def test_dump_header_guard_and_pragma() -> None:
    text = dump_c(Spec([S32]), guard="X_H")
    assert text.startswith("#ifndef X_H\n#define X_H\n") and text.endswith("#endif /* X_H */\n")
    assert "preserve_access_index" in text


# -- compiling the output ---------------------------------------------------------------

CLANG = shutil.which("clang") or shutil.which("clang-19")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang (or clang-19) not installed")


def layout_asserts(spec: Spec, text: str) -> str:
    """The dump plus static assertions that clang lays each struct out as BTF says."""
    lines = [text, "#define OFF(t, m) __builtin_offsetof(t, m)"]
    seen: dict[str, int] = {}
    for _, t in spec.items():
        seen[t.name] = seen.get(t.name, 0) + isinstance(t, (Struct, Union, Enum, Enum64))
    for tid, t in spec.items():
        if isinstance(t, (Struct, Union)) and t.name and seen[t.name] == 1:
            tag = f"{'struct' if isinstance(t, Struct) else 'union'} {t.name}"
            lines.append(f'_Static_assert(sizeof({tag}) == {t.size}, "{tag} size");')
            for m in t.members:
                if m.name and not bitfield_bits(spec, m):
                    lines.append(f'_Static_assert(OFF({tag}, {m.name}) == {m.bit_offset // 8}, '
                                 f'"{tag}.{m.name}");')
    return "\n".join(lines) + "\n"


def compile_c(text: str, tmp_path: Path, target: str = "bpf") -> None:
    src = tmp_path / "dump.c"
    src.write_text(text)
    extra = [] if target == "bpf" else ["-DBPF_NO_PRESERVE_ACCESS_INDEX"]
    assert CLANG is not None
    res = subprocess.run([CLANG, "-target", target, "-Wall", "-Werror", "-fsyntax-only",
                          *extra, str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[:3000]


@needs_clang
@pytest.mark.parametrize("name", h.OBJECTS)
def test_object_dumps_compile_with_btf_layout(name: str, tmp_path: Path) -> None:
    spec = parse(h.load_object(name).section(".BTF"))
    compile_c(layout_asserts(spec, dump_c(spec)), tmp_path)


@needs_clang
def test_hand_made_dumps_compile(tmp_path: Path) -> None:
    text = dump_c(def_spec()) + dump_c(decl_spec(), guard="SECOND") + \
        dump_c(Spec([S32, Enum("no_values", 4, False, ()), Ptr(2),
                    Struct("holder", 8, (Member("e", 3, 0),))]), guard="THIRD")
    compile_c(text.replace("enum e64", "enum e64x"), tmp_path)


@pytest.fixture(scope="module")
def vmlinux_dump() -> tuple[Spec, str]:
    if not h.VMLINUX.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux")
    spec = parse(h.VMLINUX.read_bytes())
    return spec, dump_c(spec)


@needs_clang
def test_vmlinux_dump_compiles_for_bpf(vmlinux_dump: tuple[Spec, str], tmp_path: Path) -> None:
    spec, text = vmlinux_dump
    assert "struct task_struct {" in text and "struct bpf_map {" in text
    compile_c(text + "\nstruct task_struct *t;\n", tmp_path)


@needs_clang
def test_vmlinux_dump_matches_kernel_layout(vmlinux_dump: tuple[Spec, str],
                                           tmp_path: Path) -> None:
    # x86-64 and BPF agree on every size but va_list, which x86-64 gets right.
    if h.VMLINUX.exists() and "x86_64" not in subprocess.run(
            ["uname", "-m"], capture_output=True, text=True).stdout:
        pytest.skip("layout check is written for an x86-64 kernel")
    spec, text = vmlinux_dump
    compile_c(layout_asserts(spec, text), tmp_path, target="x86_64-linux-gnu")


# -- agreement with bpftool's "format c" ------------------------------------------------

needs_bpftool = pytest.mark.skipif(not h.have("bpftool"), reason="bpftool not installed")
_DEFINED = re.compile(r"^(struct|union|enum) (\w+) \{", re.M)
_TOP_ANON_ENUMS = re.compile(r"^enum \{", re.M)


def bpftool_c(path: Path) -> str:
    return subprocess.run([h.tool_path("bpftool"), "btf", "dump", "file", str(path), "format",
                           "c"], check=True, capture_output=True, text=True).stdout


def assert_same_definitions(ours: str, theirs: str) -> None:
    assert set(_DEFINED.findall(ours)) == set(_DEFINED.findall(theirs))
    assert len(_TOP_ANON_ENUMS.findall(ours)) == len(_TOP_ANON_ENUMS.findall(theirs))


@needs_bpftool
@pytest.mark.parametrize("name", h.OBJECTS)
def test_object_dump_defines_what_bpftool_defines(name: str) -> None:
    spec = parse(h.load_object(name).section(".BTF"))
    assert_same_definitions(dump_c(spec), bpftool_c(h.TESTDATA / name))


@needs_bpftool
def test_vmlinux_dump_defines_what_bpftool_defines(vmlinux_dump: tuple[Spec, str]) -> None:
    assert_same_definitions(vmlinux_dump[1], bpftool_c(h.VMLINUX))
