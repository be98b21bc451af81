"""Redis (standalone, Sentinel, cluster) as seen by oliver006/redis_exporter.

Names are the exporter's (Debian bookworm ships 1.45.0): ``redis_up``,
``redis_instance_info{role, redis_mode}``, ``redis_master_link_up`` (replicas
only), ``redis_sentinel_master_*`` (when the exporter scrapes a sentinel),
``redis_cluster_*`` (cluster mode), and Prometheus' own ``up`` of each exporter
scrape. Alerts that make no sense for a topology are not emitted for it.

Roles come from the servers themselves: ``redis_instance_info`` carries ``role``
(``master``, ``slave``; empty on a sentinel) and ``redis_mode`` (``sentinel`` on
a sentinel), and rules match on nothing else of it (its other labels vary with
the exporter's version). A server the exporter cannot reach has no
``redis_instance_info`` at all, so "the master is gone" is read as "no server of
the deployment answers as master": true while the master is down, false again as
soon as Sentinel promoted a replica. Sentinels scraped under the same selector
are told apart by having answered as sentinels within the last day.
"""

from __future__ import annotations

from dataclasses import field

from obsgen.components.base import (AlertDef, Built, Component, Concern, Finding, Given, Inhibition, Kind, Rule,
                                    Scenario, Series, alert_enabled, never_fires, tuned_for)
from obsgen.components.shapes import gauge_compare, kept, rate_above, verdict
from obsgen.components.timeline import MIN, STEP, gauge
from obsgen.components.viz import ComponentPanels, Mapping, Panel, Query, above, below, jobs, pct, rate, sel
from obsgen.model.promql import Call, Expr, Offset, Paren, Selector, agg, and_, binop, call, or_, over_time
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.rules import Check
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

GIB = 1024 ** 3
FIVE_MIN = Duration.parse("5m")
EXPORTER = "oliver006/redis_exporter"
PROMETHEUS = "Prometheus itself (one series per exporter scrape target)"

DOWN = AlertDef(
    "RedisDown", "critical", "1m", "The Redis master is gone: no server of the deployment answers as master.",
    related=("CacheL2Unavailable", "RedisSentinelFailover", "RedisSentinelQuorumAtRisk", "RedisReplicaDown",
             "RedisReplicationBroken", "RedisNoHealthyReplica", "RedisClusterStateFail"))
REPLICA_DOWN = AlertDef(
    "RedisReplicaDown", "warning", "5m", "A Redis replica is unreachable: one copy of the data fewer, no outage.",
    related=("RedisNoHealthyReplica", "RedisReplicationBroken", "RedisSentinelFailover", "RedisDown"))
EXPORTER_DOWN = AlertDef(
    "RedisExporterDown", "warning", "5m",
    "The Redis exporter is not scraped: every Redis alert of the deployment is blind.",
    related=("RedisDown", "RedisSentinelQuorumAtRisk"))
REPLICATION_BROKEN = AlertDef(
    "RedisReplicationBroken", "warning", "2m", "A Redis replica has lost its link to the master.",
    related=("RedisNoHealthyReplica", "RedisReplicaDown", "RedisDown", "RedisSentinelFailover"))
FAILOVER = AlertDef(
    "RedisSentinelFailover", "warning", "0s", "Sentinel promoted a new Redis master.",
    related=("RedisDown", "RedisReplicaDown", "RedisReplicationBroken", "RedisSentinelQuorumAtRisk",
             "CacheL2Unavailable"))
QUORUM_AT_RISK = AlertDef(
    "RedisSentinelQuorumAtRisk", "warning", "5m",
    "Too few healthy sentinels to fail over: a master failure would not be failed over.",
    related=("RedisDown", "RedisSentinelDown", "RedisSentinelFailover", "RedisExporterDown"))
SENTINEL_DOWN = AlertDef(
    "RedisSentinelDown", "warning", "5m", "A Redis sentinel is down: failover still works, with less margin.",
    related=("RedisSentinelQuorumAtRisk", "RedisDown"))
NO_HEALTHY_REPLICA = AlertDef(
    "RedisNoHealthyReplica", "warning", "2m",
    "Redis has no healthy replica: the data has one copy and failover has no target.",
    related=("RedisReplicationBroken", "RedisReplicaDown", "RedisDown", "RedisSentinelFailover"))
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


