"""Retries: the share of calls that still fail after every attempt.

Resilience4j counts ``resilience4j_retry_calls_total{kind}`` with kind one of
successful_without_retry, successful_with_retry, failed_without_retry and
failed_with_retry; the last one is a call whose retries were exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components.base import Component, Kind, Rule
from obsgen.components.shapes import RatioSignals, ratio_of_rates
from obsgen.model.types import ComponentSpec, Duration, MetricRef


@dataclass(frozen=True)
class RetrySpec(ComponentSpec):
    breaker: str | None = None
    max_attempts: int = 3
    wait: Duration = Duration.parse("1s")
    backoff: str = "exponential"
    exhaustion_ratio_max: float = 0.1
    min_call_rate: float = 0.1


def rules(c: Component) -> list[Rule]:
    spec: RetrySpec = c.spec  # type: ignore[assignment]
    return ratio_of_rates(
        c, "RetryExhaustionHigh", signals=RatioSignals("exhausted", "calls", "succeeded"),
        record="instance_retry:exhausted", threshold=spec.exhaustion_ratio_max, below=False,
        min_rate=spec.min_call_rate, for_="5m", severity="warning",
        summary="Many calls fail even after all their retries.",
        description=(f"Retry {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of calls failed after all {spec.max_attempts} attempts "
                     f"(threshold {spec.exhaustion_ratio_max * 100:g}%) for {{for}}."),
    )


KIND = Kind(
    key="retries",
    title="Retry",
    spec=RetrySpec,
    rules=rules,
    default_metrics={
        "micrometer": {
            "calls": MetricRef("resilience4j_retry_calls_total"),
            "exhausted": MetricRef("resilience4j_retry_calls_total", (("kind", "failed_with_retry"),)),
            "succeeded": MetricRef("resilience4j_retry_calls_total", (("kind", "successful_without_retry"),)),
        },
    },
)
