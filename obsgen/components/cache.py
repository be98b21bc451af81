"""Caches: hit ratio per tier, stampedes (single-flight lock failures), L2 outages.

Micrometer names: ``cache_gets_total{cache,result}`` (Caffeine and Redisson
binders). Lock and L2 failures have no library metric: the Maple guide's
TieredCache counts them as ``cache_lock_failure_total`` and
``cache_l2_failure_total``.

Python (cachetools, aiocache and friends export nothing): the app counts with
prometheus_client as the OMS guide's SmartCache does, ``cache_hits_total`` and
``cache_requests_total`` (two counters, so misses are requests minus hits), and
the same lock and L2 failure counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import Component, Concern, Finding, Given, Inhibition, Kind, RatioSignals, Rule
from obsgen.components.shapes import rate_above, ratio_of_rates
from obsgen.components.viz import ComponentPanels, Panel, Query, below, above, jobs, num, pct, rate, sel
from obsgen.promql import number
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

ONE_MIN = Duration.parse("1m")
FIVE_MIN = Duration.parse("5m")


@dataclass(frozen=True)
class Tier:
    provider: str | None = None
    ttl: Duration | None = None
    max_size: int | None = None
    labels: Labels = field(default_factory=dict)
    hit_rate_min: float | None = None


@dataclass(frozen=True)
class CacheSpec(ComponentSpec):
    label: str = "cache"
    hit_rate_min: float = 0.8
    min_request_rate: float = 1.0
    stampede_rate_max: float = 10.0
    l2_failure_rate_max: float = 0.1
    tiers: dict[str, Tier] = field(default_factory=dict)


def check(given: Given) -> list[Finding]:
    return [Finding(("tiers", name, "hit_rate_min"), "a tier threshold needs `labels` that select the tier's series; "
                    "add them or move hit_rate_min to the cache")
            for name, tier in given.item.get("tiers", {}).items() if "hit_rate_min" in tier and not tier.get("labels")]


HITS = RatioSignals(part="hits", total="requests", rest="misses")


def rules(c: Component) -> list[Rule]:
    spec: CacheSpec = c.spec  # type: ignore[assignment]
    out: list[Rule] = []
    labelled = {name: tier for name, tier in sorted(spec.tiers.items()) if tier.labels}
    targets = [(tier.labels, {"tier": name.upper()}, tier.hit_rate_min or spec.hit_rate_min)
               for name, tier in labelled.items()] or [({}, {}, spec.hit_rate_min)]
    for extra, tag, threshold in targets:
        out += ratio_of_rates(
            c, "CacheHitRateLow", signals=HITS, record="instance_cache:hit", threshold=threshold, below=True,
            min_rate=spec.min_request_rate, extra=extra, tag=tag, for_="5m", severity="warning",
            summary="Cache hit ratio is below its threshold while the cache is busy.",
            condition=(f"hit ratio below {pct(threshold)} while serving at least "
                       f"{num(spec.min_request_rate)} lookups/s"),
            description=(
                "Cache {{ $labels.cache }}" + (" ({{ $labels.tier }})" if tag else "")
                + " on {{ $labels.instance }} hits {{ $value | humanizePercentage }} of lookups, below "
                f"{threshold * 100:g}% for {{for}}; more requests fall through to the source."
            ).replace("$labels.cache", f"$labels.{spec.label}"),
        )
    out += rate_above(
        c, "CacheStampede", signal="lock_failures", threshold=spec.stampede_rate_max, window=ONE_MIN * 2,
        for_="1m", severity="critical", per_instance=False,
        summary="Single-flight lock failures show a cache stampede; the source is being hammered.",
        condition=f"more than {num(spec.stampede_rate_max)} single-flight lock failures/s summed over all instances",
        description=(f"Cache {{{{ $labels.{spec.label} }}}} fails {{{{ $value | humanize }}}} lock acquisitions/s "
                     f"across all instances (threshold {spec.stampede_rate_max:g}/s) for {{for}}: many requests "
                     "are loading the same keys from the source at once."),
    )
    if "l2" in spec.tiers:
        out += rate_above(
            c, "CacheL2Unavailable", signal="l2_failures", threshold=spec.l2_failure_rate_max, window=FIVE_MIN,
            for_="5m", severity="warning",
            summary="The cache's L2 (Redis) tier is failing; requests fall back to L1 and the source.",
            condition=f"more than {num(spec.l2_failure_rate_max)} L2 failures/s on an instance (5m rate)",
            description=(f"Cache {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} records "
                         f"{{{{ $value | humanize }}}} L2 failures/s (threshold {spec.l2_failure_rate_max:g}/s) "
                         "for {for}."),
        )
    return out



def panels(c: Component) -> ComponentPanels:
    spec = c.spec
    label = spec.label
    labelled = [(name, tier) for name, tier in sorted(spec.tiers.items()) if tier.labels]
    targets = [(name.upper(), dict(tier.labels), tier.hit_rate_min or spec.hit_rate_min) for name, tier in labelled]
    targets = targets or [("", {}, spec.hit_rate_min)]
    tier_keys = sorted({k for _, extra, _ in targets for k in extra})
    tier_legend = " ".join(f"{{{{{k}}}}}" for k in tier_keys)

    def ratio(extra: Labels, by: str = "") -> str:
        """``by`` ends in a space; none sums over every instance (both sides to one series, matched as such)."""
        return (f"sum {by}({rate(sel(c, 'hits', extra))})\n/\n"
                f"sum {by}({rate(sel(c, 'requests', extra))})")

    by_result = c.metric("hits").name == c.metric("requests").name
    lookups_by = ", ".join(tier_keys + (["result"] if by_result else []))
    lookups = (Query(f"sum by ({lookups_by}) ({rate(sel(c, 'requests'))})", (tier_legend + " {{result}}").strip()),)
    if not by_result:  # hits and lookups are two counters: draw both
        by_tier = f"by ({', '.join(tier_keys)}) " if tier_keys else ""
        lookups = tuple(Query(f"sum {by_tier}({rate(sel(c, signal))})", f"{tier_legend} {word}".strip())
                        for signal, word in (("requests", "lookups"), ("hits", "hits")))
    miss_by = f"by ({', '.join(['instance'] + tier_keys)})"
    misses = (f"sum {miss_by} ({rate(sel(c, 'misses'))})" if c.has("misses") else
              f"sum {miss_by} ({rate(sel(c, 'requests'))})\n-\nsum {miss_by} ({rate(sel(c, 'hits'))})")

    detail = [
        Panel(
            title=f"{c.name}: hit ratio" + (f" {tier}" if tier else ""),
            description=(f"Share of lookups of cache {c.name}" + (f" served by tier {tier}" if tier else "")
                         + f", per instance. Below {pct(threshold)} for 5m while the cache serves at least "
                         f"{number(spec.min_request_rate)} req/s fires CacheHitRateLow."),
            unit="percentunit", min=0, max=1, thresholds=below(threshold), runbooks=("CacheHitRateLow",),
            queries=(Query(ratio(extra, "by (instance) "), "{{instance}}"),),
        )
        for tier, extra, threshold in targets
    ]
    detail += [
        Panel(
            title=f"{c.name}: request rate", unit="reqps", runbooks=("CacheHitRateLow",),
            description=f"Lookups per second of cache {c.name} " + ("by result" if by_result else "and its hits")
                        + (" and tier" if tier_keys else "")
                        + ", all instances. The hit-ratio alert only judges a cache this busy or busier: "
                        + f"{number(spec.min_request_rate)} req/s.",
            queries=lookups,
        ),
        Panel(
            title=f"{c.name}: misses", unit="reqps", runbooks=("CacheHitRateLow",),
            description=f"Misses per second of cache {c.name} per instance"
                        + (" and tier" if tier_keys else "") + ": each one is a load from the source.",
            queries=(Query(misses, ("{{instance}} " + tier_legend).strip()),),
        ),
        Panel(
            title=f"{c.name}: lock failures (stampede)", unit="ops", runbooks=("CacheStampede",),
            thresholds=above(spec.stampede_rate_max),
            description=(f"Single-flight lock failures per second of cache {c.name}, all instances together. "
                         f"Above {number(spec.stampede_rate_max)}/s for 1m fires CacheStampede: many requests "
                         "load the same keys from the source at once."),
            queries=(Query(f"sum by ({label}) ({rate(sel(c, 'lock_failures'))})", "all instances"),),
        ),
    ]
    if "l2" in spec.tiers:
        detail.append(Panel(
            title=f"{c.name}: L2 failures", unit="ops", runbooks=("CacheL2Unavailable",),
            thresholds=above(spec.l2_failure_rate_max),
            description=(f"Failed L2 (Redis) operations per second of cache {c.name}, per instance. Above "
                         f"{number(spec.l2_failure_rate_max)}/s for 5m fires CacheL2Unavailable."),
            queries=(Query(f"sum by (instance) ({rate(sel(c, 'l2_failures'))})", "{{instance}}"),),
        ))
    health = Panel(
        title=f"Cache {c.name}: hit ratio", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=below(targets[0][2]), runbooks=("CacheHitRateLow",),
        description=(f"Hit ratio of cache {c.name} over all instances"
                     + (", per tier against its own target (" + ", ".join(f"{t} {pct(x)}" for t, _, x in targets)
                        + ")" if targets[0][0] else f" against its target {pct(targets[0][2])}") + "."),
        queries=tuple(Query(ratio(extra), tier or "hit ratio", thresholds=below(threshold))
                      for tier, extra, threshold in targets),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


KIND = Kind(
    key="caches",
    ratios=(HITS,),
    title="Cache",
    spec=CacheSpec,
    schema="cache",
    check=check,
    rules=rules,
    panels=panels,
    concern=Concern("cache-performance", "Cache Performance",
                    "Hit ratio per cache and tier against its target, traffic, misses, stampedes and L2 failures."),
    related={
        "CacheHitRateLow": ("CacheL2Unavailable", "CacheStampede", "RedisDown"),
        "CacheStampede": ("CacheHitRateLow", "ExecutorSaturated", "ExecutorQueueFull", "CircuitBreakerFailureRateHigh"),
        "CacheL2Unavailable": ("RedisDown", "RedisSentinelFailover", "RedisRejectedConnections", "RedisMemoryHigh",
                               "RedisClusterStateFail", "CacheHitRateLow"),
    },
    # Redis being down or split explains every L2 failure of the service's caches.
    inhibitions=tuple(Inhibition(cause, ("CacheL2Unavailable",))
                      for cause in ("RedisDown", "RedisClusterStateFail", "RedisClusterSlotsFail")),
    default_metrics={
        "micrometer": {
            "hits": MetricRef("cache_gets_total", (("result", "hit"),)),
            "misses": MetricRef("cache_gets_total", (("result", "miss"),)),
            "requests": MetricRef("cache_gets_total"),
            "lock_failures": MetricRef("cache_lock_failure_total"),
            "l2_failures": MetricRef("cache_l2_failure_total"),
        },
        "python": {
            "hits": MetricRef("cache_hits_total"),
            "requests": MetricRef("cache_requests_total"),
            "lock_failures": MetricRef("cache_lock_failure_total"),
            "l2_failures": MetricRef("cache_l2_failure_total"),
        },
    },
    # Two counters (hits, requests) have no misses family: misses are requests minus hits.
    optional=frozenset({"misses"}),
)