@record(kw_only=True)
class RedisSpec(ComponentSpec):
    """One item of a spec's ``redis:`` list (redis), as the schema defaulted it."""

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
    sentinel_addresses: tuple[str, ...] | None
    memory_ratio_max: float

    @property
    def sentinel_count(self) -> int:
        """How many sentinels watch the master: ``sentinels``, else the number of ``sentinel_addresses``."""
        return self.sentinels or len(self.sentinel_addresses or ())

    @property
    def sentinels_scraped_as_servers(self) -> bool:
        """Whether the servers' selector also picks the sentinels' exporter targets (no `sentinel_selector` of
        their own): then rules and panels about servers must leave the sentinels out."""
        return self.topology == "sentinel" and self.sentinel_selector in (None, self.selector)

    @property
    def shared_sentinel_host(self) -> str | None:
        """The one host every listed sentinel runs on, if they share one: losing it loses them all at once (a
        runbook must say so), whatever the quorum."""
        hosts = {a.rsplit(":", 1)[0] for a in self.sentinel_addresses or ()}
        return hosts.pop() if len(hosts) == 1 and self.sentinel_count > 1 else None

    @property
    def failover_needs(self) -> int:
        """Healthy sentinels a failover needs: the quorum to call the master down, and a majority of all
        sentinels to authorise the failover (what ``SENTINEL ckquorum`` checks)."""
        return max(self.quorum or 1, self.sentinel_count // 2 + 1)


SENTINEL_ONLY = ("master_name", "sentinels", "quorum", "sentinel_selector", "sentinel_port", "sentinel_addresses")

# RedisSentinelFailover is true while the sentinels' reports within its 5m window name two master addresses: about
# 5m after a failover, minus a scrape interval. A `for` near that fires for moments at most, 5m or more never.
FAILOVER_WINDOW = FIVE_MIN
FAILOVER_FOR_MAX = Duration.parse("3m")
# How long a target is remembered: one that answered as a sentinel within it is a sentinel (a down target has no
# redis_instance_info), one scraped within it and gone now left service discovery.
REMEMBERED = Duration.parse("1d")
SERVER = "redis://10.0.0.1:6379"      # addresses of the test stories: the master,
REPLICA = "redis://10.0.0.2:6379"     # its replica,
SENTINEL = "redis://10.0.0.3:26379"   # and a sentinel, as multi-target exporter instance labels


# -- spec checks ---------------------------------------------------------------------------------

def check(given: Given) -> list[Finding]:
    """Sentinel needs its master name, sentinels, quorum and a replica; other topologies must not carry them."""
    r = given.item
    out = _overlapping_selectors(given) + _service_targets(given)
    if r["memory_ratio_max"] == 0 and alert_enabled(given, "RedisMemoryHigh"):
        out.append(Finding(("memory_ratio_max",), (
            "`memory_ratio_max` is 0: RedisMemoryHigh would fire on every Redis with a maxmemory, since Redis "
            "always uses some memory; use the share of maxmemory that means trouble (default 0.9), or disable "
            "the alert (`alerts: {RedisMemoryHigh: {enabled: false}}`)")))
    if r["topology"] != "sentinel":
        return out + [Finding((key,), f"`{key}` only applies to topology: sentinel, not {r['topology']}; remove it",
                              key=True) for key in SENTINEL_ONLY if key in given.written]
    needs = {"master_name": "the name Sentinel monitors the master by",
             "quorum": "the quorum configured for the master"}
    out += [Finding((), f"missing `{key}` ({what}), which a sentinel topology needs") for key, what in needs.items()
            if key not in r]
    if "sentinels" not in r and "sentinel_addresses" not in r:
        out.append(Finding((), "missing `sentinel_addresses` (every sentinel's host:port) or `sentinels` (how "
                               "many sentinels watch it), which a sentinel topology needs"))
    out += _sentinel_addresses(given)
    count = r.get("sentinels") or len(r.get("sentinel_addresses") or ())
    if "quorum" in r and count and r["quorum"] > count:
        out.append(Finding(("quorum",), f"expected a quorum of at most the number of sentinels ({count}), "
                                        f"found {r['quorum']}: failover could never be agreed"))
    if r["replicas"] == 0:
        out += never_fires(given, ("replicas",) if "replicas" in given.written else (), "RedisSentinelFailover",
                           "a sentinel topology with `replicas: 0` (the default) has no replica to promote",
                           fix="set `replicas` to the number of replicas Sentinel can promote")
    failover_for = tuned_for(given, "RedisSentinelFailover", FAILOVER.for_)
    if failover_for > FAILOVER_FOR_MAX and alert_enabled(given, "RedisSentinelFailover"):
        out.append(Finding(("alerts", "RedisSentinelFailover", "for"), (
            f"expected a `for` of at most {FAILOVER_FOR_MAX}, found {failover_for}: RedisSentinelFailover is true "
            "only while the sentinels' reports of the last 5m name two master addresses, about 5m after a "
            "failover; a `for` near that fires for moments at most, and 5m or more never")))
    return out


def _shown(labels: set) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels)) + "}"


def _overlapping_selectors(given: Given) -> list[Finding]:
    r, out = given.item, []
    for j, other in enumerate(given.spec.get("redis", [])):
        if other is r:
            break
        mine, theirs = set(r["selector"].items()), set((other.get("selector") or {}).items())
        if mine <= theirs or theirs <= mine:  # one matches every series the other does
            out.append(Finding(("selector",), (
                f"selector {_shown(mine)} picks the servers of redis[{j}] (selector {_shown(theirs)}) too, so each "
                "alert of one would also fire for the other's servers; give each Redis a selector with a label "
                "that tells the deployments apart")))
    return out


def _service_targets(given: Given) -> list[Finding]:
    """The exporter's scrape targets and the service's own must be told apart: RedisExporterDown reads `up` of
    the selector, ServiceDown and InstanceDown `up` of the service's selector; a selector that contains the other
    would make one failed scrape fire both (or the app's crash fire RedisExporterDown)."""
    service = given.spec.get("service")
    if not isinstance(service, dict) or not isinstance(service.get("name"), str):
        return []
    mine = set(given.item["selector"].items())
    theirs = set((service.get("selector") or {"job": service["name"]}).items())
    if not (mine <= theirs or theirs <= mine):
        return []
    return [Finding(("selector",), (
        f"selector {_shown(mine)} also picks the service's own scrape targets (service selector "
        f"{_shown(theirs)}): a failed scrape would fire both RedisExporterDown and the service's InstanceDown or "
        "ServiceDown; give the Redis exporter's targets a label the application's lack (their `job`)"))]


