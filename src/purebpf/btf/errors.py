"""The exceptions raised by purebpf.btf."""

from __future__ import annotations


class BTFError(ValueError):
    """Malformed or unusable BTF; the message names the type id, kind or offset at fault."""


class BTFNotFoundError(BTFError, KeyError):
    """A name lookup found no type (also a ``KeyError``)."""

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""
