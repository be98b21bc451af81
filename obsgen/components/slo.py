"""Service level objectives: error-budget burn-rate alerts after the Google SRE workbook.

An SLO is a share of good events over a window (default 30d): requests that did
not fail (``availability``), or requests faster than a bound (``latency``, from
histogram buckets). The error budget is ``1 - objective``; the burn rate is the
error ratio divided by the budget (1 spends the budget exactly over the window).

Alerts follow the workbook's multi-window, multi-burn-rate table. A page,
``ErrorBudgetBurnFast``, when 2% of the budget burns within 1h (long window 1h,
short 5m); a ticket, ``ErrorBudgetBurnSlow``, when 5% burns within 6h (6h/30m) or
10% within 3d (3d/6h). The short window makes an alert stop soon after the burn
stops. Burn thresholds come from those budget shares and the SLO window (14.4, 6
and 1 for 30d) and never drop below 1: spending the budget no faster than the
window allows is not an incident.

Recordings (labelled ``service`` and ``slo``):

* ``slo:sli_errors:rate5m`` and ``slo:sli_requests:rate5m``: the raw event rates;
* ``slo:sli_error:ratio_rate<W>`` for 5m, 30m, 1h, 2h and 6h, straight from the
  counters (exact, and cheap at these ranges);
* ``slo:sli_error:ratio_rate<W>`` for 1d, 3d and the SLO window, as the
  ``sum_over_time`` of the recorded 5m error rate over that of the 5m request
  rate. Both sums weigh every evaluation alike, so this is the traffic-weighted
  error ratio of the window, blurred by the 5m rate at the window's edges only
  (under 0.4% of a 1d window); a 30d range over raw counters would read millions
  of samples on every evaluation;
* ``slo:sli_requests:rate<W>`` for the alerts' long windows (the traffic guard);
* ``slo:sli_error:burn_rate<W>`` for every window: what the alerts and dashboards
  read (see young data below).

Young data: on a new service or a Prometheus started afresh, a 3d window holds
minutes, and its error ratio is theirs. ``slo:sli_requests:since`` records when the
SLO's data begins; each burn rate scales the window's ratio by the share of the
window since then (the time before counts as clean traffic at the rate seen since),
and the 3d guard counts the requests the window really holds. A full window is
unchanged: the same burn, the same detection times.

Requests left out: over the profile's HTTP metrics, the service's own metrics
scrapes and its health-probe routes (``exclude``, :data:`EXCLUDED`, ``service.probe_routes``).

Low traffic: one failed request among a handful at night is a huge error ratio.
Each condition also needs ``min_events`` requests in its long window (default:
the smallest count at which one failed request alone cannot cross the
condition's threshold), configurable per SLO (Sloth issue 666, Pyrra issue 1925).
"""

from __future__ import annotations

import math
from functools import cache, partial
from itertools import accumulate
from operator import sub
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from obsgen.components import http
from obsgen.components.base import (AlertDef, Built, Component, Concern, Finding, Given, Inhibition, Kind, Recording,
                                    Rule, Scenario)
from obsgen.components.timeline import counter
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, below, jobs, pct
from obsgen.model.promql import (Call, Expr, Matcher, Num, Paren, Seconds, Selector, agg, and_, binop, number, or_,
                                 over_time, parse, quote, rate, ratio, regex_quote, selector)
from obsgen.model.records import record, value
from obsgen.model.rules import Check
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

STEP = Duration.parse("1m")
"""SLO tests run on a one-minute clock (their own rule and test file): their stories last hours."""

BASE = Duration.parse("5m")
RAW_WINDOWS = tuple(Duration.parse(w) for w in ("5m", "30m", "1h", "2h", "6h"))
LONG_WINDOWS = tuple(Duration.parse(w) for w in ("1d", "3d"))


@value
class Condition:
    """One row of the workbook table: ``share`` of the budget spent within ``long`` (confirmed by ``short``)."""

    share: float
    long: Duration
    short: Duration

    def burn(self, window: Duration) -> float:
        return max(1.0, round(self.share * window.millis / self.long.millis, 4))


@value
class BurnAlert:
    """An alert of the catalogue and the workbook rows it fires on."""

    definition: AlertDef
    conditions: tuple[Condition, ...]

    @property
    def name(self) -> str:
        return self.definition.name


FAST = BurnAlert(AlertDef("ErrorBudgetBurnFast", "critical", "1m",
                          "An SLO's error budget is burning fast; at this rate it is gone within days.",
                          related=("ErrorBudgetBurnSlow",)),
                 (Condition(0.02, Duration.parse("1h"), Duration.parse("5m")),))
SLOW = BurnAlert(AlertDef("ErrorBudgetBurnSlow", "warning", "5m",
                          "An SLO's error budget is burning faster than its objective allows.",
                          related=("ErrorBudgetBurnFast",)),
                 (Condition(0.05, Duration.parse("6h"), Duration.parse("30m")),
                  Condition(0.10, Duration.parse("3d"), Duration.parse("6h"))))


