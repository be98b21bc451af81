"""Thread-pool executors: queue filling up, tasks rejected, every thread busy with work waiting.

Micrometer's ExecutorServiceMetrics gives ``executor_queued_tasks``,
``executor_active_threads`` and ``executor_pool_size_threads`` per ``name``.
It has no rejection metric: apps count rejections in their
RejectedExecutionHandler as ``executor_rejected_total{name}`` (the Maple guide's
RejectionPolicyFactory does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obsgen.components.base import Component, Concern, Finding, Given, Kind, Rule
from obsgen.components.shapes import fill_mark, filling_up, rate_above, saturated
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.promql import number
from obsgen.model.types import ComponentSpec, Duration, MetricRef


@dataclass(frozen=True)
class ExecutorSpec(ComponentSpec):
    queue_capacity: int = 0
    core_threads: int | None = None
    max_threads: int | None = None
    queue_full_ratio: float = 0.9
    rejection_rate_max: float = 0.1


def check(given: Given) -> list[Finding]:
    core, most = given.item.get("core_threads"), given.item.get("max_threads")
    if core and most and core > most:
        return [Finding(("core_threads",), f"expected core_threads of at most max_threads ({most}), found {core}")]
    return []


def queue_threshold(spec: ExecutorSpec) -> int:
    """Queued tasks that count as full: 90% of 200 is 180."""
    return fill_mark(spec.queue_capacity, spec.queue_full_ratio)


def _saturated(c: Component, spec: ExecutorSpec) -> list[Rule]:
    return saturated(
        c, "ExecutorSaturated", used="active", capacity="pool_size", waiting="queued", size=spec.core_threads or 4,
        for_="5m", severity="warning", condition="every pool thread busy and at least one task queued",
        summary="Every thread of an executor is busy and tasks are waiting.",
        description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has had all "
                     "{{ $value }} threads busy with tasks queued for {for}; latency grows with the queue."))


def rules(c: Component) -> list[Rule]:
    spec: ExecutorSpec = c.spec  # type: ignore[assignment]
    return filling_up(
        c, "ExecutorQueueFull", signal="queued", capacity=spec.queue_capacity, ratio=spec.queue_full_ratio,
        for_="1m", severity="warning",
        summary="An executor's queue is nearly full; new tasks will soon be rejected.",
        description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has {{{{ $value }}}} "
                     f"tasks queued of {spec.queue_capacity} (threshold {{mark}}) for {{for}}."),
    ) + rate_above(
        c, "ExecutorRejectingTasks", signal="rejected", threshold=spec.rejection_rate_max,
        window=Duration.parse("5m"), for_="1m", severity="warning",
        summary="An executor is rejecting tasks: its queue is full.",
        condition=f"more than {num(spec.rejection_rate_max)} rejected tasks/s (5m rate)",
        description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} rejects "
                     f"{{{{ $value | humanize }}}} tasks/s (threshold {spec.rejection_rate_max:g}/s) for {{for}}."),
    ) + _saturated(c, spec)



def panels(c: Component) -> ComponentPanels:
    spec = c.spec
    capacity = spec.queue_capacity
    full = math.ceil(capacity * spec.queue_full_ratio)
    queue_steps = (Step("green"), Step("orange", full), Step("red", capacity)) if capacity > 0 else ()
    detail = (
        Panel(
            title=f"{c.name}: active threads vs pool size", unit="short", min=0, runbooks=("ExecutorSaturated",),
            description=(f"Busy threads of executor {c.name} against its current pool size, per instance "
                         f"(core {spec.core_threads if spec.core_threads is not None else '?'}, max "
                         f"{spec.max_threads if spec.max_threads is not None else '?'}). All busy with tasks "
                         "queued for 5m fires ExecutorSaturated."),
            queries=(Query(f"max by (instance) ({sel(c, 'active')})", "active {{instance}}"),
                     Query(f"max by (instance) ({sel(c, 'pool_size')})", "pool size {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: queue depth", unit="short", min=0, soft_max=capacity or None, thresholds=queue_steps,
            runbooks=("ExecutorQueueFull", "ExecutorRejectingTasks"),
            description=(f"Tasks waiting in the queue of executor {c.name}, per instance"
                         + (f", against its capacity {capacity} (red line) and {pct(spec.queue_full_ratio)} of it, "
                            f"{full} (orange line); at or above {full} for 1m fires ExecutorQueueFull."
                            if capacity > 0 else " (unbounded queue).")),
            queries=(Query(f"max by (instance) ({sel(c, 'queued')})", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: rejected tasks", unit="ops", thresholds=above(spec.rejection_rate_max),
            runbooks=("ExecutorRejectingTasks",),
            description=(f"Tasks rejected by executor {c.name} per second, per instance. Above "
                         f"{number(spec.rejection_rate_max)}/s for 1m fires ExecutorRejectingTasks."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'rejected'))})", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: completed tasks", unit="ops", runbooks=("ExecutorSaturated",),
            description=f"Tasks completed by executor {c.name} per second, per instance: its throughput.",
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'completed'))})", "{{instance}}"),),
        ),
    )
    if capacity > 0:
        health = Panel(
            title=f"Executor {c.name}: queue fill", kind="stat", unit="percentunit", width=6, height=5,
            thresholds=above(1, spec.queue_full_ratio), runbooks=("ExecutorQueueFull",),
            description=f"Fullest queue of executor {c.name} over all instances, as a share of its capacity {capacity}.",
            queries=(Query(f"max ({sel(c, 'queued')}) / {capacity}", c.name),),
        )
    else:
        health = Panel(
            title=f"Executor {c.name}: queued tasks", kind="stat", unit="short", width=6, height=5,
            runbooks=("ExecutorSaturated",),
            description=f"Longest queue of executor {c.name} over all instances (unbounded queue).",
            queries=(Query(f"max ({sel(c, 'queued')})", c.name),),
        )
    return ComponentPanels(health, detail, jobs(c.base_labels))


KIND = Kind(
    key="executors",
    title="Executor",
    spec=ExecutorSpec,
    schema="executor",
    check=check,
    rules=rules,
    panels=panels,
    concern=Concern("thread-pool", "Thread Pool",
                    "Executor threads against pool size, queue depth against capacity, rejections and completed tasks."),
    related={
        "ExecutorQueueFull": ("ExecutorRejectingTasks", "ExecutorSaturated", "CacheStampede"),
        "ExecutorRejectingTasks": ("ExecutorQueueFull", "ExecutorSaturated"),
        "ExecutorSaturated": ("ExecutorQueueFull", "ExecutorRejectingTasks", "TimeLimiterTimeoutsHigh"),
    },
    default_metrics={
        "micrometer": {
            "queued": MetricRef("executor_queued_tasks"),
            "active": MetricRef("executor_active_threads"),
            "pool_size": MetricRef("executor_pool_size_threads"),
            "rejected": MetricRef("executor_rejected_total"),
            "completed": MetricRef("executor_completed_tasks_total"),
        },
    },
)
