"""``union bpf_attr`` layouts, one ctypes Structure per command family.

Field names and order follow include/uapi/linux/bpf.h. The kernel rejects a non-zero byte
past the last field a command knows (CHECK_ATTR), so every structure is passed with its own
size and is zero-initialised by ctypes.
"""

from __future__ import annotations

import ctypes

u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64


class MapCreateAttr(ctypes.Structure):
    """BPF_MAP_CREATE."""

    _fields_ = [
        ("map_type", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("inner_map_fd", u32),
        ("numa_node", u32),
        ("map_name", ctypes.c_char * 16),
        ("map_ifindex", u32),
        ("btf_fd", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("map_extra", u64),
        ("value_type_btf_obj_fd", s32),
        ("map_token_fd", s32),
    ]


class MapElemAttr(ctypes.Structure):
    """BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, BPF_MAP_GET_NEXT_KEY, LOOKUP_AND_DELETE_ELEM."""

    _fields_ = [
        ("map_fd", u32),
        ("key", u64),
        ("value", u64),  # next_key for BPF_MAP_GET_NEXT_KEY
        ("flags", u64),
    ]


class MapBatchAttr(ctypes.Structure):
    """BPF_MAP_{LOOKUP,LOOKUP_AND_DELETE,UPDATE,DELETE}_BATCH."""

    _fields_ = [
        ("in_batch", u64),
        ("out_batch", u64),
        ("keys", u64),
        ("values", u64),
        ("count", u32),
        ("map_fd", u32),
        ("elem_flags", u64),
        ("flags", u64),
    ]


class ObjAttr(ctypes.Structure):
    """BPF_OBJ_PIN and BPF_OBJ_GET."""

    _fields_ = [
        ("pathname", u64),
        ("bpf_fd", u32),
        ("file_flags", u32),
        ("path_fd", s32),
    ]


class GetIdAttr(ctypes.Structure):
    """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID."""

    _fields_ = [
        ("id", u32),  # start_id / map_id / prog_id / btf_id / link_id
        ("next_id", u32),
        ("open_flags", u32),
        ("fd_by_id_token_fd", s32),
    ]


class InfoAttr(ctypes.Structure):
    """BPF_OBJ_GET_INFO_BY_FD."""

    _fields_ = [
        ("bpf_fd", u32),
        ("info_len", u32),
        ("info", u64),
    ]


class MapFdAttr(ctypes.Structure):
    """BPF_MAP_FREEZE (only map_fd)."""

    _fields_ = [("map_fd", u32)]


class BpfMapInfo(ctypes.Structure):
    """struct bpf_map_info, up to map_extra (the kernel copies min(len, its size))."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("name", ctypes.c_char * 16),
        ("ifindex", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("btf_id", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_id", u32),
        ("map_extra", u64),
    ]


# Sizes as in the uapi header (checked by tests/unit/test_sys_layout.py).
EXPECTED_SIZES = {
    MapCreateAttr: 80,
    MapElemAttr: 32,
    MapBatchAttr: 56,
    ObjAttr: 24,
    GetIdAttr: 16,
    InfoAttr: 16,
    MapFdAttr: 4,
    BpfMapInfo: 88,
}