@record(kw_only=True)
class SloSpec(ComponentSpec):
    """One item of a spec's ``slos:`` list (slo), as the schema defaulted it."""

    sli: str
    objective: float
    window: Duration
    latency_threshold: Duration | None
    le: str | None
    min_events: int | None
    exclude: Labels | None

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 10)

    @property
    def bucket_bound(self) -> str:
        return bucket_bound(self.latency_threshold, self.le)


def bucket_bound(threshold: Duration | None, le: str | None) -> str:
    """The bucket's ``le`` as client libraries print it (0.5 → ``0.5``, 1 → ``1.0``) unless ``le`` says."""
    if le:
        return le
    return repr(threshold.total_seconds) if threshold else ""


def _http_events(profile: str) -> dict[str, MetricRef]:
    """By default an SLO counts the HTTP server's requests, with the http kind's metric names."""
    m = http.KIND.default_metrics[profile]
    count = MetricRef(m["buckets"].name.removesuffix("_bucket") + "_count")
    return {"requests": m["requests"], "errors": m["errors"], "latency_bucket": m["buckets"], "latency_count": count}


EXCLUDED = {"micrometer": {"uri": "/actuator/.*"}, "python": {"handler": "/metrics"}}
"""Requests an SLO over the profile's HTTP metrics leaves out unless its spec says ``exclude``: the service's own
metrics scrapes, which the HTTP instrumentation times like any request. Spring times every Actuator endpoint
(``uri="/actuator/prometheus"``, health probes under ``/actuator/health``: spring-boot issue 13435 suggests
``uri!~"/actuator.*"``); prometheus-fastapi-instrumentator counts ``handler="/metrics"`` unless the app passes
``excluded_handlers``. Four scrapes a minute per instance would dilute the ratio and, at night, meet
``min_events`` on their own."""


def _exclusions(exclude: Mapping | None, metrics: Mapping | None, profile: str, probes: Sequence[str] = ()) -> Labels:
    """``exclude`` as written, else the profile's default when the SLO reads the profile's HTTP metrics: its metrics
    scrapes and the service's health-probe routes (``service.probe_routes``), which would otherwise meet
    ``min_events`` on a closed night and water the ratio down with answers no user waited for."""
    if exclude is not None:
        return dict(exclude)
    if metrics:
        return {}
    return {label: "|".join([pattern, *(regex_quote(p) for p in probes)])
            for label, pattern in EXCLUDED.get(profile, {}).items()}


def check(given: Given) -> list[Finding]:
    item, out = given.item, []
    for label, pattern in (item.get("exclude") or {}).items():
        try:
            parse(f"x{{{label}!~{quote(pattern)}}}")
        except ValueError as err:
            out.append(Finding(("exclude", label), f"`{pattern}` is not a regular expression Prometheus accepts "
                                                   f"({err}); write an RE2 pattern such as /actuator/.*"))
    if item["sli"] == "latency" and "latency_threshold" not in item:
        out.append(Finding((), "a latency SLO needs `latency_threshold`: the bound a good request is faster than, "
                               "one of the histogram's bucket bounds (e.g. 500ms)"))
    if item["sli"] != "latency":
        out += [Finding((key,), f"`{key}` only applies to `sli: latency`; remove it", key=True)
                for key in ("latency_threshold", "le") if key in given.written]
    window = Duration.parse(item["window"])
    if window < LONG_WINDOWS[-1]:
        out.append(Finding(("window",), f"an SLO window of {item['window']} is shorter than the 3d window of the "
                                        "slow-burn alert; use at least 3d (28d or 30d are usual)"))
        return out
    out += _overlaps(given)
    budget = 1 - item["objective"]
    fast = FAST.conditions[0].burn(window)
    if fast * budget >= 1:
        out.append(Finding(("objective",), f"with an objective of {pct(item['objective'])} the fast-burn page needs "
                                           f"an error ratio of {pct(fast * budget)}, which is impossible; use an "
                                           f"objective above {pct(1 - 1 / fast)}"))
    return out


# The events an SLI counts: bad ones and all of them.
SIGNALS = {"availability": ("errors", "requests"), "latency": ("latency_bucket", "latency_count")}


def _events(item: Mapping, spec: Mapping) -> list[set[tuple[str, str]]]:
    """Per signal of the SLI, the metric name and labels every series it reads carries (and the label values
    it must not carry, ``exclude``)."""
    service = spec.get("service") if isinstance(spec.get("service"), Mapping) else {}
    profile = service.get("profile", "micrometer")
    defaults = _http_events(profile)
    excluded = _exclusions(item.get("exclude"), item.get("metrics"), profile, service.get("probe_routes") or ())
    left_out = {(f"{label}!~", pattern) for label, pattern in excluded.items()}
    out = []
    for signal in SIGNALS[item["sli"]]:
        given = item.get("metrics", {}).get(signal)
        ref = MetricRef.of(given) if given is not None else defaults[signal]
        labels = {**dict(ref.matchers), **item.get("selector", {})}
        if signal == "latency_bucket":
            threshold = item.get("latency_threshold")
            labels["le"] = bucket_bound(Duration.parse(threshold) if threshold else None, item.get("le"))
        out.append({("__name__", ref.name), *labels.items(), *left_out})
    return out