def _sentinel_addresses(given: Given) -> list[Finding]:
    """Each address a real port, and the older keys (`sentinels`, `sentinel_port`) saying the same thing."""
    r = given.item
    addresses = r.get("sentinel_addresses")
    if not addresses:
        return []
    out = []
    for i, address in enumerate(addresses):
        port = int(address.rsplit(":", 1)[1])
        if address in addresses[:i]:
            out.append(Finding(("sentinel_addresses", i), f"`{address}` is listed twice; list each sentinel once"))
        elif not 1 <= port <= 65535:
            out.append(Finding(("sentinel_addresses", i), f"port {port} of `{address}` is not a TCP port (1 to "
                                                          "65535); write the sentinel's host:port"))
        elif "sentinel_port" in given.written and port != r["sentinel_port"]:
            out.append(Finding(("sentinel_addresses", i), (
                f"port {port} of `{address}` differs from `sentinel_port: {r['sentinel_port']}`; the addresses "
                "carry each sentinel's port, so remove `sentinel_port` (or correct the address)")))
    if "sentinels" in given.written and r["sentinels"] != len(addresses):
        out.append(Finding(("sentinels",), (
            f"expected {len(addresses)} (one per entry of `sentinel_addresses`), found {r['sentinels']}; "
            "remove `sentinels` (the addresses count them) or list every sentinel")))
    return out


# -- building blocks of the rules ----------------------------------------------------------------

def _sentinel_base(spec: RedisSpec) -> Labels:
    return dict(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector,
                master_name=spec.master_name or "")


def _known_sentinels(c: Component) -> Expr:
    """Targets of the selector that answered as sentinels within :data:`REMEMBERED`."""
    return over_time("last", c.select("instance_info", {"redis_mode": "sentinel"}), REMEMBERED)


def _servers(c: Component, expr: Expr) -> Expr:
    """``expr`` over the data servers only: the sentinels left out when the servers' selector also picks them
    (a stopped sentinel's ``redis_up`` 0 must read neither as a lost master nor as a lost server)."""
    if not c.spec.sentinels_scraped_as_servers:  # type: ignore[attr-defined]
        return expr
    return binop("unless", expr, _known_sentinels(c), on=kept(c, "instance"))


def _servers_down(c: Component) -> Expr:
    """Data servers (not sentinels) the exporter reaches no more."""
    return _servers(c, binop("==", c.select("up"), 0))


def _live_master(c: Component) -> Selector:
    """The servers that answer the exporter as master (a down server has no redis_instance_info)."""
    return c.select("instance_info", {"role": "master"})


def _roles(c: Component) -> Expr:
    """Every target and the role it answers with (a sentinel: ``redis_mode`` sentinel, no role)."""
    return agg("max", c.select("instance_info"), kept(c, "instance", "role", "redis_mode"))


def _healthy_sentinels(c: Component, spec: RedisSpec) -> Expr:
    return agg("max", c.select("sentinel_ok_sentinels", base=_sentinel_base(spec)), kept(c, "master_name"))


def _sentinels_up(c: Component, spec: RedisSpec) -> Expr:
    """Whether the exporter reaches each sentinel (targets that answered as sentinels within a day)."""
    plain = dict(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector)
    known = over_time("last", c.select("instance_info", {"redis_mode": "sentinel"}, base=plain), REMEMBERED)
    return binop("and", c.select("up", base=plain), known, on=kept(c, "instance"))


# -- the promtool stories: servers, sentinels and exporter targets that die, fail over, vanish ----------

START = Duration(0)


def _held(end: Duration, *changes: tuple[Duration | None, float | None], gone: Duration | None = None) -> str:
    """A gauge from 0 to ``end`` taking each ``(time, value)`` in turn (a ``None`` time never comes; a ``None``
    value is silence). From ``gone`` on the series is silent whatever follows: its exporter scrape fails."""
    points = sorted(((t, v) for t, v in changes if t is not None and t < end and (gone is None or t < gone)),
                    key=lambda p: p[0].millis)
    if gone is not None and gone < end:
        points.append((gone, None))
    bounds = [t for t, _ in points[1:]] + [end]
    return gauge(*((stop - t, v) for (t, v), stop in zip(points, bounds) if stop > t))


def _target(c: Component, instance: str, role: str, end: Duration, *, dies: Duration | None = None,
            promoted: Duration | None = None, exporter: Duration | None = None) -> tuple[Series, ...]:
    """One exporter target for ``end``: the scrape (``up``), ``redis_up`` and ``redis_instance_info``. The
    server dies at ``dies``, answers as master from ``promoted`` on, and its scrapes fail from ``exporter`` on."""
    mode = "sentinel" if role == "sentinel" else "standalone"
    role = "" if role == "sentinel" else role

    def info(r: str, *changes: tuple[Duration | None, float | None]) -> Series:
        return c.series("instance_info", _held(end, *changes, (dies, None), gone=exporter),
                        {"instance": instance, "role": r, "redis_mode": mode})

    out = (c.series("scrape_up", _held(end, (START, 1), (exporter, 0)), {"instance": instance}),
           c.series("up", _held(end, (START, 1), (dies, 0), gone=exporter), {"instance": instance}),
           info(role, (START, 1), (promoted, None)))
    return out + ((info("master", (START, None), (promoted, 1)),) if promoted is not None else ())


def _world(c: Component, end: Duration, *, master: Duration | None = None, replica: Duration | None = None,
           promoted: Duration | None = None, sentinel: Duration | None = None,
           exporter: Duration | None = None) -> tuple[Series, ...]:
    """A master, a replica and (where the servers' selector picks sentinels too) a sentinel scraped by one
    multi-target exporter: ``master``, ``replica`` and ``sentinel`` are when each dies, ``promoted`` when the
    replica answers as master, ``exporter`` when the exporter dies (every scrape fails)."""
    servers = (_target(c, SERVER, "master", end, dies=master, exporter=exporter)
               + _target(c, REPLICA, "slave", end, dies=replica, promoted=promoted, exporter=exporter))
    if not c.spec.sentinels_scraped_as_servers:  # type: ignore[attr-defined]
        return servers
    return servers + _target(c, SENTINEL, "sentinel", end, dies=sentinel, exporter=exporter)


