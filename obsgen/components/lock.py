"""Distributed locks: slow acquisitions (a latency percentile), failed acquisitions, locks held too long.

No lock library publishes these (Redisson's Micrometer binder covers caches,
not RLock), so the app times its own acquisitions, as an aspect around
``tryLock`` would: a Micrometer timer ``lock.acquire`` tagged
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


from obsgen.components.base import AlertDef, Built, Component, Concern, Finding, Given, Kind, RatioSignals, Rule
from obsgen.components.shapes import grouping, quantile_above, ratio_of_rates, share
from obsgen.components.viz import RATE, ComponentPanels, Panel, Query, Step, above, jobs, num, pct, rate, sel
from obsgen.model.promql import Call, Expr, Num, Offset, agg, number
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

CONCERN = Concern("distributed-locks", "Distributed Locks",
                  "Lock acquire latency percentiles against their limits, failed acquisitions and hold times.")

# The failure counter and the attempt count are separate families by default; if a spec makes them one family
# (``lock_acquire_seconds_count{result="failed"}``), test data writes the attempts selector as the rest.
FAILURES = RatioSignals(part="failures", total="attempts", rest="attempts")
FIVE_MIN = Duration.parse("5m")
WEEK = Duration.parse("1w")

LATENCY_HIGH = AlertDef(
    "LockAcquireLatencyHigh", "warning", "10m", "Acquiring a distributed lock has become slow.",
    related=("LockHoldTimeHigh", "LockAcquireFailuresHigh", "RedisDown", "RedisMemoryHigh", "RedisSentinelFailover"))
FAILURES_HIGH = AlertDef(
    "LockAcquireFailuresHigh", "warning", "5m", "Many attempts to take a distributed lock fail.",
    related=("LockAcquireLatencyHigh", "LockHoldTimeHigh", "RedisDown", "RedisSentinelFailover", "CacheStampede"))
HOLD_TIME_HIGH = AlertDef(
    "LockHoldTimeHigh", "warning", "10m", "A distributed lock is held for a long time; other callers queue behind it.",
    related=("LockAcquireLatencyHigh", "LockAcquireFailuresHigh", "ExecutorSaturated"))


@record(kw_only=True)
class LockSpec(ComponentSpec):
    """One item of a spec's ``locks:`` list (lock), as the schema defaulted it."""

    label: str
    backend: str
    wait_time: Duration | None
    lease_time: Duration | None
    quantile: float
    acquire_latency_max: Duration
    acquire_latency_target: Duration | None
    failure_ratio_max: float
    min_attempt_rate: float
    key_pattern: str | None
    fallback: str
    hold_time_max: Duration | None


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


def diagnostics(c: Component) -> dict[str, Expr]:
    """The runbook's queries, by name, over the raw series: acquire latency, failed share and hold time per
    instance (one slow instance, or all of them), and attempts over all instances now and a week ago
    (contention). The hold time is read only for a lock whose spec sets ``hold_time_max``: the app is not
    assumed to time its holds otherwise."""
    spec: LockSpec = c.spec  # type: ignore[assignment]
    per_instance, whole = grouping(c), grouping(c, per_instance=False)
    out = {
        "latency": _quantile(c, "acquire", spec.quantile, per_instance, FIVE_MIN, c.select),
        "failed_share": share(c, FAILURES, per_instance, FIVE_MIN),
        "attempts": agg("sum", rate_over(c.select("attempts"), FIVE_MIN), whole),
        "attempts_last_week": agg("sum", rate_over(Offset(c.select("attempts"), WEEK), FIVE_MIN), whole),
    }
    if spec.hold_time_max is not None:
        out["hold"] = _quantile(c, "held", spec.quantile, per_instance, FIVE_MIN, c.select)
    return out


def _pick(queries: dict[str, Expr], *names: str) -> dict[str, Expr]:
    """The queries of ``names`` that the component has, in that order."""
    return {n: queries[n] for n in names if n in queries}


def _percentile(c: Component, definition: AlertDef, signal: str, limit: Duration, *, what: str, after: str,
                queries: dict[str, Expr]) -> list[Rule]:
    """The lock's percentile of ``signal`` (acquire or hold time) above ``limit``, over all instances: a lock
    is shared by every instance, so its latency is one distribution."""
    spec: LockSpec = c.spec  # type: ignore[assignment]
    p = quantile_name(spec.quantile)
    return quantile_above(
        c, definition, signal=signal, quantile=spec.quantile, threshold=limit.total_seconds,
        min_rate=spec.min_attempt_rate, per_instance=False, queries=queries,
        condition=f"{p} {what} above {limit} over all instances (while at least {num(spec.min_attempt_rate)}/s)",
        description=(f"Lock {{{{ $labels.{spec.label} }}}}: {p} of {what} is {{{{ $value | humanize }}}}s across all "
                     f"instances, above {limit} for {{for}}; {after}"),
    )


