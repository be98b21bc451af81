"""Redis (standalone, Sentinel, cluster) as seen by oliver006/redis_exporter.

Names are the exporter's (Debian bookworm ships 1.45.0): ``redis_up``,
``redis_master_link_up`` (replicas only), ``redis_sentinel_master_*`` (when the
exporter scrapes a sentinel), ``redis_cluster_*`` (cluster mode). Alerts that
make no sense for a topology are not emitted for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import (AlertDef, Built, Component, Concern, Finding, Given, Inhibition, Kind, Rule,
                                    Scenario, alert_enabled, never_fires, tuned_for)
from obsgen.components.shapes import gauge_compare, kept, rate_above, verdict
from obsgen.components.timeline import MIN, STEP, gauge
from obsgen.components.viz import ComponentPanels, Mapping, Panel, Query, above, below, jobs, pct, rate, sel
from obsgen.model.promql import Call, Expr, Paren, agg, and_, binop, or_, over_time
from obsgen.model.promql import rate as rate_over
from obsgen.model.rules import Check
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

GIB = 1024 ** 3
FIVE_MIN = Duration.parse("5m")
EXPORTER = "oliver006/redis_exporter"

DOWN = AlertDef(
    "RedisDown", "critical", "1m", "A Redis server does not answer the exporter.",
    related=("CacheL2Unavailable", "RedisSentinelFailover", "RedisReplicationBroken", "RedisNoHealthyReplica",
             "RedisClusterStateFail"))
REPLICATION_BROKEN = AlertDef(
    "RedisReplicationBroken", "warning", "2m", "A Redis replica has lost its link to the master.",
    related=("RedisNoHealthyReplica", "RedisDown", "RedisSentinelFailover"))
FAILOVER = AlertDef(
    "RedisSentinelFailover", "warning", "0s", "Sentinel promoted a new Redis master.",
    related=("RedisDown", "RedisReplicationBroken", "RedisSentinelQuorumAtRisk", "CacheL2Unavailable"))
QUORUM_AT_RISK = AlertDef(
    "RedisSentinelQuorumAtRisk", "warning", "5m",
    "Fewer healthy sentinels than the quorum: automatic failover is impossible.",
    related=("RedisSentinelFailover", "RedisDown"))
NO_HEALTHY_REPLICA = AlertDef(
    "RedisNoHealthyReplica", "warning", "2m",
    "Redis has no healthy replica: the data has one copy and failover has no target.",
    related=("RedisReplicationBroken", "RedisDown", "RedisSentinelFailover"))
MEMORY_HIGH = AlertDef(
    "RedisMemoryHigh", "warning", "5m", "Redis memory is close to maxmemory; evictions or write errors follow.",
    related=("RedisRejectedConnections", "CacheL2Unavailable"))
REJECTED_CONNECTIONS = AlertDef(
    "RedisRejectedConnections", "warning", "1m", "Redis is refusing client connections (maxclients reached).",
    related=("CacheL2Unavailable", "RedisMemoryHigh"))
CLUSTER_STATE_FAIL = AlertDef(
    "RedisClusterStateFail", "critical", "1m", "The Redis cluster reports state fail.",
    related=("RedisClusterSlotsFail", "RedisDown", "CacheL2Unavailable"))
CLUSTER_SLOTS_FAIL = AlertDef(
    "RedisClusterSlotsFail", "critical", "1m", "Redis cluster hash slots are failing; keys in them cannot be served.",
    related=("RedisClusterStateFail", "RedisDown", "CacheL2Unavailable"))


@dataclass(frozen=True, kw_only=True)
class RedisSpec(ComponentSpec):
    # redis_exporter's series name no component: a Redis is picked by its selector, the exporter's names are fixed
    label: str = "name"
    metrics: dict[str, MetricRef] = field(default_factory=dict)
    topology: str
    master_name: str | None
    sentinels: int | None
    quorum: int | None
    replicas: int
    selector: Labels
    sentinel_selector: Labels | None
    port: int
    sentinel_port: int
    memory_ratio_max: float


SENTINEL_ONLY = ("master_name", "sentinels", "quorum", "sentinel_selector", "sentinel_port")


# RedisSentinelFailover is true while the sentinels' reports within its 5m window name two master addresses: about
# 5m after a failover, minus a scrape interval. A `for` near that fires for moments at most, 5m or more never.
FAILOVER_FOR_MAX = Duration.parse("3m")


def check(given: Given) -> list[Finding]:
    """Sentinel needs its master name, sentinels, quorum and a replica; other topologies must not carry them."""
    r = given.item
    out = []
    for j, other in enumerate(given.spec.get("redis", [])):
        if other is r:
            break
        mine, theirs = set(r["selector"].items()), set((other.get("selector") or {}).items())
        if mine <= theirs or theirs <= mine:  # one matches every series the other does
            def shown(labels: set) -> str:
                return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels)) + "}"

            out.append(Finding(("selector",), (
                f"selector {shown(mine)} picks the servers of redis[{j}] (selector {shown(theirs)}) too, so each "
                "alert of one would also fire for the other's servers; give each Redis a selector with a label "
                "that tells the deployments apart")))
    if r["memory_ratio_max"] == 0 and alert_enabled(given, "RedisMemoryHigh"):
        out.append(Finding(("memory_ratio_max",), (
            "`memory_ratio_max` is 0: RedisMemoryHigh would fire on every Redis with a maxmemory, since Redis "
            "always uses some memory; use the share of maxmemory that means trouble (default 0.9), or disable "
            "the alert (`alerts: {RedisMemoryHigh: {enabled: false}}`)")))
    if r["topology"] != "sentinel":
        return out + [Finding((key,), f"`{key}` only applies to topology: sentinel, not {r['topology']}; remove it",
                              key=True) for key in SENTINEL_ONLY if key in given.written]
    needs = {"master_name": "the name Sentinel monitors the master by", "sentinels": "how many sentinels watch it",
             "quorum": "the quorum configured for the master"}
    out += [Finding((), f"missing `{key}` ({what}), which a sentinel topology needs") for key, what in needs.items()
            if key not in r]
    if "quorum" in r and "sentinels" in r and r["quorum"] > r["sentinels"]:
        out.append(Finding(("quorum",), f"expected a quorum of at most the number of sentinels ({r['sentinels']}), "
                                        f"found {r['quorum']}: failover could never be agreed"))
    if r["replicas"] == 0:
        out += never_fires(given, ("replicas",) if "replicas" in given.written else (), "RedisSentinelFailover",
                           "a sentinel topology with `replicas: 0` (the default) has no replica to promote",
                           fix="set `replicas` to the number of replicas Sentinel can promote")
    failover_for = tuned_for(given, "RedisSentinelFailover", "0s")
    if failover_for > FAILOVER_FOR_MAX and alert_enabled(given, "RedisSentinelFailover"):
        out.append(Finding(("alerts", "RedisSentinelFailover", "for"), (
            f"expected a `for` of at most {FAILOVER_FOR_MAX}, found {failover_for}: RedisSentinelFailover is true "
            "only while the sentinels' reports of the last 5m name two master addresses, about 5m after a "
            "failover; a `for` near that fires for moments at most, and 5m or more never")))
    return out


def _sentinel_base(c: Component, spec: RedisSpec) -> Labels:
    return dict(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector,
                master_name=spec.master_name or "")


def _memory(c: Component, spec: RedisSpec) -> list[Rule]:
    used, limit = c.select("memory_used"), c.select("memory_max")
    expr = and_(binop(">", Paren(binop("/", used, limit, multiline=True)), spec.memory_ratio_max),
                binop(">", limit, 0))
    # Used memory can pass maxmemory (noeviction, replication buffers): a threshold of 1 still fires.
    high = spec.memory_ratio_max + (1 - spec.memory_ratio_max) / 2 if 1 - spec.memory_ratio_max > 1e-6 else 1.05

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

    return c.alert(MEMORY_HIGH, expr=expr, scenarios=scenarios,
                   queries={"ratio": binop("/", used, binop(">", limit, 0))},
                   condition=f"used memory above {pct(spec.memory_ratio_max)} of maxmemory (only when maxmemory is set)",
                   description=("Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its maxmemory "
                                f"(threshold {spec.memory_ratio_max * 100:g}%) for {{for}}."))


def _failover(c: Component, spec: RedisSpec) -> list[Rule]:
    base = _sentinel_base(c, spec)
    window = Duration.parse("5m")
    status = c.select("sentinel_status", base=base)
    addresses = agg("count", over_time("last", status, window), kept(c, "master_name", "master_address"),
                    multiline=True)
    expr = binop(">", agg("count", addresses, kept(c, "master_name"), multiline=True), 1)

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

    return c.alert(FAILOVER, expr=expr, scenarios=scenarios,
                   queries={"addresses": agg("max", over_time("last", status, window), ("master_address",))},
                   condition="sentinels reported more than one master address within the last 5m",
                   description=(f"Sentinel failed over master {{{{ $labels.master_name }}}} within the last {window}: "
                                "clients reconnect to the new master; check why the old one failed."))


def _quorum(c: Component, spec: RedisSpec) -> list[Rule]:
    base = _sentinel_base(c, spec)
    quorum = spec.quorum or 1
    sel = c.select("sentinel_ok_sentinels", base=base)
    cluster = c.service.cluster_label
    missing: Expr
    if cluster:  # absent() would look at the whole fleet: per cluster, sentinels that report other masters only
        others = c.select("sentinel_ok_sentinels", base={k: v for k, v in base.items() if k != "master_name"})
        missing = Paren(binop("unless", agg("group", others, kept(c)), agg("group", sel, kept(c))))
    else:
        missing = Call("absent", (sel,))
    expr = or_(binop("<", agg("max", sel, kept(c, "master_name")), quorum), missing)

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
                     verdict(f, end, True), labels={} if cluster else dict(base), value=1, per_instance=False),
        ]

    return c.alert(QUORUM_AT_RISK, expr=expr, scenarios=scenarios,
                   queries={"ok_sentinels": agg("max", sel, ("master_name", "master_address"))},
                   condition=f"fewer than {spec.quorum or 1} of {spec.sentinels} sentinels see the master, or none reports it",
                   description=(f"Master {spec.master_name}: {{{{ $value }}}} healthy sentinel(s), below the quorum "
                                f"of {quorum} (of {spec.sentinels}) for {{for}}, or no sentinel reports the master "
                                "at all (then the value is 1, from absent()): a master failure would not be "
                                "failed over."))


def _no_replica(c: Component, spec: RedisSpec) -> list[Rule]:
    if spec.topology == "sentinel":
        base = _sentinel_base(c, spec)
        sel, by, fired = c.select("sentinel_ok_replicas", base=base), ["master_name"], {"master_name": spec.master_name}
        signal, extra = "sentinel_ok_replicas", {"master_address": "10.0.0.1:6379"}
    else:
        base = dict(spec.selector)
        sel, by, fired = c.select("connected_replicas"), sorted(spec.selector), dict(spec.selector)
        signal, extra = "connected_replicas", {}
    expr = binop("<", agg("max", sel, kept(c, *by)), 1)

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        return [
            Scenario("none", "no healthy replica", (c.series(signal, gauge((end, 0)), extra, base=base),),
                     verdict(f, end, True), labels=fired, value=0, per_instance=False),
            Scenario("one", "one healthy replica", (c.series(signal, gauge((end, 1)), extra, base=base),),
                     verdict(f, end, False), per_instance=False),
        ]

    return c.alert(NO_HEALTHY_REPLICA, expr=expr, scenarios=scenarios,
                   queries={"replicas": agg("max", sel, kept(c, *by))},
                   condition=f"no healthy replica (of {spec.replicas} configured)",
                   description=(f"Redis {spec.name} has had {{{{ $value }}}} healthy replicas (of {spec.replicas} "
                                "configured) for {for}."))


def rules(c: Component) -> list[Rule]:
    spec: RedisSpec = c.spec  # type: ignore[assignment]
    out = gauge_compare(
        c, DOWN, signal="up", op="==", threshold=0, bad=0, good=(1,), aggregate=False,
        queries={"up": c.select("up")},
        condition="the exporter cannot reach the Redis server (redis_up is 0)",
        description="Redis {{ $labels.instance }} has been unreachable for {for}.",
    )
    if spec.replicas or spec.topology == "cluster":
        out += gauge_compare(
            c, REPLICATION_BROKEN, signal="master_link_up", op="==", threshold=0, bad=0, good=(1,), aggregate=False,
            series_labels={"master_host": "10.0.0.1", "master_port": "6379"},
            queries={"links": c.select("master_link_up")},
            condition="a replica reports no link to its master (redis_master_link_up is 0)",
            description=("Replica {{ $labels.instance }} has had no link to its master "
                         "{{ $labels.master_host }}:{{ $labels.master_port }} for {for}; it serves stale data."),
        )
    if spec.topology == "sentinel":
        out += _failover(c, spec) + _quorum(c, spec)
    if spec.replicas and spec.topology != "cluster":
        out += _no_replica(c, spec)
    out += _memory(c, spec) + rate_above(
        c, REJECTED_CONNECTIONS, signal="rejected_connections", threshold=0, window=FIVE_MIN,
        queries={"rejected": rate_over(c.select("rejected_connections"), FIVE_MIN)},
        condition="any connection rejected in the last 5m (maxclients reached)",
        description="Redis {{ $labels.instance }} rejected {{ $value | humanize }} connections/s for {for}.",
    )
    if spec.topology == "cluster":
        out += gauge_compare(
            c, CLUSTER_STATE_FAIL, signal="cluster_state", op="==", threshold=0, bad=0, good=(1,), aggregate=False,
            queries={"state": c.select("cluster_state")},
            condition="a node reports cluster_state:fail",
            description="Redis cluster node {{ $labels.instance }} has reported cluster_state:fail for {for}.",
        ) + gauge_compare(
            c, CLUSTER_SLOTS_FAIL, signal="cluster_slots_fail", op=">", threshold=0, bad=16, good=(0,),
            aggregate=False, queries={"slots": c.select("cluster_slots_fail")},
            condition="a node sees at least one hash slot in fail state",
            description="Redis cluster node {{ $labels.instance }} sees {{ $value }} failed slots for {for}.",
        )
    return out



UP_DOWN = (Mapping(0, "down", "red"), Mapping(1, "up", "green"))


def panels(c: Component, built: Built) -> ComponentPanels:
    spec = c.spec
    sentinel = spec.topology == "sentinel"
    sentinel_base = {**(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector),
                     "master_name": spec.master_name or ""}
    expected = 1 + spec.replicas
    info = lambda role: agg("max", sel(c, "instance_info", {"role": role},  # noqa: E731
                                       regex={"redis_mode": "standalone|cluster"}), ("instance",))
    role = or_(Paren(binop("+", binop("*", info("master"), 0), 1)), Paren(binop("*", info("slave"), 0)))
    sentinels = sel(c, "instance_info", {"redis_mode": "sentinel"})

    def servers(q: Expr) -> Expr:
        """redis_exporter reports `redis_up` and clients for sentinels too: server panels leave them out."""
        return binop("unless", q, sentinels, on=("instance",)) if sentinel else q
    detail: list[Panel] = [
        Panel(
            title=f"{c.name}: up", kind="state-timeline", unit="none", mappings=UP_DOWN, alerts=(DOWN,),
            description=(f"Whether the exporter reaches each Redis server of {c.name}"
                         + built.fires(DOWN, "; down for {for} fires {alert}") + "."),
            queries=(Query(servers(sel(c, "up")), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: role", kind="state-timeline", unit="none",
            mappings=(Mapping(0, "replica", "purple"), Mapping(1, "master", "blue")),
            alerts=(FAILOVER,) if sentinel else (REPLICATION_BROKEN,),
            description=f"Role of each Redis server of {c.name} over time (redis_instance_info): a change of "
                        "colour is a promotion or demotion.",
            queries=(Query(role, "{{instance}}"),),
        ),
    ]
    if sentinel:
        detail += [
            Panel(
                title=f"{c.name}: master address (sentinel view)", kind="state-timeline", unit="none",
                mappings=(Mapping(1, "master", "blue"),), alerts=(FAILOVER,),
                description=(f"The address the sentinels report as master {spec.master_name} over time; a new row "
                             "appearing is a failover" + built.fires(FAILOVER, " ({alert} fires for 5m after it)")
                             + "."),
                queries=(Query(agg("max", sel(c, "sentinel_status", base=sentinel_base), ("master_address",)),
                               "{{master_address}}"),),
            ),
            Panel(
                title=f"{c.name}: healthy sentinels vs quorum", unit="short", min=0,
                soft_max=spec.sentinels, thresholds=below(spec.quorum or 1), alerts=(QUORUM_AT_RISK,),
                description=(f"Sentinels that agree master {spec.master_name} is reachable, against the quorum "
                             f"{spec.quorum or 1} of {spec.sentinels} (red below it: no automatic failover). "
                             + built.fires(QUORUM_AT_RISK, "Below quorum (or no report) for {for} fires {alert}.")
                             ).strip(),
                queries=(Query(agg("max", sel(c, "sentinel_ok_sentinels", base=sentinel_base), ("master_name",)),
                               "healthy sentinels"),),
            ),
        ]
    if spec.replicas or spec.topology == "cluster":
        detail.append(Panel(
            title=f"{c.name}: replication link", kind="state-timeline", unit="none", mappings=UP_DOWN,
            alerts=(REPLICATION_BROKEN,),
            description=(f"Link of each replica of {c.name} to its master"
                         + built.fires(REPLICATION_BROKEN, "; down for {for} fires {alert}") + "."),
            queries=(Query(sel(c, "master_link_up"), "{{instance}} → {{master_host}}:{{master_port}}"),),
        ))
    if spec.replicas and spec.topology != "cluster":
        replicas = (agg("max", sel(c, "sentinel_ok_replicas", base=sentinel_base), ("master_name",)) if sentinel
                    else agg("max", sel(c, "connected_replicas")))
        detail.append(Panel(
            title=f"{c.name}: healthy replicas", unit="short", min=0, soft_max=spec.replicas, thresholds=below(1),
            alerts=(NO_HEALTHY_REPLICA,),
            description=(f"Healthy replicas of {c.name} ({spec.replicas} configured)"
                         + built.fires(NO_HEALTHY_REPLICA, "; none for {for} fires {alert}") + "."),
            queries=(Query(replicas, "healthy replicas"),),
        ))
    used, limit = sel(c, "memory_used"), sel(c, "memory_max")
    detail += [
        Panel(
            title=f"{c.name}: memory vs maxmemory", unit="percentunit", min=0, soft_max=1,
            thresholds=above(spec.memory_ratio_max), alerts=(MEMORY_HIGH,),
            description=(f"Used memory of each Redis server of {c.name} as a share of its maxmemory (servers without "
                         "maxmemory are not shown). " + built.fires(
                             MEMORY_HIGH, f"Above {pct(spec.memory_ratio_max)} for {{for}} fires {{alert}}.")).strip(),
            queries=(Query(binop("/", used, Paren(binop(">", limit, 0)), multiline=True), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: memory used", unit="bytes", min=0, alerts=(MEMORY_HIGH,),
            description=f"Used memory and maxmemory (when set) of each Redis server of {c.name}, in bytes.",
            queries=(Query(used, "used {{instance}}"), Query(binop(">", limit, 0), "maxmemory {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: clients", unit="short", min=0, alerts=(REJECTED_CONNECTIONS,),
            description=f"Connected and blocked clients of each Redis server of {c.name}.",
            queries=(Query(servers(sel(c, "connected_clients")), "connected {{instance}}"),
                     Query(sel(c, "blocked_clients"), "blocked {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: rejected connections", unit="ops", alerts=(REJECTED_CONNECTIONS,),
            description=(f"Connections refused per second (maxclients reached) by each Redis server of {c.name}"
                         + built.fires(REJECTED_CONNECTIONS, "; any for {for} fires {alert}") + "."),
            queries=(Query(rate(sel(c, "rejected_connections")), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: evicted keys", unit="ops", alerts=(MEMORY_HIGH,),
            description=f"Keys evicted per second by each Redis server of {c.name} to stay under maxmemory.",
            queries=(Query(rate(sel(c, "evicted_keys")), "{{instance}}"),),
        ),
    ]
    if spec.topology == "cluster":
        detail += [
            Panel(
                title=f"{c.name}: cluster state", kind="state-timeline", unit="none",
                mappings=(Mapping(0, "fail", "red"), Mapping(1, "ok", "green")), alerts=(CLUSTER_STATE_FAIL,),
                description=(f"cluster_state as each node of {c.name} reports it"
                             + built.fires(CLUSTER_STATE_FAIL, "; fail for {for} fires {alert}") + "."),
                queries=(Query(sel(c, "cluster_state"), "{{instance}}"),),
            ),
            Panel(
                title=f"{c.name}: failed slots", unit="short", min=0, thresholds=above(1),
                alerts=(CLUSTER_SLOTS_FAIL,),
                description=(f"Hash slots in fail state as each node of {c.name} sees them"
                             + built.fires(CLUSTER_SLOTS_FAIL, "; any for {for} fires {alert}") + "."),
                queries=(Query(sel(c, "cluster_slots_fail"), "{{instance}}"),),
            ),
        ]
    up_steps = below(expected if spec.topology != "cluster" else 1)
    health_queries = [Query(agg("sum", servers(sel(c, "up"))), "servers up", thresholds=up_steps)]
    if sentinel:
        health_queries.append(Query(agg("max", sel(c, "sentinel_ok_sentinels", base=sentinel_base)),
                                    "healthy sentinels", thresholds=below(spec.quorum or 1)))
    health = Panel(
        title=f"Redis {c.name}", kind="stat", unit="short", width=6, height=5, thresholds=up_steps,
        alerts=(DOWN,) + ((QUORUM_AT_RISK,) if sentinel else ()),
        description=(f"Redis servers of {c.name} that answer the exporter"
                     + (f" (expected {expected})" if spec.topology != "cluster" else "")
                     + (f", and healthy sentinels against the quorum {spec.quorum or 1}" if sentinel else "") + "."),
        queries=tuple(health_queries),
    )
    return ComponentPanels(health, tuple(detail), jobs(spec.selector, spec.sentinel_selector))


REDIS_EXPORTER = {
    "up": MetricRef("redis_up", (), EXPORTER),
    "instance_info": MetricRef("redis_instance_info", (), EXPORTER),
    "connected_clients": MetricRef("redis_connected_clients", (), EXPORTER),
    "blocked_clients": MetricRef("redis_blocked_clients", (), EXPORTER),
    "evicted_keys": MetricRef("redis_evicted_keys_total", (), EXPORTER),
    "master_link_up": MetricRef("redis_master_link_up", (), EXPORTER),
    "connected_replicas": MetricRef("redis_connected_slaves", (), EXPORTER),
    "memory_used": MetricRef("redis_memory_used_bytes", (), EXPORTER),
    "memory_max": MetricRef("redis_memory_max_bytes", (), EXPORTER),
    "rejected_connections": MetricRef("redis_rejected_connections_total", (), EXPORTER),
    "sentinel_status": MetricRef("redis_sentinel_master_status", (), EXPORTER),
    "sentinel_ok_sentinels": MetricRef("redis_sentinel_master_ok_sentinels", (), EXPORTER),
    "sentinel_ok_replicas": MetricRef("redis_sentinel_master_ok_slaves", (), EXPORTER),
    "cluster_state": MetricRef("redis_cluster_state", (), EXPORTER),
    "cluster_slots_fail": MetricRef("redis_cluster_slots_fail", (), EXPORTER),
}

KIND = Kind(
    key="redis",
    title="Redis",
    schema="redis",
    check=check,
    spec=RedisSpec,
    alerts=(DOWN, REPLICATION_BROKEN, FAILOVER, QUORUM_AT_RISK, NO_HEALTHY_REPLICA, MEMORY_HIGH, REJECTED_CONNECTIONS,
            CLUSTER_STATE_FAIL, CLUSTER_SLOTS_FAIL),
    rules=rules,
    panels=panels,
    concern=Concern("redis-operations", "Redis Operations",
                    "Redis availability, roles and failovers, replication, sentinel quorum, memory, clients and "
                    "evictions."),
    default_metrics={"*": REDIS_EXPORTER},
    app_metrics=False,
    # A server that is down also breaks its replicas' links: the link alerts add nothing.
    inhibitions=(Inhibition("RedisDown", ("RedisReplicationBroken", "RedisNoHealthyReplica")),),
)