# -- alerts ----------------------------------------------------------------------------------------

def _master_down(c: Component, spec: RedisSpec) -> list[Rule]:
    """RedisDown: no server of the deployment answers as master. The unreachable servers are named (their
    ``instance``); when their exporter targets are gone too (a sidecar exporter dies with its pod), the alert
    fires for the deployment as long as some other target of it is still scraped. An exporter that is down
    altogether leaves nothing to judge: RedisExporterDown says so instead."""
    reachable = agg("group", binop("==", c.select("scrape_up"), 1), kept(c))
    expr = binop("unless", Paren(binop("or", Paren(_servers_down(c)), reachable, on=kept(c))), _live_master(c),
                 on=kept(c))
    down = c.labels("up", {"instance": SERVER})

    def scenarios(f: Duration) -> list[Scenario]:
        end = MIN + f + MIN * 2
        fires, silent = verdict(MIN + f, end, True), verdict(MIN + f, end, False)
        # A sidecar exporter goes with its pod: the master's scrape fails, nothing of it is left to read.
        sidecar = (_target(c, SERVER, "master", end, exporter=MIN)
                   + _target(c, REPLICA, "slave", end))
        out = [
            Scenario("master-down", "the master dies at 1m; the replica stays a replica",
                     _world(c, end, master=MIN, sentinel=MIN), fires, labels=down, value=0, alone=True),
            Scenario("sidecar-gone", "the master's pod goes with its sidecar exporter at 1m: its scrape fails, "
                     "the replica's is still scraped", sidecar, fires, labels={}, value=1, alone=True),
            Scenario("failed-over", "the master dies at 1m; Sentinel promotes the replica 30s later",
                     _world(c, end, master=MIN, promoted=MIN + STEP * 2), silent, alone=True),
            Scenario("replica-down", "the replica dies, the master serves", _world(c, end, replica=MIN), silent,
                     alone=True),
            Scenario("exporter-down", "the exporter dies at 1m: no scrape of any server succeeds",
                     _world(c, end, exporter=MIN), silent, alone=True),
        ]
        if spec.sentinels_scraped_as_servers:
            out.append(Scenario("sentinel-down", "a sentinel dies (with the master, in master-down), the master "
                                "serves", _world(c, end, sentinel=MIN), silent, alone=True))
        if f > STEP * 2:  # back before `for`: a restart is not an outage
            back = MIN + STEP * 2
            restart = (c.series("up", _held(end, (START, 1), (MIN, 0), (back, 1)), {"instance": SERVER}),
                       c.series("instance_info", _held(end, (START, 1), (MIN, None), (back, 1)),
                                {"instance": SERVER, "role": "master", "redis_mode": "standalone"}))
            out.append(Scenario("restart", "the master is down for 30s, then back",
                                _target(c, REPLICA, "slave", end) + restart, silent, alone=True))
        return out

    queries = {"up": _servers(c, c.select("up")), "roles": _roles(c)}
    if spec.replicas:  # where the replicas are, for the page's restore from a replica's copy
        queries["links"] = c.select("master_link_up")
    return c.alert(DOWN, expr=expr, scenarios=scenarios, queries=queries,
                   condition=("no server the exporter reaches reports role master "
                              + ("(the master is down and no replica has been promoted); a lost replica"
                                 + (" or sentinel" if spec.topology == "sentinel" else "") + " does not count"
                                 if spec.replicas or spec.topology != "standalone" else "(the one server is down)")),
                   description=(f"Redis {c.name} has had no reachable master for {{for}}: no server the exporter "
                                "reaches reports role master. Unreachable server: {{ $labels.instance }} (none "
                                "named when the exporter answers but no server reports itself master)."))


def _replica_down(c: Component, spec: RedisSpec) -> list[Rule]:
    """RedisReplicaDown: a data server is unreachable while a master still serves (a replica, or the old
    master after a failover): lost redundancy, not an outage."""
    expr = binop("and", Paren(_servers_down(c)), _live_master(c), on=kept(c))

    def scenarios(f: Duration) -> list[Scenario]:
        end = MIN + f + MIN * 2
        out = [
            Scenario("replica-down", "the replica dies at 1m, the master serves", _world(c, end, replica=MIN),
                     verdict(MIN + f, end, True), labels=c.labels("up", {"instance": REPLICA}), value=0,
                     alone=True),
            Scenario("old-master", "the master dies at 1m and Sentinel promotes the replica: the old master is "
                     "the lost copy now", _world(c, end, master=MIN, promoted=MIN + STEP * 2),
                     verdict(MIN + f, end, True), labels=c.labels("up", {"instance": SERVER}), value=0,
                     alone=True),
            Scenario("master-down", "the master dies, nothing is promoted: RedisDown's case",
                     _world(c, end, master=MIN), verdict(MIN + f, end, False), alone=True),
        ]
        if spec.sentinels_scraped_as_servers:
            out.append(Scenario("sentinel-down", "a sentinel dies: RedisSentinelDown's case",
                                _world(c, end, sentinel=MIN), verdict(MIN + f, end, False), alone=True))
        return out

    return c.alert(REPLICA_DOWN, expr=expr, scenarios=scenarios, queries={"up": _servers(c, c.select("up")), "roles": _roles(c)},
                   condition=("a server that is not the master (a replica"
                              + (", or a master Sentinel already replaced" if spec.topology == "sentinel" else "")
                              + ") does not answer the exporter while the master serves"),
                   description=(f"Redis server {{{{ $labels.instance }}}} of {c.name} has been unreachable for "
                                "{for} while the master serves: the deployment has lost a copy of its data (and "
                                "a failover target)."))


