"""``purebpf map ...``: list, show, tree, dump, lookup, update, delete, create, insert, swap, pin."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

from purebpf import BPFError, Map, MapFlags, MapOfMaps, MapSpec, MapType, UpdateFlags

from ._common import (CLIError, each_open, emit, emit_json, open_map, parse_data, parse_int,
                      type_name, wants_json)
from ._mapview import (Decoder, elements, record_line, sorted_pairs, summary, summary_lines,
                       tree_lines, tree_node)


# -- list, show, tree, dump -----------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    out = []
    for m in each_open(Map.ids(), Map.from_id):
        with m:
            try:
                out.append(summary(m))
            except BPFError as exc:  # one odd map must not hide the others
                out.append({"id": m.id, "type": type_name(m.type), "name": m.name,
                            "error": str(exc)})
    if wants_json(args):
        emit_json(args, out)
    else:
        for d in out:
            if "error" in d:
                print(f"{d['id']}: {d['type']}  name {d['name']}  ({d['error']})")
            else:
                print("\n".join(summary_lines(d)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_map(args.map) as m:
        emit(args, summary(m), summary_lines)
    return 0


def cmd_tree(args: argparse.Namespace) -> int:
    limit = None if args.limit is not None and args.limit < 0 else args.limit
    with open_map(args.map) as m:
        if not isinstance(m, MapOfMaps):
            raise CLIError(f"map {m.id} ({type_name(m.type)}) is not an outer map: 'map tree' "
                           "shows ARRAY_OF_MAPS and HASH_OF_MAPS (use 'map dump')")
        d = tree_node(m, args.values, limit)
    _mark_reach(d)
    if wants_json(args):
        emit_json(args, d)
    else:
        print("\n".join(tree_lines(d)))
    return 0


def _mark_reach(d: dict[str, Any]) -> None:
    """Add the programs that use the outer map (or an inner map directly), and mark each
    inner map an attached program can reach: through the outer map (any slot) or by
    using the inner map itself."""
    from ._reach import users

    inner_ids = {c["id"] for c in d.get("inner_maps", []) if "id" in c}
    progs = users({d["id"]} | inner_ids)
    d["programs"] = progs
    through_outer = any(p["attached"] and d["id"] in p["map_ids"] for p in progs)
    for c in d.get("inner_maps", []):
        c["reachable"] = through_outer or any(
            p["attached"] and c.get("id") in p["map_ids"] for p in progs)


def cmd_dump(args: argparse.Namespace) -> int:
    with open_map(args.map) as m:
        dec = Decoder(m)
        records = [dec.record(k, v) for k, v in sorted_pairs(list(elements(m)))]
    if wants_json(args):
        emit_json(args, records)
    else:
        for rec in records:
            print(record_line(rec))
        print(f"Found {len(records)} element{'s' if len(records) != 1 else ''}")
    return 0


# -- elements -------------------------------------------------------------------------------
def cmd_lookup(args: argparse.Namespace) -> int:
    with open_map(args.map) as m:
        dec = Decoder(m)
        key = parse_data(args.key, m.key_size, "key")
        if isinstance(m, MapOfMaps):
            rec = dec.record(key, m.inner_id(key))
        else:
            rec = dec.record(key, m[key])
    if wants_json(args):
        emit_json(args, rec)
    else:
        print(record_line(rec))
    return 0


_UPDATE_FLAGS = {"any": UpdateFlags.ANY, "noexist": UpdateFlags.NOEXIST,
                 "exist": UpdateFlags.EXIST}


def cmd_update(args: argparse.Namespace) -> int:
    flags = _UPDATE_FLAGS[args.flags]
    with open_map(args.map) as m:
        key = parse_data(args.key, m.key_size, "key")
        if isinstance(m, MapOfMaps):
            with open_map(args.value) as inner:
                m.update(key, inner, flags)
        else:
            m.update(key, parse_data(args.value, m.value_size, "value"), flags)
    return _done(args)


def cmd_delete(args: argparse.Namespace) -> int:
    with open_map(args.map) as m:
        key = parse_data(args.key, m.key_size, "key")
        del m[key]
    return _done(args)


def _done(args: argparse.Namespace) -> int:
    if wants_json(args):
        emit_json(args, None)  # bpftool -j prints null for commands without output
    return 0


# -- creating, inserting, swapping, pinning -------------------------------------------------
def _map_type(text: str) -> MapType:
    key = text.upper().replace("-", "_")
    if key.startswith("BPF_MAP_TYPE_"):
        key = key[len("BPF_MAP_TYPE_"):]
    try:
        return MapType[key]
    except KeyError:
        names = ", ".join(t.name.lower() for t in MapType if t != MapType.UNSPEC)
        raise CLIError(f"unknown map type {text!r}; one of: {names}") from None


def _map_flags(text: str | None) -> MapFlags:
    if not text:
        return MapFlags(0)
    value = 0
    for part in text.replace("|", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if part[0].isdigit():
            value |= parse_int(part, "flag")
            continue
        key = part.upper().replace("-", "_")
        key = key[len("BPF_F_"):] if key.startswith("BPF_F_") else key
        try:
            value |= MapFlags[key]
        except KeyError:
            names = ", ".join(str(f.name).lower() for f in MapFlags)
            raise CLIError(f"unknown map flag {part!r}; one of: {names}") from None
    return MapFlags(value)


def cmd_create(args: argparse.Namespace) -> int:
    check_pin_path(args.pin)
    mtype = _map_type(args.type)
    key_size = args.key_size or (4 if mtype.is_map_in_map else 0)
    spec = MapSpec(mtype, key_size=key_size, value_size=args.value_size or 0,
                   max_entries=args.max_entries, flags=_map_flags(args.flags), name=args.name)
    with contextlib.ExitStack() as stack:
        inner = None
        if mtype.is_map_in_map:
            if not args.inner:
                raise CLIError(f"a {mtype.name} map needs --inner ID|PIN: an existing map "
                               "whose type, sizes and flags every inner map must share")
            inner = stack.enter_context(open_map(args.inner))
        elif args.inner:
            raise CLIError("--inner is only for array_of_maps and hash_of_maps")
        m = stack.enter_context(Map.create(spec, inner_map=inner) if inner is not None
                                else Map.create(spec))
        m.pin(args.pin)
        d = summary(m)
    d["pinned"] = args.pin
    if wants_json(args):
        emit_json(args, d)
    else:
        print(f"created map {d['id']} ({d['type']}{' ' + repr(d['name']) if d['name'] else ''})"
              f", pinned at {args.pin}")
    return 0


def check_pin_path(path: str) -> None:
    """A bpffs refuses '.' in file names (EPERM, which reads like missing privileges)."""
    if "." in os.path.basename(path.rstrip("/")):
        raise CLIError(f"cannot pin at {path}: a bpffs does not allow '.' in names "
                       "(use '_')")


def _outer(ref: str) -> MapOfMaps:
    m = open_map(ref)
    if not isinstance(m, MapOfMaps):
        what = f"map {m.id} ({type_name(m.type)})"
        m.close()
        raise CLIError(f"{what} is not an outer map (array_of_maps or hash_of_maps)")
    return m


def cmd_insert(args: argparse.Namespace) -> int:
    outer = _outer(args.outer)
    with outer, open_map(args.inner) as inner:
        key = parse_data(args.key, outer.key_size, "key")
        outer[key] = inner  # checked against the template: a mismatch names the field
        inner_id = inner.id
    if wants_json(args):
        emit_json(args, {"inner_map_id": inner_id})
    return 0


def cmd_swap(args: argparse.Namespace) -> int:
    outer = _outer(args.outer)
    with outer, open_map(args.inner) as inner:
        key = parse_data(args.key, outer.key_size, "key")
        old = outer.swap(key, inner)
        old_id = None
        if old is not None:
            old_id = old.id
            old.close()
        new_id = inner.id
    if wants_json(args):
        emit_json(args, {"old_inner_map_id": old_id, "inner_map_id": new_id})
    else:
        print(f"old inner map: {old_id if old_id is not None else 'none'}")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    check_pin_path(args.path)
    with open_map(args.map) as m:
        m.pin(args.path)
    return _done(args)


# -- the parser -----------------------------------------------------------------------------
REF = "ID|PIN|NAME"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("map", help="inspect and change maps, outer maps first",
                       description="Inspect and change BPF maps. A map is named by its id, "
                       "a path where it is pinned (anything with a '/'), or its kernel name; "
                       "'id:', 'pinned:' and 'name:' prefixes force one reading.")
    msub = p.add_subparsers(dest="map_command", metavar="COMMAND", required=True)

    def cmd(name: str, func: Any, help: str, description: str | None = None
            ) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = msub.add_parser(name, help=help, parents=[common],
                                                     description=description or help)
        c.set_defaults(func=func)
        return c

    cmd("list", cmd_list, "every map in the system (like bpftool map show)")
    c = cmd("show", cmd_show, "one map: id, type, sizes, flags, btf id; outer maps add the "
            "inner template and the number of filled slots")
    c.add_argument("map", metavar=REF)
    c = cmd("tree", cmd_tree, "an outer map with every inner map under it",
            "An outer map (ARRAY_OF_MAPS/HASH_OF_MAPS) with every inner map under it: ids, "
            "types, sizes, entry counts and, with --values, the elements (BTF-decoded when "
            "the map has BTF). Works on maps any tool created.")
    c.add_argument("map", metavar=REF)
    c.add_argument("--values", action="store_true", help="show each inner map's elements")
    c.add_argument("--limit", type=int, default=32, metavar="N",
                   help="elements shown per inner map with --values (default 32; -1: all)")
    c = cmd("dump", cmd_dump, "every element of a map (outer maps: inner map ids)")
    c.add_argument("map", metavar=REF)
    c = cmd("lookup", cmd_lookup, "one element", "Look up one element. KEY is an integer "
            "(7, 0x10, -1; stored in host byte order in the map's key size) or hex:BYTES.")
    c.add_argument("map", metavar=REF)
    c.add_argument("key", metavar="KEY")
    c = cmd("update", cmd_update, "store one element",
            "Store one element. KEY and VALUE are integers or hex:BYTES sized to the map; "
            "for an outer map VALUE is the inner map (ID|PIN|NAME).")
    c.add_argument("map", metavar=REF)
    c.add_argument("key", metavar="KEY")
    c.add_argument("value", metavar="VALUE")
    c.add_argument("--flags", choices=sorted(_UPDATE_FLAGS), default="any",
                   help="any (default): create or replace; noexist: only create; exist: "
                   "only replace")
    c = cmd("delete", cmd_delete, "delete one element")
    c.add_argument("map", metavar=REF)
    c.add_argument("key", metavar="KEY")
    c = cmd("create", cmd_create, "create a map and pin it",
            "Create a map and pin it (an unpinned map would vanish when purebpf exits). "
            "Outer maps take their inner-map template from --inner.")
    c.add_argument("name", metavar="NAME", help="kernel name (up to 15 characters)")
    c.add_argument("--type", required=True, metavar="TYPE",
                   help="map type: hash, array, array_of_maps, hash_of_maps, lru_hash, ...")
    c.add_argument("--key-size", type=int, metavar="K",
                   help="key size in bytes (default 4 for arrays and outer maps)")
    c.add_argument("--value-size", type=int, metavar="V",
                   help="value size in bytes (default 4 for outer maps)")
    c.add_argument("--max-entries", type=int, required=True, metavar="N")
    c.add_argument("--flags", metavar="FLAGS",
                   help="map flags by name or number, joined by ',' or '|' "
                   "(no_prealloc, inner_map, mmapable, rdonly_prog, ...)")
    c.add_argument("--inner", metavar="ID|PIN", help="template map for an outer map")
    c.add_argument("--pin", required=True, metavar="PATH", help="where to pin it in a bpffs")
    c = cmd("insert", cmd_insert, "put an inner map into a slot of an outer map",
            "Put an inner map into a slot of an outer map, after checking it against the "
            "outer map's template (a mismatch names the field).")
    c.add_argument("outer", metavar="OUTER")
    c.add_argument("key", metavar="KEY")
    c.add_argument("inner", metavar="INNER", help="the inner map: ID|PIN|NAME")
    c = cmd("swap", cmd_swap, "replace the inner map in a slot; prints the old inner map id",
            "Replace the inner map in a slot with one update: programs see the old map or "
            "the new one, never a mix. Prints the old inner map's id.")
    c.add_argument("outer", metavar="OUTER")
    c.add_argument("key", metavar="KEY")
    c.add_argument("inner", metavar="INNER", help="the new inner map: ID|PIN|NAME")
    c = cmd("pin", cmd_pin, "pin a map at a path in a bpffs")
    c.add_argument("map", metavar=REF)
    c.add_argument("path", metavar="PATH")


__all__ = ["add_parser", "check_pin_path"]
