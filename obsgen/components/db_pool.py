"""Database connection pools: every connection checked out, callers waiting, checkouts timing out.

Micrometer: HikariCP's MicrometerMetricsTracker (label ``pool``, default
``HikariPool-1``) publishes ``hikaricp_connections_active``, ``_idle``,
``_pending`` (threads waiting for a connection), ``_max``,
``hikaricp_connections_timeout_total`` and the timer
``hikaricp_connections_acquire_seconds_{count,sum,max}``.

Python: SQLAlchemy exports nothing itself. A team reads its QueuePool on each
scrape with a prometheus_client collector, ``pool.checkedout()`` →
``db_pool_checked_out_connections`` and ``pool.checkedin()`` →
``db_pool_checked_in_connections`` (label ``pool``), and counts
``sqlalchemy.exc.TimeoutError`` ("QueuePool limit … reached, connection timed
out") as ``db_pool_checkout_timeouts_total``. ``pool.size()`` and
``pool.overflow()`` (negative until the pool has filled) are not needed: the
spec gives ``pool_size`` and ``max_overflow``. SQLAlchemy cannot tell how many
callers wait for a connection and does not time checkouts, so the python
profile has no ``pending`` or acquire-time metric: exhaustion is judged from
the connections checked out alone, and waiting shows as timeouts.
"""

from __future__ import annotations


from obsgen.components.base import AlertDef, Built, Component, Concern, Inhibition, Kind, Rule
from obsgen.components.shapes import gauge_compare, grouping, rate_above, saturated
from obsgen.components.viz import ComponentPanels, Panel, Query, Step, above, jobs, num, rate, sel
from obsgen.model.promql import Expr, agg, number, ratio
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

CONCERN = Concern("database", "Database",
                  "Connection pools: connections in use against the maximum, waiting callers, acquire time and "
                  "timeouts.")
FIVE_MIN = Duration.parse("5m")
HIKARI = "HikariCP's Micrometer metrics tracker"

EXHAUSTED = AlertDef(
    "DbPoolExhausted", "warning", "2m", "Every connection of a database pool is checked out; requests wait for one.",
    related=("DbPoolAcquireTimeouts", "DbPoolPendingHigh", "ExecutorSaturated", "BackpressureSaturated"))
ACQUIRE_TIMEOUTS = AlertDef(
    "DbPoolAcquireTimeouts", "warning", "1m", "Requests time out waiting for a database connection.",
    related=("DbPoolExhausted", "DbPoolPendingHigh"))
PENDING_HIGH = AlertDef(
    "DbPoolPendingHigh", "warning", "5m", "Callers keep waiting for database connections.",
    related=("DbPoolExhausted", "DbPoolAcquireTimeouts"))


@record(kw_only=True)
class DbPoolSpec(ComponentSpec):
    """One item of a spec's ``db_pools:`` list (db pool), as the schema defaulted it."""

    label: str
    pool_size: int
    max_overflow: int
    timeout: Duration
    database: str
    timeout_rate_max: float
    pending_max: int


def max_connections(spec: DbPoolSpec) -> int:
    """The most connections the pool opens: pool_size plus SQLAlchemy's overflow (5 + 10 = 15)."""
    return spec.pool_size + spec.max_overflow


def _sizes(spec: DbPoolSpec) -> str:
    if spec.max_overflow:
        return f"{num(max_connections(spec))} connections ({spec.pool_size} + {spec.max_overflow} overflow)"
    return f"{num(spec.pool_size)} connections"


def diagnostics(c: Component) -> dict[str, Expr]:
    """The runbook's queries, by name, per instance and pool as the alerts judge them: connections checked
    out and idle, waiting callers, timeouts and the average acquire time, each only where the profile or
    the spec has its metric (SQLAlchemy counts no waiters and times no checkouts)."""
    by = grouping(c)
    out: dict[str, Expr] = {gauge: agg("max", c.select(gauge), by)
                            for gauge in ("in_use", "idle", "pending") if c.has_metric(gauge)}
    out["timeouts"] = agg("sum", rate_over(c.select("timeouts"), FIVE_MIN), by)
    if c.has_metric("acquire_time") and c.has_metric("acquires"):
        summed = {s: agg("sum", rate_over(c.select(s), FIVE_MIN), by) for s in ("acquire_time", "acquires")}
        out["acquire_time"] = ratio(summed["acquire_time"], summed["acquires"])
    return out


def _pick(queries: dict[str, Expr], *names: str) -> dict[str, Expr]:
    """The queries of ``names`` that the component has, in that order."""
    return {n: queries[n] for n in names if n in queries}


