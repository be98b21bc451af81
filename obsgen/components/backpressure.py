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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obsgen.components.base import Component, Concern, Finding, Given, Kind, Rule
from obsgen.components.shapes import fill_mark, filling_up, gauge_compare, rate_above, saturated
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef
from obsgen.promql import number

CONCERN = Concern("backpressure", "Backpressure",
                  "Bulkhead and backpressure queues and concurrency against their limits, shed calls; rate limiter "
                  "permits, waiting and rejected callers.")


@dataclass(frozen=True)
class BackpressureSpec(ComponentSpec):
    max_concurrent: int = 25
    queue_capacity: int | None = None
    queue_full_ratio: float = 0.9
    rejection_rate_max: float = 0.1
    overload_status: int | None = None


def check(given: Given) -> list[Finding]:
    """Queue settings without a queue would silently do nothing."""
    if "queue_full_ratio" in given.written and given.item.get("queue_capacity") is None:
        return [Finding(("queue_full_ratio",), "queue_full_ratio needs queue_capacity (the number of calls the queue "
                        "holds); add it, or remove queue_full_ratio for a bulkhead without a queue", key=True)]
    return []


def queue_threshold(spec: BackpressureSpec) -> int:
    """Queued calls that count as nearly full: 90% of 1,000 is 900."""
    return fill_mark(spec.queue_capacity or 0, spec.queue_full_ratio)


def judged_by_free_permits(c: Component) -> bool:
    """A bulkhead without a queue whose free permits are published is judged by them (Resilience4j's
    semaphore bulkhead); otherwise by the calls in progress against ``max_concurrent``."""
    return c.spec.queue_capacity is None and c.has_metric("available")


def _saturated(c: Component, spec: BackpressureSpec) -> list[Rule]:
    summary = "Every concurrency slot of a bulkhead is in use; new calls wait or are shed."
    who = f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}"
    if judged_by_free_permits(c):
        return gauge_compare(
            c, "BackpressureSaturated", signal="available", op="<=", threshold=0, bad=0, good=(1,),
            for_="5m", severity="warning", summary=summary,
            condition=f"no free permit of {num(spec.max_concurrent)} (available concurrent calls at 0)",
            description=(f"{who} has had no free permit (of {spec.max_concurrent}) for {{for}}; new calls wait "
                         "for one or are rejected."))
    return saturated(
        c, "BackpressureSaturated", used="in_use", capacity=spec.max_concurrent,
        waiting="queued" if spec.queue_capacity else None, size=spec.max_concurrent, for_="5m", severity="warning",
        summary=summary,
        condition=f"all {num(spec.max_concurrent)} concurrency slots in use"
                  + (" and at least one call queued" if spec.queue_capacity else ""),
        description=(f"{who} has had {{{{ $value }}}} of {spec.max_concurrent} calls in progress"
                     + (" with calls queued" if spec.queue_capacity else "") + " for {for}; latency grows and "
                     "the next burst is shed."))


def rules(c: Component) -> list[Rule]:
    spec: BackpressureSpec = c.spec  # type: ignore[assignment]
    out: list[Rule] = []
    if spec.queue_capacity:
        out += filling_up(
            c, "BackpressureQueueNearFull", signal="queued", capacity=spec.queue_capacity,
            ratio=spec.queue_full_ratio, for_="1m", severity="warning",
            summary="A backpressure queue is nearly full; calls will soon be shed.",
            description=(f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has {{{{ $value }}}} "
                         f"calls queued of {spec.queue_capacity} (threshold {{mark}}) for {{for}}."),
        )
    shed = f"HTTP {spec.overload_status}" if spec.overload_status else "rejections"
    out += _saturated(c, spec) + rate_above(
        c, "BackpressureSheddingLoad", signal="rejected", threshold=spec.rejection_rate_max,
        window=Duration.parse("5m"), for_="2m", severity="warning",
        summary="A bulkhead is shedding load: callers are refused.",
        condition=f"more than {num(spec.rejection_rate_max)} calls/s refused ({shed}; 5m rate)",
        description=(f"Bulkhead {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} refuses "
                     f"{{{{ $value | humanize }}}} calls/s (threshold {number(spec.rejection_rate_max)}/s) for {{for}}"
                     + (f"; callers get HTTP {spec.overload_status}." if spec.overload_status else ".")),
    )
    return out


