"""``purebpf prog ...`` (list, show, load, run) and ``purebpf obj inspect``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import purebpf.btf.values as btf_values
from purebpf import (BPFError, Collection, CollectionSpec, KconfigExtern, Map, MapSpec,
                     Program, ProgramInfo, VariableSpec, resolve_kconfig)
from purebpf.btf import Datasec, Var

from purebpf.types import flag_names

from ._common import (CLIError, each_open, emit, emit_all, emit_json, open_program, show,
                      type_name, wants_json)



# -- list, show -----------------------------------------------------------------------------
def _loaded_at(info: ProgramInfo) -> int:
    """Wall-clock seconds of the load (the kernel reports ns since boot)."""
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return int(boot + info.load_time_ns / 1e9)


def summary(p: Program) -> dict[str, Any]:
    """What ``prog show`` prints, with bpftool's JSON field names."""
    i = p.info()
    fi = p.fdinfo()
    d: dict[str, Any] = {"id": i.id, "type": type_name(i.type), "name": i.name, "tag": i.tag,
                         "gpl_compatible": i.gpl_compatible, "loaded_at": _loaded_at(i),
                         "uid": i.created_by_uid, "bytes_xlated": i.xlated_size,
                         "jited": i.jited_size > 0, "bytes_jited": i.jited_size}
    if "memlock" in fi:
        d["bytes_memlock"] = int(fi["memlock"])
    d["map_ids"] = list(i.map_ids)
    if i.btf_id:
        d["btf_id"] = i.btf_id
    if i.run_count:
        d["run_time_ns"], d["run_cnt"] = i.run_time_ns, i.run_count
    d["verified_insns"] = i.verified_insns
    return d


def summary_lines(d: dict[str, Any]) -> list[str]:
    gpl = "  gpl" if d["gpl_compatible"] else ""
    name = f"  name {d['name']}" if d["name"] else ""
    when = datetime.datetime.fromtimestamp(d["loaded_at"], datetime.timezone.utc)
    lines = [f"{d['id']}: {d['type']}{name}  tag {d['tag']}{gpl}",
             f"\tloaded_at {when.strftime('%Y-%m-%dT%H:%M:%S%z')}  uid {d['uid']}"]
    sizes = f"\txlated {d['bytes_xlated']}B  " + \
        (f"jited {d['bytes_jited']}B" if d["jited"] else "not jited")
    if "bytes_memlock" in d:
        sizes += f"  memlock {d['bytes_memlock']}B"
    if d["map_ids"]:
        sizes += "  map_ids " + ",".join(str(m) for m in d["map_ids"])
    lines.append(sizes)
    extra = []
    if d.get("btf_id"):
        extra.append(f"btf_id {d['btf_id']}")
    if d.get("run_cnt"):
        extra.append(f"run_time_ns {d['run_time_ns']}  run_cnt {d['run_cnt']}")
    extra.append(f"verified_insns {d['verified_insns']}")
    lines.append("\t" + "  ".join(extra))
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    out = []
    for p in each_open(Program.ids(), Program.from_id):
        with p:
            out.append(summary(p))
    emit_all(args, out, summary_lines)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_program(args.prog) as p:
        emit(args, summary(p), summary_lines)
    return 0


# -- load -----------------------------------------------------------------------------------
def _read_spec(path: str) -> CollectionSpec:
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    return CollectionSpec.from_file(path)


def pin_name(name: str) -> str:
    """A file name for ``name`` in a bpffs, which refuses '.' in names (EPERM): ``_`` for
    ``.``, as libbpf does (``globals.rodata`` -> ``globals_rodata``)."""
    return name.replace(".", "_")


