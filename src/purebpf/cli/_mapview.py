"""How maps look on the command line: elements decoded (BTF-typed where possible), the
``map show`` summary, and the recursive ``map tree``."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from typing import Any

import purebpf.btf.values as btf_values
from purebpf import BPFError, Map, MapOfMaps, MapType

from purebpf.types import flag_names

from ._common import as_bytes, btf_spec_of, hex_list, show, type_name


# -- decoding elements ----------------------------------------------------------------------
class Decoder:
    """Turns a map's raw keys and values into readable values: BTF-typed when the map has
    BTF, else ints for 4- and 8-byte data, else ``hex:...`` strings."""

    def __init__(self, m: Map, btf_cache: dict[int, Any] | None = None) -> None:
        info = m.info()
        self.key_size, self.value_size = info.key_size, info.value_size
        self.outer = isinstance(m, MapOfMaps)
        self.percpu = isinstance(info.type, MapType) and info.type.is_percpu
        spec = None
        if info.btf_id:
            # Inner maps of one object share its BTF: fetch and parse it once per command.
            cache = btf_cache if btf_cache is not None else {}
            if info.btf_id not in cache:
                cache[info.btf_id] = btf_spec_of(m)
            spec = cache[info.btf_id]
        self.btf = spec
        self.key_id = info.btf_key_type_id if spec is not None else 0
        self.value_id = info.btf_value_type_id if spec is not None else 0

    def _decode(self, type_id: int, data: bytes) -> Any:
        if type_id and self.btf is not None:
            try:
                return btf_values.decode(self.btf, type_id, data)
            except ValueError:
                pass  # a type that does not describe these bytes: show them plainly
        if len(data) in (4, 8):
            return int.from_bytes(data, sys.byteorder)
        return "hex:" + data.hex()

    def key(self, raw: bytes) -> Any:
        return self._decode(self.key_id, raw)

    def value(self, raw: bytes) -> Any:
        return self._decode(self.value_id, raw)

    def record(self, key: Any, value: Any) -> dict[str, Any]:
        """One element in bpftool's JSON shape: raw ``key``/``value`` bytes as hex lists
        (``values`` per CPU), ``formatted`` decoded, ``inner_map_id`` for outer maps."""
        kraw = as_bytes(key, self.key_size)
        rec: dict[str, Any] = {"key": hex_list(kraw)}
        fmt: dict[str, Any] = {"key": self.key(kraw)}
        if self.outer:
            rec["value"] = hex_list(int(value).to_bytes(4, sys.byteorder))
            rec["inner_map_id"] = fmt["value"] = int(value)
        elif self.percpu:
            raws = [as_bytes(v, self.value_size) for v in value]
            rec["values"] = [{"cpu": i, "value": hex_list(r)} for i, r in enumerate(raws)]
            fmt["values"] = [{"cpu": i, "value": self.value(r)} for i, r in enumerate(raws)]
        else:
            vraw = as_bytes(value, self.value_size)
            rec["value"] = hex_list(vraw)
            fmt["value"] = self.value(vraw)
        rec["formatted"] = fmt
        return rec


def record_line(rec: dict[str, Any]) -> str:
    """A :meth:`Decoder.record` for humans: ``key: 7  value: 9``."""
    fmt = rec["formatted"]
    if "inner_map_id" in rec:
        return f"key: {show(fmt['key'])}  inner_map_id: {rec['inner_map_id']}"
    if "values" in fmt:
        per_cpu = ", ".join(show(v["value"]) for v in fmt["values"])
        return f"key: {show(fmt['key'])}  values (per CPU): [{per_cpu}]"
    return f"key: {show(fmt['key'])}  value: {show(fmt['value'])}"


def elements(m: Map) -> Iterator[tuple[Any, Any]]:
    """(key, value) pairs; an outer map's values are inner map ids (no fds opened)."""
    if isinstance(m, MapOfMaps):
        return m.inner_ids()
    return m.items()


