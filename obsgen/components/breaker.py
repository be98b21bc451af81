"""Circuit breakers: open (including one that keeps re-opening), failure rate nearing the threshold,
and a breaker that never opens although its calls keep failing.

Resilience4j publishes ``resilience4j_circuitbreaker_state`` as one series per
state, valued 1 for the current state and 0 otherwise; Python libraries usually
publish one gauge with a number per state. Both are handled here, and the
failure-rate gauge's -1 ("not enough calls yet") can never look like a failure.

Python breakers (pybreaker, aiobreaker, circuitbreaker, purgatory) export no
metrics; the app exports them with prometheus_client. The python profile
follows the OMS guide and purgatory's example: ``circuit_breaker_state{name}``
as one gauge (0 closed, 1 half-open, 2 open, so the profile's default
``state_encoding`` is ``enum``), and obsgen's convention for the calls,
``circuit_breaker_calls_total{name, result}`` with result ``success``,
``failure`` or ``rejected``. No failure-rate gauge: the python profile derives
the failure rate from the call counters.

CircuitBreakerNotOpening catches a breaker that exists on paper only: calls
keep failing above its threshold and it stays closed (the integration report,
seed 001, found one). It compares the breaker's own call counters with its
configured threshold.

A breaker with a ``fallback`` (what callers get while it is open, e.g. the data
last stored in a database) degrades answers rather than failing them: its
CircuitBreakerOpen is a warning unless the spec tunes the severity; without
one, an open breaker fails the calls and pages.

A breaker whose series carry no label naming it (``label: ""``; OMS's guide shows
``circuit_breaker_state{service="oms"}`` only) is picked by its selectors alone:
its series stand for every breaker the selectors match, so a spec may list only
one such breaker per selector.
"""

from __future__ import annotations

import json

import math

from obsgen.components.base import (OBSGEN_LABELS, AlertDef, Built, Component, Concern, Finding, Given, Inhibition, Kind,
                                    RatioSignals, Rule, Scenario, alert_enabled, never_fires, tuned_for)
from obsgen.components.shapes import gauge_compare, grouping, ratio_of_rates, ratio_traffic, share, verdict
from obsgen.components.timeline import MIN, MIN_WINDOW, STEP, counter, gauge
from obsgen.components.viz import (RATE, ComponentPanels, Mapping, Panel, Query, above, jobs, num, outcome_label, pct,
                                   rate, sel)
from obsgen.model.promql import Expr, Paren, agg, and_, binop, increase, number, or_, over_time
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

CONCERN = Concern("circuit-breaker", "Circuit Breaker",
                  "Circuit breaker state and failure rate, calls by outcome, retries and time-limiter timeouts.")
NOT_CLOSED = ("open", "half_open", "forced_open")
RESILIENCE4J = "resilience4j-micrometer (also bound by Resilience4j's Spring Boot starters)"
FIVE_MIN = Duration.parse("5m")

