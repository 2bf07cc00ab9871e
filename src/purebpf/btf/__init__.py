"""BPF Type Format: parse, query, encode and render .BTF and .BTF.ext, in pure Python.

What this module exports makes no system calls beyond reading files, so it works
without privileges; kernel BTF is just the file /sys/kernel/btf/vmlinux.
"""

from __future__ import annotations

from .cdecl import CRenderer, format_decl, format_type
from .cdump import dump_c
from .decode import parse
from .encode import encode, fixup_datasecs, string_builder
from .errors import BTFError, BTFNotFoundError
from .ext import (
    BTFExt, CoreRelo, CoreReloKind, FuncInfo, LineInfo, encode_ext, encode_with_ext, parse_ext,
)
from .spec import Spec, TypeList, TypeRef
from .strings import StringTable, StringTableBuilder
from .types import (
    VOID, Array, Const, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func, FuncLinkage,
    FuncProto, Fwd, Int, IntEncoding, Kind, Member, Param, Ptr, Restrict, Struct, Type,
    TypeTag, Typedef, Union, Var, VarLinkage, VarSecinfo, Void, Volatile, refs,
)

__all__ = [
    "VOID", "Array", "BTFError", "BTFExt", "BTFNotFoundError", "CRenderer", "Const",
    "CoreRelo", "CoreReloKind", "Datasec", "DeclTag", "Enum", "Enum64", "EnumValue", "Float",
    "Func", "FuncInfo", "FuncLinkage", "FuncProto", "Fwd", "Int", "IntEncoding", "Kind",
    "LineInfo", "Member", "Param", "Ptr", "Restrict", "Spec", "StringTable",
    "StringTableBuilder", "Struct", "Type", "TypeList", "TypeRef", "TypeTag", "Typedef",
    "Union", "Var", "VarLinkage", "VarSecinfo", "Void", "Volatile", "dump_c", "encode",
    "encode_ext", "encode_with_ext", "fixup_datasecs", "format_decl", "format_type",
    "parse", "parse_ext", "refs",
    "string_builder",
]
