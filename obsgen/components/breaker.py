"""Circuit breakers: open (including one that keeps re-opening) and failure rate nearing the threshold.

Resilience4j publishes ``resilience4j_circuitbreaker_state`` as one series per
state, valued 1 for the current state and 0 otherwise; Python libraries usually
publish one gauge with a number per state. Both are handled here, and the
failure-rate gauge's -1 ("not enough calls yet") can never look like a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import (OBSGEN_LABELS, Component, Concern, Finding, Given, Inhibition, Kind, Rule,
                                   Scenario, alert_enabled, never_fires, tuned_for)
from obsgen.components.shapes import verdict, by_clause, gauge_compare
from obsgen.components.timeline import MIN, STEP, gauge
from obsgen.components.viz import ComponentPanels, Mapping, Panel, Query, above, jobs, num, rate, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef
from obsgen.promql import number

CONCERN = Concern("circuit-breaker", "Circuit Breaker",
                  "Circuit breaker state and failure rate, calls by outcome, retries and time-limiter timeouts.")
NOT_CLOSED = ("open", "half_open", "forced_open")


@dataclass(frozen=True)
class StateEncoding:
    type: str = "one_hot"
    label: str = "state"
    closed: float = 0


@dataclass(frozen=True)
class BreakerSpec(ComponentSpec):
    state_encoding: StateEncoding = field(default_factory=StateEncoding)
    failure_rate_threshold: float = 50
    warning_fraction: float = 0.8
    wait_in_open: Duration = Duration.parse("60s")
    reopen_window: Duration = Duration.parse("2m")

    @property
    def breaker(self) -> str:
        """A breaker guards itself: its alerts carry ``breaker`` like those of the calls it protects."""
        return self.name


# avg_over_time over a shorter window sees fewer than 4 samples at a 15s scrape interval (one or two at 30s).
MIN_REOPEN_WINDOW = Duration.parse("1m")
MAX_REOPEN_WINDOW = Duration.parse("1d")
ONLY_FOR = {"closed": "enum", "label": "one_hot"}


def check(given: Given) -> list[Finding]:
    """Settings that make an alert impossible, or that the state encoding ignores."""
    item, out = given.item, []
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
    if window.millis % STEP.millis:
        out.append(Finding(("reopen_window",), f"expected a reopen_window in whole steps of {STEP} (such as 2m or "
                           f"2m15s), found {window}: it is averaged from samples scraped every {STEP} or more"))
        return out
    if not MIN_REOPEN_WINDOW <= window <= MAX_REOPEN_WINDOW:
        out.append(Finding(("reopen_window",), (
            f"expected a reopen_window from {MIN_REOPEN_WINDOW} to {MAX_REOPEN_WINDOW}, found {window}: "
            "CircuitBreakerOpen averages the breaker's state over it, and a window under 1m holds fewer than "
            "4 samples at a 15s scrape interval, too few to tell a flapping breaker from noise")))
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


def _not_closed_now_and_share(c: Component, spec: BreakerSpec) -> tuple[str, str]:
    """PromQL for "not closed right now" and "share of the window spent not closed"."""
    by, enc, window = by_clause(c), spec.state_encoding, spec.reopen_window
    if enc.type == "one_hot":
        sel = c.select("state", regex={enc.label: "|".join(NOT_CLOSED)})
        return f"max {by} ({sel}) == 1", f"sum {by} (avg_over_time({sel}[{window}])) > 0.5"
    sel = c.select("state")
    closed = number(enc.closed)
    return (f"count {by} ({sel} != {closed})",
            f"max {by} (avg_over_time(({sel} != bool {closed})[{window}:])) > 0.5")


def _state_series(c: Component, spec: BreakerSpec, timeline: list[tuple[Duration, str]]) -> tuple:
    """Series that put the breaker through ``timeline`` (durations in each state)."""
    enc = spec.state_encoding
    if enc.type == "one_hot":
        return tuple(c.series("state", gauge(*[(span, 1 if s == state else 0) for span, s in timeline]),
                              {enc.label: state}) for state in ("closed", "open", "half_open"))
    code = {"closed": enc.closed, "half_open": enc.closed + 1, "open": enc.closed + 2}
    return (c.series("state", gauge(*[(span, code[s]) for span, s in timeline])),)


def _open_rule(c: Component, spec: BreakerSpec) -> list[Rule]:
    now, share = _not_closed_now_and_share(c, spec)
    expr = f"(\n  {now}\n)\nor\n(\n  {share}\n)"
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
            Scenario("closed", "closed (its closed series is 1, the others 0)",
                     _state_series(c, spec, [(end, "closed")]), verdict(f, end, False)),
        ]
        brief = Duration((f.millis - window.millis // 2) // 2 // STEP.millis * STEP.millis)
        if brief >= STEP:
            out.append(Scenario("brief", f"open {brief} once, then closed again",
                                _state_series(c, spec, [(MIN, "closed"), (brief, "open"), (end - MIN - brief, "closed")]),
                                verdict(f, end, False)))
        return out

    return c.alert(
        "CircuitBreakerOpen", expr=expr, for_="1m", severity="critical", scenarios=scenarios,
        summary="A circuit breaker is open: calls through it fail fast or take the fallback.",
        condition=(f"open or half-open now, or not closed for more than half of the last {window} "
                   f"(wait in open: {spec.wait_in_open})"),
        description=(f"Circuit breaker {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has been open or "
                     f"half-open (or re-opening most of the last {window}) for {{for}}; calls to the protected "
                     f"dependency are rejected. It retries after {spec.wait_in_open} in open state."),
    )


def rules(c: Component) -> list[Rule]:
    spec: BreakerSpec = c.spec  # type: ignore[assignment]
    warn = spec.failure_rate_threshold * spec.warning_fraction
    return _open_rule(c, spec) + gauge_compare(
        c, "CircuitBreakerFailureRateHigh", signal="failure_rate", op=">", threshold=warn,
        # halfway to the opening threshold; halfway to 100% when the warning line is (about) the threshold itself
        bad=(warn + spec.failure_rate_threshold) / 2 if spec.failure_rate_threshold - warn >= 0.01 else (warn + 100) / 2,
        good=(warn - 5, -1), for_="2m", severity="warning",
        summary="A circuit breaker's failure rate is approaching the rate that opens it.",
        condition=f"failure rate above {num(warn)}% (the breaker opens at {num(spec.failure_rate_threshold)}%)",
        description=(f"Circuit breaker {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} sees "
                     f"{{{{ $value | humanize }}}}% failed calls, above {number(warn)}% for {{for}}; it opens at "
                     f"{number(spec.failure_rate_threshold)}%."),
    )



BREAKER_STATES = (("closed", "green"), ("half_open", "yellow"), ("open", "red"), ("forced_open", "dark-red"),
                  ("disabled", "blue"), ("metrics_only", "purple"))


def _breaker_state(c: Component, by: str) -> tuple[str, tuple[Mapping, ...]]:
    enc = c.spec.state_encoding
    if enc.type == "one_hot":
        parts = [f"(max by ({by}) ({sel(c, 'state', {enc.label: state})}) == 1) * {code}"
                 for code, (state, _) in enumerate(BREAKER_STATES)]
        return "\nor\n".join(parts), tuple(Mapping(code, state, color) for code, (state, color) in enumerate(BREAKER_STATES))
    codes = (("closed", enc.closed, "green"), ("half_open", enc.closed + 1, "yellow"), ("open", enc.closed + 2, "red"))
    return (f"max by ({by}) ({sel(c, 'state')})",
            tuple(Mapping(code, state, color) for state, code, color in codes))


def panels(c: Component) -> ComponentPanels:
    spec = c.spec
    warn = spec.failure_rate_threshold * spec.warning_fraction
    state, mappings = _breaker_state(c, "instance")
    detail = (
        Panel(
            title=f"{c.name}: state", kind="state-timeline", unit="none", width=24, mappings=mappings,
            runbooks=("CircuitBreakerOpen",),
            description=(f"State of circuit breaker {c.name} per instance over time. Open or half-open for 1m, or "
                         f"re-opening most of the last {spec.reopen_window}, fires CircuitBreakerOpen; it retries "
                         f"after {spec.wait_in_open} open."),
            queries=(Query(state, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: failure rate", unit="percent", min=0, soft_max=100,
            thresholds=above(spec.failure_rate_threshold, warn),
            runbooks=("CircuitBreakerFailureRateHigh", "CircuitBreakerOpen"),
            description=(f"Failed calls in the sliding window of breaker {c.name}, per instance (-1, too few calls, "
                         f"is hidden). Above {number(warn)}% for 2m fires CircuitBreakerFailureRateHigh; at "
                         f"{number(spec.failure_rate_threshold)}% the breaker opens."),
            queries=(Query(f"{sel(c, 'failure_rate')} >= 0", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: slow call rate", unit="percent", min=0, soft_max=100, runbooks=("CircuitBreakerOpen",),
            description=f"Slow calls in the sliding window of breaker {c.name}, per instance (-1 hidden).",
            queries=(Query(f"{sel(c, 'slow_call_rate')} >= 0", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: calls by outcome", unit="reqps", runbooks=("CircuitBreakerFailureRateHigh",),
            description=f"Calls through breaker {c.name} per second by outcome (successful, failed, ignored), "
                        "all instances.",
            queries=(Query(f"sum by (kind) ({rate(sel(c, 'calls'))})", "{{kind}}"),),
        ),
        Panel(
            title=f"{c.name}: not permitted calls", unit="reqps", runbooks=("CircuitBreakerOpen",),
            description=f"Calls rejected by breaker {c.name} per second because it is open, per instance.",
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'not_permitted'))})", "{{instance}}"),),
        ),
    )
    worst, _ = _breaker_state(c, c.spec.label)
    health = Panel(
        title=f"Breaker {c.name}: state", kind="stat", unit="none", width=6, height=5, mappings=mappings,
        runbooks=("CircuitBreakerOpen",),
        description=f"The worst state of circuit breaker {c.name} over all instances.",
        queries=(Query(f"max ({worst})", c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


KIND = Kind(
    key="breakers",
    title="Circuit breaker",
    spec=BreakerSpec,
    schema="breaker",
    check=check,
    rules=rules,
    panels=panels,
    concern=CONCERN,
    related={
        "CircuitBreakerOpen": ("CircuitBreakerFailureRateHigh", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh"),
        "CircuitBreakerFailureRateHigh": ("CircuitBreakerOpen", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh"),
    },
    # An open breaker's failure rate is old news.
    inhibitions=(Inhibition("CircuitBreakerOpen", ("CircuitBreakerFailureRateHigh",), ("service", "breaker")),),
    default_metrics={
        "micrometer": {
            "state": MetricRef("resilience4j_circuitbreaker_state"),
            "failure_rate": MetricRef("resilience4j_circuitbreaker_failure_rate"),
            "slow_call_rate": MetricRef("resilience4j_circuitbreaker_slow_call_rate"),
            "calls": MetricRef("resilience4j_circuitbreaker_calls_seconds_count"),
            "not_permitted": MetricRef("resilience4j_circuitbreaker_not_permitted_calls_total"),
        },
    },
)