def cmd_load(args: argparse.Namespace) -> int:
    spec = _read_spec(args.obj)
    root = args.pin_root
    # Maps declared with pinning (LIBBPF_PIN_BY_NAME) are pinned by the loader at
    # <root>/<name>, or reused when a compatible map is pinned there already.
    by_name = root if root is not None else Collection.DEFAULT_PIN_ROOT
    reused = {n for n, ms in spec.maps.items()
              if ms.pinning and os.path.exists(os.path.join(by_name, n))}
    paths: dict[tuple[str, str], str | None] = {}
    for name in spec.programs:
        paths["program", name] = os.path.join(root, pin_name(name)) if root else None
    for name, ms in spec.maps.items():
        paths["map", name] = os.path.join(by_name, name) if ms.pinning else \
            os.path.join(root, pin_name(name)) if root else None
    _check_pin_paths(paths, reused)
    # What to undo, in reverse, if a step fails: no pin and no directory stays behind.
    rollback: list[tuple[Callable[[str], None], str]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_undo, rollback)  # runs last, after the collection's fds are closed
        if root is not None and not os.path.isdir(root):
            os.makedirs(root)
            rollback.append((os.rmdir, root))
        coll = Collection.load(spec, pin_root=root)
        stack.callback(coll.close)  # on success too: the pins keep everything alive
        for (kind, name), path in paths.items():
            if path and kind == "map" and spec.maps[name].pinning and name not in reused:
                rollback.append((os.unlink, path))  # pinned by the loader
        loaded: dict[str, list[dict[str, Any]]] = {"programs": [], "maps": []}
        objects: list[tuple[str, str, Program | Map]] = [
            *(("program", n, o) for n, o in coll.programs.items()),
            *(("map", n, o) for n, o in coll.maps.items())]
        for kind, name, obj in objects:
            path = paths[kind, name]
            if path is not None and not (kind == "map" and spec.maps[name].pinning):
                obj.pin(path)
                rollback.append((os.unlink, path))
            loaded[kind + "s"].append({"name": name, "id": obj.id, "type": type_name(obj.type),
                                       "pinned": path, "reused": name in reused and
                                       kind == "map"})
        rollback.clear()  # everything worked: keep it all
    if wants_json(args):
        emit_json(args, {"object": args.obj, **loaded})
        return 0
    print(f"loaded {args.obj}: {len(loaded['programs'])} program(s), "
          f"{len(loaded['maps'])} map(s)")
    for kind in ("programs", "maps"):
        for item in loaded[kind]:
            where = f"pinned at {item['pinned']}" if item["pinned"] else "not pinned"
            if item["reused"]:
                where = f"reused from {item['pinned']}"
            print(f"  {kind[:-1]:<7} {item['name']:<20} {item['type']:<16} id {item['id']:<6} "
                  f"{where}")
    if root is None and not any(item["pinned"] for kind in loaded.values() for item in kind):
        print("nothing was pinned: the kernel frees these when purebpf exits "
              "(pass --pin-root DIR to keep them)")
    return 0


def _check_pin_paths(paths: dict[tuple[str, str], str | None], reused: set[str]) -> None:
    """Refuse before loading anything when two objects want one path or a path is taken."""
    seen: dict[str, str] = {}
    for (kind, name), path in paths.items():
        if path is None:
            continue
        if path in seen:
            raise CLIError(f"{seen[path]} and {kind} {name!r} would both be pinned at {path}")
        seen[path] = f"{kind} {name!r}"
        if os.path.exists(path) and not (kind == "map" and name in reused):
            raise CLIError(f"{path} already exists (remove it, or choose another --pin-root)")


def _undo(steps: list[tuple[Callable[[str], None], str]]) -> None:
    for func, path in reversed(steps):
        with contextlib.suppress(OSError):
            func(path)


# -- run ------------------------------------------------------------------------------------
def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def cmd_run(args: argparse.Namespace) -> int:
    data = _read_input(args.data) if args.data else b""
    ctx = _read_input(args.ctx) if args.ctx else None
    if args.repeat < 1:
        raise CLIError(f"--repeat must be at least 1, got {args.repeat}")
    with open_program(args.prog) as p:
        r = p.test_run(data, ctx, repeat=args.repeat)
    if args.data_out:
        with open(args.data_out, "wb") as f:
            f.write(r.data)
    d = {"retval": r.retval, "duration": r.duration_ns, "data_size_out": len(r.data)}
    if r.ctx:
        d["ctx_size_out"] = len(r.ctx)
    if wants_json(args):
        emit_json(args, d)
    else:
        print(f"retval {r.retval}  duration {r.duration_ns}ns (mean of {args.repeat} "
              f"run{'s' if args.repeat != 1 else ''})  data out {len(r.data)}B")
    return 0


