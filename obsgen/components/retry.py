"""Retries: the share of calls that still fail after every attempt.

Resilience4j counts ``resilience4j_retry_calls_total{kind}`` with kind one of
successful_without_retry, successful_with_retry, failed_without_retry and
failed_with_retry; the last one is a call whose retries were exhausted.

Python retry libraries (tenacity, backoff) export nothing; obsgen's python
convention is the app counting each call once with prometheus_client as
``retry_calls_total{name, result}``, result ``success`` or ``exhausted``
(plus whatever else the app tells apart, e.g. ``failure`` for errors it does not retry).
"""

from __future__ import annotations


from obsgen.components import breaker
from obsgen.components.base import (AlertDef, Built, Component, Finding, Given, Inhibition, Kind, RatioSignals, Rule,
                                    breaker_reference)
from obsgen.components.shapes import grouping, ratio_of_rates, share
from obsgen.components.viz import ComponentPanels, num, outcome_label, pct, ratio_panels
from obsgen.model.promql import agg, rate
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

FIVE_MIN = Duration.parse("5m")


@record(kw_only=True)
class RetrySpec(ComponentSpec):
    """One item of a spec's ``retries:`` list (retry), as the schema defaulted it."""

    breaker: str | None
    max_attempts: int
    wait: Duration
    backoff: str
    exhaustion_ratio_max: float
    min_call_rate: float


EXHAUSTED = RatioSignals(part="exhausted", total="calls", rest="succeeded")
EXHAUSTION_HIGH = AlertDef(
    "RetryExhaustionHigh", "warning", "5m", "Many calls fail even after all their retries.",
    related=("CircuitBreakerFailureRateHigh", "CircuitBreakerOpen", "TimeLimiterTimeoutsHigh"))


def rules(c: Component) -> list[Rule]:
    spec: RetrySpec = c.spec  # type: ignore[assignment]
    return ratio_of_rates(
        c, EXHAUSTION_HIGH, signals=EXHAUSTED,
        record="instance_retry:exhausted", threshold=spec.exhaustion_ratio_max, below=False,
        min_rate=spec.min_call_rate,
        condition=(f"more than {pct(spec.exhaustion_ratio_max)} of calls fail after all {spec.max_attempts} attempts "
                   f"(while at least {num(spec.min_call_rate)} calls/s)"),
        description=(f"Retry {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of calls failed after all {spec.max_attempts} attempts "
                     f"(threshold {spec.exhaustion_ratio_max * 100:g}%) for {{for}}."),
        queries={"exhausted_share": share(c, EXHAUSTED, grouping(c), FIVE_MIN),
                 "by_outcome": agg("sum", rate(c.select("calls"), FIVE_MIN),
                                   grouping(c) + (outcome_label(c, EXHAUSTED.part),))},
    )


def check(given: Given) -> list[Finding]:
    return breaker_reference(given)


def panels(c: Component, built: Built) -> ComponentPanels:
    return ratio_panels(c, built, noun="retry", signals=EXHAUSTED, alert=EXHAUSTION_HIGH,
                        threshold=c.spec.exhaustion_ratio_max, what="exhausted ratio")


KIND = Kind(
    key="retries",
    ratios=(EXHAUSTED,),
    title="Retry",
    spec=RetrySpec,
    schema="retry",
    check=check,
    alerts=(EXHAUSTION_HIGH,),
    rules=rules,
    panels=panels,
    concern=breaker.CONCERN,
    # Calls rejected by an open breaker exhaust their retries: a symptom of the breaker.
    inhibitions=(Inhibition("CircuitBreakerOpen", ("RetryExhaustionHigh",), ("service", "breaker")),),
    presence={"micrometer": "calls"},  # Resilience4j's function counters exist from registration
    default_metrics={
        "micrometer": {
            "calls": MetricRef("resilience4j_retry_calls_total", (), breaker.RESILIENCE4J),
            "exhausted": MetricRef("resilience4j_retry_calls_total", (("kind", "failed_with_retry"),),
                                   breaker.RESILIENCE4J),
            "succeeded": MetricRef("resilience4j_retry_calls_total", (("kind", "successful_without_retry"),),
                                   breaker.RESILIENCE4J),
        },
        "python": {
            "calls": MetricRef("retry_calls_total"),
            "exhausted": MetricRef("retry_calls_total", (("result", "exhausted"),)),
            "succeeded": MetricRef("retry_calls_total", (("result", "success"),)),
        },
    },
)