def _overlaps(given: Given) -> list[Finding]:
    """Two SLOs of which one counts every event the other counts (same metrics, a selector that is a subset).

    SLO rules sum over every instance, so the wider SLO sees the other's promtool
    stories and fires where its tests expect silence: obsgen cannot prove their
    alerts apart.
    """
    mine = _events(given.item, given.spec)
    for j, other in enumerate(given.spec.get("slos", [])):
        if other is given.item:
            break
        if not isinstance(other, Mapping) or other.get("sli") != given.item["sli"]:
            continue
        try:
            theirs = _events(other, given.spec)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # the other SLO is itself broken and reported
        if all(a <= b or b <= a for a, b in zip(mine, theirs)):
            return [Finding(("selector",), (
                f"this SLO counts the same {given.item['sli']} events as slos[{j}] `{other.get('name')}` (one's "
                "selector and metrics pick every series the other's do), so the generated tests of one would see "
                "the other's traffic; give each SLO a selector with a label that tells their requests apart (a "
                "`route`, a `handler`), or keep one SLO per set of requests"))]
    return []


# ------------------------------------------------------------------- rules

def _base(c: Component) -> Labels:
    return {**c.service.selector, **c.spec.selector}


def _tag(c: Component) -> Labels:
    return {"service": c.service.name, "slo": c.name}


def _ratio(c: Component, window: Duration) -> Selector:
    return selector(f"slo:sli_error:ratio_rate{window}", _tag(c))


def _burn(c: Component, window: Duration) -> Selector:
    return selector(f"slo:sli_error:burn_rate{window}", _tag(c))


def _requests(c: Component, window: Duration) -> Selector:
    return selector(f"slo:sli_requests:rate{window}", _tag(c))


def _errors(c: Component, window: Duration) -> Selector:
    return selector(f"slo:sli_errors:rate{window}", _tag(c))


def _since(c: Component) -> Selector:
    return selector("slo:sli_requests:since", _tag(c))


def _stamp(c: Component) -> Selector:
    return selector("slo:sli_requests:timestamp", _tag(c))


def _select(c: Component, signal: str, extra: Labels | None = None) -> Selector:
    """``signal`` over every instance of the service, without the requests the SLO leaves out (``exclude``)."""
    picked = c.select(signal, extra, base=_base(c))
    left_out = _exclusions(c.spec.exclude, c.spec.metrics, c.service.profile, c.service.probe_routes)
    return replace(picked, matchers=picked.matchers + tuple(Matcher(k, v, "!~") for k, v in sorted(left_out.items())))


def _total(c: Component, e: Expr) -> Expr:
    """Summed across instances, but never across the clusters of a fleet (``service.cluster_label``)."""
    return agg("sum", e, (c.service.cluster_label,) if c.service.cluster_label else None)


def _per_event(bad: Expr, total: Expr, errors_now: Expr) -> Expr:
    """``bad / total``, and 0 where ``total`` is 0: a window without events is a window without failures.

    Idle time neither spends budget nor turns the ratio into NaN (0/0). The 0 takes
    its labels from ``errors_now``, the recorded bad events/s of this evaluation: where
    they have no series the ratio has none either (a latency SLO whose bucket is
    missing shows no data rather than a perfect score).
    """
    return or_(ratio(bad, Paren(binop(">", total, 0))), binop("*", 0, errors_now))


def _bad(c: Component, spec: SloSpec, window: Duration) -> Expr:
    """Bad events/s over ``window``, summed over every instance; reads ``slo:sli_requests:rate<window>``.

    An error counter that is one status or outcome of the request family
    (``status="5xx"``, ``outcome="SERVER_ERROR"``) has no series until the first
    error (client libraries create a label child on first use): a service that
    serves requests and no error has 0 errors/s, not none. A service without
    requests gets no series at all.
    """
    requests = _total(c, _requests(c, window))
    if spec.sli == "latency":
        fast = _select(c, "latency_bucket", {"le": spec.bucket_bound})
        return binop("-", requests, _total(c, rate(fast, window)), multiline=True)
    return or_(_total(c, rate(_select(c, "errors"), window)), binop("*", 0, requests))


def _raw(c: Component, spec: SloSpec, window: Duration) -> list[Rule]:
    """Requests, errors and their ratio over ``window`` straight from the counters, each counter read once."""
    tag = _tag(c)
    total = _select(c, "latency_count" if spec.sli == "latency" else "requests")
    return [Recording(_requests(c, window).metric, _total(c, rate(total, window)), tag),
            Recording(_errors(c, window).metric, _bad(c, spec, window), tag),
            Recording(_ratio(c, window).metric,
                      _per_event(_errors(c, window), _requests(c, window), _errors(c, window)), tag)]


def _long(c: Component, window: Duration) -> Rule:
    """The ratio over a long window from the recorded 5m rates: every evaluation weighs alike, idle ones add 0.

    A window without a request is 0 while the service still exports its counters (a
    service that is down and was idle all window long has no ratio).
    """
    return Recording(_ratio(c, window).metric,
                     _per_event(over_time("sum", _errors(c, BASE), window), over_time("sum", _requests(c, BASE), window),
                                _errors(c, BASE)), _tag(c))


