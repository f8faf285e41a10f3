"""Value records that cost nothing at import.

A dataclass generates and compiles its methods each time its module is imported, which made
Python's start-up most of kvmpmu's own (a frozen one costs ~0.3 ms, and the commands import
dozens). A Record lists its fields in `__slots__` and assigns them in a plain `__init__`;
equality, hashing, repr and `replace()` come from those fields, as a dataclass's would.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # a string bound compiles at runtime
    R = TypeVar("R", bound="Record")


class Record:
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _values: ClassVar[Any]  # the fields' values (one field: its value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        slots = [name for klass in reversed(cls.__mro__)
                 for name in klass.__dict__.get("__slots__", ())]
        cls._fields = tuple(name for name in slots if name not in ("__dict__", "__weakref__"))
        cls._values = attrgetter(*cls._fields) if cls._fields else staticmethod(_no_values)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(self._values(self) == self._values(other))

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed (as dataclasses.replace)."""
        unknown = changes.keys() - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(type(self))
        for name in self._fields:
            object.__setattr__(copy, name, changes[name] if name in changes
                               else getattr(self, name))
        return copy


def _no_values(record: Record) -> tuple[()]:
    return ()
