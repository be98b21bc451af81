"""Caches: hit ratio per tier, stampedes (single-flight lock failures), L2 outages.

Micrometer names: ``cache_gets_total{cache,result}`` (Caffeine and Redisson
binders). Lock and L2 failures have no library metric: the Maple guide's
TieredCache counts them as ``cache_lock_failure_total`` and
``cache_l2_failure_total``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import Component, Kind, Rule
from obsgen.components.shapes import RatioSignals, rate_above, ratio_of_rates
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
        description=(f"Cache {{{{ $labels.{spec.label} }}}} fails {{{{ $value | humanize }}}} lock acquisitions/s "
                     f"across all instances (threshold {spec.stampede_rate_max:g}/s) for {{for}}: many requests "
                     "are loading the same keys from the source at once."),
    )
    if "l2" in spec.tiers:
        out += rate_above(
            c, "CacheL2Unavailable", signal="l2_failures", threshold=spec.l2_failure_rate_max, window=FIVE_MIN,
            for_="5m", severity="warning",
            summary="The cache's L2 (Redis) tier is failing; requests fall back to L1 and the source.",
            description=(f"Cache {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} records "
                         f"{{{{ $value | humanize }}}} L2 failures/s (threshold {spec.l2_failure_rate_max:g}/s) "
                         "for {for}."),
        )
    return out


KIND = Kind(
    key="caches",
    title="Cache",
    spec=CacheSpec,
    rules=rules,
    default_metrics={
        "micrometer": {
            "hits": MetricRef("cache_gets_total", (("result", "hit"),)),
            "misses": MetricRef("cache_gets_total", (("result", "miss"),)),
            "requests": MetricRef("cache_gets_total"),
            "lock_failures": MetricRef("cache_lock_failure_total"),
            "l2_failures": MetricRef("cache_l2_failure_total"),
        },
    },
)
