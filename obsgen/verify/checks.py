"""Each selector against what the server has: presence, type, buckets, window.

For one :class:`~obsgen.verify.uses.Use` the checks run in order and the first
that fails explains the rest away (a metric that does not exist has no type):

1. presence: the metric (else the closest names the server has), then each
   matcher in turn, scrape labels first, then the component's own label, then
   those the spec sets, then the rest, so the message names the first that
   selects nothing and lists what exists instead, closest first; then whether the
   series are still there at ``--at`` (and if not, whether their targets are down);
2. type: counters under ``rate``/``increase``, gauges read as levels;
3. histogram buckets: an exact ``le`` bound, and buckets above a quantile's threshold;
4. window: every range at least twice the scrape interval of the jobs it reads.

Signals of rare events (:data:`~obsgen.verify.uses.EVENTS`) that merely have no
series yet are notes, not findings. A finding records what selected nothing
(:class:`Missing`), so that :mod:`.grouping` can say a cause many signals share
(a misnamed cache, a wrong service selector, a target down) once.
"""

from __future__ import annotations

import difflib
import math

from obsgen.model.promql import Matcher
from obsgen.verify import advice
from obsgen.verify.finding import (Finding, Missing, Signal, listed, missing_label, missing_value, natural, number,
                                   targets_down, unknown_metric)
from obsgen.verify.inventory import Inventory, Labels
from obsgen.verify.selectors import matches
from obsgen.verify.uses import Place, Use

COUNTER_READS = frozenset({"rate", "irate", "increase", "resets"})
LEVEL_READS = frozenset({None, "delta", "idelta", "deriv", "predict_linear", "holt_winters",
                         "double_exponential_smoothing", "avg_over_time", "min_over_time", "max_over_time",
                         "quantile_over_time", "stddev_over_time", "stdvar_over_time"})