def _exporter_down(c: Component, spec: RedisSpec) -> list[Rule]:
    """RedisExporterDown: Prometheus' scrape of a redis_exporter target fails (``up == 0``), or the selector has
    no target at all. Per target, which is right for both deployments of the exporter: one multi-target exporter
    (``/scrape?target=``, one ``up`` per Redis, all 0 when it dies) and one sidecar exporter per server (one
    ``up`` per exporter)."""
    up = c.select("scrape_up")
    # Targets that left service discovery: scraped within a day, none now. (A selector that never matched is
    # not this alert's: an absent() here would also fire for every other Redis of the spec in each promtool test.)
    missing = binop("unless", agg("group", over_time("last", up, REMEMBERED), kept(c)), agg("group", up, kept(c)),
                    on=kept(c))
    expr = or_(binop("==", up, 0), Paren(missing))
    service = dict(c.service.selector)

    def scenarios(f: Duration) -> list[Scenario]:
        end = MIN + f + MIN * 2
        fires, silent = verdict(MIN + f, end, True), verdict(MIN + f, end, False)
        removed = (c.series("scrape_up", _held(end, (START, 1), (MIN, None)), {"instance": SERVER}),)
        # The application's own targets are the service's (ServiceDown, InstanceDown): never this alert's.
        app_down = _target(c, SERVER, "master", end) + (
            Series("up", {**service, "instance": "app-1"}, _held(end, (START, 1), (MIN, 0))),)
        return [
            Scenario("exporter-down", "the multi-target exporter dies at 1m: each Redis target's scrape fails",
                     _target(c, SERVER, "master", end, exporter=MIN), fires,
                     labels=c.labels("scrape_up", {"instance": SERVER}), value=0, alone=True),
            Scenario("target-gone", "the exporter's targets leave service discovery at 1m", removed, fires,
                     labels={}, value=1, alone=True),
            Scenario("redis-down", "the exporter answers, the Redis behind it is down (redis_up 0): RedisDown's "
                     "case", _world(c, end, master=MIN), silent, alone=True),
            Scenario("app-down", "the service's own instance stops answering its scrape at 1m: the service's "
                     "InstanceDown, not this alert", app_down, silent, alone=True),
        ]

    return c.alert(EXPORTER_DOWN, expr=expr, scenarios=scenarios, queries={"scrapes": up},
                   condition=("Prometheus' scrape of a redis_exporter target fails (up is 0), or the selector's "
                              f"targets, scraped within the last {REMEMBERED}, are all gone"),
                   description=(f"The redis_exporter scrape of {{{{ $labels.instance }}}} (Redis {c.name}; no "
                                "instance: every target of it left service discovery) has failed for {for}: "
                                "RedisDown and the other Redis alerts cannot fire while it lasts."))


def _failover(c: Component, spec: RedisSpec) -> list[Rule]:
    """RedisSentinelFailover, naming the new master (``master_address``, reported now and not 5m ago) and the old
    one (``old_master_address``, reported 5m ago). Without a report of 5m ago (a fresh Prometheus), or with the
    same master then and now (a failover and back within 5m), it fires for the master name alone, and its
    description says so instead of naming empty addresses."""
    base = _sentinel_base(spec)
    status = c.select("sentinel_status", base=base)
    name, address = kept(c, "master_name"), kept(c, "master_name", "master_address")
    w = FAILOVER_WINDOW
    changed = binop(">", agg("count", agg("count", over_time("last", status, w), address), name), 1)
    then = agg("max", Offset(status, w), address)
    new = binop("unless", agg("max", status, address), then, on=address)
    old = call("label_replace", then, "old_master_address", "$1", "master_address", "(.*)")
    named_new = binop("*", Paren(binop("and", Paren(new), changed, on=name)), agg("topk", old, name, param=1),
                      on=name, group_left=("old_master_address",), multiline=True)
    expr = binop("or", named_new, changed, on=name)
    old_addr, new_addr = "10.0.0.1:6379", "10.0.0.2:6379"
    named = {"master_name": spec.master_name or ""}

    def reported(addr: str, *segments: tuple[Duration, float | None]) -> Series:
        return c.series("sentinel_status", gauge(*segments), {"master_address": addr, "master_status": "ok"},
                        base=base)

    def scenarios(f: Duration) -> list[Scenario]:
        before, after = Duration.parse("6m"), Duration.parse("7m")
        switch = (reported(old_addr, (before, 1), (after, None)), reported(new_addr, (before, None), (after, 1)))
        steady = (reported(old_addr, (before + after, 1)),)
        times = (before - STEP, before + f + MIN, before + w + MIN)
        early = (reported(old_addr, (MIN, 1), (MIN * 2, None)), reported(new_addr, (MIN, None), (MIN * 2, 1)))
        back = (reported(old_addr, (before, 1), (MIN * 2, None), (after, 1)),
                reported(new_addr, (before, None), (MIN * 2, 1), (after, None)))
        return [
            Scenario("promoted", "the master address changes at 6m; the alert clears 5m later", switch,
                     tuple(Check(t, fires) for t, fires in zip(times, (False, True, False))),
                     labels={**named, "master_address": new_addr, "old_master_address": old_addr}, value=1,
                     alone=True),
            Scenario("stable", "the same master throughout", steady, tuple(Check(t, False) for t in times),
                     alone=True),
            Scenario("fresh", "a failover 1m after Prometheus started: no report of 5m before", early,
                     (Check(MIN - STEP, False), Check(MIN + f, True)), labels=named, value=2, alone=True),
            Scenario("back", "a failover at 6m and back 2m later: the same master then and now", back,
                     (Check(before + MIN * 2 + f + MIN, True),), labels=named, value=2, alone=True),
        ]

    return c.alert(FAILOVER, expr=expr, scenarios=scenarios,
                   queries={"addresses": agg("max", over_time("last", status, w), kept(c, "master_address"))},
                   condition=f"sentinels reported more than one master address within the last {w}",
                   description=("Sentinel failed over master {{ $labels.master_name }} {{ if $labels.master_address }}"
                                "from {{ $labels.old_master_address }} to {{ $labels.master_address }} within the "
                                f"last {w}{{{{ else }}}}within the last {w} (addresses unknown: Prometheus holds no "
                                f"sentinel report of {w} before, or the master switched and back within {w}; the "
                                "sentinels name the master now){{ end }}: clients reconnect to the new master; find "
                                "why the old one failed."))


