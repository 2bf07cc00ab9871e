"""One Map object shared between threads: every value read is one written for its key, and
outer-map lookups never miss a slot that is never empty."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from purebpf import (ClosedError, KeyNotFoundError, Map, MapFlags, MapOfMaps, MapSpec,
                     MapType)

NKEYS = 64
SECONDS = 1.5


def run_threads(workers: list[Callable[[threading.Event], None]], seconds: float = SECONDS
                ) -> None:
    """Run each worker in its own thread until ``seconds`` pass; re-raise the first error."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def wrap(fn: Callable[[threading.Event], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(stop)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
                stop.set()
        return run

    threads = [threading.Thread(target=wrap(w)) for w in workers]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def tagged(key: int, n: int) -> int:
    """A value that names its key: the key in the high half, a counter in the low."""
    return key << 32 | n


@pytest.mark.parametrize("typed", [True, False], ids=["int-types", "bytes"])
def test_shared_hash_never_returns_another_keys_value(typed: bool) -> None:
    spec = MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=NKEYS,
                   **({"key_type": int, "value_type": int} if typed else {}))

    def enc_v(v: int) -> object:
        return v if typed else v.to_bytes(8, "little")

    def dec_v(v: object) -> int:
        return v if isinstance(v, int) else int.from_bytes(v, "little")  # type: ignore

    def dec_k(k: object) -> int:
        return k if isinstance(k, int) else int.from_bytes(k, "little")  # type: ignore

    bad: list[str] = []
    with Map.create(spec) as m:
        for k in range(NKEYS):
            m[k] = enc_v(tagged(k, 0))

        def check(k: int, v: object, how: str) -> None:
            if dec_v(v) >> 32 != k:
                bad.append(f"{how}: key {k} read {dec_v(v):#x}")

        def reader(stop: threading.Event) -> None:
            i = 0
            while not stop.is_set():
                k = i % NKEYS
                i += 1
                try:
                    check(k, m[k], "m[k]")
                except KeyNotFoundError:
                    pass  # deleted by the deleter: fine
                v = m.get(k)
                if v is not None:
                    check(k, v, "get")

        def writer(stop: threading.Event) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                for k in range(0, NKEYS, 3):
                    m[k] = enc_v(tagged(k, n))
                m.update(5, enc_v(tagged(5, n)))

        def deleter(stop: threading.Event) -> None:
            while not stop.is_set():
                for k in range(1, NKEYS, 7):
                    try:
                        del m[k]
                    except KeyNotFoundError:
                        pass
                    m[k] = enc_v(tagged(k, 1))
                    if k in m:
                        pass

        def walker(stop: threading.Event) -> None:
            while not stop.is_set():
                for k, v in m.items():
                    check(dec_k(k), v, "items")
                for k, v in m.lookup_batch(chunk=8):
                    check(dec_k(k), v, "lookup_batch")
                m.update_batch(list(range(2, NKEYS, 5)),
                               [enc_v(tagged(k, 7)) for k in range(2, NKEYS, 5)])

        run_threads([reader, reader, writer, deleter, walker])
    assert not bad, f"{len(bad)} reads returned another key's value, e.g. {bad[:3]}"


def test_closing_while_other_threads_use_the_map_gives_closed_errors() -> None:
    m = Map.create(MapSpec(MapType.HASH, key_size=4, value_size=8, max_entries=8,
                           key_type=int, value_type=int))
    m[1] = 1
    seen: list[BaseException] = []

    def user(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                m[1] = 2
                m[1]
            except ClosedError as exc:
                seen.append(exc)
                return

    def closer(stop: threading.Event) -> None:
        time.sleep(0.2)
        m.close()

    run_threads([user, user, closer], seconds=1.0)
    assert m.closed and len(seen) == 2
    assert all("closed" in str(e) for e in seen)


def test_outer_lookups_never_miss_a_slot_that_is_never_empty() -> None:
    """Slots replaced by staged(), assignment and update_batch while readers look them up:
    every lookup finds a map (the id read and the open are retried until they agree)."""
    inner = MapSpec(MapType.ARRAY, value_size=4, value_type=int, max_entries=2,
                    flags=MapFlags.INNER_MAP)
    with Map.create(MapSpec(MapType.ARRAY_OF_MAPS, max_entries=4, inner=inner,
                            key_type=int)) as outer:
        assert isinstance(outer, MapOfMaps)
        for k in range(4):
            with outer.new_inner() as m:
                outer[k] = m
        misses: list[str] = []
        lookups, replaced = [0], [0]

        def reader(stop: threading.Event) -> None:
            while not stop.is_set():
                for k in range(4):
                    try:
                        with outer[k]:
                            lookups[0] += 1
                    except KeyNotFoundError as exc:
                        misses.append(f"outer[{k}]: {exc}")

        def walker(stop: threading.Event) -> None:
            while not stop.is_set():
                got = list(outer.items())
                if [k for k, _ in got] != [0, 1, 2, 3]:
                    misses.append(f"items: {[k for k, _ in got]}")
                for _, m in got:
                    m.close()
                d = outer.to_dict()
                if sorted(d) != [0, 1, 2, 3]:
                    misses.append(f"to_dict: {sorted(d)}")
                if outer.tree(values=False).count(" -> ") != 4:
                    misses.append("tree")
                pairs = outer.lookup_batch(chunk=3)
                if [k for k, _ in pairs] != [0, 1, 2, 3]:
                    misses.append(f"lookup_batch: {[k for k, _ in pairs]}")
                for _, m in pairs:
                    m.close()

        def replacer(stop: threading.Event) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                with outer.staged(n % 4, max_entries=1 + n % 3) as new:
                    new[0] = n
                with outer.new_inner() as m:
                    outer[(n + 1) % 4] = m
                maps = [outer.new_inner() for _ in range(2)]
                try:
                    outer.update_batch([(n + 2) % 4, (n + 3) % 4], maps)
                finally:
                    for m in maps:
                        m.close()
                replaced[0] += 1

        run_threads([reader, reader, walker, replacer], seconds=3.0)
        assert lookups[0] and replaced[0]  # both sides ran (how often depends on the machine)
        assert not misses, f"{len(misses)} spurious misses, e.g. {misses[:3]}"
