"""Caches: hit ratio per tier, stampedes (single-flight lock failures), L2 outages.

Micrometer names: ``cache_gets_total{cache,result}`` (Micrometer's cache
binders). Lock and L2 failures have no library metric: a tiered cache counts
them itself as ``cache_lock_failure_total`` and ``cache_l2_failure_total``. An
app that counts hits and misses with counters of its own
(``cache_hit_total{layer}`` and ``cache_miss_total{layer}``) names them under
``metrics`` (``hits``, ``misses``): lookups are then hits plus misses.

Python (cachetools, aiocache and friends export nothing): the app counts with
prometheus_client, ``cache_hits_total`` and ``cache_requests_total`` (two
counters, so misses are requests minus hits), and the same lock and L2 failure
counters.

Stampede protection is a fact of the cache, not of the kind: a cache with
``single_flight: false`` (an in-process LRU, a plain read-through) has no lock
whose failures could be counted, so it gets no ``CacheStampede``.
"""

from __future__ import annotations


from obsgen.components.base import (AlertDef, Built, Component, Concern, Finding, Given, Inhibition, Kind,
                                    RatioSignals, Rule)
from obsgen.components.shapes import rate_above, ratio_of_rates, share, summed, total_rate
from obsgen.components.viz import RATE, ComponentPanels, Panel, Query, above, below, jobs, num, pct, rate, sel
from obsgen.model.promql import Offset, agg, binop, number
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

ONE_MIN = Duration.parse("1m")
FIVE_MIN = Duration.parse("5m")
L1_FOR = "15m"
"""An L1 lives inside each process: a rollout restarts every instance with an empty one, which fills within
minutes. Its hit-ratio alert waits longer by default, so a deploy does not open a ticket per instance."""

HIT_RATE_LOW = AlertDef(
    "CacheHitRateLow", "warning", "5m", "Cache hit ratio is below its threshold while the cache is busy.",
    related=("CacheL2Unavailable", "CacheStampede", "RedisDown"))
STAMPEDE = AlertDef(
    "CacheStampede", "critical", "1m", "Single-flight lock failures show a cache stampede; the source is being hammered.",
    related=("CacheHitRateLow", "ExecutorSaturated", "ExecutorQueueFull", "CircuitBreakerFailureRateHigh"))
L2_UNAVAILABLE = AlertDef(
    "CacheL2Unavailable", "warning", "5m",
    "The cache's shared L2 tier is failing; requests fall back to a nearer tier or the source.",
    related=("RedisDown", "RedisSentinelFailover", "RedisRejectedConnections", "RedisMemoryHigh",
             "RedisClusterStateFail", "CacheHitRateLow"))


@record(kw_only=True)
class Tier:
    """One tier of a multi-level cache (``tiers:`` of a cache)."""

    provider: str | None
    ttl: Duration | None
    max_size: int | None
    labels: Labels
    hit_rate_min: float | None
    key_pattern: str | None


@record(kw_only=True)
class CacheSpec(ComponentSpec):
    """One item of a spec's ``caches:`` list (cache), as the schema defaulted it."""

    label: str
    hit_rate_min: float
    min_request_rate: float
    stampede_rate_max: float
    l2_failure_rate_max: float
    single_flight: bool
    """Whether one request per key loads a missing value while the others wait (a lock): CacheStampede watches
    that lock's failures, so only a cache that has one gets it."""
    tiers: dict[str, Tier]

    @property
    def longest_ttl(self) -> Duration | None:
        """How long a cold cache can take to warm up: the longest TTL of its tiers (None: no tier says)."""
        return max((t.ttl for t in self.tiers.values() if t.ttl), key=lambda d: d.millis, default=None)


def check(given: Given) -> list[Finding]:
    found = [Finding(("tiers", name, "hit_rate_min"), "a tier threshold needs `labels` that select the tier's series; "
                     "add them or move hit_rate_min to the cache")
             for name, tier in given.item.get("tiers", {}).items() if "hit_rate_min" in tier and not tier.get("labels")]
    if given.item.get("single_flight") is False and "stampede_rate_max" in given.written:
        found.append(Finding(("stampede_rate_max",), "a cache with `single_flight: false` has no lock to fail, so "
                             "it gets no CacheStampede; remove stampede_rate_max, or set single_flight: true if "
                             "the cache does lock", key=True))
    return found


HITS = RatioSignals(part="hits", total="requests", rest="misses")
MICROMETER = "Micrometer's cache binders (the cache must record statistics)"


@record
class Target:
    """What one hit-ratio alert judges: a tier's series (``extra``), its ``tag`` and threshold."""

    name: str
    extra: Labels
    tag: Labels
    threshold: float