def _age(c: Component, spec: SloSpec) -> list[Rule]:
    """When the SLO's data begins: the earliest evaluation within the SLO window that recorded a 5m request rate.

    A fresh Prometheus (or a new service) holds minutes of a 3d window; :func:`_coverage` says how much. The
    start is the minimum of a recorded timestamp rather than a count of samples times the evaluation interval:
    a rule file cannot know the interval it is evaluated at (the SLO's promtool stories run on 1m, 5m and 1h
    clocks, Prometheus on its global or the group's), and a timestamp is true at any.
    """
    return [Recording(_stamp(c).metric, Call("timestamp", (_requests(c, BASE),)), _tag(c)),
            Recording(_since(c).metric, over_time("min", _stamp(c), spec.window), _tag(c))]


def _coverage(c: Component, window: Duration) -> Expr:
    """The share of ``window`` the SLO has data for, from 0 at its first evaluation to 1 once ``window`` old."""
    return Call("clamp_max", (binop("/", binop("-", Call("time", ()), _since(c)), Seconds(window)), Num(1)))


def _burns(c: Component, spec: SloSpec) -> list[Rule]:
    """The burn rate over each window: its error ratio over the budget, the time before the SLO's data begins
    counted as clean traffic at the window's rate.

    A young window (minutes of data in 3d) then burns as a full window would after a clean past: a burn of
    20 minutes is 20 minutes of budget, not 3 days of it, and no alert fires earlier than on a clean history.
    Once the window is full the burn is exactly the error ratio over the budget.
    """
    windows = sorted({*RAW_WINDOWS, *LONG_WINDOWS, spec.window})
    return [Recording(_burn(c, w).metric, binop("/", binop("*", _ratio(c, w), _coverage(c, w)), spec.budget),
                      _tag(c)) for w in windows]


def _guards(c: Component) -> list[Rule]:
    """Requests/s over the alerts' long windows that the counters' ``rate()`` does not record (3d): the requests
    the window holds over its length, so that ``rate3d * 259200`` counts the requests it holds, however young."""
    long = sorted({cond.long for a in (FAST, SLOW) for cond in a.conditions} - set(RAW_WINDOWS))
    return [Recording(_requests(c, w).metric, binop("*", over_time("avg", _requests(c, BASE), w), _coverage(c, w)),
                      _tag(c)) for w in long]


def _recordings(c: Component, spec: SloSpec) -> list[Rule]:
    out = [rule for window in RAW_WINDOWS for rule in _raw(c, spec, window)]
    out += [_long(c, window) for window in sorted(set(LONG_WINDOWS) | {spec.window})]
    return out + _age(c, spec) + _guards(c) + _burns(c, spec)


def min_events(spec: SloSpec, cond: Condition) -> int:
    """Requests a condition's long window must hold: with fewer, one failed request alone could cross it."""
    if spec.min_events is not None:
        return spec.min_events
    return math.floor(1 / (cond.burn(spec.window) * spec.budget)) + 1


def _condition(c: Component, spec: SloSpec, cond: Condition) -> Expr:
    burn = cond.burn(spec.window)
    return and_(binop(">", _burn(c, cond.long), burn), binop(">", _burn(c, cond.short), burn),
                binop(">=", binop("*", _requests(c, cond.long), Seconds(cond.long)), min_events(spec, cond)))


def _alert(c: Component, spec: SloSpec, alert: BurnAlert, told: Callable[[], list[Told]]) -> list[Rule]:
    conditions = [_condition(c, spec, cond) for cond in alert.conditions]
    expr = conditions[0] if len(conditions) == 1 else or_(*(Paren(e) for e in conditions))
    bad = f"slower than {spec.latency_threshold}" if spec.sli == "latency" else "failed"
    rows = " or ".join(f"{pct(cond.share)} of the budget within {cond.long} ({number(cond.burn(spec.window))}× burn "
                       f"over {cond.long} and {cond.short})" for cond in alert.conditions)
    return c.alert(
        alert.definition, expr=expr, scenarios=lambda f: _scenarios(c, spec, alert, f, told()),
        queries={**{f"burn_{w}": _burn(c, w) for w in (BASE, *BURN_PANEL_WINDOWS)},
                 "by_route": _by_route(c, spec, alert.conditions[0].short)},
        description=(f"SLO {{{{ $labels.slo }}}} ({pct(spec.objective)} over {spec.window}): "
                     f"requests {bad} at a rate that spends {rows}. The budget is {pct(spec.budget)} of requests."),
        condition=(f"spending {rows}, with at least "
                   + " / ".join(f"{min_events(spec, cond):,} requests in {cond.long}" for cond in alert.conditions)),
    )