OPEN = AlertDef(
    "CircuitBreakerOpen", "critical", "1m", "A circuit breaker is open: calls through it fail fast or take the fallback.",
    related=("CircuitBreakerFailureRateHigh", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh"))
OPEN_WITH_FALLBACK = "warning"
"""CircuitBreakerOpen's severity for a breaker with a fallback: users get degraded answers, not errors."""
FAILURE_RATE_HIGH = AlertDef(
    "CircuitBreakerFailureRateHigh", "warning", "2m",
    "A circuit breaker's failure rate is approaching the rate that opens it.",
    related=("CircuitBreakerOpen", "CircuitBreakerNotOpening", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh"))
NOT_OPENING = AlertDef(
    "CircuitBreakerNotOpening", "warning", "5m",
    "A circuit breaker stays closed while the calls it protects keep failing.",
    related=("CircuitBreakerFailureRateHigh", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh", "HttpErrorRateHigh"))


@record(kw_only=True)
class StateEncoding:
    """How the state metric encodes the breaker's state (``state_encoding:``): one series per state, or one gauge."""

    type: str
    label: str
    closed: float


@record(kw_only=True)
class BreakerSpec(ComponentSpec):
    """One item of a spec's ``breakers:`` list (circuit breaker), as the schema defaulted it."""

    state_encoding: StateEncoding
    failure_rate_threshold: float
    warning_fraction: float
    wait_in_open: Duration
    reopen_window: Duration
    minimum_calls: int
    failure_window: Duration
    dependency: str
    protocol: str
    fallback: str

    @property
    def breaker(self) -> str:
        """A breaker guards itself: its alerts carry ``breaker`` like those of the calls it protects."""
        return self.name

    @property
    def who(self) -> str:
        """The breaker as an alert's description names it: its series' label, or its own name when its series
        carry none."""
        return f"{{{{ $labels.{self.label} }}}}" if self.label else self.name


# avg_over_time over a shorter window sees fewer than 4 samples at a 15s scrape interval (one or two at 30s).
MAX_REOPEN_WINDOW = Duration.parse("1d")
ONLY_FOR = {"closed": "enum", "label": "one_hot"}


def _state_metric(item: dict) -> object:
    """The state metric a breaker's spec names (``None``: its profile's), to tell breakers on other metrics apart."""
    metrics = item.get("metrics")
    return metrics.get("state") if isinstance(metrics, dict) else None


def _shared_series(given: Given) -> list[Finding]:
    """A breaker whose series carry no name label reads every breaker series its selectors match: those of another
    such breaker unless one label of their selectors tells them apart (each would fire for the other), and those of
    a named breaker unless its selector rules out that breaker's name (its alerts would count the other's state,
    and its missing-metrics alert could never fire while the other reports)."""
    item = given.item
    if item["label"]:
        return []
    mine = item.get("selector", {})
    before = True  # two unnamed breakers are told once, at the later of them
    for j, other in enumerate(given.spec.get("breakers", [])):
        if not isinstance(other, dict):
            continue
        if other.get("name") == item["name"]:
            before = False
            continue
        theirs = other.get("selector", {})
        if not isinstance(theirs, dict) or _state_metric(other) != _state_metric(item):
            continue
        label = other.get("label")  # the schema's default is filled in; a broken item is reported on its own
        if label == "" and before and all(theirs[k] == v for k, v in mine.items() if k in theirs):
            return [Finding(("label",), (
                f"reads the same series as breakers[{j}] (`{other.get('name')}`): neither names its breaker in a "
                "label and no label of their selectors tells them apart; have the app add a label naming the "
                "breaker to its breaker series and set `label` to it, or list one breaker for these series"))]
        if isinstance(label, str) and label:
            named = {**theirs, label: other.get("value") or other.get("name")}
            if all(named[k] == v for k, v in mine.items() if k in named):
                return [Finding(("label",), (
                    f"reads the series of breakers[{j}] (`{other.get('name')}`, {label}="
                    f"{json.dumps(named[label])}) too: its own carry no label naming the breaker, and no label of "
                    "their selectors tells them apart; give the two selectors that do (one label, such as `job`, "
                    "with different values), or have the app add a label naming the breaker and set `label` to it"))]
    return []


def check(given: Given) -> list[Finding]:
    """Settings that make an alert impossible, or that the state encoding ignores."""
    item, out = given.item, _shared_series(given)
    enc = item["state_encoding"]
    for key, kind in ONLY_FOR.items():
        if ("state_encoding", key) in given.paths and enc["type"] != kind:
            out.append(Finding(("state_encoding", key), f"`{key}` only applies to type: {kind}, not {enc['type']}; "
                               "remove it", key=True))
    if enc["type"] == "one_hot" and (enc["label"] == item["label"] or enc["label"] in OBSGEN_LABELS):
        what = "the label that holds the breaker's name (`label`)" if enc["label"] == item["label"] else \
            f"a label obsgen sets itself ({', '.join(OBSGEN_LABELS)})"
        out.append(Finding(("state_encoding", "label"), (
            f"expected the label that holds the state (open, closed, …), found `{enc['label']}`, {what}")))
    warn = item["failure_rate_threshold"] * item["warning_fraction"]
    if warn >= 100:
        out += never_fires(given, ("warning_fraction",), "CircuitBreakerFailureRateHigh",
                           f"its warning line is {number(warn)}% failed calls (failure_rate_threshold × "
                           "warning_fraction) and a failure rate is never above 100%")
    window, wait = Duration.parse(item["reopen_window"]), Duration.parse(item["wait_in_open"])
    if window.millis % STEP.millis or window < MIN_WINDOW:
        return out  # the spec's check of every window reports it
    if window > MAX_REOPEN_WINDOW:
        out.append(Finding(("reopen_window",), (
            f"expected a reopen_window of at most {MAX_REOPEN_WINDOW}, found {window}: CircuitBreakerOpen would "
            "still fire a day after the breaker last opened")))
        return out
    f = tuned_for(given, "CircuitBreakerOpen", "1m")
    if alert_enabled(given, "CircuitBreakerOpen") and f > wait and window < wait * 2:
        spell = Duration(window.millis // 2)
        out.append(Finding(("reopen_window",), (
            f"CircuitBreakerOpen waits {f}, longer than wait_in_open {wait}: a breaker that re-opens after each "
            f"closed spell of {spell} to {wait} is open most of the time but never fires it (no open stretch "
            f"lasts {f}, and each spell pulls the share of the {window} reopen_window down to 50%); make "
            f"reopen_window at least {wait * 2} (twice wait_in_open), or the `for` at most {wait}")))
    return out


def _not_closed_now_and_share(c: Component, spec: BreakerSpec) -> tuple[Expr, Expr]:
    """PromQL for "not closed right now" and "share of the window spent not closed"."""
    by, enc, window = grouping(c), spec.state_encoding, spec.reopen_window
    if enc.type == "one_hot":
        picked = c.select("state", regex={enc.label: "|".join(NOT_CLOSED)})
        return (binop("==", agg("max", picked, by), 1),
                binop(">", agg("sum", over_time("avg", picked, window), by), 0.5))
    picked = c.select("state")
    not_closed = binop("!=", picked, spec.state_encoding.closed, bool_=True)
    return (agg("count", binop("!=", picked, enc.closed), by),
            binop(">", agg("max", over_time("avg", not_closed, window), by), 0.5))


def _state_series(c: Component, spec: BreakerSpec, timeline: list[tuple[Duration, str]]) -> tuple:
    """Series that put the breaker through ``timeline`` (durations in each state)."""
    enc = spec.state_encoding
    if enc.type == "one_hot":
        return tuple(c.series("state", gauge(*[(span, 1 if s == state else 0) for span, s in timeline]),
                              {enc.label: state}) for state in ("closed", "open", "half_open"))
    code = {"closed": enc.closed, "half_open": enc.closed + 1, "open": enc.closed + 2}
    return (c.series("state", gauge(*[(span, code[s]) for span, s in timeline])),)


def _open_rule(c: Component, spec: BreakerSpec) -> list[Rule]:
    now, spent = _not_closed_now_and_share(c, spec)
    expr = or_(Paren(now), Paren(spent))
    window = spec.reopen_window

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + window + MIN * 2
        cycles = end.millis // MIN.millis + 1
        reopen = [(Duration.parse("45s"), "open"), (STEP, "half_open")] * cycles
        flap = [(Duration.parse("30s"), "open"), (STEP, "half_open"), (STEP, "closed")] * cycles
        out = [
            Scenario("open", "open and staying open", _state_series(c, spec, [(end, "open")]),
                     verdict(f, end, True), labels=dict(c.identity)),
            Scenario("reopening", "open 45s, half-open, open again: never open for the whole `for`",
                     _state_series(c, spec, reopen), verdict(f, end, True), labels=dict(c.identity)),
            Scenario("flapping", "open 30s, half-open, closed 15s, open again: mostly unavailable",
                     _state_series(c, spec, flap), verdict(f, end, True), labels=dict(c.identity)),
            Scenario("closed", "closed (" + (f"its {spec.state_encoding.label}=closed series 1, the others 0)"
                                             if spec.state_encoding.type == "one_hot" else
                                             f"the gauge at {number(spec.state_encoding.closed)})"),
                     _state_series(c, spec, [(end, "closed")]), verdict(f, end, False)),
        ]
        brief = Duration((f.millis - window.millis // 2) // 2 // STEP.millis * STEP.millis)
        if brief >= STEP:
            out.append(Scenario("brief", f"open {brief} once, then closed again",
                                _state_series(c, spec, [(MIN, "closed"), (brief, "open"), (end - MIN - brief, "closed")]),
                                verdict(f, end, False)))
        return out

    fate = "rejected and take the fallback" if spec.fallback else "rejected and fail (no fallback)"
    return c.alert(
        OPEN, expr=expr, scenarios=scenarios, queries=_queries(c, FIVE_MIN),
        severity=OPEN_WITH_FALLBACK if spec.fallback else None,
        condition=(f"open or half-open now, or not closed for more than half of the last {window} "
                   f"(wait in open: {spec.wait_in_open})"),
        description=(f"Circuit breaker {spec.who} on {{{{ $labels.instance }}}} has been open or "
                     f"half-open (or re-opening most of the last {window}) for {{for}}; calls to the protected "
                     f"dependency are {fate}. It retries after {spec.wait_in_open} in open state."),
    )


CALLS = RatioSignals(part="failed_calls", total="calls", rest="successful_calls")


def _queries(c: Component, window: Duration) -> dict[str, Expr]:
    """The runbooks' diagnostic queries, on the raw series: the state now, the failed share of calls over
    ``window``, calls by outcome, calls rejected, and the failure and slow-call rates where they are published."""
    spec: BreakerSpec = c.spec  # type: ignore[assignment]
    by, enc = grouping(c), spec.state_encoding
    per_second = lambda signal: rate_over(c.select(signal), window)  # noqa: E731
    out = {
        # One-hot: the series of the current state (its name in the state label); enum: the state's number.
        "state": (binop("==", agg("max", c.select("state"), by + (enc.label,)), 1) if enc.type == "one_hot"
                  else agg("max", c.select("state"), by)),
        "failed_share": share(c, CALLS, by, window),
        "outcomes": agg("sum", per_second("calls"), by + (outcome_label(c, CALLS.part),)),
        "rejected": agg("sum", per_second("not_permitted"), by),
    }
    out |= {name: agg("max", binop(">=", c.select(name), 0), by)  # -1: too few calls to judge
            for name in ("failure_rate", "slow_call_rate") if c.has(name)}
    return out


def _failure_rate_rule(c: Component, spec: BreakerSpec) -> list[Rule]:
    """From the breaker's own failure-rate gauge (Resilience4j), else from its call counters (python)."""
    warn = spec.failure_rate_threshold * spec.warning_fraction
    opens = f"the breaker opens at {num(spec.failure_rate_threshold)}%"
    if c.has("failure_rate"):
        return gauge_compare(
            c, FAILURE_RATE_HIGH, signal="failure_rate", op=">", threshold=warn,
            bad=(warn + (spec.failure_rate_threshold if warn < spec.failure_rate_threshold else 100)) / 2,
            good=(warn - 5, -1), condition=f"failure rate above {num(warn)}% ({opens})",
            queries=_queries(c, FIVE_MIN),
            description=(f"Circuit breaker {spec.who} on {{{{ $labels.instance }}}} sees "
                         f"{{{{ $value | humanize }}}}% failed calls, above {number(warn)}% for {{for}}; it opens at "
                         f"{number(spec.failure_rate_threshold)}%."),
        )
    # Like Resilience4j's -1, no rate until the breaker has seen minimum_calls calls in the window.
    min_rate = spec.minimum_calls / spec.failure_window.total_seconds
    return ratio_of_rates(
        c, FAILURE_RATE_HIGH, signals=CALLS, record="instance_breaker:failed", threshold=warn / 100,
        below=False, min_rate=min_rate, queries=_queries(c, FIVE_MIN),
        condition=(f"more than {num(warn)}% of calls failed (5m rate; {opens}) while at least "
                   f"{num(round(min_rate, 4))} calls/s ({spec.minimum_calls} calls in {spec.failure_window})"),
        description=(f"Circuit breaker {spec.who} on {{{{ $labels.instance }}}} sees "
                     f"{{{{ $value | humanizePercentage }}}} failed calls, above {number(warn)}% for {{for}}; it "
                     f"opens at {number(spec.failure_rate_threshold)}%."),
    )


def _closed_throughout(c: Component, spec: BreakerSpec) -> Expr:
    """PromQL: the breaker was closed at every sample of the failure window."""
    by, enc, window = grouping(c), spec.state_encoding, spec.failure_window
    if enc.type == "one_hot":
        return binop("==", agg("min", over_time("min", c.select("state", {enc.label: "closed"}), window), by), 1)
    not_closed = binop("!=", c.select("state"), enc.closed, bool_=True)
    return binop("==", agg("max", over_time("max", not_closed, window), by), 0)


def _not_opening_rule(c: Component, spec: BreakerSpec) -> list[Rule]:
    """Calls failing above the breaker's threshold for a whole window, and the breaker closed all along.

    Only failed calls count towards the minimum: with at least ``minimum_calls``
    failures and a failure ratio above the threshold, a Resilience4j breaker
    (minimumNumberOfCalls) and a counting one (pybreaker's fail_max) alike must
    have opened. The ratio's denominator is every call (ignored ones too), so
    it never overstates the breaker's own failure rate.
    """
    by, window, threshold = grouping(c), spec.failure_window, spec.failure_rate_threshold / 100
    failed = c.select("failed_calls")
    # Resilience4j opens at a failure rate equal to or above the threshold: so does this rule (a threshold of
    # 100% means every call failed).
    expr = and_(binop(">=", Paren(share(c, CALLS, by, window)), threshold),
                binop(">=", agg("sum", increase(failed, window), by), spec.minimum_calls),
                _closed_throughout(c, spec))
    bad = min(1.0, (threshold + 1) / 2)
    busy = float(max(1, math.ceil(2 * spec.minimum_calls / (bad * window.total_seconds))))

    def scenarios(f: Duration) -> list[Scenario]:
        """Stories whose open state (CircuitBreakerOpen) or busy failing calls (a failure rate computed from the
        same counters) would fire this breaker's other alerts get a promtool entry to themselves."""
        end = window + f + MIN * 2
        closed = _state_series(c, spec, [(end, "closed")])
        opens = _state_series(c, spec, [(MIN, "closed"), (end - MIN, "open")])
        few = spec.minimum_calls / 2 / window.total_seconds
        shared = c.has("failure_rate")

        def failing_only(rate: float) -> tuple:
            """Every call fails: no successful series at all, or a total counter rising with the failures."""
            failed = c.series("failed_calls", counter((end, rate)))
            if c.metric("failed_calls").name == c.metric("calls").name:
                return (failed,)
            return failed, c.series("calls", counter((end, rate)))

        return [
            Scenario("failing-closed", f"{pct(bad)} of {number(busy)} calls/s fail, the breaker stays closed",
                     ratio_traffic(c, CALLS, bad, busy, end) + closed, verdict(f, end, True),
                     labels=dict(c.identity), value=bad, alone=not shared),
            Scenario("all-failing", f"every call fails ({number(busy)}/s, no success ever counted), breaker closed",
                     failing_only(busy) + closed, verdict(f, end, True),
                     labels=dict(c.identity), value=1, alone=not shared),
            Scenario("opens", "the same failures, and the breaker opens after a minute as it should",
                     ratio_traffic(c, CALLS, bad, busy, end) + opens, verdict(f, end, False), alone=True),
            Scenario("few-calls", f"every call fails, but only {number(spec.minimum_calls / 2)} in {window}",
                     failing_only(few) + closed, verdict(f, end, False)),
            Scenario("under-threshold", f"{pct(threshold * 0.9)} of calls fail, just under the threshold",
                     ratio_traffic(c, CALLS, threshold * 0.9, busy, end) + closed, verdict(f, end, False),
                     alone=not shared),
        ]

    return c.alert(
        NOT_OPENING, expr=expr, for_=window, scenarios=scenarios,
        queries=_queries(c, window),
        condition=(f"{num(spec.failure_rate_threshold)}% or more of calls failed over {window}, with at least "
                   f"{spec.minimum_calls} failed calls, and the breaker closed the whole time"),
        description=(f"Circuit breaker {spec.who} on {{{{ $labels.instance }}}} stayed closed "
                     f"while {{{{ $value | humanizePercentage }}}} of its calls failed over {window} (it should open "
                     f"at {number(spec.failure_rate_threshold)}% after {spec.minimum_calls} calls) for {{for}}: "
                     "the failing dependency is not being protected."),
    )


def rules(c: Component) -> list[Rule]:
    spec: BreakerSpec = c.spec  # type: ignore[assignment]
    return _open_rule(c, spec) + _failure_rate_rule(c, spec) + _not_opening_rule(c, spec)



# Codes in order of harm, so that the largest over a breaker's instances is its worst state.
BREAKER_STATES = (("closed", "green"), ("metrics_only", "purple"), ("disabled", "blue"), ("half_open", "yellow"),
                  ("open", "red"), ("forced_open", "dark-red"))


def _breaker_state(c: Component, by: tuple[str, ...], select) -> tuple[Expr, tuple[Mapping, ...]]:
    """The state as one number per series of ``by`` (``select(signal, extra)`` makes the selectors), and the
    mappings that name each number. One-hot series: the code of the state whose series is 1."""
    enc = c.spec.state_encoding
    if enc.type == "one_hot":
        parts = [binop("*", Paren(binop("==", agg("max", select("state", {enc.label: state}), by), 1)), code)
                 for code, (state, _) in enumerate(BREAKER_STATES)]
        return or_(*parts), tuple(Mapping(code, state, color) for code, (state, color) in enumerate(BREAKER_STATES))
    codes = (("closed", enc.closed, "green"), ("half_open", enc.closed + 1, "yellow"), ("open", enc.closed + 2, "red"))
    return (agg("max", select("state", None), by),
            tuple(Mapping(code, state, color) for state, code, color in codes))


def panels(c: Component, built: Built) -> ComponentPanels:
    spec = c.spec
    warn = spec.failure_rate_threshold * spec.warning_fraction
    panel_select = lambda signal, extra: sel(c, signal, extra)  # noqa: E731
    state, mappings = _breaker_state(c, ("instance",), panel_select)
    per_instance = lambda signal: agg("sum", rate(sel(c, signal)), ("instance",))  # noqa: E731
    detail = (
        Panel(
            title=f"{c.name}: state", kind="state-timeline", unit="none", width=24, mappings=mappings,
            alerts=(OPEN,),
            description=(f"State of circuit breaker {c.name} per instance over time. "
                         + built.fires(OPEN, f"Open or half-open for {{for}}, or re-opening most of the last "
                                             f"{spec.reopen_window}, fires {{alert}}; ")
                         + f"it retries after {spec.wait_in_open} open."),
            queries=(Query(state, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: failure rate", unit="percent", min=0, soft_max=100,
            thresholds=above(spec.failure_rate_threshold, warn), alerts=(FAILURE_RATE_HIGH, OPEN),
            description=(f"Failed calls in the sliding window of breaker {c.name}, per instance (-1, too few calls, "
                         "is hidden). " + built.fires(FAILURE_RATE_HIGH, f"Above {number(warn)}% for {{for}} fires "
                                                                         "{alert}; ")
                         + f"at {number(spec.failure_rate_threshold)}% the breaker opens."),
            queries=(Query(binop(">=", sel(c, "failure_rate"), 0), "{{instance}}"),),
        ) if c.has("failure_rate") else None,
        Panel(
            title=f"{c.name}: slow call rate", unit="percent", min=0, soft_max=100, alerts=(OPEN,),
            description=f"Slow calls in the sliding window of breaker {c.name}, per instance (-1 hidden).",
            queries=(Query(binop(">=", sel(c, "slow_call_rate"), 0), "{{instance}}"),),
        ) if c.has("slow_call_rate") else None,
        Panel(
            title=f"{c.name}: failed share of calls", unit="percentunit", min=0, max=1,
            thresholds=above(spec.failure_rate_threshold / 100, warn / 100),
            alerts=(NOT_OPENING, FAILURE_RATE_HIGH),
            description=(f"Failed calls as a share of all calls through breaker {c.name}, per instance, from its "
                         "call counters. " + built.fires(
                             NOT_OPENING, f"Above {number(spec.failure_rate_threshold)}% over {spec.failure_window} "
                                          f"with at least {spec.minimum_calls} failures while the state panel stays "
                                          "closed fires {alert}.")).strip(),
            queries=(Query(share(c, CALLS, ("instance",), RATE, select=panel_select), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: calls by outcome", unit="reqps", alerts=(FAILURE_RATE_HIGH,),
            description=f"Calls through breaker {c.name} per second, all instances: every call, the successful "
                        "and the failed ones (the rest are ignored or rejected).",
            queries=tuple(Query(agg("sum", rate(sel(c, signal))), legend) for signal, legend in (
                ("calls", "all calls"), ("successful_calls", "successful"), ("failed_calls", "failed"))),
        ),
        Panel(
            title=f"{c.name}: not permitted calls", unit="reqps", alerts=(OPEN,),
            description=f"Calls rejected by breaker {c.name} per second because it is open, per instance.",
            queries=(Query(per_instance("not_permitted"), "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"Breaker {c.name}: state", kind="stat", unit="none", width=6, height=5, mappings=mappings,
        alerts=(OPEN,),
        description=f"The worst state of circuit breaker {c.name} over all instances.",
        queries=(Query(agg("max", state), c.name),),
    )
    return ComponentPanels(health, tuple(p for p in detail if p), jobs(c.base_labels))


KIND = Kind(
    key="breakers",
    ratios=(CALLS,),
    title="Circuit breaker",
    spec=BreakerSpec,
    schema="breaker",
    check=check,
    alerts=(OPEN, FAILURE_RATE_HIGH, NOT_OPENING),
    rules=rules,
    panels=panels,
    concern=CONCERN,
    # An open breaker's failure rate is old news.
    inhibitions=(Inhibition("CircuitBreakerOpen", ("CircuitBreakerFailureRateHigh",), ("service", "breaker")),),
    default_metrics={
        "micrometer": {
            "state": MetricRef("resilience4j_circuitbreaker_state", (), RESILIENCE4J),
            "failure_rate": MetricRef("resilience4j_circuitbreaker_failure_rate", (), RESILIENCE4J),
            "slow_call_rate": MetricRef("resilience4j_circuitbreaker_slow_call_rate", (), RESILIENCE4J),
            "calls": MetricRef("resilience4j_circuitbreaker_calls_seconds_count", (), RESILIENCE4J),
            "failed_calls": MetricRef("resilience4j_circuitbreaker_calls_seconds_count", (("kind", "failed"),),
                                      RESILIENCE4J),
            "successful_calls": MetricRef("resilience4j_circuitbreaker_calls_seconds_count",
                                          (("kind", "successful"),), RESILIENCE4J),
            "not_permitted": MetricRef("resilience4j_circuitbreaker_not_permitted_calls_total", (), RESILIENCE4J),
        },
        "python": {
            "state": MetricRef("circuit_breaker_state"),
            "calls": MetricRef("circuit_breaker_calls_total"),
            "failed_calls": MetricRef("circuit_breaker_calls_total", (("result", "failure"),)),
            "successful_calls": MetricRef("circuit_breaker_calls_total", (("result", "success"),)),
            "not_permitted": MetricRef("circuit_breaker_calls_total", (("result", "rejected"),)),
        },
    },
    # Python breakers have no failure-rate gauges: the failure rate comes from the call counters.
    optional=frozenset({"failure_rate", "slow_call_rate"}),
    presence={"*": "state"},  # a breaker publishes its state from creation
)
