"""Streaming connections (Server-Sent Events): connections against their limit, failed sends, reconnect storms.

No library instruments SSE: sse-starlette and Spring's SseEmitter export nothing,
and apps often keep their figures in a JSON document of their own
(``active_sse_connections``, ``total_sse_events_sent``). obsgen expects the app
to export them under names chosen by prometheus_client convention, which
Micrometer's naming turns out identically (``sse.connections.active`` →
``sse_connections_active``), so both profiles share them:

* ``sse_connections_active{stream}``: gauge, connections open now (per store
  too when the app labels them, for a per-store limit);
* ``sse_connections_opened_total{stream}``: counter, connections accepted
  (first connects and reconnects alike);
* ``sse_messages_sent_total{stream}``: counter, every message the server tried
  to send (heartbeats included);
* ``sse_send_failures_total{stream}``: counter, the sends among them that failed.
"""

from __future__ import annotations

import math

from obsgen.components.base import (AlertDef, Built, Component, Concern, Finding, Given, Kind, RatioSignals, Rule,
                                    Scenario)
from obsgen.components.shapes import gauge_compare, grouping, isolated, kept, ratio_of_rates, share, total_rate, verdict
from obsgen.components.timeline import MIN, RESTART, counter, gauge
from obsgen.components.viz import RATE, ComponentPanels, Panel, Query, above, jobs, num, pct, rate, sel
from obsgen.model.promql import Bin, Expr, agg, and_, binop, number, ratio
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

FIVE_MIN = Duration.parse("5m")

NEAR_LIMIT = AlertDef(
    "StreamConnectionsNearLimit", "warning", "5m",
    "Open streaming connections are close to their limit; new clients will soon be refused.",
    related=("StreamReconnectStorm", "ExecutorSaturated"))
SEND_FAILURES_HIGH = AlertDef(
    "StreamSendFailuresHigh", "warning", "5m", "Many streamed messages fail to reach their clients.",
    related=("StreamReconnectStorm", "HealthCheckFailing"))
RECONNECT_STORM = AlertDef(
    "StreamReconnectStorm", "warning", "5m",
    "Streaming clients keep reconnecting: connections drop soon after they open.",
    related=("StreamSendFailuresHigh", "StreamConnectionsNearLimit", "HealthCheckFailing"))


@record(kw_only=True)
class StreamSpec(ComponentSpec):
    """One item of a spec's ``streams:`` list (stream), as the schema defaulted it."""

    label: str
    max_connections: int | None
    limit_labels: list[str]
    connections_full_ratio: float
    heartbeat: Duration | None
    send_failure_ratio_max: float
    min_send_rate: float
    failure_window: Duration
    min_connection_lifetime: Duration
    min_open_rate: float


SEND_FAILURES = RatioSignals(part="send_failures", total="sent", rest="sent")


def check(given: Given) -> list[Finding]:
    item = given.item
    if item.get("limit_labels") and item.get("max_connections") is None:
        return [Finding(("limit_labels",), "limit_labels only matter with max_connections; set the limit or "
                        "remove them", key=True)]
    clash = sorted(set(item.get("limit_labels", [])) & {"instance", item.get("label", "stream")})
    if clash:
        return [Finding(("limit_labels",), f"`{clash[0]}` is always judged separately; list only the extra labels "
                        "the limit applies per (e.g. store_id)")]
    return []


def limit_threshold(spec: StreamSpec) -> int:
    """Connections that count as near the limit: 90% of 100 is 90."""
    return math.ceil(spec.max_connections * spec.connections_full_ratio)  # type: ignore[operator]


def _near_limit(c: Component, spec: StreamSpec) -> list[Rule]:
    if spec.max_connections is None:
        return []
    threshold = limit_threshold(spec)
    fixed = c.labels("connections")  # a limit label the selector pins keeps its value in the test series
    per = {**c.identity, **{label: fixed.get(label, "example") for label in spec.limit_labels}}
    scope = " per " + ", ".join(spec.limit_labels) if spec.limit_labels else ""
    judged = kept(c, "instance", *per)
    return gauge_compare(
        c, NEAR_LIMIT, signal="connections", op=">=", threshold=threshold,
        bad=threshold + math.ceil((spec.max_connections - threshold) * 0.75), good=(max(threshold - 1, 0),),
        by=per,
        # The ten fullest (per limit label) and where new connections come from: a reconnect wave fills up too.
        queries={"fullest": agg("topk", agg("max", c.select("connections"), judged), param=10),
                 "opens": _opens(c)},
        condition=f"at least {num(threshold)} of {num(spec.max_connections)} connections open{scope} on an instance",
        description=(f"Stream {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} holds {{{{ $value }}}} "
                     f"open connections{scope} of its limit {spec.max_connections} (threshold {threshold}) for {{for}}."),
    )