# -- obj inspect ----------------------------------------------------------------------------
def _spec_dict(ms: MapSpec) -> dict[str, Any]:
    return {"type": type_name(ms.type), "bytes_key": ms.key_size, "bytes_value": ms.value_size,
            "max_entries": ms.max_entries, "flags": int(ms.flags)}


def _variable_value(spec: CollectionSpec, v: VariableSpec) -> Any:
    """The initial value, BTF-typed when the object's BTF describes the variable."""
    ms = spec.maps.get(v.map)
    btf = spec.btf
    if btf is not None and ms is not None and ms.btf_value_type_id:
        try:
            sec = btf.type_by_id(ms.btf_value_type_id)
            if isinstance(sec, Datasec):
                for vs in sec.vars:
                    var = btf.type_by_id(vs.type)
                    if isinstance(var, Var) and var.name == v.name:
                        return btf_values.decode(btf, var.type, v.value)
        except ValueError:
            pass
    if v.size in (1, 2, 4, 8):
        return int.from_bytes(v.value, sys.byteorder)
    return "hex:" + v.value.hex()


def inspect(spec: CollectionSpec) -> dict[str, Any]:
    maps = []
    for name, ms in spec.maps.items():
        d: dict[str, Any] = {"name": name, **_spec_dict(ms)}
        if ms.pinning:
            d["pinning"] = "by_name"
        if ms.inner is not None:
            d["inner_template"] = _spec_dict(ms.inner)
        if ms.contents and (ms.type.is_map_in_map or type_name(ms.type) == "prog_array"):
            d["slots"] = [{"key": k, "value": str(target)} for k, target in ms.contents]
        elif ms.contents and isinstance(ms.contents[0][1], bytes):
            d["initial_data"] = True
        maps.append(d)
    programs = [{"name": name, "type": type_name(ps.type), "section": ps.section,
                 "insns": len(ps.insn_bytes()) // 8, "license": ps.license,
                 "maps": sorted({r.target for r in ps.references})}
                for name, ps in spec.programs.items()]
    variables = [{"name": name, "map": v.map, "offset": v.offset, "size": v.size,
                  "readonly": v.readonly, "value": _variable_value(spec, v)}
                 for name, v in spec.variables.items()]
    return {"name": spec.name, "maps": maps, "programs": programs, "variables": variables,
            "kconfig": [_kconfig_dict(e) for e in spec.kconfig.values()]}


def _kconfig_dict(ext: KconfigExtern) -> dict[str, Any]:
    """One .kconfig extern and the value it would get on this machine (None and the reason
    when loading would fail on it)."""
    d: dict[str, Any] = {"name": ext.name, "type": ext.type, "size": ext.size,
                         "offset": ext.offset, "weak": ext.weak,
                         "overridden": ext.value is not None}
    try:
        d["value"] = resolve_kconfig([ext])[ext.name]
    except (BPFError, TypeError) as exc:
        d["value"], d["error"] = None, str(exc)
    return d


def _short(d: dict[str, Any]) -> str:
    flags = f"  flags {flag_names(d['flags'])}" if d["flags"] else ""
    return (f"{d['type']}  key {d['bytes_key']}B  value {d['bytes_value']}B  "
            f"max_entries {d['max_entries']}{flags}")


