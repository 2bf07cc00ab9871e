"""BTF string sections: reading names by offset, and building a section for the encoder."""

from __future__ import annotations

from .errors import BTFError

# Names are C identifiers, but .BTF.ext line info carries source text of any encoding:
# surrogateescape keeps every byte so an encode after a decode gives it back unchanged.
_CODEC = "utf-8"
_ERRORS = "surrogateescape"


def _decode(raw: bytes) -> str:
    return raw.decode(_CODEC, _ERRORS)


class StringTable:
    """A parsed string section: NUL-terminated strings addressed by byte offset.

    In split BTF the offsets continue from the base's string section: offsets below
    ``start`` are the base's, the rest index into ``raw``.
    """

    __slots__ = ("raw", "base", "start", "_cache", "_misses")

    def __init__(self, raw: bytes, base: StringTable | None = None) -> None:
        # The kernel's rule: the first string of a base BTF is "" (name offset 0 means
        # anonymous), and the section's last byte is a NUL so every string ends.
        if base is None and raw[:1] != b"\0":
            raise BTFError("bad BTF string section: it must start with a NUL byte "
                           f"(got {raw[:1]!r} at string offset 0)")
        if raw and raw[-1] != 0:
            raise BTFError(f"bad BTF string section: its last byte (string offset {len(raw) - 1}) "
                           "is not a NUL terminator")
        self.raw = raw
        self.base = base
        self.start = len(base) if base is not None else 0
        self._cache: dict[int, str] = {0: ""} if base is None else {}
        self._misses = 0

    def __len__(self) -> int:
        return self.start + len(self.raw)

    def get(self, off: int) -> str:
        """The string at ``off``; ``BTFError`` if ``off`` is outside the section."""
        s = self._cache.get(off)
        return s if s is not None else self._miss(off)

    def _miss(self, off: int) -> str:
        if off < self.start and self.base is not None:
            return self.base.get(off)
        local = off - self.start
        if not 0 <= local < len(self.raw):
            raise BTFError(f"string offset {off} is out of range (string section has "
                           f"{len(self)} bytes)")
        self._misses += 1
        if self._misses == 4096:
            # Many distinct lookups: decoding the whole section at once is cheaper.
            self._fill()
            if off in self._cache:
                return self._cache[off]
        s = self._cache[off] = _decode(self.raw[local:self.raw.index(b"\0", local)])
        return s

    def _fill(self) -> None:
        cache, pos = self._cache, self.start
        for piece in self.raw.split(b"\0")[:-1]:
            if pos not in cache:
                cache[pos] = _decode(piece)
            pos += len(piece) + 1

    def offsets_of(self, s: str) -> list[int]:
        """Every offset whose string is exactly ``s`` (ascending, base offsets first)."""
        found = self.base.offsets_of(s) if self.base is not None else []
        if not s:
            return found
        needle = s.encode(_CODEC, _ERRORS) + b"\0"
        raw, pos = self.raw, self.raw.find(needle)
        while pos >= 0:
            found.append(self.start + pos)
            pos = raw.find(needle, pos + 1)
        return found

    def index(self) -> dict[str, int]:
        """The first offset of every string that starts right after a NUL (or at 0)."""
        idx = self.base.index() if self.base is not None else {}
        pos = self.start
        for piece in self.raw.split(b"\0")[:-1]:
            idx.setdefault(_decode(piece), pos)
            pos += len(piece) + 1
        return idx


class StringTableBuilder:
    """Collects strings for an encoded string section, deduplicating them.

    Seeded with a parsed table, it keeps that table's bytes and offsets unchanged and
    appends only strings it does not already hold, so re-encoding is byte-identical.
    """

    def __init__(self, seed: StringTable | None = None, *, base: StringTable | None = None) -> None:
        if seed is not None:
            base = seed.base
            self._parts = [seed.raw]
            self._index = seed.index()
            self._len = len(seed.raw)
        else:
            self._parts = [] if base is not None else [b"\0"]
            self._index = base.index() if base is not None else {"": 0}
            self._len = len(self._parts[0]) if self._parts else 0
        self.start = len(base) if base is not None else 0
        if "" not in self._index:
            # A split table whose base lacks "" cannot happen for valid BTF; be safe.
            self._index[""] = self.add_new("")

    def add(self, s: str) -> int:
        """The offset of ``s``, appending it if it is new."""
        off = self._index.get(s)
        return off if off is not None else self.add_new(s)

    def add_new(self, s: str) -> int:
        """Append ``s`` unconditionally and return its offset."""
        raw = s.encode(_CODEC, _ERRORS)
        if b"\0" in raw:
            raise BTFError(f"cannot encode string {s!r}: it contains a NUL byte")
        off = self.start + self._len
        self._parts.append(raw + b"\0")
        self._len += len(raw) + 1
        self._index.setdefault(s, off)
        return off

    def __len__(self) -> int:
        return self._len

    def tobytes(self) -> bytes:
        """The section's own bytes (without the base's)."""
        return b"".join(self._parts)
