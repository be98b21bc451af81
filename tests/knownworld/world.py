"""A world of series with known truth: what each instance really did, and the samples a scrape would have kept.

Counters are declared by their rate (events/s) and written as real counters: a
large start value (a long-running process), monotonic, 15 s apart; some restart
(``reset``) two minutes before the end, counting from zero again as a new
process does. Gauges are declared by their level. Because rates are constant,
``rate(x[w])`` over any window ending at the evaluation time is exactly the
declared rate, and a ratio of rates is exact over any window (both sides share
their timestamps, so Prometheus' extrapolation cancels).

The world answers questions about itself (``rate``, ``level``, ``quantile``)
from its own declarations: truths are computed here, never by Prometheus or by
obsgen's rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

STEP_S = 15
SPAN_S = 40 * 60          # 40 minutes of samples: rate windows up to 30m see only this world
SAMPLES = SPAN_S // STEP_S + 1
RESET_BEFORE_END_S = 120  # restarted processes restart inside every 5m window ending at the evaluation time
COUNTER_START = 1_000_000.0
INSTANCES = ("app-1:8080", "app-2:8080", "app-3:8080")

Labels = dict[str, str]


@dataclass(frozen=True)
class Series:
    """One series: a counter's rate per second, or a gauge's level."""

    name: str
    labels: tuple[tuple[str, str], ...]
    kind: str  # "counter" | "gauge"
    value: float
    reset: bool = False

    @property
    def label_map(self) -> Labels:
        return dict(self.labels)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether a PromQL equality selector ``name{labels}`` picks this series."""
        mine = self.label_map
        return self.name == name and all(mine.get(k, "") == v for k, v in labels.items())

    def samples(self, start: int) -> list[tuple[float, int]]:
        """(value, unix seconds) every 15 s from ``start`` for 40 minutes."""
        times = [start + i * STEP_S for i in range(SAMPLES)]
        if self.kind == "gauge":
            return [(self.value, t) for t in times]
        per_step = self.value * STEP_S
        restart = SAMPLES - 1 - RESET_BEFORE_END_S // STEP_S
        out = []
        for i, t in enumerate(times):
            if self.reset and i >= restart:
                out.append((per_step * (i - restart + 1), t))  # the new process counted since the last scrape
            else:
                out.append((COUNTER_START + per_step * i, t))
        return out


@dataclass
class World:
    """The series of one service's world, with per-signal questions about them."""

    series: list[Series] = field(default_factory=list)

    def add(self, name: str, labels: Mapping[str, str], kind: str, value: float, reset: bool = False) -> None:
        key = tuple(sorted((k, v) for k, v in labels.items() if v != ""))  # an empty label is no label
        if any(s.name == name and s.labels == key for s in self.series):
            raise ValueError(f"the world declares {name}{dict(key)} twice")
        self.series.append(Series(name, key, kind, float(value), reset))

    def counter(self, name: str, labels: Mapping[str, str], rate: float, reset: bool = False) -> None:
        self.add(name, labels, "counter", rate, reset)

    def gauge(self, name: str, labels: Mapping[str, str], level: float) -> None:
        self.add(name, labels, "gauge", level)

    def has(self, name: str, labels: Mapping[str, str]) -> bool:
        return any(s.matches(name, labels) for s in self.series)

    def picked(self, name: str, labels: Mapping[str, str]) -> list[Series]:
        return [s for s in self.series if s.matches(name, labels)]

    def rate(self, name: str, labels: Mapping[str, str]) -> float:
        """Events/s of every counter ``name{labels}`` picks (0 when it picks none)."""
        return sum(s.value for s in self.picked(name, labels) if s.kind == "counter")

    def levels(self, name: str, labels: Mapping[str, str]) -> list[float]:
        return [s.value for s in self.picked(name, labels) if s.kind == "gauge"]


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The ``q`` quantile of observations spread evenly within each bucket.

    ``buckets`` are (upper bound, observations/s in that bucket alone), finite bounds only; the world never
    puts a quantile in the first or the open-ended bucket.
    """
    merged: dict[float, float] = {}
    for upper, n in buckets:  # one bucket's observations from several instances, pooled
        merged[upper] = merged.get(upper, 0.0) + n
    pairs = sorted(merged.items())
    total = sum(n for _, n in pairs)
    rank, below, lower = q * total, 0.0, 0.0
    for upper, n in pairs:
        if n and below + n >= rank:
            return lower + (upper - lower) * (rank - below) / n
        below, lower = below + n, upper
    raise ValueError(f"quantile {q} beyond the last finite bucket of {pairs}")


def le_text(bound: float) -> str:
    """A bucket bound as client libraries print it (prometheus_client and Micrometer: 0.5, 1.0, +Inf)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def openmetrics(worlds: Iterable[tuple[World, int]]) -> str:
    """OpenMetrics text of every world, each starting at its own time: one family per metric name."""
    families: dict[str, list[tuple[Series, int]]] = {}
    for world, start in worlds:
        for s in world.series:
            families.setdefault(s.name, []).append((s, start))
    lines: list[str] = []
    for name in sorted(families):
        members = families[name]
        kinds = {s.kind for s, _ in members}
        if len(kinds) > 1:
            raise ValueError(f"{name} is declared both as a counter and as a gauge")
        counter = kinds == {"counter"}
        if counter and name.endswith("_total"):
            lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        else:  # histogram parts and other counters named without _total: typeless, as PromQL sees them anyway
            lines.append(f"# TYPE {name} {'unknown' if counter else 'gauge'}")
        for s, start in members:
            text = _labels(s.labels)
            lines += [f"{name}{text} {_num(v)} {t}" for v, t in s.samples(start)]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    esc = lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")  # noqa: E731
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels) + "}"


def _num(x: float) -> str:
    return repr(float(x))