def _sentinel_queries(c: Component, spec: RedisSpec) -> dict[str, Expr]:
    return {"ok_sentinels": agg("max", c.select("sentinel_ok_sentinels", base=_sentinel_base(spec)),
                                kept(c, "master_name", "master_address")),
            "sentinels_up": _sentinels_up(c, spec)}


def _quorum(c: Component, spec: RedisSpec) -> list[Rule]:
    """Fewer healthy sentinels than a failover needs (quorum, and a majority to authorise it), or no sentinel
    reports the master at all: then the value is 0, the number of sentinels seen reporting."""
    base = _sentinel_base(spec)
    needs = spec.failover_needs
    sel_ = c.select("sentinel_ok_sentinels", base=base)
    cluster = c.service.cluster_label
    missing: Expr
    if cluster:  # absent() would look at the whole fleet: per cluster, sentinels that report other masters only
        others = c.select("sentinel_ok_sentinels", base={k: v for k, v in base.items() if k != "master_name"})
        missing = Paren(binop("unless", agg("group", others, kept(c)), agg("group", sel_, kept(c))))
    else:
        missing = Call("absent", (sel_,))
    expr = or_(binop("<", _healthy_sentinels(c, spec), needs), binop("*", missing, 0))

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        named = {"master_name": spec.master_name or ""}

        def ok(n: int, base_labels: Labels = base) -> tuple:
            return (c.series("sentinel_ok_sentinels", gauge((end, n)), {"master_address": "10.0.0.1:6379"},
                             base=base_labels),)

        other = dict(base, master_name=f"not-{spec.master_name}")
        return [
            Scenario("below-need", f"{needs - 1} healthy sentinels, a failover needs {needs}", ok(needs - 1),
                     verdict(f, end, True), labels=named, value=needs - 1, per_instance=False),
            Scenario("at-need", f"{needs} healthy sentinels, a failover needs {needs}", ok(needs),
                     verdict(f, end, False), per_instance=False),
            Scenario("unreported", "no sentinel reports this master (only another one)", ok(needs + 1, other),
                     verdict(f, end, True), labels={} if cluster else dict(base), value=0, per_instance=False),
        ]

    n = spec.sentinel_count
    return c.alert(QUORUM_AT_RISK, expr=expr, scenarios=scenarios, queries=_sentinel_queries(c, spec),
                   condition=(f"fewer than {needs} of {n} sentinels healthy (quorum {spec.quorum or 1}, majority "
                              f"{n // 2 + 1}), or none reports the master"),
                   description=(f"Master {spec.master_name}: {{{{ $value }}}} of {n} sentinels report healthy for "
                                f"{{for}}, fewer than the {needs} a failover needs (quorum {spec.quorum or 1}, "
                                f"majority of {n}); 0 when no sentinel reports the master at all (all down, or not "
                                "scraped). A master failure now would not be failed over."))


def _sentinel_down(c: Component, spec: RedisSpec) -> list[Rule]:
    """RedisSentinelDown: fewer healthy sentinels than configured, as the best-placed sentinel sees them. Losing
    one of three leaves the quorum met with no margin: a warning of its own, before RedisSentinelQuorumAtRisk."""
    base = _sentinel_base(spec)
    n = spec.sentinel_count
    expr = binop("<", _healthy_sentinels(c, spec), n)

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2

        def ok(k: int) -> tuple:
            return (c.series("sentinel_ok_sentinels", gauge((end, k)), {"master_address": "10.0.0.1:6379"},
                             base=base),)

        return [
            Scenario("one-lost", f"{n - 1} of {n} sentinels healthy", ok(n - 1), verdict(f, end, True),
                     labels={"master_name": spec.master_name or ""}, value=n - 1, per_instance=False),
            Scenario("all-healthy", f"all {n} sentinels healthy", ok(n), verdict(f, end, False),
                     per_instance=False),
        ]

    return c.alert(SENTINEL_DOWN, expr=expr, scenarios=scenarios, queries=_sentinel_queries(c, spec),
                   condition=f"fewer than the {n} sentinels report healthy (a failover needs {spec.failover_needs})",
                   description=(f"Master {spec.master_name}: {{{{ $value }}}} of {n} sentinels report healthy for "
                                f"{{for}}; a failover needs {spec.failover_needs}: the margin is smaller, or gone."))


