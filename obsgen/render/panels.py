"""Panels per component kind: one function per kind key, each taking one :class:`Component`.

They only use :class:`Component` helpers (``select``, ``metric``, ``base_labels``,
``spec``), so each can move into its kind module unchanged. Every selector keeps
the spec's labels except ``job``, which becomes ``job=~"$job"``, and gains
``instance=~"$instance"``; every counter sits inside ``rate(…[$__rate_interval])``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC

from obsgen.components.base import Component
from obsgen.model.types import Labels
from obsgen.promql import matchers, number
from obsgen.render.dashboards import ComponentPanels, Mapping, Panel, Query, Step

RATE = "$__rate_interval"
VARS = {"job": "$job", "instance": "$instance"}


def _base(c: Component, base: Labels | None = None) -> Labels:
    out = dict(c.base_labels if base is None else base)
    out.pop("job", None)
    return out


def sel(c: Component, signal: str, extra: MappingABC[str, str] | None = None, *, base: Labels | None = None,
        regex: MappingABC[str, str] | None = None, default: str | None = None) -> str:
    """Selector for ``signal`` filtered by the dashboard variables.

    ``default`` names the metric for signals the kind does not declare yet (exporter
    series that only dashboards read, such as ``redis_connected_clients``).
    """
    rx = {**VARS, **(regex or {})}
    try:
        c.metric(signal)
    except KeyError:
        if default is None:
            raise
        labels = {**_base(c, base), **(extra or {})}
        return default + matchers(labels, rx)
    return c.select(signal, extra, regex=rx, base=_base(c, base))


def rate(selector: str) -> str:
    return f"rate({selector}[{RATE}])"


def _jobs(*selectors: Labels | None) -> tuple[str, ...]:
    return tuple(sorted({s["job"] for s in selectors if s and "job" in s}))


def _above(threshold: float, warn: float | None = None) -> tuple[Step, ...]:
    """Green below, (orange from ``warn``,) red from ``threshold``."""
    return (Step("green"),) + ((Step("orange", warn),) if warn is not None else ()) + (Step("red", threshold),)


def _below(threshold: float) -> tuple[Step, ...]:
    """Red below ``threshold``, green from it."""
    return (Step("red"), Step("green", threshold))


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


# --------------------------------------------------------------------------- caches

def caches(c: Component) -> ComponentPanels:
    spec = c.spec
    label = spec.label
    labelled = [(name, tier) for name, tier in sorted(spec.tiers.items()) if tier.labels]
    targets = [(name.upper(), dict(tier.labels), tier.hit_rate_min or spec.hit_rate_min) for name, tier in labelled]
    targets = targets or [("", {}, spec.hit_rate_min)]
    tier_keys = sorted({k for _, extra, _ in targets for k in extra})
    by_tier = ", ".join(tier_keys)
    tier_legend = " ".join(f"{{{{{k}}}}}" for k in tier_keys)

    def ratio(extra: Labels, by: str) -> str:
        return (f"sum {by} ({rate(sel(c, 'hits', extra))})\n/\n"
                f"sum {by} ({rate(sel(c, 'requests', extra))})")

    detail = [
        Panel(
            title=f"{c.name}: hit ratio" + (f" {tier}" if tier else ""),
            description=(f"Share of lookups of cache {c.name}" + (f" served by tier {tier}" if tier else "")
                         + f", per instance. Below {_pct(threshold)} for 5m while the cache serves at least "
                         f"{number(spec.min_request_rate)} req/s fires CacheHitRateLow."),
            unit="percentunit", min=0, max=1, thresholds=_below(threshold), runbooks=("CacheHitRateLow",),
            queries=(Query(ratio(extra, "by (instance)"), "{{instance}}"),),
        )
        for tier, extra, threshold in targets
    ]
    detail += [
        Panel(
            title=f"{c.name}: request rate", unit="reqps", runbooks=("CacheHitRateLow",),
            description=f"Lookups per second of cache {c.name} by result" + (" and tier" if tier_keys else "")
                        + ", all instances. The hit-ratio alert only judges a cache this busy or busier: "
                        + f"{number(spec.min_request_rate)} req/s.",
            queries=(Query(f"sum by ({', '.join(tier_keys + ['result'])}) ({rate(sel(c, 'requests'))})",
                           (tier_legend + " {{result}}").strip()),),
        ),
        Panel(
            title=f"{c.name}: misses", unit="reqps", runbooks=("CacheHitRateLow",),
            description=f"Misses per second of cache {c.name} per instance"
                        + (" and tier" if tier_keys else "") + ": each one is a load from the source.",
            queries=(Query(f"sum by ({', '.join(['instance'] + tier_keys)}) ({rate(sel(c, 'misses'))})",
                           ("{{instance}} " + tier_legend).strip()),),
        ),
        Panel(
            title=f"{c.name}: lock failures (stampede)", unit="ops", runbooks=("CacheStampede",),
            thresholds=_above(spec.stampede_rate_max),
            description=(f"Single-flight lock failures per second of cache {c.name}, all instances together. "
                         f"Above {number(spec.stampede_rate_max)}/s for 1m fires CacheStampede: many requests "
                         "load the same keys from the source at once."),
            queries=(Query(f"sum by ({label}) ({rate(sel(c, 'lock_failures'))})", "all instances"),),
        ),
    ]
    if "l2" in spec.tiers:
        detail.append(Panel(
            title=f"{c.name}: L2 failures", unit="ops", runbooks=("CacheL2Unavailable",),
            thresholds=_above(spec.l2_failure_rate_max),
            description=(f"Failed L2 (Redis) operations per second of cache {c.name}, per instance. Above "
                         f"{number(spec.l2_failure_rate_max)}/s for 5m fires CacheL2Unavailable."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'l2_failures'))})", "{{instance}}"),),
        ))
    health = Panel(
        title=f"Cache {c.name}: hit ratio", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=_below(targets[0][2]), runbooks=("CacheHitRateLow",),
        description=(f"Hit ratio of cache {c.name} over all instances"
                     + (", per tier against its own target (" + ", ".join(f"{t} {_pct(x)}" for t, _, x in targets)
                        + ")" if targets[0][0] else f" against its target {_pct(targets[0][2])}") + "."),
        queries=tuple(Query(ratio(extra, "without ()"), tier or "hit ratio", thresholds=_below(threshold))
                      for tier, extra, threshold in targets),
    )
    return ComponentPanels(health, tuple(detail), _jobs(c.base_labels))


# --------------------------------------------------------------------------- breakers

BREAKER_STATES = (("closed", "green"), ("half_open", "yellow"), ("open", "red"), ("forced_open", "dark-red"),
                  ("disabled", "blue"), ("metrics_only", "purple"))


def _breaker_state(c: Component, by: str) -> tuple[str, tuple[Mapping, ...]]:
    enc = c.spec.state_encoding
    if enc.type == "one_hot":
        parts = [f"(max by ({by}) ({sel(c, 'state', {enc.label: state})}) == 1) * {code}"
                 for code, (state, _) in enumerate(BREAKER_STATES)]
        return "\nor\n".join(parts), tuple(Mapping(code, state, color) for code, (state, color) in enumerate(BREAKER_STATES))
    codes = (("closed", enc.closed, "green"), ("half_open", enc.closed + 1, "yellow"), ("open", enc.closed + 2, "red"))
    return (f"max by ({by}) ({sel(c, 'state')})",
            tuple(Mapping(code, state, color) for state, code, color in codes))


def breakers(c: Component) -> ComponentPanels:
    spec = c.spec
    warn = spec.failure_rate_threshold * spec.warning_fraction
    state, mappings = _breaker_state(c, "instance")
    detail = (
        Panel(
            title=f"{c.name}: state", kind="state-timeline", unit="none", width=24, mappings=mappings,
            runbooks=("CircuitBreakerOpen",),
            description=(f"State of circuit breaker {c.name} per instance over time. Open or half-open for 1m, or "
                         f"re-opening most of the last {spec.reopen_window}, fires CircuitBreakerOpen; it retries "
                         f"after {spec.wait_in_open} open."),
            queries=(Query(state, "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: failure rate", unit="percent", min=0, soft_max=100,
            thresholds=_above(spec.failure_rate_threshold, warn),
            runbooks=("CircuitBreakerFailureRateHigh", "CircuitBreakerOpen"),
            description=(f"Failed calls in the sliding window of breaker {c.name}, per instance (-1, too few calls, "
                         f"is hidden). Above {number(warn)}% for 2m fires CircuitBreakerFailureRateHigh; at "
                         f"{number(spec.failure_rate_threshold)}% the breaker opens."),
            queries=(Query(f"{sel(c, 'failure_rate')} >= 0", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: slow call rate", unit="percent", min=0, soft_max=100, runbooks=("CircuitBreakerOpen",),
            description=f"Slow calls in the sliding window of breaker {c.name}, per instance (-1 hidden).",
            queries=(Query(f"{sel(c, 'slow_call_rate')} >= 0", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: calls by outcome", unit="reqps", runbooks=("CircuitBreakerFailureRateHigh",),
            description=f"Calls through breaker {c.name} per second by outcome (successful, failed, ignored), "
                        "all instances.",
            queries=(Query(f"sum by (kind) ({rate(sel(c, 'calls'))})", "{{kind}}"),),
        ),
        Panel(
            title=f"{c.name}: not permitted calls", unit="reqps", runbooks=("CircuitBreakerOpen",),
            description=f"Calls rejected by breaker {c.name} per second because it is open, per instance.",
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'not_permitted'))})", "{{instance}}"),),
        ),
    )
    worst, _ = _breaker_state(c, c.spec.label)
    health = Panel(
        title=f"Breaker {c.name}: state", kind="stat", unit="none", width=6, height=5, mappings=mappings,
        runbooks=("CircuitBreakerOpen",),
        description=f"The worst state of circuit breaker {c.name} over all instances.",
        queries=(Query(f"max ({worst})", c.name),),
    )
    return ComponentPanels(health, detail, _jobs(c.base_labels))


# --------------------------------------------------------------------------- retries and time limiters

def _ratio_panels(c: Component, *, noun: str, part: str, alert: str, threshold: float, what: str
                  ) -> ComponentPanels:
    ratio = lambda by: f"sum {by} ({rate(sel(c, part))})\n/\nsum {by} ({rate(sel(c, 'calls'))})"  # noqa: E731
    detail = (
        Panel(
            title=f"{c.name}: {noun} calls by outcome", unit="reqps", runbooks=(alert,),
            description=f"Calls through {noun} {c.name} per second by outcome (kind), all instances.",
            queries=(Query(f"sum by (kind) ({rate(sel(c, 'calls'))})", "{{kind}}"),),
        ),
        Panel(
            title=f"{c.name}: {what}", unit="percentunit", min=0, thresholds=_above(threshold), runbooks=(alert,),
            description=(f"Share of calls through {noun} {c.name} that {what.split(' ratio')[0]}, per instance. "
                         f"Above {_pct(threshold)} for 5m fires {alert}."),
            queries=(Query(ratio("by (instance)"), "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"{noun.capitalize()} {c.name}: {what}", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=_above(threshold), runbooks=(alert,),
        description=f"Share of calls through {noun} {c.name} over all instances that {what.split(' ratio')[0]} "
                    f"(target below {_pct(threshold)}).",
        queries=(Query(ratio("without ()"), c.name),),
    )
    return ComponentPanels(health, detail, _jobs(c.base_labels))


def retries(c: Component) -> ComponentPanels:
    return _ratio_panels(c, noun="retry", part="exhausted", alert="RetryExhaustionHigh",
                         threshold=c.spec.exhaustion_ratio_max, what="exhausted ratio")


def time_limiters(c: Component) -> ComponentPanels:
    out = _ratio_panels(c, noun="time limiter", part="timeouts", alert="TimeLimiterTimeoutsHigh",
                        threshold=c.spec.timeout_ratio_max, what="timed out ratio")
    timeouts = Panel(
        title=f"{c.name}: timeouts", unit="ops", runbooks=("TimeLimiterTimeoutsHigh",),
        description=f"Calls cut off at the {c.spec.timeout} deadline of time limiter {c.name} per second, "
                    "per instance.",
        queries=(Query(f"sum by (instance) ({rate(sel(c, 'timeouts'))})", "{{instance}}"),),
    )
    return ComponentPanels(out.health, out.detail + (timeouts,), out.jobs)


# --------------------------------------------------------------------------- executors

def executors(c: Component) -> ComponentPanels:
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
                         + (f", against its capacity {capacity} (red line) and {_pct(spec.queue_full_ratio)} of it, "
                            f"{full} (orange line); at or above {full} for 1m fires ExecutorQueueFull."
                            if capacity > 0 else " (unbounded queue).")),
            queries=(Query(f"max by (instance) ({sel(c, 'queued')})", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: rejected tasks", unit="ops", thresholds=_above(spec.rejection_rate_max),
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
            thresholds=_above(1, spec.queue_full_ratio), runbooks=("ExecutorQueueFull",),
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
    return ComponentPanels(health, detail, _jobs(c.base_labels))


# --------------------------------------------------------------------------- redis

UP_DOWN = (Mapping(0, "down", "red"), Mapping(1, "up", "green"))


def redis(c: Component) -> ComponentPanels:
    spec = c.spec
    sentinel = spec.topology == "sentinel"
    sentinel_base = {**(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector),
                     "master_name": spec.master_name or ""}
    expected = 1 + spec.replicas
    info = lambda role: sel(c, "instance_info", {"role": role}, default="redis_instance_info",  # noqa: E731
                            regex={"redis_mode": "standalone|cluster"})
    detail: list[Panel] = [
        Panel(
            title=f"{c.name}: up", kind="state-timeline", unit="none", mappings=UP_DOWN, runbooks=("RedisDown",),
            description=f"Whether the exporter reaches each Redis server of {c.name}; down for 1m fires RedisDown.",
            queries=(Query(sel(c, "up"), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: role", kind="state-timeline", unit="none",
            mappings=(Mapping(0, "replica", "purple"), Mapping(1, "master", "blue")),
            runbooks=("RedisSentinelFailover",) if sentinel else ("RedisReplicationBroken",),
            description=f"Role of each Redis server of {c.name} over time (redis_instance_info): a change of "
                        "colour is a promotion or demotion.",
            queries=(Query(f"(max by (instance) ({info('master')}) * 0 + 1)\nor\n"
                           f"(max by (instance) ({info('slave')}) * 0)", "{{instance}}"),),
        ),
    ]
    if sentinel:
        detail += [
            Panel(
                title=f"{c.name}: master address (sentinel view)", kind="state-timeline", unit="none",
                mappings=(Mapping(1, "master", "blue"),), runbooks=("RedisSentinelFailover",),
                description=(f"The address the sentinels report as master {spec.master_name} over time; a new row "
                             "appearing is a failover (RedisSentinelFailover fires for 5m after it)."),
                queries=(Query(f"max by (master_address) ({sel(c, 'sentinel_status', base=sentinel_base)})",
                               "{{master_address}}"),),
            ),
            Panel(
                title=f"{c.name}: healthy sentinels vs quorum", unit="short", min=0,
                soft_max=spec.sentinels, thresholds=_below(spec.quorum or 1),
                runbooks=("RedisSentinelQuorumAtRisk",),
                description=(f"Sentinels that agree master {spec.master_name} is reachable, against the quorum "
                             f"{spec.quorum or 1} of {spec.sentinels} (red below it: no automatic failover). "
                             "Below quorum (or no report) for 5m fires RedisSentinelQuorumAtRisk."),
                queries=(Query(f"max by (master_name) ({sel(c, 'sentinel_ok_sentinels', base=sentinel_base)})",
                               "healthy sentinels"),),
            ),
        ]
    if spec.replicas or spec.topology == "cluster":
        detail.append(Panel(
            title=f"{c.name}: replication link", kind="state-timeline", unit="none", mappings=UP_DOWN,
            runbooks=("RedisReplicationBroken",),
            description=f"Link of each replica of {c.name} to its master; down for 2m fires RedisReplicationBroken.",
            queries=(Query(sel(c, "master_link_up"), "{{instance}} → {{master_host}}:{{master_port}}"),),
        ))
    if spec.replicas and spec.topology != "cluster":
        replicas = (f"max by (master_name) ({sel(c, 'sentinel_ok_replicas', base=sentinel_base)})" if sentinel
                    else f"max ({sel(c, 'connected_replicas')})")
        detail.append(Panel(
            title=f"{c.name}: healthy replicas", unit="short", min=0, soft_max=spec.replicas, thresholds=_below(1),
            runbooks=("RedisNoHealthyReplica",),
            description=(f"Healthy replicas of {c.name} ({spec.replicas} configured); none for 2m fires "
                         "RedisNoHealthyReplica."),
            queries=(Query(replicas, "healthy replicas"),),
        ))
    used, limit = sel(c, "memory_used"), sel(c, "memory_max")
    detail += [
        Panel(
            title=f"{c.name}: memory vs maxmemory", unit="percentunit", min=0, soft_max=1,
            thresholds=_above(spec.memory_ratio_max), runbooks=("RedisMemoryHigh",),
            description=(f"Used memory of each Redis server of {c.name} as a share of its maxmemory (servers without "
                         f"maxmemory are not shown). Above {_pct(spec.memory_ratio_max)} for 5m fires RedisMemoryHigh."),
            queries=(Query(f"{used}\n/\n({limit} > 0)", "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: memory used", unit="bytes", min=0, runbooks=("RedisMemoryHigh",),
            description=f"Used memory and maxmemory (when set) of each Redis server of {c.name}, in bytes.",
            queries=(Query(used, "used {{instance}}"), Query(f"{limit} > 0", "maxmemory {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: clients", unit="short", min=0, runbooks=("RedisRejectedConnections",),
            description=f"Connected and blocked clients of each Redis server of {c.name}.",
            queries=(Query(sel(c, "connected_clients", default="redis_connected_clients"), "connected {{instance}}"),
                     Query(sel(c, "blocked_clients", default="redis_blocked_clients"), "blocked {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: rejected connections", unit="ops", runbooks=("RedisRejectedConnections",),
            description=(f"Connections refused per second (maxclients reached) by each Redis server of {c.name}; "
                         "any for 1m fires RedisRejectedConnections."),
            queries=(Query(rate(sel(c, "rejected_connections")), "{{instance}}"),),
        ),
        Panel(
            title=f"{c.name}: evicted keys", unit="ops", runbooks=("RedisMemoryHigh",),
            description=f"Keys evicted per second by each Redis server of {c.name} to stay under maxmemory.",
            queries=(Query(rate(sel(c, "evicted_keys", default="redis_evicted_keys_total")), "{{instance}}"),),
        ),
    ]
    if spec.topology == "cluster":
        detail += [
            Panel(
                title=f"{c.name}: cluster state", kind="state-timeline", unit="none",
                mappings=(Mapping(0, "fail", "red"), Mapping(1, "ok", "green")), runbooks=("RedisClusterStateFail",),
                description=f"cluster_state as each node of {c.name} reports it; fail for 1m fires RedisClusterStateFail.",
                queries=(Query(sel(c, "cluster_state"), "{{instance}}"),),
            ),
            Panel(
                title=f"{c.name}: failed slots", unit="short", min=0, thresholds=_above(1),
                runbooks=("RedisClusterSlotsFail",),
                description=f"Hash slots in fail state as each node of {c.name} sees them; any for 1m fires "
                            "RedisClusterSlotsFail.",
                queries=(Query(sel(c, "cluster_slots_fail"), "{{instance}}"),),
            ),
        ]
    up_steps = _below(expected if spec.topology != "cluster" else 1)
    health_queries = [Query(f"sum ({sel(c, 'up')})", "servers up", thresholds=up_steps)]
    if sentinel:
        health_queries.append(Query(f"max ({sel(c, 'sentinel_ok_sentinels', base=sentinel_base)})",
                                    "healthy sentinels", thresholds=_below(spec.quorum or 1)))
    health = Panel(
        title=f"Redis {c.name}", kind="stat", unit="short", width=6, height=5, thresholds=up_steps,
        runbooks=("RedisDown",) + (("RedisSentinelQuorumAtRisk",) if sentinel else ()),
        description=(f"Redis servers of {c.name} that answer the exporter"
                     + (f" (expected {expected})" if spec.topology != "cluster" else "")
                     + (f", and healthy sentinels against the quorum {spec.quorum or 1}" if sentinel else "") + "."),
        queries=tuple(health_queries),
    )
    return ComponentPanels(health, tuple(detail), _jobs(spec.selector, spec.sentinel_selector))
