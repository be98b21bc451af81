"""Redis (standalone, Sentinel, cluster) as seen by oliver006/redis_exporter.

Names are the exporter's (Debian bookworm ships 1.45.0): ``redis_up``,
``redis_master_link_up`` (replicas only), ``redis_sentinel_master_*`` (when the
exporter scrapes a sentinel), ``redis_cluster_*`` (cluster mode). Alerts that
make no sense for a topology are not emitted for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import Check, Component, Kind, Rule, Scenario
from obsgen.components.shapes import gauge_compare, verdict, rate_above
from obsgen.components.timeline import MIN, STEP, gauge
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef
from obsgen.promql import number

GIB = 1024 ** 3


@dataclass(frozen=True)
class RedisSpec(ComponentSpec):
    topology: str = "standalone"
    master_name: str | None = None
    sentinels: int | None = None
    quorum: int | None = None
    replicas: int = 0
    selector: Labels = field(default_factory=lambda: {"job": "redis"})
    sentinel_selector: Labels | None = None
    port: int = 6379
    sentinel_port: int = 26379
    memory_ratio_max: float = 0.9


def _sentinel_base(c: Component, spec: RedisSpec) -> Labels:
    return dict(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector,
                master_name=spec.master_name or "")


def _memory(c: Component, spec: RedisSpec) -> list[Rule]:
    used, limit = c.select("memory_used"), c.select("memory_max")
    expr = f"(\n  {used}\n/\n  {limit}\n) > {number(spec.memory_ratio_max)}\nand\n{limit} > 0"
    high = min(1.0, spec.memory_ratio_max + (1 - spec.memory_ratio_max) / 2)

    def story(used_bytes: float, limit_bytes: float, span: Duration) -> tuple:
        return (c.series("memory_used", gauge((span, used_bytes))), c.series("memory_max", gauge((span, limit_bytes))))

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        return [
            Scenario("near-limit", f"{high:.0%} of a 1 GiB maxmemory", story(high * GIB, GIB, end),
                     verdict(f, end, True), labels=c.labels("memory_used"), value=high),
            Scenario("under-limit", "80% of maxmemory", story(0.8 * spec.memory_ratio_max * GIB, GIB, end),
                     verdict(f, end, False)),
            Scenario("no-limit", "2 GiB used, no maxmemory (redis_memory_max_bytes is 0)", story(2 * GIB, 0, end),
                     verdict(f, end, False)),
        ]

    return c.alert("RedisMemoryHigh", expr=expr, for_="5m", severity="warning", scenarios=scenarios,
                   summary="Redis memory is close to maxmemory; evictions or write errors follow.",
                   description=("Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its maxmemory "
                                f"(threshold {spec.memory_ratio_max * 100:g}%) for {{for}}."))


def _failover(c: Component, spec: RedisSpec) -> list[Rule]:
    base = _sentinel_base(c, spec)
    window = Duration.parse("5m")
    expr = (f"count by (master_name) (\n  count by (master_name, master_address) (\n"
            f"    last_over_time({c.select('sentinel_status', base=base)}[{window}])\n  )\n) > 1")

    def scenarios(f: Duration) -> list[Scenario]:
        before, after = Duration.parse("6m"), Duration.parse("7m")
        old = c.series("sentinel_status", f"1+0x{before.millis // STEP.millis - 1}",
                       {"master_address": "10.0.0.1:6379", "master_status": "ok"}, base=base)
        new = c.series("sentinel_status", f"_x{before.millis // STEP.millis} 1+0x{after.millis // STEP.millis}",
                       {"master_address": "10.0.0.2:6379", "master_status": "ok"}, base=base)
        steady = c.series("sentinel_status", f"1+0x{(before + after).millis // STEP.millis}",
                          {"master_address": "10.0.0.1:6379", "master_status": "ok"}, base=base)
        times = (before - STEP, before + f + MIN, before + window + MIN)
        return [
            Scenario("promoted", "the master address changes at 6m; the alert clears 5m later", (old, new),
                     tuple(Check(t, fires) for t, fires in zip(times, (False, True, False))),
                     labels={"master_name": spec.master_name or ""}, per_instance=False),
            Scenario("stable", "the same master throughout", (steady,), tuple(Check(t, False) for t in times),
                     per_instance=False),
        ]

    return c.alert("RedisSentinelFailover", expr=expr, for_="0s", severity="warning", scenarios=scenarios,
                   summary="Sentinel promoted a new Redis master.",
                   description=(f"Sentinel failed over master {{{{ $labels.master_name }}}} within the last {window}: "
                                "clients reconnect to the new master; check why the old one failed."))


def _quorum(c: Component, spec: RedisSpec) -> list[Rule]:
    base = _sentinel_base(c, spec)
    quorum = spec.quorum or 1
    sel = c.select("sentinel_ok_sentinels", base=base)
    expr = f"max by (master_name) ({sel}) < {quorum}\nor\nabsent({sel})"

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        named = {"master_name": spec.master_name or ""}

        def ok(n: int, base_labels: Labels = base) -> tuple:
            return (c.series("sentinel_ok_sentinels", gauge((end, n)), {"master_address": "10.0.0.1:6379"},
                             base=base_labels),)

        other = dict(base, master_name=f"not-{spec.master_name}")
        return [
            Scenario("below-quorum", f"{quorum - 1} healthy sentinels, quorum {quorum}", ok(quorum - 1),
                     verdict(f, end, True), labels=named, value=quorum - 1, per_instance=False),
            Scenario("at-quorum", f"{quorum} healthy sentinels, quorum {quorum}", ok(quorum),
                     verdict(f, end, False), per_instance=False),
            Scenario("unreported", "no sentinel reports this master (only another one)", ok(quorum + 1, other),
                     verdict(f, end, True), labels={k: v for k, v in base.items()}, value=1, per_instance=False),
        ]

    return c.alert("RedisSentinelQuorumAtRisk", expr=expr, for_="5m", severity="warning", scenarios=scenarios,
                   summary="Fewer healthy sentinels than the quorum: automatic failover is impossible.",
                   description=(f"Master {spec.master_name}: {{{{ $value }}}} healthy sentinel(s), below the quorum "
                                f"of {quorum} (of {spec.sentinels}) for {{for}}, or no sentinel reports the master "
                                "at all (then the value is 1, from absent()): a master failure would not be "
                                "failed over."))


def _no_replica(c: Component, spec: RedisSpec) -> list[Rule]:
    if spec.topology == "sentinel":
        base = _sentinel_base(c, spec)
        sel, by, fired = c.select("sentinel_ok_replicas", base=base), "master_name", {"master_name": spec.master_name}
        signal, extra = "sentinel_ok_replicas", {"master_address": "10.0.0.1:6379"}
    else:
        base = dict(spec.selector)
        sel, by, fired = c.select("connected_replicas"), ", ".join(sorted(spec.selector)), dict(spec.selector)
        signal, extra = "connected_replicas", {}
    expr = f"max by ({by}) ({sel}) < 1"

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        return [
            Scenario("none", "no healthy replica", (c.series(signal, gauge((end, 0)), extra, base=base),),
                     verdict(f, end, True), labels=fired, value=0, per_instance=False),
            Scenario("one", "one healthy replica", (c.series(signal, gauge((end, 1)), extra, base=base),),
                     verdict(f, end, False), per_instance=False),
        ]

    return c.alert("RedisNoHealthyReplica", expr=expr, for_="2m", severity="warning", scenarios=scenarios,
                   summary="Redis has no healthy replica: the data has one copy and failover has no target.",
                   description=(f"Redis {spec.name} has had {{{{ $value }}}} healthy replicas (of {spec.replicas} "
                                "configured) for {for}."))


def rules(c: Component) -> list[Rule]:
    spec: RedisSpec = c.spec  # type: ignore[assignment]
    out = gauge_compare(
        c, "RedisDown", signal="up", op="==", threshold=0, bad=0, good=(1,), for_="1m", severity="critical",
        aggregate=False, summary="A Redis server does not answer the exporter.",
        description="Redis {{ $labels.instance }} has been unreachable for {for}.",
    )
    if spec.replicas or spec.topology == "cluster":
        out += gauge_compare(
            c, "RedisReplicationBroken", signal="master_link_up", op="==", threshold=0, bad=0, good=(1,),
            for_="2m", severity="warning", aggregate=False,
            series_labels={"master_host": "10.0.0.1", "master_port": "6379"},
            summary="A Redis replica has lost its link to the master.",
            description=("Replica {{ $labels.instance }} has had no link to its master "
                         "{{ $labels.master_host }}:{{ $labels.master_port }} for {for}; it serves stale data."),
        )
    if spec.topology == "sentinel":
        out += _failover(c, spec) + _quorum(c, spec)
    if spec.replicas and spec.topology != "cluster":
        out += _no_replica(c, spec)
    out += _memory(c, spec) + rate_above(
        c, "RedisRejectedConnections", signal="rejected_connections", threshold=0, window=Duration.parse("5m"),
        for_="1m", severity="warning",
        summary="Redis is refusing client connections (maxclients reached).",
        description="Redis {{ $labels.instance }} rejected {{ $value | humanize }} connections/s for {for}.",
    )
    if spec.topology == "cluster":
        out += gauge_compare(
            c, "RedisClusterStateFail", signal="cluster_state", op="==", threshold=0, bad=0, good=(1,), for_="1m",
            severity="critical", aggregate=False, summary="The Redis cluster reports state fail.",
            description="Redis cluster node {{ $labels.instance }} has reported cluster_state:fail for {for}.",
        ) + gauge_compare(
            c, "RedisClusterSlotsFail", signal="cluster_slots_fail", op=">", threshold=0, bad=16, good=(0,),
            for_="1m", severity="critical", aggregate=False,
            summary="Redis cluster hash slots are failing; keys in them cannot be served.",
            description="Redis cluster node {{ $labels.instance }} sees {{ $value }} failed slots for {for}.",
        )
    return out


REDIS_EXPORTER = {
    "up": MetricRef("redis_up"),
    "master_link_up": MetricRef("redis_master_link_up"),
    "connected_replicas": MetricRef("redis_connected_slaves"),
    "memory_used": MetricRef("redis_memory_used_bytes"),
    "memory_max": MetricRef("redis_memory_max_bytes"),
    "rejected_connections": MetricRef("redis_rejected_connections_total"),
    "sentinel_status": MetricRef("redis_sentinel_master_status"),
    "sentinel_ok_sentinels": MetricRef("redis_sentinel_master_ok_sentinels"),
    "sentinel_ok_replicas": MetricRef("redis_sentinel_master_ok_slaves"),
    "cluster_state": MetricRef("redis_cluster_state"),
    "cluster_slots_fail": MetricRef("redis_cluster_slots_fail"),
}

KIND = Kind(key="redis", title="Redis", spec=RedisSpec, rules=rules, default_metrics={"*": REDIS_EXPORTER},
            app_metrics=False)