def panels(c: Component) -> ComponentPanels:
    spec: BackpressureSpec = c.spec  # type: ignore[assignment]
    limit = spec.max_concurrent
    if judged_by_free_permits(c):
        concurrency = Panel(
            title=f"{c.name}: free permits", unit="short", min=0, soft_max=limit,
            thresholds=(Step("red"), Step("green", 1)), runbooks=("BackpressureSaturated",),
            description=(f"Free permits of bulkhead {c.name} per instance, of {limit}. At 0 for 5m fires "
                         "BackpressureSaturated: new calls wait or are rejected."),
            queries=(Query(f"min by (instance) ({sel(c, 'available')})", "{{instance}}"),),
        )
        health_query = f"{limit} - min ({sel(c, 'available')})"
    else:
        concurrency = Panel(
            title=f"{c.name}: calls in progress", unit="short", min=0, soft_max=limit,
            thresholds=(Step("green"), Step("red", limit)), runbooks=("BackpressureSaturated",),
            description=(f"Calls in progress in bulkhead {c.name} per instance, against its limit {limit} (red "
                         "line). At the limit for 5m" + (" with calls queued" if spec.queue_capacity else "")
                         + " fires BackpressureSaturated."),
            queries=(Query(f"max by (instance) ({sel(c, 'in_use')})", "{{instance}}"),),
        )
        health_query = f"max ({sel(c, 'in_use')})"
    detail = [concurrency]
    if spec.queue_capacity:
        full = queue_threshold(spec)
        detail.append(Panel(
            title=f"{c.name}: queue depth", unit="short", min=0, soft_max=spec.queue_capacity,
            thresholds=(Step("green"), Step("orange", full), Step("red", spec.queue_capacity)),
            runbooks=("BackpressureQueueNearFull", "BackpressureSheddingLoad"),
            description=(f"Calls waiting in the queue of bulkhead {c.name}, per instance, against its capacity "
                         f"{spec.queue_capacity} (red line) and {pct(spec.queue_full_ratio)} of it, {full} "
                         "(orange line); at or above it for 1m fires BackpressureQueueNearFull."),
            queries=(Query(f"max by (instance) ({sel(c, 'queued')})", "{{instance}}"),),
        ))
    detail.append(Panel(
        title=f"{c.name}: shed calls", unit="reqps", thresholds=above(spec.rejection_rate_max),
        runbooks=("BackpressureSheddingLoad",),
        description=(f"Calls refused by bulkhead {c.name} per second"
                     + (f" (HTTP {spec.overload_status})" if spec.overload_status else "") + ", per instance. "
                     f"Above {number(spec.rejection_rate_max)}/s for 2m fires BackpressureSheddingLoad."),
        queries=(Query(f"sum by (instance) ({rate(sel(c, 'rejected'))})", "{{instance}}"),),
    ))
    health = Panel(
        title=f"Bulkhead {c.name}: concurrency", kind="stat", unit="short", width=6, height=5,
        thresholds=above(limit, math.ceil(limit * 0.9)), runbooks=("BackpressureSaturated",),
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
    rules=rules,
    panels=panels,
    concern=CONCERN,
    related={
        "BackpressureQueueNearFull": ("BackpressureSaturated", "BackpressureSheddingLoad"),
        "BackpressureSaturated": ("BackpressureQueueNearFull", "BackpressureSheddingLoad", "DbPoolExhausted",
                                  "CircuitBreakerOpen"),
        "BackpressureSheddingLoad": ("BackpressureSaturated", "BackpressureQueueNearFull", "RateLimiterRejectingCalls"),
    },
    default_metrics={
        "micrometer": {
            "queued": MetricRef("resilience4j_bulkhead_queue_depth"),
            "in_use": MetricRef("resilience4j_bulkhead_active_thread_count"),
            "available": MetricRef("resilience4j_bulkhead_available_concurrent_calls"),
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
