"""Frozen value classes that every command defines at start-up (:class:`Frozen`).

A frozen dataclass costs about a millisecond to define (its methods are generated as
source and compiled), and importing :mod:`dataclasses` itself more; a warm ``list`` would
spend a fifth of its time there. The values it needs (the platform, the settings, the
search directories) are :class:`Frozen` classes instead: each names its fields in order in
``_fields`` (its ``__slots__``) and fills them in an ``__init__`` of its own
(:meth:`Frozen._fill`), and gets the equality, hash, repr and immutability a frozen
dataclass has, and :meth:`replace`.
"""

from __future__ import annotations

from typing import Any, TypeVar

_F = TypeVar("_F", bound="Frozen")


class Frozen:
    """A value whose fields are its class's ``_fields`` (in order; its ``__slots__``), set
    once by :meth:`_fill`: equal to an instance of the same class with equal fields,
    hashed and shown (``Name(field=value, ...)``) by them, never changed (``replace``
    makes another)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _fill(self, *values: object) -> None:
        """Set every field, in ``__slots__`` order (for ``__init__``)."""
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field '{name}'")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frozen) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({shown})"

    def __copy__(self: _F) -> _F:
        return self

    def __deepcopy__(self: _F, memo: dict[int, Any]) -> _F:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_made, (self.__class__, self._values()))

    def replace(self: _F, **changes: Any) -> _F:
        """A copy with ``changes`` (field names to new values)."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{self.__class__.__qualname__} has no field {sorted(unknown)[0]}")
        made = object.__new__(self.__class__)
        for name in self._fields:
            object.__setattr__(made, name, changes.get(name, getattr(self, name)))
        return made


def _made(cls: type[_F], values: tuple[Any, ...]) -> _F:
    """An instance of ``cls`` with ``values`` (how a pickled one comes back)."""
    made = object.__new__(cls)
    made._fill(*values)
    return made