def _by_route(c: Component, spec: SloSpec, window: Duration) -> Expr:
    """The requests that spend the budget, per route: failed ones, or for a latency SLO the slow ones."""
    route = _route_label(c)
    by = (c.service.cluster_label, route) if c.service.cluster_label else (route,)
    if spec.sli == "latency":
        return Paren(binop("-", agg("sum", rate(_select(c, "latency_count"), window), by),
                           agg("sum", rate(_select(c, "latency_bucket", {"le": spec.bucket_bound}), window), by)))
    return agg("sum", rate(_select(c, "errors"), window), by)


def _route_label(c: Component) -> str:
    """The label the service's request metrics carry the route in (its HTTP component's, else the profile's)."""
    return {"micrometer": "uri", "python": "handler"}.get(c.service.profile, "uri")


BURN_PANEL_WINDOWS = (Duration.parse("1h"), Duration.parse("6h"))
"""The burn-rate windows a runbook shows besides 5m: the page's and the ticket's long windows."""


def rules(c: Component) -> list[Rule]:
    spec: SloSpec = c.spec  # type: ignore[assignment]
    told = cache(partial(_told, spec))  # the stories replayed once, for both alerts (unless both are disabled)
    return _recordings(c, spec) + _alert(c, spec, FAST, told) + _alert(c, spec, SLOW, told)


# ------------------------------------------------------------------- panels

BURN_WINDOWS = RAW_WINDOWS + LONG_WINDOWS


YOUNG_NOTE = ("A window older than the SLO's data (a new service, a Prometheus started afresh) counts the time "
              "before the data as clean traffic at the rate seen since.")


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: SloSpec = c.spec  # type: ignore[assignment]
    remaining = binop("-", 1, _burn(c, spec.window))
    what = (f"requests faster than {spec.latency_threshold}" if spec.sli == "latency" else "requests that succeed")
    budget_steps = (Step("red"), Step("orange", 0), Step("green", 0.25))
    burn_lines = tuple(sorted({cond.burn(spec.window) for a in (FAST, SLOW) for cond in a.conditions}))
    detail = (
        Panel(
            title=f"{c.name}: SLI against the objective", unit="percentunit", max=1,
            thresholds=below(spec.objective), alerts=(SLOW.definition,),
            description=(f"Share of {what} over 5m and 1h, against the objective {pct(spec.objective)} (red below "
                         f"it). Dips are fine while the error budget lasts."),
            queries=(Query(binop("-", 1, _ratio(c, BASE)), "5m"),
                     Query(binop("-", 1, _ratio(c, Duration.parse("1h"))), "1h")),
        ),
        Panel(
            title=f"{c.name}: error budget remaining", unit="percentunit", max=1, thresholds=budget_steps,
            alerts=(SLOW.definition,),
            description=(f"Share of the {spec.window} error budget ({pct(spec.budget)} of requests) not yet spent; "
                         f"below 0 the objective is missed for this window. {YOUNG_NOTE}"),
            queries=(Query(remaining, "remaining"),),
        ),
        Panel(
            title=f"{c.name}: burn rate per window", unit="short", min=0,
            thresholds=above(burn_lines[-1], burn_lines[0]), alerts=(FAST.definition, SLOW.definition),
            description=("Error ratio over each window divided by the budget: 1 spends the budget exactly over "
                         f"{spec.window}. The page needs {number(burn_lines[-1])}× over 1h and 5m; the tickets "
                         + " or ".join(f"{number(cond.burn(spec.window))}× over {cond.long} and {cond.short}"
                                       for cond in SLOW.conditions) + f". {YOUNG_NOTE}"),
            queries=tuple(Query(_burn(c, w), str(w)) for w in BURN_WINDOWS),
        ),
    )
    health = Panel(
        title=f"SLO {c.name}: budget left", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=budget_steps, alerts=(FAST.definition,),
        description=f"Error budget of SLO {c.name} ({pct(spec.objective)} over {spec.window}) not yet spent.",
        queries=(Query(remaining, c.name),),
    )
    return ComponentPanels(health, detail, jobs(_base(c)))


# ------------------------------------------------------------------- promtool stories
#
# Each story is one set of request counters, told to both alerts in a test group of
# its own: a fast burn pages on time; slow burns ticket on time (each condition
# alone) and do not page; errors within the budget, a failing trickle of traffic and
# a burst of errors on a fresh Prometheus (every window young) fire nothing.
# Detection times are not guessed: ``_detect`` replays the story minute by minute
# through the recordings as Prometheus computes them on the story's clock.

Segment = tuple[Duration, float, float]
"""(duration, requests/s, error ratio)"""

SLOW_CLOCK = Duration.parse("5m")
"""Stories of slow burns evaluate every 5m: hours long, their checks need no finer timing."""
DAYS_CLOCK = Duration.parse("1h")
"""The 3d story evaluates hourly: its three days of idle counters at 5m were nine tenths of the SLO tests' promtool
work (evaluations × rules). Its lead-in, and so its burn until detection, are those of a 5m story stretched by
``DAYS_CLOCK / SLOW_CLOCK``: its silent check, two evaluations before detection, sits as close under the threshold."""
RECOVERY = Duration.parse("15m")
MIN_LEAD = Duration.parse("15m")
"""The shortest clean lead-in of a slow-burn story (on 5m; stretched with its clock): its silent check falls two
evaluations before detection."""
SILENT_AFTER = Duration.parse("20m")
"""How long after another alert's detection a story checks that this one stays silent."""
YOUNG = Duration.parse("20m")
"""How long the burst of errors on a fresh Prometheus lasts, and the clean traffic after it."""


