"""A finding of verify, and the words for it: the problem, located in the spec, with the signals it covers.

A finding keeps what selected nothing (:class:`Missing`), so that
:mod:`.grouping` can say a cause several signals share once, with the same words
a single signal's finding uses (:func:`missing_value`, :func:`missing_label`,
:func:`targets_down`). The JSON of a finding is a public contract (docs/verify.md).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from obsgen.model.promql import Matcher
from obsgen.verify.uses import UP, Place, Use

SHOWN = 12  # values listed in a message before "… and N more"


@dataclass(frozen=True)
class Signal:
    """One signal a finding covers: ``caches`` ``equipment`` ``hits``."""

    kind: str
    component: str
    signal: str

    def as_json(self) -> dict:
        return {"kind": self.kind, "component": self.component, "signal": self.signal}


@dataclass(frozen=True)
class Missing:
    """What selected nothing, or (``targets-down``) whose series stopped: the cause a finding may share with the
    findings of other signals, for :mod:`.grouping` to state once over all of them."""

    matcher: Matcher | None
    values: tuple[str, ...]  # what there is instead: the label's values, the metric's labels, the closest metric
    # names (in that order), or the targets down
    metrics: tuple[str, ...]
    noun: str = ""  # the component's noun when the matcher is its identity (`cache`)
    of: int = 0  # targets-down: how many targets the job has


@dataclass(frozen=True)
class Finding:
    """One problem (or, with ``note``, one expected absence) of one or more signals, located in the spec."""

    file: str
    line: int
    column: int
    service: str
    component: str
    kind: str
    signal: str  # `*` when it covers several signals of a component (``signals`` lists them)
    selector: str
    problem: str  # a stable code: unknown-metric, label-missing, value-missing, … (docs/verify.md)
    message: str
    hint: str
    alerts: tuple[str, ...] = ()
    panels: tuple[str, ...] = ()
    note: bool = False
    signals: tuple[Signal, ...] = ()
    # not part of the JSON: what selected nothing, the spec field the finding is at, the selectors it is about
    missing: Missing | None = field(default=None, compare=False)
    place: Place | None = field(default=None, compare=False)
    uses: tuple[Use, ...] = field(default=(), compare=False)

    def as_json(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column, "service": self.service,
                "component": self.component, "kind": self.kind, "signal": self.signal, "selector": self.selector,
                "problem": self.problem, "message": self.message, "alerts": list(self.alerts),
                "panels": list(self.panels), "hint": self.hint, "signals": [s.as_json() for s in self.signals],
                "fires": list(self.fires)}

    @property
    def fires(self) -> tuple[str, ...]:
        """The alerts that fire at once because of this (ServiceDown on a wrong job): its absent() branch."""
        return tuple(sorted({a for u in self.uses for a in u.fires}))


def missing_value(m: Matcher, missing: Missing, signals: tuple[Signal, ...], lookback: str | None) -> str:
    """No series has ``m``'s value: the value, the signals that lack it, and the values there are, closest first."""
    within = f" within the last {lookback}" if lookback else ""
    values = listed(closest_first(m.value, missing.values))
    if missing.noun:
        head, seen = f"no {missing.noun} `{m.value}`", f"{plural(missing.noun)} seen"
    elif m.name == "job":
        head = f"no series from job `{m.value}`"
        seen = f"jobs with `{missing.metrics[0]}`" if len(missing.metrics) == 1 else "jobs with these metrics"
        if any(s.signal == UP and s.kind == "service" for s in signals):  # the service's own targets
            return (f"Prometheus scrapes no target as job `{m.value}` (no `up` series with it{within}): none of "
                    f"the {counted(signals)} it selects can have series; jobs scraped: {values}")
    else:
        head, seen = f"no series with `{m.text()}`{within}", f"values of `{m.name}`"
    return f"{head}{_in(signals)}; {seen}: {values}"


def unknown_metric(metric: str, close: tuple[str, ...], signals: tuple[Signal, ...]) -> str:
    return f"no metric `{metric}`{_in(signals)}" + (f"; closest: {', '.join(close)}" if close else "")


def missing_label(m: Matcher, missing: Missing) -> str:
    one = len(missing.metrics) == 1
    names = ", ".join(f"`{x}`" for x in missing.metrics)
    return (f"{names} {'has' if one else 'have'} no label `{m.name}` (the selector has `{m.text()}`); "
            f"{'its' if one else 'their'} labels: {listed(sorted(missing.values, key=natural))}")


def targets_down(missing: Missing, signals: tuple[Signal, ...]) -> str:
    """The scrape targets the signals' series came from are down: said once, however many signals it silenced."""
    down, m = len(missing.values), missing.matcher
    job = f"job `{m.value}`" if m is not None and m.name == "job" else "these series"
    if down >= missing.of:
        who = f"the only target of {job} is" if down == 1 else f"all {down} targets of {job} are"
        stopped = "stopped with it" if down == 1 else "stopped with them"
    else:
        who = f"{down} of the {missing.of} targets of {job} {'is' if down == 1 else 'are'}"
        stopped = "came only from it" if down == 1 else "came only from them"
    return (f"{who} down at the time checked: {listed(sorted(missing.values, key=natural))}; the series of "
            f"{counted(signals)} {stopped}")


def _in(signals: tuple[Signal, ...]) -> str:
    """`` in any of its 4 signals (hits, misses, …)``; nothing for one signal."""
    if len(signals) < 2:
        return ""
    if len({(s.kind, s.component) for s in signals}) == 1:
        return f" in any of its {len(signals)} signals ({listed([s.signal for s in signals])})"
    return f" in any of the {counted(signals)} it selects"


def counted(signals: tuple[Signal, ...]) -> str:
    components = len({(s.kind, s.component) for s in signals})
    return (f"{len(signals)} signal{'s' if len(signals) != 1 else ''}"
            + (f" of {components} components" if components > 1 else ""))


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def natural(value: str) -> tuple:
    n = number(value)
    return (0, n, value) if n is not None else (1, 0.0, value)


def listed(values: list[str]) -> str:
    if not values:
        return "none"
    shown = ", ".join(values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def plural(noun: str) -> str:
    """``caches``, ``retries``, ``E-Tags``: the kinds' nouns in the plural."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def closest_first(value: str, values: tuple[str, ...] | list[str]) -> list[str]:
    """``values`` with the ones most like ``value`` first (what was probably meant), the rest in natural order."""
    close = difflib.get_close_matches(value, list(values), n=3, cutoff=0.6)
    return close + sorted((v for v in values if v not in close), key=natural)