def check(use: Use, inv: Inventory, lookback: str) -> list[Finding]:
    """The findings and notes of one selector (at most one presence problem; type, bucket and window problems)."""
    return _Check(use, inv, lookback).run()


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
            return [self._disappeared(series)]
        return self._type(series) + self._buckets(series) + self._window(series)

    # -- presence ----------------------------------------------------------------------------
    def _matchers(self) -> list[Matcher]:
        """Scrape labels first, then the component's own label, then the labels the spec sets (a tier's, a
        route's), then the rest (the profile's: ``outcome="SERVER_ERROR"``), so the first that selects nothing
        is the cause; with exposition texts, the labels a scrape adds are taken as present."""
        use = self.use

        def order(m: Matcher) -> int:
            if m.name in use.scrape_labels:
                return 0
            if m.name == use.identity:
                return 1
            return 2 if use.places[m.name].path != use.place.path else 3

        matchers = [m for m in self.read.matchers if self.inv.scraped or m.name not in use.scrape_labels]
        return sorted(matchers, key=order)

    def _absent(self) -> Finding:
        use, inv, metric = self.use, self.inv, self.read.metric
        if inv.known(metric):
            if use.event:
                return self._finding("no-series-yet", f"`{metric}` is declared but has no series yet",
                                     advice.events(use), note=True)
            when = f"had no series within the last {self.lookback}" if inv.scraped else "no series in the scrape"
            return self._finding("no-series", f"`{metric}` is declared but has {when}",
                                 "the app registers it but never records a value; check the code path that should "
                                 "(a metric with labels shows only after `.labels(...)`)")
        base = metric.removesuffix("_bucket")
        if base != metric and inv.has_series(base + "_count"):
            return self._finding("no-buckets", f"`{base}` has no `_bucket` series: it is published without a "
                                 "histogram", advice.histogram(use, base))
        missing = Missing(None, tuple(_closest(metric, inv.all_names())), (metric,))
        return self._finding("unknown-metric", unknown_metric(metric, missing.values, self._signals()),
                             advice.unknown_metric([use], inv.scraped), missing=missing)

    def _unmatched(self, m: Matcher, series: list[Labels]) -> Finding:
        use, metric = self.use, self.read.metric
        values = sorted({s[m.name] for s in series if s.get(m.name)}, key=natural)
        if m.name == "le":
            return self._bucket_missing(m, values, use.places.get(m.name, use.place))
        if not values and not matches(m, None):
            where = use.label_places.get(m.name, use.place)
            missing = Missing(m, tuple(sorted({k for s in series for k in s})), (metric,))
            return self._finding("label-missing", missing_label(m, missing),
                                 advice.label(use.identity, use.noun, m, where), where, missing=missing)
        where = use.places.get(m.name, use.place)
        missing = Missing(m, tuple(values), (metric,), use.noun if m.name == use.identity else "")
        message = missing_value(m, missing, self._signals(), self.lookback if self.inv.scraped else None)
        if self._optional(m, values):
            return self._finding("optional-value", message, advice.optional_value(m), where,
                                 note=True, missing=missing)
        note = use.event and m.name not in use.scrape_labels
        hint = advice.events(use) if note else advice.value(missing, use, where, self.inv.scraped)
        return self._finding("no-series-yet" if note else "value-missing", message, hint, where, note=note,
                             missing=missing)

    def _optional(self, m: Matcher, values: list[str]) -> bool:
        """A value obsgen's own panels select among others the app's label has (a Resilience4j-only state of a
        one-hot gauge: ``forced_open``): a panel mapping a state that does not occur, not a blind one. Alerts
        read no such value alone, and an exporter's missing value means a server not scraped."""
        use = self.use
        return (use.own.get(m.name) == "kind" and m.op == "=" and bool(values) and not use.alerts
                and not use.exporter)

    def _disappeared(self, series: list[Labels]) -> Finding:
        """Series seen within the lookback, none at the time checked: because their targets are down (one
        cause for every signal of those targets, grouped), or on their own (a renamed metric)."""
        read, inv = self.read, self.inv
        targets = [inv.target_state(s) for s in series]
        if all(targets):
            job = next((m for m in read.matchers if m.name == "job" and m.op == "="), None)
            where = self.use.places.get("job", self.use.place) if job else self.use.place
            missing = Missing(job, tuple(sorted(set(targets), key=natural)), (read.metric,),
                              of=inv.targets(job.value) if job else len(set(targets)))
            return self._finding("targets-down", targets_down(missing, self._signals()),
                                 advice.targets_down(len(missing.values)), where, missing=missing)
        jobs = sorted({s["job"] for s in series if s.get("job")})
        now = sorted({n for job in jobs for n in inv.names_now(job)} - {read.metric})
        close = _closest(read.metric, now)
        message = (f"`{read.metric}` had these series within the last {self.lookback} but none at the time checked "
                   "(a renamed metric, a restart that stopped exporting it)")
        if close:
            exports = "its job exports" if len(jobs) == 1 else "its jobs export"
            message += f"; closest names {exports} now: {', '.join(close)}"
            return self._finding("disappeared", message, advice.unknown_metric([self.use], True),
                                 missing=Missing(None, tuple(close), (read.metric,)))
        return self._finding("disappeared", message, "check the target's latest scrape")

    def _signals(self) -> tuple[Signal, ...]:
        return (Signal(self.use.kind, self.use.component, self.use.signal),)

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
        same = [v for v in values if number(v) == number(m.value) and number(v) is not None]
        if same:
            message = (f"no bucket `{m.text()}`: the server writes this bound as le=\"{same[0]}\", and label values "
                       "must match exactly")
            return self._finding("bucket-spelling", message, advice.le_spelling(self.use, same[0]), where)
        message = f"no bucket `{m.text()}`; buckets: {listed(values)}"
        return self._finding("bucket-missing", message, advice.bucket(self.use, number(m.value)), where)

    def _buckets(self, series: list[Labels]) -> list[Finding]:
        threshold = self.read.quantile_above
        if threshold is None:
            return []
        bounds = sorted({b for s in series if (b := number(s.get("le", ""))) is not None and math.isfinite(b)})
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
                 note: bool = False, missing: Missing | None = None) -> Finding:
        use = self.use
        where = where or use.place
        if where.path[:2] == ("service", "selector"):  # the service's selector: one finding for the whole service
            component, kind, signal = use.service, "service", ".".join(str(p) for p in where.path[1:])
        else:
            component, kind, signal = use.component, use.kind, use.signal
        return Finding(use.file, where.line, where.column, use.service, component, kind, signal,
                       self.read.selector, problem, message, hint, tuple(sorted(use.alerts)),
                       tuple(sorted(use.panels)), note, self._signals(), missing, where, (use,))


def _closest(metric: str, names: list[str]) -> list[str]:
    """Up to three names like ``metric``: its namespace (``etag_``, ``resilience4j_``) first, then any."""
    namespace = metric.split("_", 1)[0] + "_"
    same = difflib.get_close_matches(metric, [n for n in names if n.startswith(namespace)], n=3, cutoff=0.4)
    rest = difflib.get_close_matches(metric, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(same + rest))[:3]