def _per_minute(segments: tuple[Segment, ...]) -> tuple[list[float], list[float]]:
    requests, errors = [], []
    for span, rate, ratio in segments:
        minutes = span.millis // STEP.millis
        requests += [rate * 60] * minutes
        errors += [rate * ratio * 60] * minutes
    return requests, errors


def _running(values: list[float]) -> list[float]:
    """Running totals with a leading 0: ``sum(values[a:b])`` is ``out[b] - out[a]``."""
    return [0.0, *accumulate(values)]


def _trailing(running: list[float], n: int, count: int, through: int = 0) -> list[float]:
    """Per evaluation ``t`` in 0 … ``count``, ``sum(values[max(0, t - n + 1) : t + through])`` of the values whose
    ``running`` totals (:func:`_running`) are given."""
    lead = min(n - 1, count + 1)  # evaluations whose window still starts at minute 0
    starts = [running[0]] * lead + running[:count + 1 - lead]
    return list(map(sub, running[through:count + 1 + through], starts))


def _covered(since: int, n: int, count: int) -> list[float]:
    """Per minute ``t`` in 0 … ``count``, the share of an ``n``-minute window that data from minute ``since`` on
    covers: ``min(1, max(0, t - since) / n)``, built as none, the ramp, then whole (the ramp's values computed as
    that expression computes them, so the replay's floats do not move)."""
    ramp = [k / n for k in range(1, n)]
    out = [0.0] * (since + 1) + ramp + [1.0] * max(0, count - since - len(ramp))
    return out[:count + 1]


def _windows(requests: list[float], errors: list[float], window: Duration,
             every: int) -> tuple[list[float], list[float]]:
    """Per evaluation ``k`` (one every ``every`` minutes, from minute 0 to the story's end), the error ratio over
    ``window`` times the share of it the data covers (the burn rate times the budget), and the requests it holds,
    as the recordings compute them on that clock; each sum taken from two running totals. ``requests`` and
    ``errors`` are the running totals of the story's per-minute counts, computed once for all its windows.

    ``rate(x[W])`` at minute ``t`` spans the last W/1m - 1 increments of the 1m samples
    whatever the clock (both rates of a ratio alike, so extrapolation cancels; the
    requests it holds are extrapolated to W); the first 5m rate is recorded one
    evaluation in (at 0 the counters have one sample). The long windows sum the 5m
    rates (the last 4 increments) recorded at the evaluations within W, and hold
    their average times the minutes covered. A window without requests has a ratio
    of 0, as recorded.
    """
    n, five, end = window.millis // STEP.millis, BASE.millis // STEP.millis, len(requests) - 1
    covered = _covered(every, n, end)[::every]
    if window in RAW_WINDOWS:
        bad, total = _trailing(errors, n, end)[::every], _trailing(requests, n, end)[::every]
        held = [s * n / (n - 1) for s in total]
    else:
        count, within = end // every, -(-n // every)  # the last evaluation; evaluations within W
        bad = _trailing(_running(_trailing(errors, five, end)[::every]), within, count, through=1)
        total = _trailing(_running(_trailing(requests, five, end)[::every]), within, count, through=1)
        held = [s / (k + 1 - max(1, k - within + 1)) / (five - 1) * n * cov if k else 0.0
                for k, (s, cov) in enumerate(zip(total, covered))]
    return [b / s * cov if s else 0.0 for b, s, cov in zip(bad, total, covered)], held


def _detect(spec: SloSpec, alert: BurnAlert, segments: tuple[Segment, ...],
            clock: Duration = STEP) -> Duration | None:
    """The first evaluation at which one of ``alert``'s conditions holds, as the recordings would see it on a
    Prometheus that evaluates every ``clock`` (whole minutes) and starts with the story.

    Linear in the story's minutes (running totals), not in minutes × window.
    """
    requests, errors = map(_running, _per_minute(segments))
    every = clock.millis // STEP.millis
    first: int | None = None
    budget = spec.budget
    for cond in alert.conditions:
        burn, needed = cond.burn(spec.window), min_events(spec, cond)
        long_burn, long_requests = _windows(requests, errors, cond.long, every)
        short_burn = _windows(requests, errors, cond.short, every)[0]
        hit = next((k for k, (lb, sb, held) in enumerate(zip(long_burn, short_burn, long_requests))
                    if k and lb / budget > burn and sb / budget > burn and held >= needed), None)
        if hit is not None and (first is None or hit < first):
            first = hit
    return None if first is None else clock * first


