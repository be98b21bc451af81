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


from obsgen.components import backpressure
from obsgen.components.base import AlertDef, Built, Component, Kind, Rule
from obsgen.components.shapes import gauge_compare, grouping, rate_above
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, rate, sel
from obsgen.model.promql import Expr, agg, number
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

FIVE_MIN = Duration.parse("5m")
PERMITS_EXHAUSTED = AlertDef(
    "RateLimiterPermitsExhausted", "warning", "5m",
    "A rate limiter has had no permits left for minutes; callers are throttled.",
    related=("RateLimiterRejectingCalls", "BackpressureSaturated"))
REJECTING = AlertDef(
    "RateLimiterRejectingCalls", "warning", "5m", "A rate limiter is rejecting calls: callers over the limit fail.",
    related=("RateLimiterPermitsExhausted", "BackpressureSheddingLoad"))


@record(kw_only=True)
class RateLimiterSpec(ComponentSpec):
    """One item of a spec's ``rate_limiters:`` list (rate limiter), as the schema defaulted it."""

    limit_for_period: int | None
    refresh_period: Duration | None
    timeout: Duration | None
    rejection_rate_max: float


def _limit(spec: RateLimiterSpec) -> str:
    """``50 per 1s``, or empty when the spec does not give the limit."""
    if spec.limit_for_period is None:
        return ""
    return num(spec.limit_for_period) + (f" per {spec.refresh_period}" if spec.refresh_period else "")


def diagnostics(c: Component) -> dict[str, Expr]:
    """The runbook's queries, by name, per instance and limiter as the alerts judge them: the fewest permits
    left, the callers parked waiting for one (only where the library counts them) and the calls refused."""
    by = grouping(c)
    out = {"permits": agg("min", c.select("available"), by)}
    if c.has_metric("waiting"):
        out["waiting"] = agg("max", c.select("waiting"), by)
    out["rejected"] = agg("sum", rate_over(c.select("rejected"), FIVE_MIN), by)
    return out


def rules(c: Component) -> list[Rule]:
    spec: RateLimiterSpec = c.spec  # type: ignore[assignment]
    who = f"Rate limiter {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}"
    of = f" of {_limit(spec)}" if spec.limit_for_period else ""
    waits = f"wait up to {spec.timeout} for a permit or are rejected" if spec.timeout else "wait or are rejected"
    queries = diagnostics(c)
    return gauge_compare(
        c, PERMITS_EXHAUSTED, signal="available", op="<=", threshold=0, bad=0,
        good=(1, spec.limit_for_period or 50), queries=queries,
        condition=f"no permit left{of} (available permissions at or below 0, reservations included)",
        description=(f"{who} has had no permit left{of} for {{for}}: demand is above the limit and "
                     f"callers {waits}."),
    ) + rate_above(
        c, REJECTING, signal="rejected", threshold=spec.rejection_rate_max, window=FIVE_MIN,
        queries=queries,
        condition=f"more than {num(spec.rejection_rate_max)} calls/s rejected for lack of a permit (5m rate)",
        description=(f"{who} rejects {{{{ $value | humanize }}}} calls/s (threshold "
                     f"{number(spec.rejection_rate_max)}/s) for {{for}}; those calls fail."),
    )


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: RateLimiterSpec = c.spec  # type: ignore[assignment]
    limit = f" (limit {_limit(spec)})" if spec.limit_for_period else ""
    detail = [
        Panel(
            title=f"{c.name}: available permits", unit="short", soft_max=spec.limit_for_period,
            thresholds=(Step("red"), Step("green", 1)), alerts=(PERMITS_EXHAUSTED,),
            description=(f"Permits left in the current period of rate limiter {c.name}{limit}, per instance; "
                         "below 0 while waiting callers hold reservations. "
                         + built.fires(PERMITS_EXHAUSTED, "At or below 0 for {for} fires {alert}.")).strip(),
            queries=(Query(agg("min", sel(c, "available"), ("instance",)), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: rejected calls", unit="reqps", thresholds=above(spec.rejection_rate_max),
            alerts=(REJECTING,),
            description=(f"Calls rate limiter {c.name} refused per second, per instance. "
                         + built.fires(REJECTING, f"Above {number(spec.rejection_rate_max)}/s for {{for}} fires "
                                                  "{alert}.")).strip(),
            queries=(Query(agg("sum", rate(sel(c, "rejected")), ("instance",)), "{{instance}}"),),
        ),
    ]
    if c.has_metric("waiting"):
        detail.append(Panel(
            title=f"{c.name}: waiting callers", unit="short", min=0, alerts=(PERMITS_EXHAUSTED,),
            description=(f"Threads parked waiting for a permit of rate limiter {c.name}, per instance"
                         + (f" (each up to {spec.timeout})" if spec.timeout else "") + ": they hold request "
                         "threads while they wait."),
            queries=(Query(agg("max", sel(c, "waiting"), ("instance",)), "{{instance}}"),),
        ))
    health = Panel(
        title=f"Rate limiter {c.name}: permits left", kind="stat", unit="short", width=6, height=5,
        thresholds=(Step("red"), Step("green", 1)), alerts=(PERMITS_EXHAUSTED,),
        description=f"Fewest permits left of rate limiter {c.name} on any instance{limit}.",
        queries=(Query(agg("min", sel(c, "available")), c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="rate_limiters",
    title="Rate limiter",
    spec=RateLimiterSpec,
    schema="rate_limiter",
    alerts=(PERMITS_EXHAUSTED, REJECTING),
    rules=rules,
    panels=panels,
    concern=backpressure.CONCERN,
    presence={"*": "available"},
    default_metrics={
        "micrometer": {
            "available": MetricRef("resilience4j_ratelimiter_available_permissions", (), backpressure.RESILIENCE4J),
            "waiting": MetricRef("resilience4j_ratelimiter_waiting_threads", (), backpressure.RESILIENCE4J),
            "rejected": MetricRef("ratelimiter_rejected_calls_total"),
        },
        "python": {
            "available": MetricRef("rate_limiter_available_permits"),
            "waiting": None,
            "rejected": MetricRef("rate_limiter_rejected_total"),
        },
    },
)
