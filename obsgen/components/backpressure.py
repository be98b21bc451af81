"""Backpressure and bulkheads: concurrency and queue against their limits, and the load they shed.

Micrometer (resilience4j-micrometer 2.x, ``name`` label): the semaphore bulkhead
publishes ``resilience4j_bulkhead_available_concurrent_calls`` (free permits) and
``…_max_allowed_concurrent_calls``; the thread-pool bulkhead shares the prefix
with ``…_queue_depth``, ``…_queue_capacity`` and (2.0+) ``…_active_thread_count``.
Resilience4j counts no rejected calls: the app counts its ``onCallRejected``
events as ``bulkhead_rejected_calls_total{name}`` (Micrometer
``bulkhead.rejected.calls``).

Python: no library exports these. OMS's BackpressureHandler (seed 000) exposes
``backpressure_queue_size{circuit_name}``; the same handler is assumed to export
the requests it is processing as ``backpressure_active_requests`` and the
requests it refuses with a 503 as ``backpressure_rejected_total`` (prometheus_client
Gauge / Counter). It has no free-permit gauge, so concurrency is judged from the
requests in progress against ``max_concurrent``.

A handler may refuse an endpoint's work long before its queue is full (OMS's
``can_accept_request("heavy_operation", threshold=50)`` in front of a 1,000-call
queue): ``shed_at`` is that limit, and BackpressureQueueNearFull warns at
``queue_full_ratio`` of it, so the warning comes before the shedding.
"""

from __future__ import annotations

import math

from obsgen.components.base import AlertDef, Built, Component, Concern, Finding, Given, Kind, Rule
from obsgen.components.shapes import fill_mark, filling_up, gauge_compare, grouping, rate_above, saturated
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.model.promql import Expr, agg, binop, number
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

CONCERN = Concern("backpressure", "Backpressure",
                  "Bulkhead and backpressure queues and concurrency against their limits, shed calls; rate limiter "
                  "permits, waiting and rejected callers.")
FIVE_MIN = Duration.parse("5m")
RESILIENCE4J = "resilience4j-micrometer"

QUEUE_NEAR_FULL = AlertDef(
    "BackpressureQueueNearFull", "warning", "1m", "A backpressure queue is nearly full; calls will soon be shed.",
    related=("BackpressureSaturated", "BackpressureSheddingLoad"))
SATURATED = AlertDef(
    "BackpressureSaturated", "warning", "5m",
    "Every concurrency slot of a bulkhead is in use; new calls wait or are shed.",
    related=("BackpressureQueueNearFull", "BackpressureSheddingLoad", "DbPoolExhausted", "CircuitBreakerOpen"))
SHEDDING = AlertDef(
    "BackpressureSheddingLoad", "warning", "2m", "A bulkhead is shedding load: callers are refused.",
    related=("BackpressureSaturated", "BackpressureQueueNearFull", "RateLimiterRejectingCalls"))


@record(kw_only=True)
class BackpressureSpec(ComponentSpec):
    """One item of a spec's ``backpressure:`` list (bulkhead), as the schema defaulted it."""

    max_concurrent: int
    queue_capacity: int | None
    shed_at: int | None
    queue_full_ratio: float
    rejection_rate_max: float
    overload_status: int | None


def check(given: Given) -> list[Finding]:
    """Queue settings without a queue would silently do nothing; a shedding limit above the queue's capacity
    is never reached (the full queue refuses first)."""
    item, out = given.item, []
    capacity = item.get("queue_capacity")
    for key in ("queue_full_ratio", "shed_at"):
        if key in given.written and capacity is None:
            out.append(Finding((key,), f"{key} needs queue_capacity (the number of calls the queue holds); add it, "
                               f"or remove {key} for a bulkhead without a queue", key=True))
    shed = item.get("shed_at")
    if shed is not None and capacity is not None and shed > capacity:
        out.append(Finding(("shed_at",), f"expected shed_at at most queue_capacity ({capacity}), found {shed}: the "
                           "full queue refuses calls first; lower it to the queue depth at which the handler "
                           "refuses work, or remove it"))
    return out