def _traffic(c: Component, spec: SloSpec, segments: tuple[Segment, ...]) -> tuple:
    def series(share):
        return counter(*[(span, rate * share(r)) for span, rate, r in segments], step=STEP)

    base = _base(c)
    if spec.sli == "latency":
        return (c.series("latency_count", series(lambda r: 1), base=base),
                c.series("latency_bucket", series(lambda r: 1 - r), {"le": spec.bucket_bound}, base=base))
    errors = c.series("errors", series(lambda r: r), base=base)
    if c.metric("errors").name != c.metric("requests").name:
        return errors, c.series("requests", series(lambda r: 1), base=base)
    # Errors are one label value of the request family (outcome="SERVER_ERROR"): the rest are good requests.
    good = {k: f"not_{v}" for k, v in c.metric("errors").matchers}
    return errors, c.series("requests", series(lambda r: 1 - r), good, base=base)


@value
class Story:
    """Request counters told to both alerts: ``fires`` must fire on time, ``free`` are not checked
    (a fast burn also tickets; Alertmanager inhibits it), the rest must stay silent (at ``silent_at``, or
    after the firing one's detection, or at the end). A story that ``recovers`` ends with :data:`RECOVERY`
    of clean traffic, after which the firing alert must have cleared."""

    slug: str
    title: str
    segments: tuple[Segment, ...]
    fires: tuple[BurnAlert, ...] = ()
    free: tuple[BurnAlert, ...] = ()
    recovers: bool = False
    silent_at: tuple[Duration, ...] = ()
    clock: Duration = SLOW_CLOCK


def _for(spec: SloSpec, alert: BurnAlert) -> Duration:
    tuning = spec.alerts.get(alert.name)
    return tuning.for_ if tuning and tuning.for_ is not None else Duration.parse(alert.definition.for_)


def _stories(spec: SloSpec, page_for: Duration, ticket_for: Duration) -> list[Story]:
    """Burns between the thresholds, so that exactly the intended conditions can hold.

    The fast burn lasts until the page has fired (``page_for`` after detection) and then
    stops: the page must clear within its 5m short window plus ``for``. Slow burns
    last 5h, long enough for either ticket condition, plus the ticket's ``for``. Every
    story starts on an empty Prometheus; the 3d one after 3d of idle counters, so that
    its 3d window is full when it tickets, on the hourly :data:`DAYS_CLOCK` with its lead-in
    and burn stretched to match.
    """
    fast = FAST.conditions[0].burn(spec.window)
    six_h, three_d = (cond.burn(spec.window) for cond in SLOW.conditions)
    rate = max(10.0, 4 * max(min_events(spec, cond) / cond.long.total_seconds
                             for a in (FAST, SLOW) for cond in a.conditions))
    hour = Duration.parse("1h")

    def capped(burn: float) -> float:
        return min(1.0, burn * spec.budget)

    quiet = min(min_events(spec, cond) / cond.long.total_seconds for a in (FAST, SLOW) for cond in a.conditions) / 4
    # 1.5× the page's burn, or as close as an error ratio of 100% gets at objectives just above the lowest one
    # check() allows; the 1h window crosses the page's threshold after fast / burn of an hour of it.
    burn = capped(fast * 1.5) / spec.budget
    until_page = Duration.seconds(math.ceil(hour.total_seconds * fast / burn / 60) * 60)
    fast_burn = until_page + _on(STEP, page_for, up=True) + STEP * 5
    near_fast = six_h + (fast - six_h) * 0.9
    slow_burn = hour * 5 + _on(SLOW_CLOCK, ticket_for, up=True)
    # To prove the 6h/30m condition alone, the 3d window must stay under 1× while the 6h window fills with
    # errors: a short burst of heavy clean traffic long enough ago weighs the 3d window down without
    # reaching into the 6h window by the time the burn is detected (its error ratio, not only its burn, which
    # the 3d window's youth keeps low as well).
    six_hours = SLOW.conditions[0].long.total_seconds
    detect = six_hours * six_h / near_fast  # seconds of burn until the 6h window crosses six_h×
    heavy = max(20.0, 4 * near_fast * detect / 3600)  # 30m of it outweighs the burn twice in the 3d window
    gap = Duration.seconds(math.ceil((six_hours - detect) / 60) * 60 + 600)
    # The 3d condition alone: a burn between its threshold and the 6h one crosses the 3d (and 6h) window's
    # threshold after lead × three_d / (burn - three_d) of burning, on a 3d window holding 3d of data: idle
    # counters first, which add no request to it. Thresholds close together (1× and 1.4× for a 7d window)
    # need a shorter clean lead-in to cross within 3h of the story's 5h; closer than a 15m lead allows, the
    # two conditions are one in practice and the 6h story proves the ticket.
    between = (three_d + six_h) / 2
    lead = min(hour, STEP * max(0, math.floor(180 * (between - three_d) / three_d)))
    # Stretched to the hourly clock, the lead-in is up to 12h and detection 4.8h to 36h into the burn: idle counters
    # until the burn starts 3d in, so the 3d window is full from the burn's first evaluation on, before its silent
    # check two evaluations before detection.
    stretch = DAYS_CLOCK.millis // SLOW_CLOCK.millis
    days_lead, days_burn = lead * stretch, hour * 5 * stretch + _on(DAYS_CLOCK, ticket_for, up=True)
    idle = SLOW.conditions[1].long - days_lead
    out = [
        Story("fast-burn", f"{number(round(burn, 2))}× burn after 1h clean, stopping after the page: pages, then "
              "clears", ((hour, rate, 0.0), (fast_burn, rate, capped(fast * 1.5)), (RECOVERY, rate, 0.0)), (FAST,),
              (SLOW,), recovers=True, clock=STEP),
        Story("slow-burn-6h", f"{number(near_fast)}× burn after heavy clean traffic: tickets, no page", (
            (Duration.parse("30m"), rate * heavy, 0.0), (gap, rate, 0.0), (slow_burn, rate, capped(near_fast))),
              (SLOW,)),
        Story("slow-burn-3d", f"{number(between)}× burn after {idle} idle and {days_lead} clean: tickets, no page", (
            (idle, 0.0, 0.0), (days_lead, rate, 0.0), (days_burn, rate, capped(between))), (SLOW,),
              clock=DAYS_CLOCK),
        # What an old window tickets (and pages) within minutes, a fresh Prometheus has seen for minutes only.
        Story("young-burn", f"{number(round(burn, 2))}× burn for {YOUNG} on a fresh Prometheus, then clean: "
              "nothing fires", ((YOUNG, rate, capped(fast * 1.5)), (YOUNG, rate, 0.0)),
              silent_at=(YOUNG, YOUNG * 2 - SLOW_CLOCK)),
        Story("within-budget", "errors at 0.9× the budget for 70m: nothing fires", (
            (hour + STEP * 10, rate, 0.9 * spec.budget),)),
        Story("low-traffic", f"a fifth of requests failing at only {number(quiet)}/s, too few to judge: nothing fires",
              ((hour + STEP * 10, quiet, 0.2),)),
    ]
    return [s for s in out if s.slug != "slow-burn-3d" or lead >= MIN_LEAD]