def targets(c: Component) -> list[Target]:
    """One hit-ratio target per tier with labels (``tier=L1``), else the whole cache."""
    spec: CacheSpec = c.spec  # type: ignore[assignment]
    tiers = sorted(spec.tiers.items())
    labelled = [Target(name, dict(tier.labels), {"tier": name.upper()}, tier.hit_rate_min or spec.hit_rate_min)
                for name, tier in tiers if tier.labels]
    return labelled or [Target("", {}, {}, spec.hit_rate_min)]


def _tier_keys(c: Component) -> tuple[str, ...]:
    return tuple(sorted({k for t in targets(c) for k in t.extra}))


def rules(c: Component) -> list[Rule]:
    spec: CacheSpec = c.spec  # type: ignore[assignment]
    out: list[Rule] = []
    label = spec.label
    for t in targets(c):
        by = ("instance", label) + tuple(t.extra)
        out += ratio_of_rates(
            c, HIT_RATE_LOW, signals=HITS, record="instance_cache:hit", threshold=t.threshold, below=True,
            min_rate=spec.min_request_rate, extra=t.extra, tag=t.tag,
            for_=Duration.parse(L1_FOR) if t.name == "l1" else None,
            condition=(f"hit ratio below {pct(t.threshold)} while serving at least "
                       f"{num(spec.min_request_rate)} lookups/s"),
            description=(
                f"Cache {{{{ $labels.{label} }}}}" + (" ({{ $labels.tier }})" if t.tag else "")
                + " on {{ $labels.instance }} hits {{ $value | humanizePercentage }} of lookups, below "
                f"{t.threshold * 100:g}% for {{for}}; more requests fall through to the source."),
            queries={
                "ratio": share(c, HITS, by, FIVE_MIN, t.extra),
                "lookups": total_rate(c, HITS, by, FIVE_MIN, t.extra),
                "lookups_last_week": total_rate(c, HITS, by, FIVE_MIN, t.extra, select=lambda signal, extra: Offset(
                    c.select(signal, extra), Duration.parse("1w"))),
            },
        )
    if spec.single_flight:  # no lock, no lock failures: a stampede then shows as misses and source load
        out += rate_above(
            c, STAMPEDE, signal="lock_failures", threshold=spec.stampede_rate_max, window=ONE_MIN * 2,
            per_instance=False,
            condition=(f"more than {num(spec.stampede_rate_max)} single-flight lock failures/s summed over all "
                       "instances"),
            description=(f"Cache {{{{ $labels.{label} }}}} fails {{{{ $value | humanize }}}} lock acquisitions/s "
                         f"across all instances (threshold {spec.stampede_rate_max:g}/s) for {{for}}: many requests "
                         "are loading the same keys from the source at once."),
            queries={"by_instance": agg("sum", rate_over(c.select("lock_failures"), ONE_MIN), ("instance", label))},
        )
    if "l2" in spec.tiers:
        out += rate_above(
            c, L2_UNAVAILABLE, signal="l2_failures", threshold=spec.l2_failure_rate_max, window=FIVE_MIN,
            condition=f"more than {num(spec.l2_failure_rate_max)} L2 failures/s on an instance (5m rate)",
            description=(f"Cache {{{{ $labels.{label} }}}} on {{{{ $labels.instance }}}} records "
                         f"{{{{ $value | humanize }}}} L2 failures/s (threshold {spec.l2_failure_rate_max:g}/s) "
                         "for {for}."),
            queries={"by_instance": agg("sum", rate_over(c.select("l2_failures"), FIVE_MIN), ("instance", label))},
        )
    return out


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: CacheSpec = c.spec  # type: ignore[assignment]
    label = spec.label
    tiers = targets(c)
    tier_keys = _tier_keys(c)
    tier_legend = " ".join(f"{{{{{k}}}}}" for k in tier_keys)
    def hit_share(t: Target, by: tuple[str, ...] | None):
        return share(c, HITS, by, RATE, t.extra, select=lambda signal, extra: sel(c, signal, extra))

    by_result = not summed(c, HITS) and c.metric("hits").name == c.metric("requests").name
    if by_result:
        lookups = (Query(agg("sum", rate(sel(c, "requests")), tier_keys + ("result",)),
                         (tier_legend + " {{result}}").strip()),)
    else:  # hits and lookups are two counters (or hits and misses): draw each
        drawn = ("hits", "misses") if summed(c, HITS) else ("requests", "hits")
        words = {"requests": "lookups", "hits": "hits", "misses": "misses"}
        lookups = tuple(Query(agg("sum", rate(sel(c, signal)), tier_keys or None),
                              f"{tier_legend} {words[signal]}".strip()) for signal in drawn)
    miss_by = ("instance",) + tier_keys
    misses = (agg("sum", rate(sel(c, "misses")), miss_by) if c.has("misses") and c.has_metric("misses") else
              binop("-", agg("sum", rate(sel(c, "requests")), miss_by), agg("sum", rate(sel(c, "hits")), miss_by),
                    multiline=True))

    detail = [
        Panel(
            title=f"{c.name}: hit ratio" + (f" {t.tag['tier']}" if t.tag else ""),
            description=(f"Share of lookups of cache {c.name}" + (f" served by tier {t.tag['tier']}" if t.tag else "")
                         + ", per instance. " + built.fires(
                             HIT_RATE_LOW, f"Below {pct(t.threshold)} for {_for(built, t)} while the cache serves at "
                                           f"least {number(spec.min_request_rate)} req/s fires {{alert}}.")).strip(),
            unit="percentunit", min=0, max=1, thresholds=below(t.threshold), alerts=(HIT_RATE_LOW,), tag=t.tag,
            queries=(Query(hit_share(t, ("instance",)), "{{instance}}"),),
        )
        for t in tiers
    ]
    detail += [
        Panel(
            title=f"{c.name}: request rate", unit="reqps", alerts=(HIT_RATE_LOW,),
            description=f"Lookups per second of cache {c.name} " + ("by result" if by_result else "and its hits")
                        + (" and tier" if tier_keys else "")
                        + ", all instances. The hit-ratio alert only judges a cache this busy or busier: "
                        + f"{number(spec.min_request_rate)} req/s.",
            queries=lookups,
        ),
        Panel(
            title=f"{c.name}: misses", unit="reqps", alerts=(HIT_RATE_LOW,),
            description=f"Misses per second of cache {c.name} per instance"
                        + (" and tier" if tier_keys else "") + ": each one is a load from the source.",
            queries=(Query(misses, ("{{instance}} " + tier_legend).strip()),),
        ),
    ]
    if spec.single_flight:
        detail.append(Panel(
            title=f"{c.name}: lock failures (stampede)", unit="ops", alerts=(STAMPEDE,),
            thresholds=above(spec.stampede_rate_max),
            description=(f"Single-flight lock failures per second of cache {c.name}, all instances together. "
                         + built.fires(STAMPEDE, f"Above {number(spec.stampede_rate_max)}/s for {{for}} fires "
                                                 "{alert}: many requests load the same keys from the source at once.")
                         ).strip(),
            queries=(Query(agg("sum", rate(sel(c, "lock_failures")), (label,)), "all instances"),),
        ))
    if "l2" in spec.tiers:
        detail.append(Panel(
            title=f"{c.name}: L2 failures", unit="ops", alerts=(L2_UNAVAILABLE,),
            thresholds=above(spec.l2_failure_rate_max),
            description=(f"Failed L2 (Redis) operations per second of cache {c.name}, per instance. "
                         + built.fires(L2_UNAVAILABLE, f"Above {number(spec.l2_failure_rate_max)}/s for {{for}} "
                                                       "fires {alert}.")).strip(),
            queries=(Query(agg("sum", rate(sel(c, "l2_failures")), ("instance",)), "{{instance}}"),),
        ))
    health = Panel(
        title=f"Cache {c.name}: hit ratio", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=below(tiers[0].threshold), alerts=(HIT_RATE_LOW,),
        description=(f"Hit ratio of cache {c.name} over all instances"
                     + (", per tier against its own target (" + ", ".join(f"{t.tag['tier']} {pct(t.threshold)}"
                                                                       for t in tiers) + ")"
                        if tiers[0].tag else f" against its target {pct(tiers[0].threshold)}") + "."),
        queries=tuple(Query(hit_share(t, None), t.tag.get("tier", "hit ratio"), thresholds=below(t.threshold))
                      for t in tiers),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


def _for(built: Built, t: Target) -> str:
    alert = next((a for a in built.alerts if a.definition is HIT_RATE_LOW and a.tag == t.tag), None)
    return str(alert.for_) if alert else ""


KIND = Kind(
    key="caches",
    ratios=(HITS,),
    title="Cache",
    spec=CacheSpec,
    schema="cache",
    check=check,
    alerts=(HIT_RATE_LOW, STAMPEDE, L2_UNAVAILABLE),
    rules=rules,
    panels=panels,
    concern=Concern("cache-performance", "Cache Performance",
                    "Hit ratio per cache and tier against its target, traffic, misses, stampedes and L2 failures."),
    # Redis being down or split explains every L2 failure of the service's caches.
    inhibitions=tuple(Inhibition(cause, ("CacheL2Unavailable",))
                      for cause in ("RedisDown", "RedisClusterStateFail", "RedisClusterSlotsFail")),
    default_metrics={
        "micrometer": {
            "hits": MetricRef("cache_gets_total", (("result", "hit"),), MICROMETER),
            "misses": MetricRef("cache_gets_total", (("result", "miss"),), MICROMETER),
            "requests": MetricRef("cache_gets_total", (), MICROMETER),
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
    # Micrometer binds the cache's function counters at start-up; python caches count with labelled counters.
    presence={"micrometer": "requests"},
)
