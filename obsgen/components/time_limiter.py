"""Time limiters: the share of calls cut off at their deadline.

Resilience4j counts ``resilience4j_timelimiter_calls_total{kind}`` with kind
successful, failed or timeout.

Python has no time-limiter library with metrics (``asyncio.wait_for`` and
friends); obsgen's python convention is the app counting
``time_limiter_calls_total{name, result}`` with prometheus_client, result
``success``, ``failure`` or ``timeout``.
"""

from __future__ import annotations


from obsgen.components import breaker
from obsgen.components.base import (AlertDef, Built, Component, Finding, Given, Inhibition, Kind, RatioSignals, Rule,
                                    breaker_reference)
from obsgen.components.shapes import grouping, ratio_of_rates, share
from obsgen.components.viz import ComponentPanels, Panel, Query, num, outcome_label, pct, rate, ratio_panels, sel
from obsgen.model.promql import agg
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

FIVE_MIN = Duration.parse("5m")


@record(kw_only=True)
class TimeLimiterSpec(ComponentSpec):
    """One item of a spec's ``time_limiters:`` list (time limiter), as the schema defaulted it."""

    breaker: str | None
    timeout: Duration
    timeout_ratio_max: float
    min_call_rate: float


TIMEOUTS = RatioSignals(part="timeouts", total="calls", rest="successful")
TIMEOUTS_HIGH = AlertDef(
    "TimeLimiterTimeoutsHigh", "warning", "5m", "Many calls hit their time limit.",
    related=("RetryExhaustionHigh", "CircuitBreakerFailureRateHigh", "CircuitBreakerOpen", "ExecutorSaturated"))


def rules(c: Component) -> list[Rule]:
    spec: TimeLimiterSpec = c.spec  # type: ignore[assignment]
    return ratio_of_rates(
        c, TIMEOUTS_HIGH, signals=TIMEOUTS,
        record="instance_timelimiter:timeout", threshold=spec.timeout_ratio_max, below=False,
        min_rate=spec.min_call_rate,
        condition=(f"more than {pct(spec.timeout_ratio_max)} of calls exceed the {spec.timeout} timeout "
                   f"(while at least {num(spec.min_call_rate)} calls/s)"),
        description=(f"Time limiter {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of calls exceeded the {spec.timeout} timeout "
                     f"(threshold {spec.timeout_ratio_max * 100:g}%) for {{for}}."),
        queries={"timeout_share": share(c, TIMEOUTS, grouping(c), FIVE_MIN),
                 "by_outcome": agg("sum", rate_over(c.select("calls"), FIVE_MIN),
                                   grouping(c) + (outcome_label(c, TIMEOUTS.part),))},
    )


def check(given: Given) -> list[Finding]:
    return breaker_reference(given)


def panels(c: Component, built: Built) -> ComponentPanels:
    out = ratio_panels(c, built, noun="time limiter", signals=TIMEOUTS, alert=TIMEOUTS_HIGH,
                       threshold=c.spec.timeout_ratio_max, what="timed out ratio")
    timeouts = Panel(
        title=f"{c.name}: timeouts", unit="ops", alerts=(TIMEOUTS_HIGH,),
        description=f"Calls cut off at the {c.spec.timeout} deadline of time limiter {c.name} per second, "
                    "per instance.",
        queries=(Query(agg("sum", rate(sel(c, "timeouts")), ("instance",)), "{{instance}}"),),
    )
    return ComponentPanels(out.health, out.detail + (timeouts,), out.jobs)


KIND = Kind(
    key="time_limiters",
    ratios=(TIMEOUTS,),
    title="Time limiter",
    spec=TimeLimiterSpec,
    schema="time_limiter",
    check=check,
    alerts=(TIMEOUTS_HIGH,),
    rules=rules,
    panels=panels,
    concern=breaker.CONCERN,
    inhibitions=(Inhibition("CircuitBreakerOpen", ("TimeLimiterTimeoutsHigh",), ("service", "breaker")),),
    presence={"micrometer": "calls"},  # registered with the time limiter
    default_metrics={
        "micrometer": {
            "calls": MetricRef("resilience4j_timelimiter_calls_total", (), breaker.RESILIENCE4J),
            "timeouts": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "timeout"),), breaker.RESILIENCE4J),
            "successful": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "successful"),),
                                    breaker.RESILIENCE4J),
        },
        "python": {
            "calls": MetricRef("time_limiter_calls_total"),
            "timeouts": MetricRef("time_limiter_calls_total", (("result", "timeout"),)),
            "successful": MetricRef("time_limiter_calls_total", (("result", "success"),)),
        },
    },
)