def _no_replica(c: Component, spec: RedisSpec) -> list[Rule]:
    """No replica connected to the live master (``redis_connected_slaves``: a replica whose link is down is not
    connected, although Sentinel still counts it ok), or, with Sentinel, no replica Sentinel could promote."""
    connected = binop("and", c.select("connected_replicas"), _live_master(c), on=kept(c, "instance"))
    on_master = binop("and", binop("<", c.select("connected_replicas"), 1), _live_master(c), on=kept(c, "instance"))
    expr: Expr = on_master
    sentinel = spec.topology == "sentinel"
    base = _sentinel_base(spec) if sentinel else {}
    queries = {"replicas": connected, "links": c.select("master_link_up")}
    if sentinel:
        promotable = agg("max", c.select("sentinel_ok_replicas", base=base),
                         kept(c, "master_name", "master_address"))
        expr = binop("or", Paren(on_master), binop("<", promotable, 1), on=kept(c))
        queries["promotable"] = promotable

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2

        def master(replicas: int, role: str = "master") -> tuple[Series, ...]:
            return (c.series("connected_replicas", gauge((end, replicas)), {"instance": SERVER}),
                    c.series("instance_info", gauge((end, 1)),
                             {"instance": SERVER, "role": role, "redis_mode": "standalone"}))

        def sentinel_view(ok: int) -> tuple[Series, ...]:
            return (c.series("sentinel_ok_replicas", gauge((end, ok)), {"master_address": "10.0.0.1:6379"},
                             base=base),) if sentinel else ()

        at_master = c.labels("connected_replicas", {"instance": SERVER})
        out = [
            Scenario("link-down", "the replica is up but its link is down: the master counts no replica"
                     + (" while Sentinel still counts it ok" if sentinel else ""), master(0) + sentinel_view(1),
                     verdict(f, end, True), labels=at_master, value=0, alone=True),
            Scenario("one", "one replica connected", master(1) + sentinel_view(1), verdict(f, end, False),
                     alone=True),
            Scenario("replicas-of-nobody", "replicas report no replicas of their own; no server is master",
                     master(0, "slave") + sentinel_view(1), verdict(f, end, False), alone=True),
        ]
        if sentinel:
            out.append(Scenario("unpromotable", "the master counts a replica, Sentinel sees none it could promote",
                                master(1) + sentinel_view(0), verdict(f, end, True),
                                labels={"master_name": spec.master_name or "", "master_address": "10.0.0.1:6379"},
                                value=0, alone=True))
        return out

    master_named = "{{ $labels.instance }}{{ $labels.master_address }}"
    return c.alert(NO_HEALTHY_REPLICA, expr=expr, scenarios=scenarios, queries=queries,
                   condition=(f"the master has no connected replica (of {spec.replicas} configured)"
                              + (", or Sentinel counts none it could promote" if sentinel else "")),
                   description=(f"Redis {spec.name}: master {master_named} has had {{{{ $value }}}} healthy "
                                f"replicas (of {spec.replicas} configured) for {{for}}."))


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