def rules(c: Component) -> list[Rule]:
    spec: LockSpec = c.spec  # type: ignore[assignment]
    queries = diagnostics(c)
    out = _percentile(c, LATENCY_HIGH, "acquire", spec.acquire_latency_max, what="acquire latency",
                      after="every caller of the lock waits longer.",
                      queries=_pick(queries, "latency", "hold", "attempts", "attempts_last_week", "failed_share"))
    out += ratio_of_rates(
        c, FAILURES_HIGH, signals=FAILURES, record="instance_lock:acquire_failure",
        threshold=spec.failure_ratio_max, below=False, min_rate=spec.min_attempt_rate,
        queries=_pick(queries, "failed_share", "latency", "hold", "attempts", "attempts_last_week"),
        condition=(f"more than {pct(spec.failure_ratio_max)} of acquire attempts fail"
                   + (f" (time out after {spec.wait_time})" if spec.wait_time else "")
                   + f" (while at least {num(spec.min_attempt_rate)} attempts/s)"),
        description=(f"Lock {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: {{{{ $value | humanizePercentage }}}} "
                     f"of acquire attempts fail (threshold {spec.failure_ratio_max * 100:g}%) for {{for}}; callers take "
                     "their fallback or fail."),
    )
    if spec.hold_time_max is not None:
        out += _percentile(c, HOLD_TIME_HIGH, "held", spec.hold_time_max, what="hold time",
                           after=f"the lease expires after {spec.lease_time}." if spec.lease_time
                           else "other callers wait behind the holders.",
                           queries=_pick(queries, "hold", "latency", "attempts", "attempts_last_week"))
    return out


def _quantile(c: Component, signal: str, q: float, by: tuple[str, ...], window, select) -> Expr:
    """``histogram_quantile(q, sum by (le, …) (rate(bucket[window])))``."""
    return Call("histogram_quantile",
                (Num(q), agg("sum", rate_over(select(signal, None), window), ("le",) + by)))


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: LockSpec = c.spec  # type: ignore[assignment]
    p = quantile_name(spec.quantile)
    limit = spec.acquire_latency_max.total_seconds
    target = spec.acquire_latency_target.total_seconds if spec.acquire_latency_target else None
    latency_steps = (Step("green"),) + ((Step("orange", target),) if target else ()) + (Step("red", limit),)
    panel_select = lambda signal, extra: sel(c, signal, extra)  # noqa: E731
    quantile = lambda signal, by: _quantile(c, signal, spec.quantile, by, RATE, panel_select)  # noqa: E731
    detail = [
        Panel(
            title=f"{c.name}: acquire latency {p}", unit="s", min=0, thresholds=latency_steps,
            alerts=(LATENCY_HIGH,),
            description=(f"{p} of the time to acquire lock {c.name}, all instances together and per instance. "
                         + (f"Orange line: the {spec.acquire_latency_target} objective. " if target else "")
                         + built.fires(LATENCY_HIGH, f"Above {spec.acquire_latency_max} (red line) for {{for}}, with "
                                                     f"at least {number(spec.min_attempt_rate)} attempts/s, fires "
                                                     "{alert}.")).strip(),
            queries=(Query(quantile("acquire", ()), f"{p} all instances"),
                     Query(quantile("acquire", ("instance",)), f"{p} {{{{instance}}}}")),
        ),
        Panel(
            title=f"{c.name}: acquire attempts and failures", unit="ops", alerts=(FAILURES_HIGH,),
            description=f"Attempts to acquire lock {c.name} and those that failed, per second, all instances.",
            queries=(Query(agg("sum", rate(sel(c, "attempts"))), "attempts"),
                     Query(agg("sum", rate(sel(c, "failures"))), "failures")),
        ),
        Panel(
            title=f"{c.name}: failed share", unit="percentunit", min=0, thresholds=above(spec.failure_ratio_max),
            alerts=(FAILURES_HIGH,),
            description=(f"Share of attempts to acquire lock {c.name} that failed, per instance. "
                         + built.fires(FAILURES_HIGH, f"Above {pct(spec.failure_ratio_max)} for {{for}}, with at "
                                                      f"least {number(spec.min_attempt_rate)} attempts/s, fires "
                                                      "{alert}.")).strip(),
            queries=(Query(share(c, FAILURES, ("instance",), RATE, select=panel_select), "{{instance}}"),),
        ),
    ]
    if spec.hold_time_max is not None:  # the hold-time histogram is read only when the spec asks for it
        detail.append(Panel(
            title=f"{c.name}: hold time {p}", unit="s", min=0, thresholds=above(spec.hold_time_max.total_seconds),
            alerts=(HOLD_TIME_HIGH, LATENCY_HIGH),
            description=(f"{p} of how long lock {c.name} is held, all instances together: long holds make every "
                         "other caller wait. " + built.fires(HOLD_TIME_HIGH, f"Above {spec.hold_time_max} for "
                                                                             "{for} fires {alert}.")
                         + (f" The lease expires after {spec.lease_time}." if spec.lease_time else "")).strip(),
            queries=(Query(quantile("held", ()), p),),
        ))
    health = Panel(
        title=f"Lock {c.name}: acquire {p}", kind="stat", unit="s", width=6, height=5, thresholds=latency_steps,
        alerts=(LATENCY_HIGH,),
        description=(f"{p} acquire latency of lock {c.name} over all instances, against its limit "
                     f"{spec.acquire_latency_max}" + (f" and objective {spec.acquire_latency_target}" if target else "")
                     + "."),
        queries=(Query(quantile("acquire", ()), c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="locks",
    ratios=(FAILURES,),
    title="Lock",
    spec=LockSpec,
    schema="lock",
    check=check,
    alerts=(LATENCY_HIGH, FAILURES_HIGH, HOLD_TIME_HIGH),
    rules=rules,
    panels=panels,
    concern=CONCERN,
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
