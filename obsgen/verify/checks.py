"""Each selector against what the server has: presence, type, buckets, window.

For one :class:`~obsgen.verify.uses.Use` the checks run in order and the first
that fails explains the rest away (a metric that does not exist has no type):

1. presence: the metric (else the closest names the server has), then each
   matcher in turn, scrape labels first, then the component's own label, then
   the rest, so the message names the first that selects nothing and lists what
   exists instead; then whether the series are still there at ``--at``;
2. type: counters under ``rate``/``increase``, gauges read as levels;
3. histogram buckets: an exact ``le`` bound, and buckets above a quantile's threshold;
4. window: every range at least twice the scrape interval of the jobs it reads.

Signals of rare events (:data:`~obsgen.verify.uses.EVENTS`) that merely have no
series yet are notes, not findings.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from obsgen.model.promql import Matcher
from obsgen.verify import advice
from obsgen.verify.inventory import Inventory, Labels
from obsgen.verify.selectors import matches
from obsgen.verify.uses import VARIABLES_SIGNAL, Place, Use

COUNTER_READS = frozenset({"rate", "irate", "increase", "resets"})
LEVEL_READS = frozenset({None, "delta", "idelta", "deriv", "predict_linear", "holt_winters",
                         "double_exponential_smoothing", "avg_over_time", "min_over_time", "max_over_time",
                         "quantile_over_time", "stddev_over_time", "stdvar_over_time"})
SHOWN = 12  # values listed in a message before "… and N more"


@dataclass(frozen=True)
class Finding:
    """One problem (or, with ``note``, one expected absence) of one signal, located in the spec."""

    file: str
    line: int
    column: int
    service: str
    component: str
    kind: str
    signal: str
    selector: str
    problem: str  # a stable code: unknown-metric, label-missing, value-missing, … (docs/verify.md)
    message: str
    hint: str
    alerts: tuple[str, ...] = ()
    panels: tuple[str, ...] = ()
    note: bool = False
    label: str = ""  # the label of the matcher that selected nothing (not part of the JSON)

    def as_json(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column, "service": self.service,
                "component": self.component, "kind": self.kind, "signal": self.signal, "selector": self.selector,
                "problem": self.problem, "message": self.message, "alerts": list(self.alerts),
                "panels": list(self.panels), "hint": self.hint}


def check(uses: list[Use], inv: Inventory, lookback: str) -> list[Finding]:
    """Every finding and note, one per located problem, with the alerts and panels of every selector it blinds."""
    results = _misnamed([(use, _Check(use, inv, lookback).run()) for use in uses])
    merged: dict[tuple, tuple[Finding, set[str], set[str]]] = {}
    for f, alerts, panels in _collapsed(results):
        key = (f.file, f.line, f.column, f.component, f.kind, f.signal, f.problem, f.message, f.note)
        entry = merged.setdefault(key, (f, set(), set()))
        entry[1].update(alerts)
        entry[2].update(panels)
    out = [Finding(**{**f.__dict__, "alerts": tuple(sorted(a)), "panels": tuple(sorted(p))})
           for f, a, p in merged.values()]
    return sorted(out, key=lambda f: (f.file, f.line, f.column, f.component, f.signal, f.problem, f.message))


def _misnamed(results: list[tuple[Use, list[Finding]]]) -> list[tuple[Use, list[Finding]]]:
    """A component whose own name is missing from a signal that must exist is misnamed: its rare-event signals
    missing that name too are findings, not "no event yet" notes."""
    wrong = {(u.file, u.path) for u, fs in results for f in fs
             if not f.note and f.problem == "value-missing" and u.identity and f.label == u.identity}
    return [(u, [Finding(**{**f.__dict__, "note": False, "problem": "value-missing",
                            "hint": f"name the {u.noun} as its series do"})
                 if f.note and (u.file, u.path) in wrong and f.label == u.identity else f for f in fs])
            for u, fs in results]


def _collapsed(results: list[tuple[Use, list[Finding]]]):
    """(finding, alerts, panels); a component none of whose metrics exist is one finding, not one per signal
    (an exporter that is not scraped, a profile that is not the app's)."""
    by_component: dict[tuple, list[tuple[Use, list[Finding]]]] = {}
    for use, findings in results:
        if use.signal != VARIABLES_SIGNAL:
            by_component.setdefault((use.file, use.path), []).append((use, findings))
    gone = {key for key, members in by_component.items()
            if len({u.read.metric for u, _ in members}) > 1
            and all(len(fs) == 1 and fs[0].problem == "unknown-metric" for _, fs in members)}
    for key in sorted(gone):
        members = by_component[key]
        use = members[0][0]
        metrics = sorted({u.read.metric for u, _ in members})
        message = f"none of the {len(metrics)} metrics of {use.noun} `{use.component}` exist: {_listed(metrics)}"
        yield (Finding(use.file, use.place.line, use.place.column, use.service, use.component, use.kind, "*",
                       use.read.selector, "no-metrics", message, advice.no_metrics(use)),
               {a for u, _ in members for a in u.alerts}, {p for u, _ in members for p in u.panels})
    for use, findings in results:
        if (use.file, use.path) not in gone or use.signal == VARIABLES_SIGNAL:
            yield from ((f, use.alerts, use.panels) for f in findings)


class _Check:
    def __init__(self, use: Use, inv: Inventory, lookback: str):
        self.use, self.inv, self.lookback = use, inv, lookback
        self.read = use.read

    def run(self) -> list[Finding]:
        inv, read = self.inv, self.read
        if not inv.scraped and read.metric == "up":
            return []  # Prometheus writes `up` per target: an exposition text never has it
        series = inv.series.get(read.metric, [])
        if not series:
            return [self._absent()]
        for m in self._matchers():
            narrowed = [s for s in series if matches(m, s.get(m.name))]
            if not narrowed:
                return [self._unmatched(m, series)]
            series = narrowed
        if not any(inv.is_present(read.metric, s) for s in series):
            return [self._finding("disappeared", f"`{read.metric}` had these series within the last {self.lookback} "
                                  "but none at the time checked (a target down, a renamed metric, a restart that "
                                  "stopped exporting it)", "check the target's health and its latest scrape")]
        return self._type(series) + self._buckets(series) + self._window(series)

    # -- presence ----------------------------------------------------------------------------
    def _matchers(self) -> list[Matcher]:
        """Scrape labels first, then the component's own label, then the rest as written; with exposition
        texts, the labels a scrape adds are taken as present."""
        use = self.use
        order = {label: 0 for label in sorted(use.scrape_labels)}
        if use.identity:
            order.setdefault(use.identity, 1)
        matchers = [m for m in self.read.matchers if self.inv.scraped or m.name not in use.scrape_labels]
        return sorted(matchers, key=lambda m: order.get(m.name, 2))

    def _absent(self) -> Finding:
        use, inv, metric = self.use, self.inv, self.read.metric
        if inv.known(metric):
            if use.event:
                return self._finding("no-series-yet", f"`{metric}` is declared but has no series yet",
                                     advice.events(use), note=True)
            return self._finding("no-series", f"`{metric}` is declared but has had no series within the last "
                                 f"{self.lookback}", "the app registers it but never records a value; check the "
                                 "code path that should (a metric with labels shows only after `.labels(...)`)")
        base = metric.removesuffix("_bucket")
        if base != metric and inv.has_series(base + "_count"):
            return self._finding("no-buckets", f"`{base}` has no `_bucket` series: it is published without a "
                                 "histogram", advice.histogram(use, base))
        close = _closest(metric, inv.all_names())
        message = f"no metric `{metric}`" + (f"; closest: {', '.join(close)}" if close else "")
        return self._finding("unknown-metric", message, advice.unknown_metric(use, bool(inv.scraped)))

    def _unmatched(self, m: Matcher, series: list[Labels]) -> Finding:
        use, metric = self.use, self.read.metric
        where = use.places.get(m.name, use.place)
        values = sorted({s[m.name] for s in series if s.get(m.name)}, key=_natural)
        if m.name == "le":
            return self._bucket_missing(m, values, where)
        if not values and not matches(m, None):
            labels = sorted({k for s in series for k in s})
            return self._finding("label-missing", f"`{metric}` has no label `{m.name}` (the selector has "
                                 f"`{m.text()}`); its labels: {_listed(labels)}", advice.label(use, m, where), where)
        note = use.event and m.name not in use.scrape_labels
        if m.name == use.identity:
            message = f"no {use.noun} `{m.value}`; {_plural(use.noun)} seen: {_listed(values)}"
        elif m.name == "job":
            message = f"no series from job `{m.value}`; jobs with `{metric}`: {_listed(values)}"
        else:
            message = f"no series with `{m.text()}`; values of `{m.name}`: {_listed(values)}"
        hint = advice.events(use) if note else advice.value(use, m, values, where)
        return self._finding("no-series-yet" if note else "value-missing", message, hint, where, note=note,
                             label=m.name)

    # -- type ----------------------------------------------------------------------------------
    def _type(self, series: list[Labels]) -> list[Finding]:
        kind, function, metric = self.inv.sample_type(self.read.metric), self.read.function, self.read.metric
        if kind == "gauge" and function in COUNTER_READS:
            return [self._finding("type-mismatch", f"`{metric}` is a gauge, read with {function}(), which "
                                  "takes a counter (every drop reads as a restart)",
                                  advice.type_fit(self.use, "a counter"))]
        if kind == "counter" and function in LEVEL_READS:
            how = f"with {function}()" if function else "as a level"
            return [self._finding("type-mismatch", f"`{metric}` is a counter, read {how}: it only grows, so a "
                                  "threshold on it is crossed once and stays crossed",
                                  advice.type_fit(self.use, "a gauge"))]
        return []

    # -- histograms ------------------------------------------------------------------------------
    def _bucket_missing(self, m: Matcher, values: list[str], where: Place) -> Finding:
        same = [v for v in values if _number(v) == _number(m.value) and _number(v) is not None]
        if same:
            message = (f"no bucket `{m.text()}`: the server writes this bound as le=\"{same[0]}\", and label values "
                       "must match exactly")
            return self._finding("bucket-spelling", message, advice.le_spelling(self.use, same[0]), where)
        message = f"no bucket `{m.text()}`; buckets: {_listed(values)}"
        return self._finding("bucket-missing", message, advice.bucket(self.use, _number(m.value)), where)

    def _buckets(self, series: list[Labels]) -> list[Finding]:
        threshold = self.read.quantile_above
        if threshold is None:
            return []
        bounds = sorted({b for s in series if (b := _number(s.get("le", ""))) is not None and math.isfinite(b)})
        if not bounds or bounds[-1] <= threshold:
            largest = f"its largest finite bucket, {bounds[-1]:g}" if bounds else "+Inf, its only bucket"
            return [self._finding("buckets-below-threshold", f"histogram_quantile() of `{self.read.metric}` never "
                                  f"reports more than {largest}: a threshold of {threshold:g} can never be crossed",
                                  advice.bucket(self.use, threshold, above=True))]
        return []

    # -- windows -------------------------------------------------------------------------------
    def _window(self, series: list[Labels]) -> list[Finding]:
        read, intervals = self.read, self.inv.intervals
        if read.range is None or read.grafana_range or intervals is None:
            return []
        jobs = {s.get("job") for s in series} & set(intervals)
        if not jobs:
            return []
        job = max(sorted(jobs), key=lambda j: intervals[j])
        interval = intervals[job]
        if read.range.total_seconds >= 2 * interval:
            return []
        what = f"{read.function}()" if read.function else "the range"
        message = (f"the [{read.range}] window of {what} is under twice job `{job}`'s {interval:g}s scrape interval: "
                   f"it holds at most {max(int(read.range.total_seconds // interval) + 1, 1)} sample, and "
                   f"{what} needs two")
        return [self._finding("window-too-short", message, advice.window(self.use, interval))]

    # -- output --------------------------------------------------------------------------------
    def _finding(self, problem: str, message: str, hint: str, where: Place | None = None, *,
                 note: bool = False, label: str = "") -> Finding:
        use = self.use
        where = where or use.place
        if where.path[:2] == ("service", "selector"):  # the service's selector: one finding for the whole service
            component, kind, signal = use.service, "service", ".".join(str(p) for p in where.path[1:])
        else:
            component, kind, signal = use.component, use.kind, use.signal
        return Finding(use.file, where.line, where.column, use.service, component, kind, signal,
                       self.read.selector, problem, message, hint, note=note, label=label)


def _closest(metric: str, names: list[str]) -> list[str]:
    """Up to three names like ``metric``: its namespace (``etag_``, ``resilience4j_``) first, then any."""
    namespace = metric.split("_", 1)[0] + "_"
    same = difflib.get_close_matches(metric, [n for n in names if n.startswith(namespace)], n=3, cutoff=0.4)
    rest = difflib.get_close_matches(metric, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(same + rest))[:3]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _natural(value: str) -> tuple:
    n = _number(value)
    return (0, n, value) if n is not None else (1, 0.0, value)


def _listed(values: list[str]) -> str:
    if not values:
        return "none"
    shown = ", ".join(values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "sh", "ch")) else "s")