def _failures(c: Component, spec: StreamSpec) -> list[Rule]:
    return ratio_of_rates(
        c, SEND_FAILURES_HIGH, signals=SEND_FAILURES,
        record="instance_stream:send_failures", threshold=spec.send_failure_ratio_max, below=False,
        min_rate=spec.min_send_rate, window=spec.failure_window,
        queries={"failed_share": share(c, SEND_FAILURES, grouping(c), spec.failure_window),
                 "sent": total_rate(c, SEND_FAILURES, grouping(c), spec.failure_window)},
        condition=(f"more than {pct(spec.send_failure_ratio_max)} of sends fail over {spec.failure_window} while at "
                   f"least {num(spec.min_send_rate)} messages/s are sent"),
        description=(f"Stream {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of sends failed over {spec.failure_window} "
                     f"(target below {spec.send_failure_ratio_max * 100:g}%) for {{for}}."),
    )


def _opens(c: Component) -> Expr:
    """New connections per second on each instance."""
    return agg("sum", rate_over(c.select("opened"), FIVE_MIN), grouping(c))


def _storm(c: Component, spec: StreamSpec) -> list[Rule]:
    by = grouping(c)
    opens = _opens(c)
    lifetime = spec.min_connection_lifetime.total_seconds
    storm_line = binop("/", agg("sum", c.select("connections"), by), lifetime)
    expr = and_(Bin(">", opens, storm_line, multiline=True), binop(">=", opens, spec.min_open_rate))

    def story(active: float, per_second: tuple, span: Duration) -> tuple:
        return (c.series("connections", gauge((span, active))), c.series("opened", counter(*per_second)))

    def scenarios(f: Duration) -> list[Scenario]:
        return isolated(c, stories(f))  # a deployment's crowd of connections would fill a connection limit

    def stories(f: Duration) -> list[Scenario]:
        end = FIVE_MIN + f + MIN * 2
        clients = max(20.0, spec.min_open_rate * lifetime * 4)
        every = min(10.0, lifetime / 2)  # each client reconnects this often: well inside the minimum lifetime
        storm = clients / every
        crowd = max(clients * 30, spec.min_open_rate * lifetime * 60)
        steady = clients / lifetime / 2  # connections live twice the minimum
        half = end - FIVE_MIN
        few = spec.min_open_rate / 2
        return [
            Scenario("storm", f"{num(clients)} clients reconnecting every {number(every)}s", story(clients, ((end, storm),), end),
                     verdict(f, end, True), labels=dict(c.identity), value=storm),
            Scenario("deploy", f"a rolling restart: all {num(crowd)} clients reconnect once within a minute",
                     story(crowd, ((half, 0), (MIN, crowd / 60), (FIVE_MIN - MIN, 0)), end), verdict(f, end, False)),
            Scenario("restart", "long-lived connections; the process restarts and its counter resets",
                     story(clients, ((half, steady), RESTART, (end - half, steady)), end), verdict(f, end, False)),
        ] + ([Scenario("few-clients", f"2 clients reconnecting {num(few)} times a second: short-lived, but under "
                       f"{num(spec.min_open_rate)} connections/s", story(2, ((end, few),), end),
                       verdict(f, end, False))] if few else [])  # without a floor every storm counts

    return c.alert(
        RECONNECT_STORM, expr=expr, scenarios=scenarios,
        # Little's law: open connections / new connections per second = how long a connection lasts on average.
        queries={"lifetime": ratio(agg("sum", c.select("connections"), by), opens), "opens": opens},
        condition=(f"new connections/s above open connections / {number(lifetime)} s (connections last under "
                   f"{spec.min_connection_lifetime} on average) while at least {num(spec.min_open_rate)} open per "
                   "second"),
        description=(f"Stream {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} accepts "
                     f"{{{{ $value | humanize }}}} new connections/s, more than its open connections last "
                     f"(under {spec.min_connection_lifetime} on average), for {{for}}: clients drop and reconnect."),
    )


