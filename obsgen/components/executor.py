"""Thread-pool executors: queue filling up, tasks rejected, every thread busy with work waiting.

Micrometer's ExecutorServiceMetrics gives ``executor_queued_tasks``,
``executor_active_threads`` and ``executor_pool_size_threads`` per ``name``.
It has no rejection metric: apps count rejections in their
RejectedExecutionHandler as ``executor_rejected_total{name}``.
"""

from __future__ import annotations

import math

from obsgen.components.base import AlertDef, Built, Component, Concern, Finding, Given, Kind, Rule
from obsgen.components.shapes import fill_mark, filling_up, grouping, rate_above, saturated
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.model.promql import Expr, agg, binop, number
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

FIVE_MIN = Duration.parse("5m")
MICROMETER = "Micrometer ExecutorServiceMetrics (Spring Boot binds every ThreadPoolTaskExecutor bean)"
QUEUE_FULL = AlertDef(
    "ExecutorQueueFull", "warning", "1m", "An executor's queue is nearly full; new tasks will soon be rejected.",
    related=("ExecutorRejectingTasks", "ExecutorSaturated", "CacheStampede"))
REJECTING = AlertDef(
    "ExecutorRejectingTasks", "warning", "1m", "An executor is rejecting tasks: its queue is full.",
    related=("ExecutorQueueFull", "ExecutorSaturated"))
SATURATED = AlertDef(
    "ExecutorSaturated", "warning", "5m", "Every thread of an executor is busy and tasks are waiting.",
    related=("ExecutorQueueFull", "ExecutorRejectingTasks", "TimeLimiterTimeoutsHigh"))


@record(kw_only=True)
class ExecutorSpec(ComponentSpec):
    """One item of a spec's ``executors:`` list (executor), as the schema defaulted it."""

    queue_capacity: int
    core_threads: int | None
    max_threads: int | None
    queue_full_ratio: float
    rejection_rate_max: float


def check(given: Given) -> list[Finding]:
    core, most = given.item.get("core_threads"), given.item.get("max_threads")
    if core and most and core > most:
        return [Finding(("core_threads",), f"expected core_threads of at most max_threads ({most}), found {core}")]
    return []


def queue_threshold(spec: ExecutorSpec) -> int:
    """Queued tasks that count as full: 90% of 200 is 180."""
    return fill_mark(spec.queue_capacity, spec.queue_full_ratio)


def _queries(c: Component) -> dict[str, Expr]:
    """The runbooks' diagnostic queries, one per signal, per instance: every page reads the same few."""
    by = grouping(c)
    gauges = {name: agg("max", c.select(name), by) for name in ("queued", "active", "pool_size")}
    return gauges | {name: agg("sum", rate_over(c.select(name), FIVE_MIN), by) for name in ("rejected", "completed")}


def _saturated(c: Component, spec: ExecutorSpec) -> list[Rule]:
    return saturated(
        c, SATURATED, used="active", capacity="pool_size", waiting="queued", size=spec.core_threads or 4,
        queries=_queries(c),
        condition="every pool thread busy and at least one task queued",
        description=(f"Executor {c.name} on {{{{ $labels.instance }}}} has had all "
                     "{{ $value }} threads busy with tasks queued for {for}; latency grows with the queue."))


def rules(c: Component) -> list[Rule]:
    spec: ExecutorSpec = c.spec  # type: ignore[assignment]
    return filling_up(
        c, QUEUE_FULL, signal="queued", capacity=spec.queue_capacity, ratio=spec.queue_full_ratio,
        description=(f"Executor {c.name} on {{{{ $labels.instance }}}} has {{{{ $value }}}} "
                     f"tasks queued of {spec.queue_capacity} (threshold {{mark}}) for {{for}}."),
        queries=_queries(c),
    ) + rate_above(
        c, REJECTING, signal="rejected", threshold=spec.rejection_rate_max, window=FIVE_MIN,
        condition=f"more than {num(spec.rejection_rate_max)} rejected tasks/s (5m rate)",
        description=(f"Executor {c.name} on {{{{ $labels.instance }}}} rejects "
                     f"{{{{ $value | humanize }}}} tasks/s (threshold {spec.rejection_rate_max:g}/s) for {{for}}."),
        queries=_queries(c),
    ) + _saturated(c, spec)


