"""Distributed locks: slow acquisitions (a latency percentile), failed acquisitions, locks held too long.

No lock library publishes these (Redisson's Micrometer binder covers caches,
not RLock), so the app times its own acquisitions, the way the Maple guide's
LockAspect would around ``tryLock``: a Micrometer timer ``lock.acquire`` tagged
``lock`` for every attempt, acquired or not, with the percentiles histogram on
(``management.metrics.distribution.percentiles-histogram.lock.acquire=true``),
giving ``lock_acquire_seconds_bucket`` / ``_count``; a counter
``lock.acquire.failures`` (``lock_acquire_failures_total``) for attempts that
did not get the lock; and a timer ``lock.held`` (``lock_held_seconds_bucket``)
from acquire to release. A Python team writes the same names with
prometheus_client: ``Histogram("lock_acquire_seconds", …, ["lock"])``,
``Counter("lock_acquire_failures", …)``, ``Histogram("lock_held_seconds", …)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components.base import Component, Concern, Finding, Given, Kind, RatioSignals, Rule
from obsgen.components.shapes import quantile_above, ratio_of_rates
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef
from obsgen.promql import number

CONCERN = Concern("distributed-locks", "Distributed Locks",
                  "Lock acquire latency percentiles against their limits, failed acquisitions and hold times.")

# The failure counter and the attempt count are separate families by default; if a spec makes them one family
# (``lock_acquire_seconds_count{result="failed"}``), test data writes the attempts selector as the rest.
FAILURES = RatioSignals(part="failures", total="attempts", rest="attempts")


@dataclass(frozen=True)
class LockSpec(ComponentSpec):
    label: str = "lock"
    backend: str = "redis"
    wait_time: Duration | None = None
    lease_time: Duration | None = None
    quantile: float = 0.95
    acquire_latency_max: Duration = Duration.parse("100ms")
    acquire_latency_target: Duration | None = None
    failure_ratio_max: float = 0.05
    min_attempt_rate: float = 0.1
    key_pattern: str | None = None
    fallback: str = ""
    hold_time_max: Duration | None = None


def check(given: Given) -> list[Finding]:
    """A latency limit the lock can never reach (it gives up at wait_time first) makes a silent alert."""
    item, out = given.item, []
    wait, latency = item.get("wait_time"), item.get("acquire_latency_max")
    if wait and latency and Duration.parse(latency) >= Duration.parse(wait):
        out.append(Finding(("acquire_latency_max",), f"acquire_latency_max ({latency}) is not below wait_time "
                           f"({wait}): an acquire gives up after {wait}, so LockAcquireLatencyHigh could never "
                           "fire; lower it"))
    for key in ("acquire_latency_max", "hold_time_max"):
        if item.get(key) is not None and Duration.parse(item[key]).millis == 0:
            out.append(Finding((key,), f"{key} is 0: every acquisition would be over it; give a duration such as "
                               "100ms"))
    return out


def quantile_name(q: float) -> str:
    """``0.95`` → ``p95``; ``0.999`` → ``p99.9``."""
    return f"p{q * 100:g}"


def _percentile(c: Component, name: str, signal: str, limit: Duration, *, what: str, summary: str,
                after: str) -> list[Rule]:
    """The lock's percentile of ``signal`` (acquire or hold time) above ``limit``, over all instances: a lock
    is shared by every instance, so its latency is one distribution."""
    spec: LockSpec = c.spec  # type: ignore[assignment]
    p = quantile_name(spec.quantile)
    return quantile_above(
        c, name, signal=signal, quantile=spec.quantile, threshold=limit.total_seconds, min_rate=spec.min_attempt_rate,
        per_instance=False, for_="10m", severity="warning", summary=summary,
        condition=f"{p} {what} above {limit} over all instances (while at least {num(spec.min_attempt_rate)}/s)",
        description=(f"Lock {{{{ $labels.{spec.label} }}}}: {p} of {what} is {{{{ $value | humanize }}}}s across all "
                     f"instances, above {limit} for {{for}}; {after}"),
    )


def rules(c: Component) -> list[Rule]:
    spec: LockSpec = c.spec  # type: ignore[assignment]
    out = _percentile(c, "LockAcquireLatencyHigh", "acquire", spec.acquire_latency_max, what="acquire latency",
                      summary="Acquiring a distributed lock has become slow.",
                      after="every caller of the lock waits longer.")
    out += ratio_of_rates(
        c, "LockAcquireFailuresHigh", signals=FAILURES, record="instance_lock:acquire_failure",
        threshold=spec.failure_ratio_max, below=False, min_rate=spec.min_attempt_rate, for_="5m", severity="warning",
        summary="Many attempts to take a distributed lock fail.",
        condition=(f"more than {pct(spec.failure_ratio_max)} of acquire attempts fail"
                   + (f" (time out after {spec.wait_time})" if spec.wait_time else "")
                   + f" (while at least {num(spec.min_attempt_rate)} attempts/s)"),
        description=(f"Lock {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: {{{{ $value | humanizePercentage }}}} "
                     f"of acquire attempts fail (threshold {spec.failure_ratio_max * 100:g}%) for {{for}}; callers take "
                     "their fallback or fail."),
    )
    if spec.hold_time_max is not None:
        out += _percentile(c, "LockHoldTimeHigh", "held", spec.hold_time_max, what="hold time",
                           summary="A distributed lock is held for a long time; other callers queue behind it.",
                           after=f"the lease expires after {spec.lease_time}." if spec.lease_time
                           else "other callers wait behind the holders.")
    return out


def _quantile_query(c: Component, signal: str, q: float, by: str) -> str:
    return f"histogram_quantile({number(q)}, sum by (le{by}) ({rate(sel(c, signal))}))"


def panels(c: Component) -> ComponentPanels:
    spec: LockSpec = c.spec  # type: ignore[assignment]
    p = quantile_name(spec.quantile)
    limit = spec.acquire_latency_max.total_seconds
    target = spec.acquire_latency_target.total_seconds if spec.acquire_latency_target else None
    latency_steps = (Step("green"),) + ((Step("orange", target),) if target else ()) + (Step("red", limit),)
    detail = [
        Panel(
            title=f"{c.name}: acquire latency {p}", unit="s", min=0, thresholds=latency_steps,
            runbooks=("LockAcquireLatencyHigh",),
            description=(f"{p} of the time to acquire lock {c.name}, all instances together and per instance. "
                         + (f"Orange line: the {spec.acquire_latency_target} objective. " if target else "")
                         + f"Above {spec.acquire_latency_max} (red line) for 10m, with at least "
                         f"{number(spec.min_attempt_rate)} attempts/s, fires LockAcquireLatencyHigh."),
            queries=(Query(_quantile_query(c, "acquire", spec.quantile, ""), f"{p} all instances"),
                     Query(_quantile_query(c, "acquire", spec.quantile, ", instance"), f"{p} {{{{instance}}}}")),
        ),
        Panel(
            title=f"{c.name}: acquire attempts and failures", unit="ops", runbooks=("LockAcquireFailuresHigh",),
            description=f"Attempts to acquire lock {c.name} and those that failed, per second, all instances.",
            queries=(Query(f"sum ({rate(sel(c, 'attempts'))})", "attempts"),
                     Query(f"sum ({rate(sel(c, 'failures'))})", "failures")),
        ),
        Panel(
            title=f"{c.name}: failed share", unit="percentunit", min=0, thresholds=above(spec.failure_ratio_max),
            runbooks=("LockAcquireFailuresHigh",),
            description=(f"Share of attempts to acquire lock {c.name} that failed, per instance. Above "
                         f"{pct(spec.failure_ratio_max)} for 5m, with at least {number(spec.min_attempt_rate)} "
                         "attempts/s, fires LockAcquireFailuresHigh."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'failures'))})\n/\n"
                           f"sum by (instance) ({rate(sel(c, 'attempts'))})", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: hold time {p}", unit="s", min=0,
            thresholds=above(spec.hold_time_max.total_seconds) if spec.hold_time_max else (),
            runbooks=("LockHoldTimeHigh", "LockAcquireLatencyHigh"),
            description=(f"{p} of how long lock {c.name} is held, all instances together: long holds make every "
                         "other caller wait." + (f" Above {spec.hold_time_max} for 10m fires LockHoldTimeHigh."
                                                 if spec.hold_time_max else "")
                         + (f" The lease expires after {spec.lease_time}." if spec.lease_time else "")),
            queries=(Query(_quantile_query(c, "held", spec.quantile, ""), p),),
        ),
    ]
    health = Panel(
        title=f"Lock {c.name}: acquire {p}", kind="stat", unit="s", width=6, height=5, thresholds=latency_steps,
        runbooks=("LockAcquireLatencyHigh",),
        description=(f"{p} acquire latency of lock {c.name} over all instances, against its limit "
                     f"{spec.acquire_latency_max}" + (f" and objective {spec.acquire_latency_target}" if target else "")
                     + "."),
        queries=(Query(_quantile_query(c, "acquire", spec.quantile, ""), c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="locks",
    ratios=(FAILURES,),
    title="Lock",
    spec=LockSpec,
    schema="lock",
    check=check,
    rules=rules,
    panels=panels,
    concern=CONCERN,
    related={
        "LockAcquireLatencyHigh": ("LockHoldTimeHigh", "LockAcquireFailuresHigh", "RedisDown", "RedisMemoryHigh",
                                   "RedisSentinelFailover"),
        "LockAcquireFailuresHigh": ("LockAcquireLatencyHigh", "LockHoldTimeHigh", "RedisDown",
                                    "RedisSentinelFailover", "CacheStampede"),
        "LockHoldTimeHigh": ("LockAcquireLatencyHigh", "LockAcquireFailuresHigh", "ExecutorSaturated"),
    },
    default_metrics={
        profile: {
            "acquire": MetricRef("lock_acquire_seconds_bucket"),
            "attempts": MetricRef("lock_acquire_seconds_count"),
            "failures": MetricRef("lock_acquire_failures_total"),
            "held": MetricRef("lock_held_seconds_bucket"),
        }
        for profile in ("micrometer", "python")
    },
)