def sorted_pairs(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    try:
        return sorted(pairs, key=lambda kv: kv[0])
    except TypeError:
        return pairs


# -- describing maps ------------------------------------------------------------------------
def summary(m: Map) -> dict[str, Any]:
    """What ``map show`` prints, with bpftool's JSON field names; outer maps add
    ``inner_template`` (recovered from an inner map: the kernel does not report it) and
    ``entries`` (filled slots)."""
    info = m.info()
    fi = m.fdinfo()
    d: dict[str, Any] = {"id": info.id, "type": type_name(info.type), "name": info.name,
                         "flags": int(info.flags), "bytes_key": info.key_size,
                         "bytes_value": info.value_size, "max_entries": info.max_entries}
    if "memlock" in fi:
        d["bytes_memlock"] = int(fi["memlock"])
    if "frozen" in fi:
        d["frozen"] = int(fi["frozen"])
    if info.btf_id:
        d["btf_id"] = info.btf_id
    if isinstance(m, MapOfMaps):
        t = m.template
        d["inner_template"] = None if t is None else {
            "type": type_name(t.type), "bytes_key": t.key_size, "bytes_value": t.value_size,
            "max_entries": t.max_entries, "flags": int(t.map_flags),
            "max_entries_must_match": t.compares_max_entries()}
        d["entries"] = len(m)
    return d


def summary_lines(d: dict[str, Any], indent: str = "") -> list[str]:
    """bpftool-style text for a :func:`summary`."""
    name = f"  name {d['name']}" if d["name"] else ""
    flags = f"0x{d['flags']:x}" + (f" ({flag_names(d['flags'])})" if d["flags"] else "")
    lines = [f"{indent}{d['id']}: {d['type']}{name}  flags {flags}"]
    second = f"{indent}\tkey {d['bytes_key']}B  value {d['bytes_value']}B  " \
             f"max_entries {d['max_entries']}"
    if "bytes_memlock" in d:
        second += f"  memlock {d['bytes_memlock']}B"
    lines.append(second)
    extra = []
    if d.get("btf_id"):
        extra.append(f"btf_id {d['btf_id']}")
    if d.get("frozen"):
        extra.append("frozen")
    if extra:
        lines.append(f"{indent}\t" + "  ".join(extra))
    if "inner_template" in d:
        lines.append(f"{indent}\t" + template_text(d["inner_template"]))
        lines.append(f"{indent}\tinner maps {d['entries']}"
                     + (f" of {d['max_entries']} slots" if d["type"] == "array_of_maps"
                        else ""))
    return lines


def template_text(t: dict[str, Any] | None) -> str:
    if t is None:
        return ("inner template unknown: no inner map to read it from (the kernel does not "
                "report templates)")
    # Where the kernel does not compare max_entries (not ARRAY/XSKMAP, or BPF_F_INNER_MAP),
    # any size fits; the number read from an inner map would only describe that one.
    size = f"max_entries {t['max_entries']}" if t["max_entries_must_match"] else \
        "max_entries any"
    return (f"inner template: {t['type']}  key {t['bytes_key']}B  value {t['bytes_value']}B  "
            f"{size}  flags {flag_names(t['flags'])}")


def tree_node(m: Map, values: bool, limit: int | None,
              btf_cache: dict[int, Any] | None = None) -> dict[str, Any]:
    """``m`` with every inner map under it (recursively), and with ``values`` the elements."""
    btf_cache = {} if btf_cache is None else btf_cache
    d = summary(m)
    dec = Decoder(m, btf_cache)
    if isinstance(m, MapOfMaps):
        children = []
        for key, inner_id in sorted_pairs(list(m.inner_ids())):
            child: dict[str, Any] = {"key": dec.key(as_bytes(key, dec.key_size))}
            try:
                inner = Map.from_id(inner_id)
            except BPFError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                child.update(id=inner_id, error="removed while reading")
            else:
                with inner:
                    child.update(tree_node(inner, values, limit, btf_cache))
            children.append(child)
        d["inner_maps"] = children
        return d
    try:
        pairs = sorted_pairs(list(m.items())) if values else None
        d["entries"] = len(pairs) if pairs is not None else len(m)
    except BPFError as exc:
        d["entries"] = None
        d["error"] = f"cannot list elements: {exc}"
        return d
    if pairs is not None:
        shown = pairs if limit is None else pairs[:limit]
        d["elements"] = [dec.record(k, v) for k, v in shown]
        if len(shown) < len(pairs):
            d["truncated"] = len(pairs) - len(shown)
    return d


def tree_lines(d: dict[str, Any], indent: str = "") -> Iterator[str]:
    name = f" {d['name']!r}" if d["name"] else ""
    head = (f"{d['id']}: {d['type']}{name}  key {d['bytes_key']}B  value {d['bytes_value']}B"
            f"  max_entries {d['max_entries']}")
    if d["flags"]:
        head += f"  flags {flag_names(d['flags'])}"
    if d.get("btf_id"):
        head += f"  btf_id {d['btf_id']}"
    if "inner_maps" in d:
        slots = f" of {d['max_entries']} slots" if d["type"] == "array_of_maps" else ""
        yield f"{head}  inner maps {len(d['inner_maps'])}{slots}"
        yield f"{indent}    {template_text(d['inner_template'])}"
        for p in d.get("programs", ()):
            how = ", ".join(p["attached"]) if p["attached"] else "not attached"
            yield f"{indent}    used by program {p['id']} {p['name']!r}: {how}"
        if any(c.get("reachable") for c in d["inner_maps"]):
            yield f"{indent}    (* reachable by an attached program)"
        for child in d["inner_maps"]:
            mark = "* " if child.get("reachable") else ""
            prefix = f"{indent}  {mark}[{show(child['key'])}] -> "
            if "error" in child and "type" not in child:
                yield f"{prefix}{child['id']}: {child['error']}"
                continue
            lines = list(tree_lines(child, indent + " " * 6))
            yield prefix + lines[0]
            yield from lines[1:]
        return
    entries = d.get("entries")
    yield f"{head}  entries {entries if entries is not None else '?'}"
    if "error" in d:
        yield f"{indent}    ({d['error']})"
    for rec in d.get("elements", ()):
        yield f"{indent}    {record_line(rec)}"
    if d.get("truncated"):
        yield f"{indent}    ... {d['truncated']} more (--limit)"


__all__ = ["Decoder", "elements", "record_line", "sorted_pairs", "summary", "summary_lines",
           "template_text", "tree_lines", "tree_node"]