def _on(clock: Duration, at: Duration, up: bool) -> Duration:
    """``at`` moved onto the evaluation clock (promtool checks alerts at evaluations)."""
    ticks = at.millis / clock.millis
    return clock * (math.ceil(ticks) if up else math.floor(ticks))


Told = tuple[Story, Duration | None]
"""A story, and when its firing alert's condition first holds on the story's clock (``None``: it never does)."""


def _told(spec: SloSpec) -> list[Told]:
    """Every story of the SLO with its detection time, replayed minute by minute (:func:`_detect`): both alerts' tests
    tell the same stories, and the replay is most of an SLO's build."""
    out = []
    for story in _stories(spec, _for(spec, FAST), _for(spec, SLOW)):
        detect = _detect(spec, story.fires[0], story.segments, story.clock) if story.fires else None
        out.append((story, None if detect is None else _on(story.clock, detect, up=True)))
    return out


def _scenarios(c: Component, spec: SloSpec, alert: BurnAlert, f: Duration, told: list[Told]) -> list[Scenario]:
    """This alert's part in every story: firing on time where the story burns for it, silent elsewhere.

    A firing check is one evaluation after the condition has held for ``for``; the
    silent check before it two evaluations before the condition holds.
    """
    fors = {a: _for(spec, a) for a in (FAST, SLOW)}
    out = []
    for story, detect in told:
        clock = story.clock
        end = sum((span for span, _, _ in story.segments), Duration(0))
        if story.fires and (detect is None or detect + fors[story.fires[0]] + clock > end):
            raise ValueError(f"SLO {c.name}: story {story.slug} does not fire {story.fires[0].name} in time (a bug)")
        if alert in story.free:
            continue
        if alert in story.fires:
            checks = (Check(detect - clock * 2, False), Check(_on(clock, detect + f, up=True) + clock, True))
            checks += (Check(_on(clock, end - clock, up=False), False),) if story.recovers else ()
        elif story.silent_at:
            checks = tuple(Check(_on(clock, at, up=False), False) for at in story.silent_at)
        else:
            checks = (Check(_on(clock, detect + SILENT_AFTER if detect else end - clock, up=False), False),)
        out.append(Scenario(story.slug, story.title, _traffic(c, spec, story.segments), checks,
                            labels=_tag(c) if alert in story.fires else {}, per_instance=False, story=story.slug,
                            clock=None if clock == STEP else clock))
    return out

KIND = Kind(
    key="slos",
    title="SLO",
    schema="slo",
    spec=SloSpec,
    alerts=(FAST.definition, SLOW.definition),
    rules=rules,
    panels=panels,
    check=check,
    concern=Concern("slo", "Service Level Objectives",
                    "Each SLO's indicator against its objective, error budget remaining and burn rate per window."),
    default_metrics={profile: _http_events(profile) for profile in ("micrometer", "python")},
    # The page says it all: the ticket for the same SLO adds nothing while it fires.
    inhibitions=(Inhibition("ErrorBudgetBurnFast", ("ErrorBudgetBurnSlow",), ("service", "slo")),),
    identified=False,
    rules_file="slo",
    same_series=({"requests", "latency_count"},),  # Micrometer's timer count is both
    test_step=STEP,
)
