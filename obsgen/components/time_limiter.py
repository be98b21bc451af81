"""Time limiters: the share of calls cut off at their deadline.

Resilience4j counts ``resilience4j_timelimiter_calls_total{kind}`` with kind
successful, failed or timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components.base import Component, Kind, Rule
from obsgen.components.shapes import RatioSignals, ratio_of_rates
from obsgen.model.types import ComponentSpec, Duration, MetricRef


@dataclass(frozen=True)
class TimeLimiterSpec(ComponentSpec):
    breaker: str | None = None
    timeout: Duration = Duration.parse("1s")
    timeout_ratio_max: float = 0.05
    min_call_rate: float = 0.1


def rules(c: Component) -> list[Rule]:
    spec: TimeLimiterSpec = c.spec  # type: ignore[assignment]
    return ratio_of_rates(
        c, "TimeLimiterTimeoutsHigh", signals=RatioSignals("timeouts", "calls", "successful"),
        record="instance_timelimiter:timeout", threshold=spec.timeout_ratio_max, below=False,
        min_rate=spec.min_call_rate, for_="5m", severity="warning",
        summary="Many calls hit their time limit.",
        description=(f"Time limiter {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of calls exceeded the {spec.timeout} timeout "
                     f"(threshold {spec.timeout_ratio_max * 100:g}%) for {{for}}."),
    )


KIND = Kind(
    key="time_limiters",
    title="Time limiter",
    spec=TimeLimiterSpec,
    rules=rules,
    default_metrics={
        "micrometer": {
            "calls": MetricRef("resilience4j_timelimiter_calls_total"),
            "timeouts": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "timeout"),)),
            "successful": MetricRef("resilience4j_timelimiter_calls_total", (("kind", "successful"),)),
        },
    },
)