def panels(c: Component, built: Built) -> ComponentPanels:
    spec = c.spec
    capacity = spec.queue_capacity
    full = math.ceil(capacity * spec.queue_full_ratio)
    queue_steps = (Step("green"), Step("orange", full), Step("red", capacity)) if capacity > 0 else ()
    per_instance = lambda signal: agg("max", sel(c, signal), ("instance",))  # noqa: E731
    detail = (
        Panel(
            title=f"{c.name}: active threads vs pool size", unit="short", min=0, alerts=(SATURATED,),
            description=(f"Busy threads of executor {c.name} against its current pool size, per instance "
                         f"(core {spec.core_threads if spec.core_threads is not None else '?'}, max "
                         f"{spec.max_threads if spec.max_threads is not None else '?'}). "
                         + built.fires(SATURATED, "All busy with tasks queued for {for} fires {alert}.")).strip(),
            queries=(Query(per_instance("active"), "active {{instance}}"),
                     Query(per_instance("pool_size"), "pool size {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: queue depth", unit="short", min=0, soft_max=capacity or None, thresholds=queue_steps,
            alerts=(QUEUE_FULL, REJECTING),
            description=(f"Tasks waiting in the queue of executor {c.name}, per instance"
                         + (f", against its capacity {capacity} (red line) and {pct(spec.queue_full_ratio)} of it, "
                            f"{full} (orange line)" + built.fires(QUEUE_FULL, f"; at or above {full} for {{for}} "
                                                                             "fires {alert}") + "."
                            if capacity > 0 else " (unbounded queue).")),
            queries=(Query(per_instance("queued"), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: rejected tasks", unit="ops", thresholds=above(spec.rejection_rate_max),
            alerts=(REJECTING,),
            description=(f"Tasks rejected by executor {c.name} per second, per instance. "
                         + built.fires(REJECTING, f"Above {number(spec.rejection_rate_max)}/s for {{for}} fires "
                                                  "{alert}.")).strip(),
            queries=(Query(agg("sum", rate(sel(c, "rejected")), ("instance",)), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: completed tasks", unit="ops", alerts=(SATURATED,),
            description=f"Tasks completed by executor {c.name} per second, per instance: its throughput.",
            queries=(Query(agg("sum", rate(sel(c, "completed")), ("instance",)), "{{instance}}"),),
        ),
    )
    if capacity > 0:
        health = Panel(
            title=f"Executor {c.name}: queue fill", kind="stat", unit="percentunit", width=6, height=5,
            thresholds=above(1, spec.queue_full_ratio), alerts=(QUEUE_FULL,),
            description=f"Fullest queue of executor {c.name} over all instances, as a share of its capacity {capacity}.",
            queries=(Query(binop("/", agg("max", sel(c, "queued")), capacity), c.name),),
        )
    else:
        health = Panel(
            title=f"Executor {c.name}: queued tasks", kind="stat", unit="short", width=6, height=5,
            alerts=(SATURATED,),
            description=f"Longest queue of executor {c.name} over all instances (unbounded queue).",
            queries=(Query(agg("max", sel(c, "queued")), c.name),),
        )
    return ComponentPanels(health, detail, jobs(c.base_labels))


KIND = Kind(
    key="executors",
    title="Executor",
    spec=ExecutorSpec,
    schema="executor",
    check=check,
    alerts=(QUEUE_FULL, REJECTING, SATURATED),
    rules=rules,
    panels=panels,
    presence={"*": "queued"},  # ExecutorServiceMetrics gauges exist from binding
    concern=Concern("thread-pool", "Thread Pool",
                    "Executor threads against pool size, queue depth against capacity, rejections and completed tasks."),
    default_metrics={
        "micrometer": {
            "queued": MetricRef("executor_queued_tasks", (), MICROMETER),
            "active": MetricRef("executor_active_threads", (), MICROMETER),
            "pool_size": MetricRef("executor_pool_size_threads", (), MICROMETER),
            "rejected": MetricRef("executor_rejected_total"),  # counted by the app's RejectedExecutionHandler
            "completed": MetricRef("executor_completed_tasks_total", (), MICROMETER),
        },
    },
)