def queue_limit(spec: BackpressureSpec) -> int:
    """Queued calls at which the bulkhead refuses new ones: its shedding limit, else the queue's capacity."""
    return spec.shed_at or spec.queue_capacity or 0


def queue_threshold(spec: BackpressureSpec) -> int:
    """Queued calls that count as nearly full: 90% of 1,000 is 900; of a 50-call shedding limit, 45."""
    return fill_mark(queue_limit(spec), spec.queue_full_ratio)


def judged_by_free_permits(c: Component) -> bool:
    """A bulkhead without a queue whose free permits are published is judged by them (Resilience4j's
    semaphore bulkhead); otherwise by the calls in progress against ``max_concurrent``."""
    return c.spec.queue_capacity is None and c.has_metric("available")


def diagnostics(c: Component) -> dict[str, Expr]:
    """The runbook's queries, by name, per instance and bulkhead as the alerts judge them: its concurrency
    (``free_permits`` where it is judged by them, else ``in_use``), its queue (only with one) and the calls
    it refused."""
    by = grouping(c)
    out: dict[str, Expr] = ({"free_permits": agg("min", c.select("available"), by)}
                            if judged_by_free_permits(c) else
                            {"in_use": agg("max", c.select("in_use"), by)})
    if c.spec.queue_capacity:
        out["queued"] = agg("max", c.select("queued"), by)
    out["rejected"] = agg("sum", rate_over(c.select("rejected"), FIVE_MIN), by)
    return out


def _saturated(c: Component, spec: BackpressureSpec, queries: dict[str, Expr]) -> list[Rule]:
    who = f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}"
    if judged_by_free_permits(c):
        return gauge_compare(
            c, SATURATED, signal="available", op="<=", threshold=0, bad=0, good=(1,), queries=queries,
            condition=f"no free permit of {num(spec.max_concurrent)} (available concurrent calls at 0)",
            description=(f"{who} has had no free permit (of {spec.max_concurrent}) for {{for}}; new calls wait "
                         "for one or are rejected."))
    return saturated(
        c, SATURATED, used="in_use", capacity=spec.max_concurrent,
        waiting="queued" if spec.queue_capacity else None, size=spec.max_concurrent, queries=queries,
        condition=f"all {num(spec.max_concurrent)} concurrency slots in use"
                  + (" and at least one call queued" if spec.queue_capacity else ""),
        description=(f"{who} has had {{{{ $value }}}} of {spec.max_concurrent} calls in progress"
                     + (" with calls queued" if spec.queue_capacity else "") + " for {for}; latency grows and "
                     "the next burst is shed."))


