"""Rate limiters: no permits left for minutes on end, and callers turned away.

Micrometer (resilience4j-micrometer 2.x, ``name`` label):
``resilience4j_ratelimiter_available_permissions`` (an estimate that goes
negative while waiting callers have reserved permits of coming periods) and
``resilience4j_ratelimiter_waiting_threads``. Resilience4j counts no rejected
calls: the app counts its ``onFailure`` events (RequestNotPermitted) as
``ratelimiter_rejected_calls_total{name}`` (Micrometer ``ratelimiter.rejected.calls``).

Python: no limiter library (slowapi/limits, aiolimiter, pyrate-limiter) exports
metrics. The app is assumed to publish the permits left as
``rate_limiter_available_permits`` and count refused calls (HTTP 429 or
RequestNotPermitted-like errors) as ``rate_limiter_rejected_total`` (prometheus_client
Gauge / Counter). Python limiters reject rather than park threads, so the
profile has no waiting-callers metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components import backpressure
from obsgen.components.base import Component, Kind, Rule
from obsgen.components.shapes import gauge_compare, rate_above
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, rate, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef
from obsgen.promql import number


@dataclass(frozen=True)
class RateLimiterSpec(ComponentSpec):
    limit_for_period: int | None = None
    refresh_period: Duration | None = None
    timeout: Duration | None = None
    rejection_rate_max: float = 0.1


def _limit(spec: RateLimiterSpec) -> str:
    """``50 per 1s``, or empty when the spec does not give the limit."""
    if spec.limit_for_period is None:
        return ""
    return num(spec.limit_for_period) + (f" per {spec.refresh_period}" if spec.refresh_period else "")


def rules(c: Component) -> list[Rule]:
    spec: RateLimiterSpec = c.spec  # type: ignore[assignment]
    who = f"Rate limiter {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}"
    of = f" of {_limit(spec)}" if spec.limit_for_period else ""
    waits = f"wait up to {spec.timeout} for a permit or are rejected" if spec.timeout else "wait or are rejected"
    return gauge_compare(
        c, "RateLimiterPermitsExhausted", signal="available", op="<=", threshold=0, bad=0,
        good=(1, spec.limit_for_period or 50), for_="5m", severity="warning",
        summary="A rate limiter has had no permits left for minutes; callers are throttled.",
        condition=f"no permit left{of} (available permissions at or below 0, reservations included)",
        description=(f"{who} has had no permit left{of} for {{for}}: demand is above the limit and "
                     f"callers {waits}."),
    ) + rate_above(
        c, "RateLimiterRejectingCalls", signal="rejected", threshold=spec.rejection_rate_max,
        window=Duration.parse("5m"), for_="5m", severity="warning",
        summary="A rate limiter is rejecting calls: callers over the limit fail.",
        condition=f"more than {num(spec.rejection_rate_max)} calls/s rejected for lack of a permit (5m rate)",
        description=(f"{who} rejects {{{{ $value | humanize }}}} calls/s (threshold "
                     f"{number(spec.rejection_rate_max)}/s) for {{for}}; those calls fail."),
    )


def panels(c: Component) -> ComponentPanels:
    spec: RateLimiterSpec = c.spec  # type: ignore[assignment]
    limit = f" (limit {_limit(spec)})" if spec.limit_for_period else ""
    detail = [
        Panel(
            title=f"{c.name}: available permits", unit="short", soft_max=spec.limit_for_period,
            thresholds=(Step("red"), Step("green", 1)), runbooks=("RateLimiterPermitsExhausted",),
            description=(f"Permits left in the current period of rate limiter {c.name}{limit}, per instance; "
                         "below 0 while waiting callers hold reservations. At or below 0 for 5m fires "
                         "RateLimiterPermitsExhausted."),
            queries=(Query(f"min by (instance) ({sel(c, 'available')})", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: rejected calls", unit="reqps", thresholds=above(spec.rejection_rate_max),
            runbooks=("RateLimiterRejectingCalls",),
            description=(f"Calls rate limiter {c.name} refused per second, per instance. Above "
                         f"{number(spec.rejection_rate_max)}/s for 5m fires RateLimiterRejectingCalls."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'rejected'))})", "{{instance}}"),),
        ),
    ]
    if c.has_metric("waiting"):
        detail.append(Panel(
            title=f"{c.name}: waiting callers", unit="short", min=0, runbooks=("RateLimiterPermitsExhausted",),
            description=(f"Threads parked waiting for a permit of rate limiter {c.name}, per instance"
                         + (f" (each up to {spec.timeout})" if spec.timeout else "") + ": they hold request "
                         "threads while they wait."),
            queries=(Query(f"max by (instance) ({sel(c, 'waiting')})", "{{instance}}"),),
        ))
    health = Panel(
        title=f"Rate limiter {c.name}: permits left", kind="stat", unit="short", width=6, height=5,
        thresholds=(Step("red"), Step("green", 1)), runbooks=("RateLimiterPermitsExhausted",),
        description=f"Fewest permits left of rate limiter {c.name} on any instance{limit}.",
        queries=(Query(f"min ({sel(c, 'available')})", c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="rate_limiters",
    title="Rate limiter",
    spec=RateLimiterSpec,
    schema="rate_limiter",
    rules=rules,
    panels=panels,
    concern=backpressure.CONCERN,
    related={
        "RateLimiterPermitsExhausted": ("RateLimiterRejectingCalls", "BackpressureSaturated"),
        "RateLimiterRejectingCalls": ("RateLimiterPermitsExhausted", "BackpressureSheddingLoad"),
    },
    default_metrics={
        "micrometer": {
            "available": MetricRef("resilience4j_ratelimiter_available_permissions"),
            "waiting": MetricRef("resilience4j_ratelimiter_waiting_threads"),
            "rejected": MetricRef("ratelimiter_rejected_calls_total"),
        },
        "python": {
            "available": MetricRef("rate_limiter_available_permits"),
            "waiting": None,
            "rejected": MetricRef("rate_limiter_rejected_total"),
        },
    },
)