def rules(c: Component) -> list[Rule]:
    spec: DbPoolSpec = c.spec  # type: ignore[assignment]
    top = max_connections(spec)
    who = f"Connection pool {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}"
    waiting = "pending" if c.has_metric("pending") else None
    queries = diagnostics(c)
    out = saturated(
        c, EXHAUSTED, used="in_use", capacity=top, waiting=waiting, size=top,
        queries=_pick(queries, "in_use", "idle", "pending", "timeouts", "acquire_time"),
        condition=f"all {_sizes(spec)} checked out" + (" and at least one caller waiting" if waiting else ""),
        description=(f"{who} has had all {{{{ $value }}}} connections checked out"
                     + (" with callers waiting" if waiting else "") + f" for {{for}}; requests wait up to "
                     f"{spec.timeout} for a connection, then fail."),
    ) + rate_above(
        c, ACQUIRE_TIMEOUTS, signal="timeouts", threshold=spec.timeout_rate_max, window=FIVE_MIN,
        queries=_pick(queries, "timeouts", "in_use", "idle", "pending", "acquire_time"),
        condition=(f"more than {num(spec.timeout_rate_max)} checkouts/s" if spec.timeout_rate_max
                   else "any checkout") + f" timing out after {spec.timeout} (5m rate)",
        description=(f"{who}: {{{{ $value | humanize }}}} checkouts/s time out after {spec.timeout} (threshold "
                     f"{number(spec.timeout_rate_max)}/s) for {{for}}; those requests fail."),
    )
    if waiting:
        out += gauge_compare(
            c, PENDING_HIGH, signal="pending", op=">", threshold=spec.pending_max,
            bad=spec.pending_max + 5, good=(spec.pending_max,),
            queries=_pick(queries, "pending", "in_use", "idle", "acquire_time", "timeouts"),
            condition=f"more than {num(spec.pending_max)} callers waiting for a connection",
            description=(f"{who} has had {{{{ $value }}}} callers waiting for a connection (threshold "
                         f"{spec.pending_max}) for {{for}}: the pool is too small for the load or connections are "
                         "slow to open."),
        )
    return out


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: DbPoolSpec = c.spec  # type: ignore[assignment]
    top = max_connections(spec)
    steps = (Step("green"),) + ((Step("orange", spec.pool_size),) if spec.max_overflow else ()) + (Step("red", top),)
    detail = [
        Panel(
            title=f"{c.name}: connections in use", unit="short", min=0, soft_max=top, thresholds=steps,
            alerts=(EXHAUSTED,),
            description=(f"Connections checked out of pool {c.name} and idle in it, per instance, against its "
                         f"{_sizes(spec)} (red line"
                         + (f"; orange: pool_size {spec.pool_size}, above it the pool is in overflow" if spec.max_overflow
                            else "") + "). "
                         + built.fires(EXHAUSTED, "All checked out for {for}"
                                       + (" with callers waiting" if c.has_metric("pending") else "")
                                       + " fires {alert}.")).strip(),
            queries=(Query(agg("max", sel(c, "in_use"), ("instance",)), "in use {{instance}}"),
                     Query(agg("max", sel(c, "idle"), ("instance",)), "idle {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: checkout timeouts", unit="ops",
            thresholds=above(spec.timeout_rate_max or 0.001),  # threshold 0: red from the first timeout
            alerts=(ACQUIRE_TIMEOUTS,),
            description=(f"Checkouts from pool {c.name} that gave up after {spec.timeout}, per second, per instance; "
                         "each is a failed request. "
                         + built.fires(ACQUIRE_TIMEOUTS, (f"Above {number(spec.timeout_rate_max)}/s"
                                                          if spec.timeout_rate_max else "Any")
                                       + " for {for} fires {alert}.")).strip(),
            queries=(Query(agg("sum", rate(sel(c, "timeouts")), ("instance",)), "{{instance}}"),),
        ),
    ]
    if c.has_metric("pending"):
        detail.append(Panel(
            title=f"{c.name}: waiting callers", unit="short", min=0, thresholds=above(spec.pending_max + 1),
            alerts=(PENDING_HIGH, EXHAUSTED),
            description=(f"Threads waiting for a connection of pool {c.name}, per instance. "
                         + built.fires(PENDING_HIGH, f"More than {spec.pending_max} for {{for}} fires {{alert}}.")
                         ).strip(),
            queries=(Query(agg("max", sel(c, "pending"), ("instance",)), "{{instance}}"),),
        ))
    if c.has_metric("acquire_time") and c.has_metric("acquires"):
        detail.append(Panel(
            title=f"{c.name}: average acquire time", unit="s", min=0, alerts=(EXHAUSTED,),
            description=(f"Average time to get a connection from pool {c.name}, per instance: near zero while "
                         f"connections are idle, up to {spec.timeout} when the pool is exhausted."),
            queries=(Query(ratio(agg("sum", rate(sel(c, "acquire_time")), ("instance",)),
                                 agg("sum", rate(sel(c, "acquires")), ("instance",))), "{{instance}}"),),
        ))
    health = Panel(
        title=f"DB pool {c.name}: in use", kind="stat", unit="short", width=6, height=5, thresholds=steps,
        alerts=(EXHAUSTED,),
        description=f"Most connections of pool {c.name} checked out on any instance, of {_sizes(spec)}.",
        queries=(Query(agg("max", sel(c, "in_use")), c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="db_pools",
    title="DB pool",
    spec=DbPoolSpec,
    schema="db_pool",
    alerts=(EXHAUSTED, ACQUIRE_TIMEOUTS, PENDING_HIGH),
    rules=rules,
    panels=panels,
    concern=CONCERN,
    presence={"*": "in_use"},  # pool gauges exist once the pool starts
    # Callers wait because every connection is out: the exhaustion alert already says so.
    inhibitions=(Inhibition("DbPoolExhausted", ("DbPoolPendingHigh",), ("service", "component", "instance")),),
    default_metrics={
        "micrometer": {
            "in_use": MetricRef("hikaricp_connections_active", (), HIKARI),
            "idle": MetricRef("hikaricp_connections_idle", (), HIKARI),
            "pending": MetricRef("hikaricp_connections_pending", (), HIKARI),
            "timeouts": MetricRef("hikaricp_connections_timeout_total", (), HIKARI),
            "acquire_time": MetricRef("hikaricp_connections_acquire_seconds_sum", (), HIKARI),
            "acquires": MetricRef("hikaricp_connections_acquire_seconds_count", (), HIKARI),
        },
        "python": {
            "in_use": MetricRef("db_pool_checked_out_connections"),
            "idle": MetricRef("db_pool_checked_in_connections"),
            "pending": None,
            "timeouts": MetricRef("db_pool_checkout_timeouts_total"),
            "acquire_time": None,
            "acquires": None,
        },
    },
)
