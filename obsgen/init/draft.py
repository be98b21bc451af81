"""A drafted spec before it is written: entries with the fields the data told, each with why it is there."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """One key of an entry; ``note`` becomes its trailing comment (the series it came from, or ``default``)."""

    key: str
    value: object
    note: str = ""


@dataclass
class Entry:
    """One component: its spec key (``caches``), name, fields, and the series that show it (its comment)."""

    kind: str
    name: str
    fields: list[Field]
    cites: list[str]


@dataclass(frozen=True)
class Skipped:
    """A component the data shows but the draft leaves out, and why (what the spec would need)."""

    kind: str
    name: str
    why: str


@dataclass(frozen=True)
class Waiting:
    """A kind whose families the data declares without a sample: its components are not named until they are
    first used (a prometheus_client labelled counter before its first ``.labels(...)``), so none is drafted."""

    kind: str
    label: str
    families: tuple[str, ...]


@dataclass
class Draft:
    """The service, its entries in kind order, what was skipped, and which families were read."""

    service: list[Field]
    source: str
    profile: str
    profile_why: str
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    recognised: dict[str, set[str]] = field(default_factory=dict)  # family: the entries (kind name) it fed
    families: list[str] = field(default_factory=list)

    def recognise(self, family: str, what: str) -> None:
        self.recognised.setdefault(family, set()).add(what)

    @property
    def unrecognised(self) -> list[str]:
        return [f for f in self.families if f not in self.recognised]
