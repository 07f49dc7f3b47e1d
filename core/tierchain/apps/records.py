"""Fast construction of the apps' frozen record dataclasses, for op handlers' hot paths.

``dataclasses.replace`` inspects every field on each call and a frozen dataclass's
``__init__`` goes through ``object.__setattr__`` per field; a handler that rebuilds a
record several times a transaction pays for that (bench/finance_mix.py's profile: a fifth
of handler time). Both helpers build the same instance — the same fields, in the same
order, so the same encoding — for records whose fields are plain values (no
``__post_init__``, no ``__slots__``, no defaults computed at construction).

* ``maker(cls)`` — ``cls(*values)`` with every field given in order;
* ``evolve(rec, **changes)`` — ``dataclasses.replace(rec, **changes)``; ``TypeError`` for a
  name that is not one of the record's fields.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

__all__ = ["evolve", "maker"]


@functools.cache
def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def maker(cls: type) -> Callable[..., Any]:
    """``cls(*values)`` for a record whose fields are plain values, every field given in order."""
    names, new = _fields(cls), object.__new__

    def make(*values: Any) -> Any:
        obj = new(cls)
        obj.__dict__.update(zip(names, values, strict=True))
        return obj

    return make


def evolve(rec: Any, **changes: Any) -> Any:
    """``dataclasses.replace(rec, **changes)`` (``TypeError`` for a name that is not a field)."""
    names = _fields(type(rec))
    unknown = changes.keys() - set(names)
    if unknown:
        raise TypeError(f"{type(rec).__name__} has no field {sorted(unknown)}")
    new = object.__new__(type(rec))
    d = new.__dict__
    d.update(rec.__dict__)
    d.update(changes)
    return new