def rules(c: Component) -> list[Rule]:
    spec: BackpressureSpec = c.spec  # type: ignore[assignment]
    queries = diagnostics(c)
    out: list[Rule] = []
    if spec.queue_capacity:
        out += filling_up(
            c, QUEUE_NEAR_FULL, signal="queued", capacity=queue_limit(spec), ratio=spec.queue_full_ratio,
            queries=queries,
            description=(f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has {{{{ $value }}}} "
                         + (f"calls queued; it refuses new ones at {spec.shed_at}" if spec.shed_at else
                            f"calls queued of {spec.queue_capacity}") + " (threshold {mark}) for {for}."),
        )
    shed = f"HTTP {spec.overload_status}" if spec.overload_status else "rejections"
    out += _saturated(c, spec, queries) + rate_above(
        c, SHEDDING, signal="rejected", threshold=spec.rejection_rate_max, window=FIVE_MIN, queries=queries,
        condition=f"more than {num(spec.rejection_rate_max)} calls/s refused ({shed}; 5m rate)",
        description=(f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} refuses "
                     f"{{{{ $value | humanize }}}} calls/s (threshold {number(spec.rejection_rate_max)}/s) for {{for}}"
                     + (f"; callers get HTTP {spec.overload_status}." if spec.overload_status else ".")),
    )
    return out


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: BackpressureSpec = c.spec  # type: ignore[assignment]
    limit = spec.max_concurrent
    health_query: Expr
    if judged_by_free_permits(c):
        concurrency = Panel(
            title=f"{c.name}: free permits", unit="short", min=0, soft_max=limit,
            thresholds=(Step("red"), Step("green", 1)), alerts=(SATURATED,),
            description=(f"Free permits of bulkhead {c.name} per instance, of {limit}. "
                         + built.fires(SATURATED, "At 0 for {for} fires {alert}: new calls wait or are rejected.")
                         ).strip(),
            queries=(Query(agg("min", sel(c, "available"), ("instance",)), "{{instance}}"),),
        )
        health_query = binop("-", limit, agg("min", sel(c, "available")))
    else:
        concurrency = Panel(
            title=f"{c.name}: calls in progress", unit="short", min=0, soft_max=limit,
            thresholds=(Step("green"), Step("red", limit)), alerts=(SATURATED,),
            description=(f"Calls in progress in bulkhead {c.name} per instance, against its limit {limit} (red "
                         "line). " + built.fires(SATURATED, "At the limit for {for}"
                                                 + (" with calls queued" if spec.queue_capacity else "")
                                                 + " fires {alert}.")).strip(),
            queries=(Query(agg("max", sel(c, "in_use"), ("instance",)), "{{instance}}"),),
        )
        health_query = agg("max", sel(c, "in_use"))
    detail = [concurrency]
    if spec.queue_capacity:
        full, limit_queued = queue_threshold(spec), queue_limit(spec)
        against = (f"the depth at which it refuses new calls, {spec.shed_at} (red line; the queue holds "
                   f"{spec.queue_capacity})" if spec.shed_at else f"its capacity {spec.queue_capacity} (red line)")
        detail.append(Panel(
            title=f"{c.name}: queue depth", unit="short", min=0, soft_max=limit_queued,
            thresholds=(Step("green"), Step("orange", full), Step("red", limit_queued)),
            alerts=(QUEUE_NEAR_FULL, SHEDDING),
            description=(f"Calls waiting in the queue of bulkhead {c.name}, per instance, against {against} and "
                         f"{pct(spec.queue_full_ratio)} of it, {full} (orange line)"
                         + built.fires(QUEUE_NEAR_FULL, "; at or above it for {for} fires {alert}") + "."),
            queries=(Query(agg("max", sel(c, "queued"), ("instance",)), "{{instance}}"),),
        ))
    detail.append(Panel(
        title=f"{c.name}: shed calls", unit="reqps", thresholds=above(spec.rejection_rate_max), alerts=(SHEDDING,),
        description=(f"Calls refused by bulkhead {c.name} per second"
                     + (f" (HTTP {spec.overload_status})" if spec.overload_status else "") + ", per instance. "
                     + built.fires(SHEDDING, f"Above {number(spec.rejection_rate_max)}/s for {{for}} fires {{alert}}.")
                     ).strip(),
        queries=(Query(agg("sum", rate(sel(c, "rejected")), ("instance",)), "{{instance}}"),),
    ))
    health = Panel(
        title=f"Bulkhead {c.name}: concurrency", kind="stat", unit="short", width=6, height=5,
        thresholds=above(limit, math.ceil(limit * 0.9)), alerts=(SATURATED,),
        description=f"Most calls in progress in bulkhead {c.name} on any instance, against its limit {limit}.",
        queries=(Query(health_query, c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="backpressure",
    title="Bulkhead",
    spec=BackpressureSpec,
    schema="backpressure",
    check=check,
    alerts=(QUEUE_NEAR_FULL, SATURATED, SHEDDING),
    rules=rules,
    panels=panels,
    concern=CONCERN,
    presence={"python": "in_use"},  # the requests in progress, queue or not; Resilience4j's two bulkheads differ
    default_metrics={
        "micrometer": {
            "queued": MetricRef("resilience4j_bulkhead_queue_depth", (), RESILIENCE4J),
            "in_use": MetricRef("resilience4j_bulkhead_active_thread_count", (), RESILIENCE4J),
            "available": MetricRef("resilience4j_bulkhead_available_concurrent_calls", (), RESILIENCE4J),
            "rejected": MetricRef("bulkhead_rejected_calls_total"),
        },
        "python": {
            "queued": MetricRef("backpressure_queue_size"),
            "in_use": MetricRef("backpressure_active_requests"),
            "available": None,
            "rejected": MetricRef("backpressure_rejected_total"),
        },
    },
)