def cmd_inspect(args: argparse.Namespace) -> int:
    d = inspect(_read_spec(args.obj))
    if wants_json(args):
        emit_json(args, d)
        return 0
    print(f"object {d['name']}: {len(d['maps'])} map(s), {len(d['programs'])} program(s), "
          f"{len(d['variables'])} variable(s)")
    if d["maps"]:
        print("maps:")
    for m in d["maps"]:
        pin = "  pinned by name" if m.get("pinning") else ""
        print(f"  {m['name']}: {_short(m)}{pin}")
        if "inner_template" in m:
            print(f"      inner template: {_short(m['inner_template'])}")
        for slot in m.get("slots", ()):
            print(f"      [{slot['key']}] = {slot['value']}")
    if d["programs"]:
        print("programs:")
    for p in d["programs"]:
        uses = f"  maps {', '.join(p['maps'])}" if p["maps"] else ""
        print(f"  {p['name']}: {p['type']}  section {p['section']!r}  {p['insns']} insns  "
              f"license {p['license']!r}{uses}")
    if d["variables"]:
        print("variables:")
    for v in d["variables"]:
        ro = "  (read-only)" if v["readonly"] else ""
        print(f"  {v['name']} = {show(v['value'])}  in {v['map']} at {v['offset']}, "
              f"{v['size']}B{ro}")
    if d["kconfig"]:
        print("kconfig externs (values on this machine):")
    for k in d["kconfig"]:
        weak = " __weak" if k["weak"] else ""
        value = f"= {show(k['value'])}" if k.get("error") is None else \
            f"unresolved: {k['error']}"
        print(f"  {k['type']} {k['name']}{weak} at {k['offset']}, {k['size']}B {value}")
    return 0


# -- the parser -----------------------------------------------------------------------------
def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("prog", help="list, show, load and test-run programs",
                       description="BPF programs. A program is named by its id, a path where "
                       "it is pinned (anything with a '/'), or its kernel name.")
    psub = p.add_subparsers(dest="prog_command", metavar="COMMAND", required=True)

    def cmd(name: str, func: Any, help: str, description: str | None = None
            ) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = psub.add_parser(name, help=help, parents=[common],
                                                     description=description or help)
        c.set_defaults(func=func)
        return c

    cmd("list", cmd_list, "every program in the system (like bpftool prog show)")
    c = cmd("show", cmd_show, "one program: id, type, name, tag, map ids, btf id, sizes")
    c.add_argument("prog", metavar="ID|PIN|NAME")
    c = cmd("load", cmd_load, "load a BPF object file",
            "Load a clang-compiled BPF object: its maps (outer maps with their declared "
            "slots), global data and programs. With --pin-root DIR, programs are pinned as "
            "DIR/<name> and maps as DIR/<name> (maps declared with pinning are reused from "
            "there), so they outlive the command; without it everything is unloaded when "
            "purebpf exits, which still shows whether the object loads.")
    c.add_argument("obj", metavar="OBJ")
    c.add_argument("--pin-root", metavar="DIR", help="bpffs directory to pin into "
                   "(created if missing)")
    c = cmd("run", cmd_run, "run a program once (or N times) on test input",
            "Run a program in the kernel on test input (BPF_PROG_TEST_RUN) and print its "
            "return value, the mean duration and the size of the output packet.")
    c.add_argument("prog", metavar="ID|PIN|NAME")
    c.add_argument("--data", metavar="FILE", help="input packet ('-' reads stdin); packet "
                   "programs need at least an Ethernet header (14 bytes)")
    c.add_argument("--ctx", metavar="FILE", help="input context (raw tracepoint and "
                   "syscall programs take only this)")
    c.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times and report the mean duration (default 1)")
    c.add_argument("--data-out", metavar="FILE", help="write the output packet here")
    from . import attachcmd

    attachcmd.add_parser(psub, common)

    o = sub.add_parser("obj", help="look inside a BPF object file without loading it",
                       description="BPF object files, read without loading anything.")
    osub = o.add_subparsers(dest="obj_command", metavar="COMMAND", required=True)
    c = osub.add_parser("inspect", parents=[common], help="maps (with inner templates and "
                        "initial slots), programs and global variables of an object",
                        description="Maps with their inner-map templates and initial slots, "
                        "programs with type, section and instruction count, and global "
                        "variables with their initial values: read from the file, nothing "
                        "is loaded.")
    c.add_argument("obj", metavar="OBJ")
    c.set_defaults(func=cmd_inspect)


__all__ = ["add_parser", "inspect", "summary"]
