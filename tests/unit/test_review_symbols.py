"""Review of purebpf.elf.symbols on malformed input: every bad file, path or name gets a
clean error (InvalidArgumentError / BPFError / TypeError with our message), never an
OverflowError, a ValueError from open(), or a read that blocks or never ends."""

from __future__ import annotations

import errno
import os
import pathlib
import random
import struct

import pytest

from purebpf import BPFError, InvalidArgumentError
from purebpf.elf.symbols import read_binary, symbol_offset

TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "testdata"


def _elf64(*, phoff: int = 0, phnum: int = 0, shoff: int = 0, shnum: int = 0) -> bytes:
    """A bare little-endian ELF64 header (64 bytes) with the given table offsets/counts."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, shoff, 0, 64, 56, phnum,
                               64, shnum, 0)


@pytest.mark.parametrize("data", [
    _elf64(phoff=1 << 63, phnum=1),
    _elf64(phoff=(1 << 64) - 8, phnum=3),
    _elf64(phoff=1 << 40, phnum=0xFFFF),
], ids=["phoff-2^63", "phoff-near-2^64", "phoff-2^40-max-phnum"])
def test_program_header_offset_past_the_end_is_a_clean_error(data: bytes) -> None:
    # Was: OverflowError "Python int too large to convert to C ssize_t" from unpack_from.
    with pytest.raises(InvalidArgumentError) as exc:
        read_binary(data)
    assert exc.value.errno == errno.EINVAL
    assert "read symbols of <bytes>: truncated or corrupt ELF file" in str(exc.value)


def test_fuzzed_binaries_raise_only_our_errors() -> None:
    """Mutated and truncated copies of a real object: BPFError or a result, nothing else."""
    rng = random.Random(1234)
    seeds = [(TESTDATA / "attach_net.o").read_bytes(), _elf64(phoff=64, phnum=1) + bytes(56)]
    for _ in range(1500):
        d = bytearray(rng.choice(seeds))
        if rng.random() < 0.3:
            d = d[:rng.randrange(len(d))]
        for _ in range(rng.randrange(1, 20)):
            if not d:
                break
            span = min(len(d), 64) if rng.random() < 0.5 else len(d)
            d[rng.randrange(span)] = rng.randrange(256)
        try:
            b = read_binary(bytes(d))
            symbol_offset(b, "main")
        except BPFError:
            pass


def test_path_with_a_nul_byte(tmp_path: pathlib.Path) -> None:
    # Was: ValueError "embedded null byte" from open().
    with pytest.raises(InvalidArgumentError, match=r"read symbols of .*: the path contains a "
                       "NUL byte") as exc:
        read_binary("/bin/true\0x")
    assert exc.value.errno == errno.EINVAL


def test_fifo_is_refused_without_blocking(tmp_path: pathlib.Path) -> None:
    # Was: open() of a FIFO with no writer blocks forever (the interpreter hangs).
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidArgumentError, match="not a regular file") as exc:
        read_binary(fifo)
    assert exc.value.errno == errno.EINVAL


def test_endless_device_is_refused() -> None:
    # Was: f.read() of /dev/zero never ends (and eats all memory).
    with pytest.raises(InvalidArgumentError, match="read symbols of /dev/zero: not a regular"):
        read_binary("/dev/zero")


def test_missing_file_still_enoent(tmp_path: pathlib.Path) -> None:
    with pytest.raises(BPFError) as exc:
        read_binary(tmp_path / "nope")
    assert exc.value.errno == errno.ENOENT


def test_not_a_path() -> None:
    with pytest.raises(TypeError, match="read symbols of 5: expected a path"):
        read_binary(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("symbol", ["", "ma\0in"], ids=["empty", "nul"])
def test_bad_symbol_names(symbol: str) -> None:
    with pytest.raises(InvalidArgumentError, match="not a symbol name") as exc:
        symbol_offset(TESTDATA / "attach_net.o", symbol)
    assert exc.value.errno == errno.EINVAL


def test_symbol_not_a_str() -> None:
    # Was: TypeError "'int' object is not iterable" from difflib.
    with pytest.raises(TypeError, match="resolve symbol 5: the symbol must be a str"):
        symbol_offset(TESTDATA / "attach_net.o", 5)  # type: ignore[arg-type]
