"""Values handed from one step of a render to the next, so the giver keeps no reference to them.

A caller that passes an array keeps it alive until the call returns, however early the callee is
done with it; handed over, the callee holds the only reference and can let go of it as soon as it
has what it needs (docs/formats.md, "Memory").
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Handed(Generic[T]):
    """A value given to one taker, once."""

    def __init__(self, value: T) -> None:
        self._value: T | None = value

    def take(self) -> T:
        """The value, once; the holder keeps no reference to it."""
        value, self._value = self._value, None
        if value is None:
            raise ValueError("already handed over")
        return value


def taken(value: T | Handed[T]) -> T:
    """The value itself, taken from its holder when it was handed over."""
    return value.take() if isinstance(value, Handed) else value
