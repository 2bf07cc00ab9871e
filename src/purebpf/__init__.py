"""purebpf: eBPF from pure Python through the bpf() syscall, with first-class map-in-map.

Start with :class:`MapSpec` and :meth:`Map.create`; see README.md and docs/.
"""

from . import asm as asm
from . import features as features
from ._collection import Collection as Collection
from ._collection import Variable as Variable
from ._collection import load as load
from ._map import Map as Map
from ._map import MapInfo as MapInfo
from ._map import KeylessMap as KeylessMap
from ._map import MmapArray as MmapArray
from ._mapofmaps import MapOfMaps as MapOfMaps
from ._program import Program as Program
from ._program import ProgramInfo as ProgramInfo
from ._program import RunResult as RunResult
from ._spec import CollectionSpec as CollectionSpec
from ._spec import KconfigExtern as KconfigExtern
from ._kconfig import resolve as resolve_kconfig
from ._sys.ops import possible_cpus as possible_cpus
from ._spec import MapSpec as MapSpec
from ._spec import ProgramSpec as ProgramSpec
from ._spec import Reference as Reference
from ._spec import VariableSpec as VariableSpec
from .btf.handle import BTFHandle as BTFHandle
from .btf.handle import BTFInfo as BTFInfo
from .errors import BPFError as BPFError
from .errors import BPFPermissionError as BPFPermissionError
from .errors import ClosedError as ClosedError
from .errors import IndexOutOfRangeError as IndexOutOfRangeError
from .errors import InnerMapMismatchError as InnerMapMismatchError
from .errors import InvalidArgumentError as InvalidArgumentError
from .errors import KeyExistsError as KeyExistsError
from .errors import KeyNotFoundError as KeyNotFoundError
from .errors import MapFullError as MapFullError
from .errors import MapMismatchError as MapMismatchError
from .errors import NotSupportedError as NotSupportedError
from .errors import PinExistsError as PinExistsError
from .errors import PinNotFoundError as PinNotFoundError
from .errors import VerifierError as VerifierError
from .types import AttachType as AttachType
from .types import LinkType as LinkType
from .types import MapFlags as MapFlags
from .types import MapType as MapType
from .types import ProgramType as ProgramType
from .types import UpdateFlags as UpdateFlags

__version__ = "0.1.0"


# Loaded on first use (they pull in the attach and event machinery): name -> module.
_LAZY = {"Link": "link", "LinkInfo": "link", "RingBuffer": "events",
         "PerfEventArray": "events", "Poller": "events", "link": None, "events": None}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        mod = _LAZY[name]
        value: object = importlib.import_module(f"{__name__}.{mod or name}")
        if mod is not None:
            value = getattr(value, name)
        globals()[name] = value
        return value
    # Deprecated names: still importable, with a warning pointing at the new one.
    if name == "TestRun":
        import warnings

        warnings.warn("purebpf.TestRun is deprecated, use purebpf.RunResult (pytest collects "
                      "classes named Test*)", DeprecationWarning, stacklevel=2)
        return RunResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BPFError", "BPFPermissionError", "ClosedError", "IndexOutOfRangeError",
    "InnerMapMismatchError", "InvalidArgumentError", "KeyExistsError", "KeyNotFoundError",
    "Map", "MapFlags", "MapInfo", "MapFullError", "MapOfMaps", "MapSpec", "MapType",
    "MmapArray", "NotSupportedError", "UpdateFlags", "features", "AttachType", "Program",
    "ProgramInfo", "ProgramSpec", "ProgramType", "Reference", "RunResult", "VerifierError",
    "Collection", "CollectionSpec", "Variable", "VariableSpec", "load", "possible_cpus",
    "BTFHandle", "BTFInfo", "asm", "MapMismatchError", "PinExistsError", "PinNotFoundError",
    "KeylessMap", "LinkType", "Link", "LinkInfo", "RingBuffer", "PerfEventArray", "Poller",
    "link", "events", "KconfigExtern", "resolve_kconfig",
]
