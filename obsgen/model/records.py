"""``@record`` and ``@value``: obsgen's immutable data classes, frozen only where immutability is checked.

A ``@record`` (a spec's parts, rules, panels, dashboards) compares by identity; a ``@value`` (a PromQL node, a
duration, a matcher, a problem) by value, and hashes by value.

A record is a dataclass that is never assigned after construction (derive a changed copy with
:func:`dataclasses.replace`), compares by identity and prints as a plain object. Python 3.11 compiles each
dataclass's methods from source at import: a frozen one gets a ``__setattr__`` and a ``__delattr__`` besides its
``__init__``, which assigns every field through ``object.__setattr__``. For obsgen's ~65 records that was a
third of its own import time (~20 ms of a cold build, which imports them all), and slower construction of the
thousands of records a build makes. So immutability is enforced where it is checked, not on every run: with
``OBSGEN_FROZEN_RECORDS=1`` in the environment at import (the test suite sets it, tests/conftest.py) every record
is frozen, and an assignment raises :class:`dataclasses.FrozenInstanceError`.

The same holds for the ~20 value classes a build imports, which Python 3.11 gives a ``__setattr__``,
``__delattr__``, ``__eq__``, ``__hash__`` and ``__repr__`` each when frozen (~4 ms of a cold build's imports), and
whose thousands of instances (a rule's selectors and matchers) each assign every field through
``object.__setattr__``: unfrozen, they keep their equality and hash (``unsafe_hash``: the very ``__hash__`` a
frozen one gets) and lose only the check that the test suite makes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import dataclass_transform

FROZEN = os.environ.get("OBSGEN_FROZEN_RECORDS") == "1"


@dataclass_transform(eq_default=False, frozen_default=True)
def record(cls: type | None = None, /, *, kw_only: bool = False):
    """``@record`` or ``@record(kw_only=True)`` on a class: a dataclass without value equality or a generated
    ``repr``, frozen only under ``OBSGEN_FROZEN_RECORDS=1`` (see the module's docstring)."""
    wrap = dataclass(frozen=FROZEN, kw_only=kw_only, eq=False, repr=False)
    return wrap if cls is None else wrap(cls)


@dataclass_transform(eq_default=True, frozen_default=True)
def value(cls: type | None = None, /, *, order: bool = False):
    """``@value`` or ``@value(order=True)`` on a class: a dataclass compared, hashed and printed by value, frozen
    only under ``OBSGEN_FROZEN_RECORDS=1`` (see the module's docstring)."""
    wrap = dataclass(frozen=FROZEN, unsafe_hash=True, order=order)
    return wrap if cls is None else wrap(cls)