def _cluster(c: Component) -> list[Rule]:
    return gauge_compare(
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


def rules(c: Component) -> list[Rule]:
    spec: RedisSpec = c.spec  # type: ignore[assignment]
    out = _master_down(c, spec) + _exporter_down(c, spec)
    if spec.replicas or spec.topology == "cluster":
        out += _replica_down(c, spec) + gauge_compare(
            c, REPLICATION_BROKEN, signal="master_link_up", op="==", threshold=0, bad=0, good=(1,), aggregate=False,
            series_labels={"master_host": "10.0.0.1", "master_port": "6379"},
            queries={"links": c.select("master_link_up")},
            condition="a replica reports no link to its master (redis_master_link_up is 0)",
            description=("Replica {{ $labels.instance }} has had no link to its master "
                         "{{ $labels.master_host }}:{{ $labels.master_port }} for {for}; it serves stale data."),
        )
    if spec.topology == "sentinel":
        out += _failover(c, spec) + _quorum(c, spec) + _sentinel_down(c, spec)
    if spec.replicas and spec.topology != "cluster":
        out += _no_replica(c, spec)
    out += _memory(c, spec) + rate_above(
        c, REJECTED_CONNECTIONS, signal="rejected_connections", threshold=0, window=FIVE_MIN,
        queries={"rejected": rate_over(c.select("rejected_connections"), FIVE_MIN)},
        condition="any connection rejected in the last 5m (maxclients reached)",
        description="Redis {{ $labels.instance }} rejected {{ $value | humanize }} connections/s for {for}.",
    )
    if spec.topology == "cluster":
        out += _cluster(c)
    return out


# -- dashboards ----------------------------------------------------------------------------------

UP_DOWN = (Mapping(0, "down", "red"), Mapping(1, "up", "green"))


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: RedisSpec = c.spec  # type: ignore[assignment]
    sentinel = spec.topology == "sentinel"
    sentinel_plain = dict(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector)
    sentinel_base = {**sentinel_plain, "master_name": spec.master_name or ""}
    expected = 1 + spec.replicas
    info = lambda role: sel(c, "instance_info", {"role": role},  # noqa: E731
                            regex={"redis_mode": "standalone|cluster"})
    role = or_(Paren(binop("+", binop("*", agg("max", info("master"), ("instance",)), 0), 1)),
               Paren(binop("*", agg("max", info("slave"), ("instance",)), 0)))
    sentinels = sel(c, "instance_info", {"redis_mode": "sentinel"})

    def servers(q: Expr) -> Expr:
        """redis_exporter reports `redis_up` and clients for sentinels too: server panels leave them out."""
        return binop("unless", q, sentinels, on=("instance",)) if spec.sentinels_scraped_as_servers else q
    detail: list[Panel] = [
        Panel(
            title=f"{c.name}: up", kind="state-timeline", unit="none", mappings=UP_DOWN, alerts=(REPLICA_DOWN, DOWN),
            description=(f"Whether the exporter reaches each Redis server of {c.name}"
                         + built.fires(REPLICA_DOWN, "; a replica down for {for} while the master serves fires "
                                                     "{alert}") + "."),
            queries=(Query(servers(sel(c, "up")), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: role", kind="state-timeline", unit="none",
            mappings=(Mapping(0, "replica", "purple"), Mapping(1, "master", "blue")),
            alerts=(DOWN, FAILOVER if sentinel else REPLICATION_BROKEN),
            description=(f"Role of each Redis server of {c.name} over time (redis_instance_info): a change of "
                         "colour is a promotion or demotion."
                         + built.fires(DOWN, " No master row (no server answers as master) for {for} fires "
                                             "{alert}.")),
            queries=(Query(role, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: exporter scrapes", kind="state-timeline", unit="none", mappings=UP_DOWN,
            alerts=(EXPORTER_DOWN,),
            description=(f"Prometheus' scrape of each redis_exporter target of {c.name} (up): a failed scrape "
                         "blinds every Redis alert of that target"
                         + built.fires(EXPORTER_DOWN, "; down for {for} fires {alert}") + "."),
            queries=(Query(sel(c, "scrape_up"), "{{instance}}"),),
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
                title=f"{c.name}: sentinels up", kind="state-timeline", unit="none", mappings=UP_DOWN,
                alerts=(SENTINEL_DOWN,),
                description=(f"Whether the exporter reaches each sentinel of {c.name} (targets that answered as "
                             f"sentinels within {REMEMBERED})."
                             + built.fires(SENTINEL_DOWN, f" Fewer healthy sentinels than the {spec.sentinel_count} "
                                                          "configured for {for} fires {alert}.")),
                queries=(Query(binop("and", sel(c, "up", base=sentinel_plain),
                                     over_time("last", sel(c, "instance_info", {"redis_mode": "sentinel"},
                                                           base=sentinel_plain), REMEMBERED), on=("instance",)),
                               "{{instance}}"),),
            ),
            Panel(
                title=f"{c.name}: healthy sentinels vs quorum", unit="short", min=0,
                soft_max=spec.sentinel_count, thresholds=below(spec.failover_needs),
                alerts=(QUORUM_AT_RISK, SENTINEL_DOWN),
                description=(f"Sentinels that report healthy for master {spec.master_name}, of "
                             f"{spec.sentinel_count}; red below the {spec.failover_needs} a failover needs (quorum "
                             f"{spec.quorum or 1}, and a majority to authorise it). "
                             + built.fires(QUORUM_AT_RISK, "Below that (or no report) for {for} fires {alert}. ")
                             + built.fires(SENTINEL_DOWN, f"Below {spec.sentinel_count} for {{for}} fires "
                                                          "{alert}.")).strip(),
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
        replicas = [Query(agg("max", binop("and", sel(c, "connected_replicas"), info("master"), on=("instance",))),
                          "connected to the master")]
        if sentinel:
            replicas.append(Query(agg("max", sel(c, "sentinel_ok_replicas", base=sentinel_base), ("master_name",)),
                                  "promotable (sentinel view)"))
        detail.append(Panel(
            title=f"{c.name}: healthy replicas", unit="short", min=0, soft_max=spec.replicas, thresholds=below(1),
            alerts=(NO_HEALTHY_REPLICA,),
            description=(f"Replicas of {c.name} connected to the master ({spec.replicas} configured; a replica "
                         "whose link is down is not connected)" + (" and replicas Sentinel could promote"
                                                                 if sentinel else "")
                         + built.fires(NO_HEALTHY_REPLICA, "; none for {for} fires {alert}") + "."),
            queries=tuple(replicas),
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
                                    "healthy sentinels", thresholds=below(spec.failover_needs)))
    health = Panel(
        title=f"Redis {c.name}", kind="stat", unit="short", width=6, height=5, thresholds=up_steps,
        alerts=(DOWN,) + ((QUORUM_AT_RISK,) if sentinel else ()),
        description=(f"Redis servers of {c.name} that answer the exporter"
                     + (f" (expected {expected})" if spec.topology != "cluster" else "")
                     + (f", and healthy sentinels against the {spec.failover_needs} a failover needs"
                        if sentinel else "") + "."),
        queries=tuple(health_queries),
    )
    return ComponentPanels(health, tuple(detail), jobs(spec.selector, spec.sentinel_selector))


REDIS_EXPORTER = {
    "up": MetricRef("redis_up", (), EXPORTER),
    "scrape_up": MetricRef("up", (), PROMETHEUS),
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
    alerts=(DOWN, REPLICA_DOWN, EXPORTER_DOWN, REPLICATION_BROKEN, FAILOVER, QUORUM_AT_RISK, SENTINEL_DOWN,
            NO_HEALTHY_REPLICA, MEMORY_HIGH, REJECTED_CONNECTIONS, CLUSTER_STATE_FAIL, CLUSTER_SLOTS_FAIL),
    rules=rules,
    panels=panels,
    concern=Concern("redis-operations", "Redis Operations",
                    "Redis availability, roles and failovers, replication, sentinel quorum, exporter scrapes, memory, "
                    "clients and evictions."),
    default_metrics={"*": REDIS_EXPORTER},
    app_metrics=False,
    # The master gone breaks every replica's link: the link alerts add nothing. A sentinel short of the quorum
    # is the news; that one of them is down is part of it. Only the master's loss silences anything else (a dead
    # replica must never hide CacheL2Unavailable, see the cache kind).
    inhibitions=(Inhibition("RedisDown", ("RedisReplicationBroken", "RedisNoHealthyReplica")),
                 Inhibition("RedisSentinelQuorumAtRisk", ("RedisSentinelDown",), ("service", "component"))),
)
