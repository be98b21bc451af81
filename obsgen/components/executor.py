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

from obsgen.components.base import Check, Component, Kind, Rule, Scenario
from obsgen.components.shapes import by_clause, gauge_compare, verdict, rate_above
from obsgen.components.timeline import MIN, STEP, gauge
from obsgen.model.types import ComponentSpec, Duration, MetricRef


@dataclass(frozen=True)
class ExecutorSpec(ComponentSpec):
    queue_capacity: int = 0
    core_threads: int | None = None
    max_threads: int | None = None
    queue_full_ratio: float = 0.9
    rejection_rate_max: float = 0.1


def queue_threshold(spec: ExecutorSpec) -> int:
    """Queued tasks that count as full: 90% of 200 is 180."""
    return math.ceil(spec.queue_capacity * spec.queue_full_ratio)


def _saturated(c: Component, spec: ExecutorSpec) -> list[Rule]:
    by = by_clause(c)
    expr = (f"max {by} ({c.select('active')}) >= max {by} ({c.select('pool_size')})\n"
            f"and\nmax {by} ({c.select('queued')}) > 0")
    threads = spec.core_threads or 4

    def story(active: int, queued: int, span: Duration) -> tuple:
        return (c.series("active", gauge((span, active))), c.series("pool_size", gauge((span, threads))),
                c.series("queued", gauge((span, queued))))

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        return [
            Scenario("busy-backlog", f"all {threads} threads busy and 50 tasks waiting", story(threads, 50, end),
                     verdict(f, end, True), labels=dict(c.identity), value=threads),
            Scenario("spare-thread", "one thread idle, tasks waiting", story(threads - 1, 50, end),
                     verdict(f, end, False)),
            Scenario("keeping-up", "all threads busy, nothing waiting", story(threads, 0, end),
                     verdict(f, end, False)),
        ]

    return c.alert("ExecutorSaturated", expr=expr, for_="5m", severity="warning", scenarios=scenarios,
                   summary="Every thread of an executor is busy and tasks are waiting.",
                   description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has had all "
                                "{{ $value }} threads busy with tasks queued for {for}; latency grows with the queue."))


def rules(c: Component) -> list[Rule]:
    spec: ExecutorSpec = c.spec  # type: ignore[assignment]
    threshold = queue_threshold(spec)
    return gauge_compare(
        c, "ExecutorQueueFull", signal="queued", op=">=", threshold=threshold,
        bad=threshold + math.ceil((spec.queue_capacity - threshold) * 0.75), good=(max(threshold - 1, 0),),
        for_="1m", severity="warning",
        summary="An executor's queue is nearly full; new tasks will soon be rejected.",
        description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} has {{{{ $value }}}} "
                     f"tasks queued of {spec.queue_capacity} (threshold {threshold}) for {{for}}."),
    ) + rate_above(
        c, "ExecutorRejectingTasks", signal="rejected", threshold=spec.rejection_rate_max,
        window=Duration.parse("5m"), for_="1m", severity="warning",
        summary="An executor is rejecting tasks: its queue is full.",
        description=(f"Executor {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} rejects "
                     f"{{{{ $value | humanize }}}} tasks/s (threshold {spec.rejection_rate_max:g}/s) for {{for}}."),
    ) + _saturated(c, spec)


KIND = Kind(
    key="executors",
    title="Executor",
    spec=ExecutorSpec,
    rules=rules,
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
