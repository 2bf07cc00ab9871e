"""Map feature probes against the running kernel.

Each probe is checked two ways: against the kernel version that introduced the feature
(for features every kernel config has), and against behaviour the test observes itself.
"""

from __future__ import annotations

import errno
import mmap
import os
import re

import pytest

from purebpf import BPFError, Map, MapFlags, MapSpec, MapType, features
from purebpf._sys import ops
from purebpf._sys.constants import Cmd


def kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert m, os.uname().release
    return int(m.group(1)), int(m.group(2))


KV = kernel_version()

# Map types built whenever CONFIG_BPF_SYSCALL is (no other config option), with the release
# that added them.
CORE_TYPES = {
    MapType.HASH: (3, 19), MapType.ARRAY: (3, 19), MapType.PROG_ARRAY: (4, 2),
    MapType.PERF_EVENT_ARRAY: (4, 3), MapType.PERCPU_HASH: (4, 6),
    MapType.PERCPU_ARRAY: (4, 6), MapType.LRU_HASH: (4, 10), MapType.LRU_PERCPU_HASH: (4, 10),
    MapType.LPM_TRIE: (4, 11), MapType.ARRAY_OF_MAPS: (4, 12), MapType.HASH_OF_MAPS: (4, 12),
    MapType.QUEUE: (4, 20), MapType.STACK: (4, 20), MapType.RINGBUF: (5, 8),
    MapType.BLOOM_FILTER: (5, 16), MapType.USER_RINGBUF: (6, 1),
}


@pytest.fixture
def fresh_probes() -> None:
    """Forget cached answers so the probe itself runs inside the test."""
    for f in (features.has_map_type, features.highest_map_type, features.has_inner_map_flag,
              features.has_batch, features._has_flagged_array):
        f.cache_clear()


@pytest.mark.parametrize("t,since", sorted(CORE_TYPES.items()),
                         ids=[t.name for t in sorted(CORE_TYPES)])
def test_core_map_types_by_kernel_version(fresh_probes: None, map_leak_check: None,
                                          t: MapType, since: tuple[int, int]) -> None:
    assert features.has_map_type(t) is (KV >= since)


def test_unspec_is_no_map_type(fresh_probes: None) -> None:
    assert features.has_map_type(MapType.UNSPEC) is False


def test_probe_agrees_with_creating_the_map(fresh_probes: None) -> None:
    for t, spec in [(MapType.HASH, MapSpec(MapType.HASH, key_size=8, value_size=16,
                                           max_entries=3)),
                    (MapType.QUEUE, MapSpec(MapType.QUEUE, value_size=4, max_entries=2)),
                    (MapType.LRU_HASH, MapSpec(MapType.LRU_HASH, key_size=4, value_size=4,
                                               max_entries=8))]:
        with Map.create(spec):
            assert features.has_map_type(t)


def test_btf_only_types_are_judged_by_a_later_type(fresh_probes: None) -> None:
    """STRUCT_OPS and the local storages need BTF to be created; the probe answers from the
    highest simply creatable type instead of reporting them missing."""
    top = features.highest_map_type()
    assert top >= MapType.USER_RINGBUF if KV >= (6, 1) else top > MapType.HASH
    for t in (MapType.STRUCT_OPS, MapType.SK_STORAGE, MapType.TASK_STORAGE):
        assert features.has_map_type(t) is (top > t)
    # ... and really: without BTF the kernel refuses them with EINVAL.
    with pytest.raises(BPFError) as info:
        ops.map_create(int(MapType.SK_STORAGE), 4, 4, 0, int(MapFlags.NO_PREALLOC))
    assert info.value.errno == errno.EINVAL


def test_probes_are_cached(fresh_probes: None) -> None:
    features.has_map_type(MapType.HASH)
    hits = features.has_map_type.cache_info().hits
    assert features.has_map_type(MapType.HASH) is True
    assert features.has_map_type.cache_info().hits == hits + 1


def test_probes_leave_nothing_behind(fresh_probes: None, map_leak_check: None) -> None:
    for t in MapType:
        features.has_map_type(t)
    features.has_inner_map_flag()
    features.has_batch(MapType.HASH)
    features.has_map_in_map_batch()
    features.has_mmapable_array()


def test_inner_map_flag_matches_behaviour(fresh_probes: None) -> None:
    assert features.has_inner_map_flag() is (KV >= (5, 10))
    if not features.has_inner_map_flag():
        pytest.skip("kernel without BPF_F_INNER_MAP")
    dyn = MapSpec(MapType.ARRAY, value_size=4, max_entries=1, flags=MapFlags.INNER_MAP)
    with Map.create(MapSpec(MapType.ARRAY_OF_MAPS, max_entries=1, inner=dyn)) as outer, \
            Map.create(dyn.replace(max_entries=7)) as bigger:
        outer[0] = bigger  # only possible with the flag
        assert outer.inner_id(0) == bigger.id


@pytest.mark.parametrize("t,since", [(MapType.HASH, (5, 6)), (MapType.ARRAY, (5, 6)),
                                     (MapType.HASH_OF_MAPS, (5, 19)),
                                     (MapType.ARRAY_OF_MAPS, (5, 19))],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_batch_support(fresh_probes: None, map_leak_check: None, t: MapType,
                       since: tuple[int, int]) -> None:
    assert features.has_batch(t) is (KV >= since)


def test_batch_probe_agrees_with_a_real_batch(fresh_probes: None) -> None:
    with Map.create(MapSpec(MapType.HASH, key_size=4, value_size=4, max_entries=4)) as m:
        m[1] = 1
        b = ops.Batch(m.fd, 4, 4, 4, 4)
        ret = b.run(Cmd.BPF_MAP_LOOKUP_BATCH, 4, first=True)
        assert (ret in (0, -errno.ENOENT) and b.count == 1) is features.has_batch(MapType.HASH)
    assert features.has_map_in_map_batch() is features.has_batch(MapType.HASH_OF_MAPS)


def test_mmapable_array_matches_behaviour(fresh_probes: None) -> None:
    assert features.has_mmapable_array() is (KV >= (5, 5))
    with Map.create(MapSpec(MapType.ARRAY, value_size=8, max_entries=1,
                            flags=MapFlags.MMAPABLE)) as m:
        mm = mmap.mmap(m.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        mm.close()
