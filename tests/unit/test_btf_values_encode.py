"""purebpf.btf.values.encode is the inverse of decode, on real clang BTF."""

from __future__ import annotations

import pathlib

import pytest

from purebpf import CollectionSpec
from purebpf.btf import BTFError
from purebpf.btf.values import BTFValue, decode, encode

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"


@pytest.fixture(scope="module")
def stats() -> BTFValue:
    spec = CollectionSpec.from_file(DATA / "structs.o").maps["flows"]
    assert isinstance(spec.value_type, BTFValue)
    return spec.value_type


@pytest.mark.parametrize("value", [
    {},
    {"packets": 1, "bytes": 2, "last": "DROP", "label": "abc", "hist": [1, 2, 3, 4],
     "small": 31, "big": (1 << 27) - 1},
    {"small": -1 & 31, "last": 1},
], ids=["zeros", "everything", "enum-by-number"])
def test_round_trip(stats: BTFValue, value: dict[str, object]) -> None:
    back = stats.decode(stats.encode(value))
    for k, v in value.items():
        want = {1: "PASS"}.get(v, v) if k == "last" else v  # type: ignore[call-overload]
        assert back[k] == want


@pytest.mark.parametrize("value,words", [
    ({"nope": 1}, "has no member 'nope'"),
    ({"label": "123456789"}, r"does not fit char\[8\] with its NUL"),
    ({"hist": [1, 2, 3, 4, 5]}, "5 elements, the array holds 4"),
    ({"small": 32}, "does not fit in 5 bits"),
    ({"last": "MAYBE"}, "'MAYBE' is not an enumerator"),
    ({"packets": "x"}, "expected an int"),
    ({"packets": 1 << 64}, "does not fit in 8 bytes"),
    ([1, 2], "expected a dict"),
], ids=["member", "string", "array", "bitfield", "enum", "type", "range", "shape"])
def test_encode_errors_name_the_member(stats: BTFValue, value: object, words: str) -> None:
    with pytest.raises(BTFError, match=words):
        stats.encode(value)


def test_decode_of_encode_keys(stats: BTFValue) -> None:
    spec = CollectionSpec.from_file(DATA / "structs.o").maps["flows"]
    key = spec.key_type
    assert isinstance(key, BTFValue)
    raw = encode(key.spec, key.type_id, {"addr": 1, "port": 2, "proto": 3})
    assert decode(key.spec, key.type_id, raw) == {"addr": 1, "port": 2, "proto": 3, "pad": 0}
