"""Time limiters: the share of calls cut off at their deadline.

Resilience4j counts ``resilience4j_timelimiter_calls_total{kind}`` with kind
successful, failed or timeout.

Python has no time-limiter library with metrics (``asyncio.wait_for`` and
friends); obsgen's python convention is the app counting
``time_limiter_calls_total{name, result}`` with prometheus_client, result
``success``, ``failure`` or ``timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components import breaker
from obsgen.components.base import Component, Finding, Given, Inhibition, Kind, RatioSignals, Rule, breaker_reference
from obsgen.components.shapes import ratio_of_rates
from obsgen.components.viz import ComponentPanels, Panel, Query, num, pct, rate, ratio_panels, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef


@dataclass(frozen=True)
class TimeLimiterSpec(ComponentSpec):
    breaker: str | None = None
    timeout: Duration = Duration.parse("1s")
    timeout_ratio_max: float = 0.05
    min_call_rate: float = 0.1


TIMEOUTS = RatioSignals(part="timeouts", total="calls", rest="successful")


def rules(c: Component) -> list[Rule]:
    spec: TimeLimiterSpec = c.spec  # type: ignore[assignment]
    return ratio_of_rates(
        c, "TimeLimiterTimeoutsHigh", signals=TIMEOUTS,
        record="instance_timelimiter:timeout", threshold=spec.timeout_ratio_max, below=False,
        min_rate=spec.min_call_rate, for_="5m", severity="warning",
        summary="Many calls hit their time limit.",
        condition=(f"more than {pct(spec.timeout_ratio_max)} of calls exceed the {spec.timeout} timeout "
                   f"(while at least {num(spec.min_call_rate)} calls/s)"),
        description=(f"Time limiter {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of calls exceeded the {spec.timeout} timeout "
                     f"(threshold {spec.timeout_ratio_max * 100:g}%) for {{for}}."),
    )



def check(given: Given) -> list[Finding]:
    return breaker_reference(given)


def panels(c: Component) -> ComponentPanels:
    out = ratio_panels(c, noun="time limiter", part="timeouts", alert="TimeLimiterTimeoutsHigh",
                        threshold=c.spec.timeout_ratio_max, what="timed out ratio")
    timeouts = Panel(
        title=f"{c.name}: timeouts", unit="ops", runbooks=("TimeLimiterTimeoutsHigh",),
        description=f"Calls cut off at the {c.spec.timeout} deadline of time limiter {c.name} per second, "
                    "per instance.",
        queries=(Query(f"sum by (instance) ({rate(sel(c, 'timeouts'))})", "{{instance}}"),),
    )
    return ComponentPanels(out.health, out.detail + (timeouts,), out.jobs)


KIND = Kind(
    key="time_limiters",
    ratios=(TIMEOUTS,),
    title="Time limiter",
    spec=TimeLimiterSpec,
    schema="time_limiter",
    check=check,
    rules=rules,
    panels=panels,
    concern=breaker.CONCERN,
    related={"TimeLimiterTimeoutsHigh": ("RetryExhaustionHigh", "CircuitBreakerFailureRateHigh", "CircuitBreakerOpen",
                                         "ExecutorSaturated")},
    inhibitions=(Inhibition("CircuitBreakerOpen", ("TimeLimiterTimeoutsHigh",), ("service", "breaker")),),
    default_metrics={
        "micrometer": {
            "calls": MetricRef("resilience4j_timelimiter_calls_total"),
            "timeouts": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "timeout"),)),
            "successful": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "successful"),)),
        },
        "python": {
            "calls": MetricRef("time_limiter_calls_total"),
            "timeouts": MetricRef("time_limiter_calls_total", (("result", "timeout"),)),
            "successful": MetricRef("time_limiter_calls_total", (("result", "success"),)),
        },
    },
)
