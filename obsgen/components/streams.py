"""Streaming connections (Server-Sent Events): connections against their limit, failed sends, reconnect storms.

No library instruments SSE: sse-starlette and Spring's SseEmitter export nothing,
and Table Order (seed 004) keeps its figures in a JSON ``/metrics`` document
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
from dataclasses import dataclass, field

from obsgen.components.base import Component, Concern, Finding, Given, Kind, RatioSignals, Rule, Scenario
from obsgen.components.shapes import by_clause, gauge_compare, isolated, ratio_of_rates, verdict
from obsgen.components.timeline import MIN, RESTART, counter, gauge
from obsgen.components.viz import ComponentPanels, Panel, Query, above, jobs, num, pct, rate, sel
from obsgen.model.types import ComponentSpec, Duration, MetricRef
from obsgen.promql import number

FIVE_MIN = Duration.parse("5m")


@dataclass(frozen=True)
class StreamSpec(ComponentSpec):
    label: str = "stream"
    max_connections: int | None = None
    limit_labels: list[str] = field(default_factory=list)
    connections_full_ratio: float = 0.9
    heartbeat: Duration | None = None
    send_failure_ratio_max: float = 0.001
    min_send_rate: float = 2.0
    failure_window: Duration = Duration.parse("15m")
    min_connection_lifetime: Duration = Duration.parse("1m")
    min_open_rate: float = 0.2


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
    return gauge_compare(
        c, "StreamConnectionsNearLimit", signal="connections", op=">=", threshold=threshold,
        bad=threshold + math.ceil((spec.max_connections - threshold) * 0.75), good=(max(threshold - 1, 0),),
        by=per, for_="5m", severity="warning",
        summary="Open streaming connections are close to their limit; new clients will soon be refused.",
        condition=f"at least {num(threshold)} of {num(spec.max_connections)} connections open{scope} on an instance",
        description=(f"Stream {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} holds {{{{ $value }}}} "
                     f"open connections{scope} of its limit {spec.max_connections} (threshold {threshold}) for {{for}}."),
    )


def _failures(c: Component, spec: StreamSpec) -> list[Rule]:
    return ratio_of_rates(
        c, "StreamSendFailuresHigh", signals=SEND_FAILURES,
        record="instance_stream:send_failures", threshold=spec.send_failure_ratio_max, below=False,
        min_rate=spec.min_send_rate, window=spec.failure_window, for_="5m", severity="warning",
        summary="Many streamed messages fail to reach their clients.",
        condition=(f"more than {pct(spec.send_failure_ratio_max)} of sends fail over {spec.failure_window} while at "
                   f"least {num(spec.min_send_rate)} messages/s are sent"),
        description=(f"Stream {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}}: "
                     f"{{{{ $value | humanizePercentage }}}} of sends failed over {spec.failure_window} "
                     f"(target below {spec.send_failure_ratio_max * 100:g}%) for {{for}}."),
    )


def _storm(c: Component, spec: StreamSpec) -> list[Rule]:
    by = by_clause(c)
    opens = f"sum {by} (rate({c.select('opened')}[{FIVE_MIN}]))"
    lifetime = spec.min_connection_lifetime.total_seconds
    expr = (f"{opens}\n>\nsum {by} ({c.select('connections')}) / {number(lifetime)}\n"
            f"and\n{opens} >= {number(spec.min_open_rate)}")

    def story(active: float, per_second: tuple, span: Duration) -> tuple:
        return (c.series("connections", gauge((span, active))), c.series("opened", counter(*per_second)))

    def scenarios(f: Duration) -> list[Scenario]:
        return isolated(c, stories(f))  # a deployment's crowd of connections would fill a connection limit

    def stories(f: Duration) -> list[Scenario]:
        end = FIVE_MIN + f + MIN * 2
        clients = max(20.0, spec.min_open_rate * lifetime * 4)
        storm = clients / 10  # every client reconnects every 10 s
        crowd = max(clients * 30, spec.min_open_rate * lifetime * 60)
        steady = clients / lifetime / 2  # connections live twice the minimum
        half = end - FIVE_MIN
        few = spec.min_open_rate / 2
        return [
            Scenario("storm", f"{num(clients)} clients reconnecting every 10s", story(clients, ((end, storm),), end),
                     verdict(f, end, True), labels=dict(c.identity), value=storm),
            Scenario("deploy", f"a rolling restart: all {num(crowd)} clients reconnect once within a minute",
                     story(crowd, ((half, 0), (MIN, crowd / 60), (FIVE_MIN - MIN, 0)), end), verdict(f, end, False)),
            Scenario("restart", "long-lived connections; the process restarts and its counter resets",
                     story(clients, ((half, steady), RESTART, (end - half, steady)), end), verdict(f, end, False)),
        ] + ([Scenario("few-clients", f"2 clients reconnecting {num(few)} times a second: short-lived, but under "
                       f"{num(spec.min_open_rate)} connections/s", story(2, ((end, few),), end),
                       verdict(f, end, False))] if few else [])  # without a floor every storm counts

    return c.alert(
        "StreamReconnectStorm", expr=expr, for_="5m", severity="warning", scenarios=scenarios,
        summary="Streaming clients keep reconnecting: connections drop soon after they open.",
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


def panels(c: Component) -> ComponentPanels:
    spec: StreamSpec = c.spec  # type: ignore[assignment]
    per = ", ".join(["instance", *spec.limit_labels])
    limit = spec.max_connections
    steps = above(limit, limit_threshold(spec)) if limit else ()
    lifetime = number(spec.min_connection_lifetime.total_seconds)
    failure_ratio = (f"sum by (instance) ({rate(sel(c, 'send_failures'))})\n/\n"
                     f"sum by (instance) ({rate(sel(c, 'sent'))})")
    detail = (
        Panel(
            title=f"{c.name}: open connections", unit="short", min=0, soft_max=limit, thresholds=steps,
            runbooks=("StreamConnectionsNearLimit", "StreamReconnectStorm"),
            description=(f"Connections open on stream {c.name}, per {per}"
                         + (f", against the limit {limit} (red) and {pct(spec.connections_full_ratio)} of it "
                            f"(orange); at or above it for 5m fires StreamConnectionsNearLimit." if limit else ".")
                         + (f" Clients send nothing; the server's heartbeat every {spec.heartbeat} keeps idle "
                            "connections open." if spec.heartbeat else "")),
            queries=(Query(f"max by ({per}) ({sel(c, 'connections')})", "{{" + "}} {{".join(per.split(", ")) + "}}"),),
        ),
        Panel(
            title=f"{c.name}: send failure ratio", unit="percentunit", min=0,
            thresholds=above(spec.send_failure_ratio_max), runbooks=("StreamSendFailuresHigh",),
            description=(f"Share of sends on stream {c.name} that failed, per instance. Above "
                         f"{pct(spec.send_failure_ratio_max)} over {spec.failure_window} for 5m, while at least "
                         f"{number(spec.min_send_rate)} messages/s are sent, fires StreamSendFailuresHigh."),
            queries=(Query(failure_ratio, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: messages sent and failed", unit="ops", runbooks=("StreamSendFailuresHigh",),
            description=f"Messages the server tried to send on stream {c.name} per second, and the failed ones.",
            queries=(Query(f"sum ({rate(sel(c, 'sent'))})", "sent"),
                     Query(f"sum ({rate(sel(c, 'send_failures'))})", "failed")),
        ),
        Panel(
            title=f"{c.name}: new connections vs storm line", unit="ops", min=0, runbooks=("StreamReconnectStorm",),
            description=(f"New connections per second on stream {c.name}, per instance, against open connections / "
                         f"{lifetime} s (the storm line: connections lasting {spec.min_connection_lifetime} on "
                         f"average). Above it for 5m with at least {number(spec.min_open_rate)} new connections/s "
                         "fires StreamReconnectStorm."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'opened'))})", "new {{instance}}"),
                     Query(f"sum by (instance) ({sel(c, 'connections')}) / {lifetime}", "storm line {{instance}}")),
        ),
    )
    health = Panel(
        title=f"Stream {c.name}: open connections", kind="stat", unit="short", width=6, height=5,
        runbooks=("StreamConnectionsNearLimit", "StreamReconnectStorm"),
        description=f"Connections open on stream {c.name} over all instances.",
        queries=(Query(f"sum ({sel(c, 'connections')})", c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


KIND = Kind(
    key="streams",
    ratios=(SEND_FAILURES,),
    title="Stream",
    spec=StreamSpec,
    schema="stream",
    check=check,
    rules=rules,
    panels=panels,
    concern=Concern("streaming", "Streaming Connections",
                    "Open SSE connections against their limit, send failures, new connections and reconnect storms."),
    related={
        "StreamConnectionsNearLimit": ("StreamReconnectStorm", "ExecutorSaturated"),
        "StreamSendFailuresHigh": ("StreamReconnectStorm", "HealthCheckFailing"),
        "StreamReconnectStorm": ("StreamSendFailuresHigh", "StreamConnectionsNearLimit", "HealthCheckFailing"),
    },
    default_metrics={
        profile: {
            "connections": MetricRef("sse_connections_active"),
            "opened": MetricRef("sse_connections_opened_total"),
            "sent": MetricRef("sse_messages_sent_total"),
            "send_failures": MetricRef("sse_send_failures_total"),
        } for profile in ("micrometer", "python")
    },
)