def rules(c: Component) -> list[Rule]:
    spec: StreamSpec = c.spec  # type: ignore[assignment]
    return _near_limit(c, spec) + _failures(c, spec) + _storm(c, spec)


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: StreamSpec = c.spec  # type: ignore[assignment]
    per = ("instance", *spec.limit_labels)
    limit = spec.max_connections
    steps = above(limit, limit_threshold(spec)) if limit else ()
    lifetime = spec.min_connection_lifetime.total_seconds
    failure_ratio = share(c, SEND_FAILURES, ("instance",), RATE, select=lambda s, e: sel(c, s, e))
    detail = (
        Panel(
            title=f"{c.name}: open connections", unit="short", min=0, soft_max=limit, thresholds=steps,
            alerts=(NEAR_LIMIT, RECONNECT_STORM),
            description=(f"Connections open on stream {c.name}, per {', '.join(per)}"
                         + (f", against the limit {limit} (red) and {pct(spec.connections_full_ratio)} of it "
                            "(orange)" + built.fires(NEAR_LIMIT, "; at or above it for {for} fires {alert}") + "."
                            if limit else ".")
                         + (f" Clients send nothing; the server's heartbeat every {spec.heartbeat} keeps idle "
                            "connections open." if spec.heartbeat else "")),
            queries=(Query(agg("max", sel(c, "connections"), per), "{{" + "}} {{".join(per) + "}}"),),
        ),
        Panel(
            title=f"{c.name}: send failure ratio", unit="percentunit", min=0,
            thresholds=above(spec.send_failure_ratio_max), alerts=(SEND_FAILURES_HIGH,),
            description=(f"Share of sends on stream {c.name} that failed, per instance. " + built.fires(
                SEND_FAILURES_HIGH, f"Above {pct(spec.send_failure_ratio_max)} over {spec.failure_window} for "
                                    f"{{for}}, while at least {number(spec.min_send_rate)} messages/s are sent, "
                                    "fires {alert}.")).strip(),
            queries=(Query(failure_ratio, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: messages sent and failed", unit="ops", alerts=(SEND_FAILURES_HIGH,),
            description=f"Messages the server tried to send on stream {c.name} per second, and the failed ones.",
            queries=(Query(agg("sum", rate(sel(c, "sent"))), "sent"),
                     Query(agg("sum", rate(sel(c, "send_failures"))), "failed")),
        ),
        Panel(
            title=f"{c.name}: new connections vs storm line", unit="ops", min=0, alerts=(RECONNECT_STORM,),
            description=(f"New connections per second on stream {c.name}, per instance, against open connections / "
                         f"{number(lifetime)} s (the storm line: connections lasting {spec.min_connection_lifetime} "
                         "on average). " + built.fires(RECONNECT_STORM, "Above it for {for} with at least "
                                                                        f"{number(spec.min_open_rate)} new "
                                                                        "connections/s fires {alert}.")).strip(),
            queries=(Query(agg("sum", rate(sel(c, "opened")), ("instance",)), "new {{instance}}"),
                     Query(binop("/", agg("sum", sel(c, "connections"), ("instance",)), lifetime),
                           "storm line {{instance}}")),
        ),
    )
    health = Panel(
        title=f"Stream {c.name}: open connections", kind="stat", unit="short", width=6, height=5,
        alerts=(NEAR_LIMIT, RECONNECT_STORM),
        description=f"Connections open on stream {c.name} over all instances.",
        queries=(Query(agg("sum", sel(c, "connections")), c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


KIND = Kind(
    key="streams",
    ratios=(SEND_FAILURES,),
    title="Stream",
    spec=StreamSpec,
    schema="stream",
    check=check,
    alerts=(NEAR_LIMIT, SEND_FAILURES_HIGH, RECONNECT_STORM),
    rules=rules,
    panels=panels,
    # No presence signal: `sse_connections_active` is labelled per stream (and per store with `limit_labels`), so
    # a quiet stream has no series until its first connection; watching it would warn on healthy services.
    concern=Concern("streaming", "Streaming Connections",
                    "Open SSE connections against their limit, send failures, new connections and reconnect storms."),
    default_metrics={
        profile: {
            "connections": MetricRef("sse_connections_active"),
            "opened": MetricRef("sse_connections_opened_total"),
            "sent": MetricRef("sse_messages_sent_total"),
            "send_failures": MetricRef("sse_send_failures_total"),
        } for profile in ("micrometer", "python")
    },
)
