"""Cache runbooks: queries on the raw labels the series carry (a tier is `layer` on the series, `tier` only on
obsgen's recordings) that return each cache's truth on a known world, one query per shape of cache, and key
deletion by the cache's own pattern, never a flush of a shared Redis."""

from __future__ import annotations

import re

import pytest

from obsgen.components import cache
from obsgen.spec import parse

from .runbook_pages import blocks, check_page, evaluate, pages, prose, section, steps

SPEC = """\
apiVersion: obsgen/v1
service: {name: shop, team: web}
caches:
  - name: cart
    tiers:
      l1: {provider: caffeine, ttl: 5m, max_size: 1000, labels: {layer: L1}}
      l2: {provider: redis, ttl: 30m, labels: {layer: L2}, key_pattern: "cart:*"}
  - name: catalog
"""
# MapleExpectation's TieredCache counts hits and misses with two counters, per layer
HITS_AND_MISSES = SPEC.replace("  - name: cart\n", "  - name: cart\n    metrics: {hits: cache_hit_total, misses: cache_miss_total}\n")
I1, I2 = "i1:8080", "i2:8080"


@pytest.fixture(scope="module")
def cache_pages():
    return pages(parse(SPEC, "shop.yaml"), cache.KIND)


@pytest.mark.parametrize("alert", ["CacheHitRateLow", "CacheStampede", "CacheL2Unavailable"])
def test_cache_pages_read_the_raw_labels_of_the_caches_that_fired(cache_pages, alert):
    names = {"cart"} if alert == "CacheL2Unavailable" else {"cart", "catalog"}
    check_page(alert, cache_pages[alert], job="shop", identity="cache", names=names,
               raw_labels={"cache", "layer", "result"}, others={"redis_up": None})


def test_each_diagnostic_step_is_one_query_per_shape_of_cache(cache_pages):
    """The two tiers of `cart` share a query (`layer=~"L1|L2"`); `catalog`, without tiers, has its own."""
    first = steps(section(cache_pages["CacheHitRateLow"], "Diagnosis"))[0]
    queries = blocks(first, "promql")
    assert len(queries) == 2
    assert 'layer=~"L1|L2"' in queries[0] and "tier" not in queries[0]
    assert "Cache `cart` (L1), Cache `cart` (L2):" in first and "Cache `catalog`:" in first


def _lookups(metric: str, cache_name: str, instance: str, per_minute: float, **labels: str) -> tuple[str, str]:
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    return f'{metric}{{job="shop", cache="{cache_name}", instance="{instance}"{extra}}}', f"0+{per_minute}x20"


@pytest.mark.parametrize("text", [SPEC, HITS_AND_MISSES], ids=["gets-by-result", "hit-and-miss-counters"])
def test_the_hit_ratio_query_gives_each_instance_and_tier_its_true_ratio(text, tmp_path):
    """cart on i1: L1 hits 80%, L2 50%; on i2: L1 40%, L2 never looked up. Another job's cart stays out."""
    page = pages(parse(text, "shop.yaml"), cache.KIND)["CacheHitRateLow"]
    tiered = blocks(steps(section(page, "Diagnosis"))[0], "promql")[0]
    world: dict[str, str] = {}
    for instance, layer, hits, misses in ((I1, "L1", 48, 12), (I1, "L2", 6, 6), (I2, "L1", 24, 36)):
        if "cache_hit_total" in text:
            world.update([_lookups("cache_hit_total", "cart", instance, hits, layer=layer),
                          _lookups("cache_miss_total", "cart", instance, misses, layer=layer)])
        else:
            world.update([_lookups("cache_gets_total", "cart", instance, hits, layer=layer, result="hit"),
                          _lookups("cache_gets_total", "cart", instance, misses, layer=layer, result="miss")])
    world['cache_gets_total{job="other", cache="cart", instance="i9:8080", layer="L1", result="hit"}'] = "0+99x20"
    expected = {f'{{cache="cart", instance="{I1}", layer="L1"}}': 0.8,
                f'{{cache="cart", instance="{I1}", layer="L2"}}': 0.5,
                f'{{cache="cart", instance="{I2}", layer="L1"}}': 0.4}
    evaluate(tmp_path, world, [(tiered, expected)], at="15m")


def test_an_l2_is_emptied_by_its_own_key_pattern_never_by_a_flush(cache_pages):
    """The Redis behind an L2 holds other caches, locks and rate-limit buckets (Maple's guide): FLUSHDB would
    empty them all. The page deletes the cache's own keys, marked destructive, and says the pattern is the
    tier's `key_pattern`."""
    page = cache_pages["CacheL2Unavailable"]
    commands = "\n".join(blocks(page, "bash"))
    assert "FLUSH" not in commands
    assert "--scan --pattern 'cart:*'" in commands and "UNLINK" in commands
    step = next(s for s in steps(section(page, "Mitigation")) if "UNLINK" in s)
    assert step.split(" ", 1)[1].startswith("**(destructive)**")
    assert "never `FLUSHDB`/`FLUSHALL`" in prose(page)


def test_an_l1_rule_waits_out_a_rollout_and_an_l2_rule_does_not(cache_pages):
    """Every instance restarts with an empty L1 in a rollout: the L1 rule's `for` is 15m, the shared L2's 5m."""
    table = section(cache_pages["CacheHitRateLow"], "What it means")
    assert re.search(r"\| Cache `cart` \(L1\) \|[^\n]*\| `15m` \|", table)
    assert re.search(r"\| Cache `cart` \(L2\) \|[^\n]*\| `5m` \|", table)


LRU = SPEC.replace("  - name: catalog\n", "  - name: catalog\n    single_flight: false\n")


def test_only_a_cache_with_single_flight_gets_a_stampede_alert_and_panel(tmp_path):
    """An in-process LRU has no lock, so no lock failures: CacheStampede (critical) would watch a mechanism the
    app does not have. `catalog` without single-flight gets neither the alert nor its panel; `cart` keeps both,
    and the generated promtool tests of what remains pass."""
    from conftest import build_into, run_unit_tests
    from obsgen.pipeline import build

    spec = parse(LRU, "shop.yaml")
    model = build(spec)
    stampedes = {a.component for a in model.alerts if a.name == "CacheStampede"}
    assert stampedes == {"cart"}
    panels = [p.title for c in model.components for p in getattr(c.panels, "detail", ())]
    assert "cart: lock failures (stampede)" in panels and "catalog: lock failures (stampede)" not in panels
    build_into(tmp_path, spec)
    result = run_unit_tests(tmp_path / "shop" / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stampede_threshold_on_a_cache_without_single_flight_is_refused():
    from obsgen.errors import SpecError

    with pytest.raises(SpecError) as err:
        parse(LRU.replace("    single_flight: false\n", "    single_flight: false\n    stampede_rate_max: 5\n"),
              "shop.yaml")
    assert "single_flight: false" in str(err.value) and "stampede_rate_max" in str(err.value)


def _l2_page(redis: str, provider: str = "redis") -> str:
    text = SPEC.replace("l2: {provider: redis,", "l2: {provider: " + provider + ",") + redis
    return pages(parse(text, "shop.yaml"), cache.KIND)["CacheL2Unavailable"]


def test_the_l2_page_names_sentinel_and_redisson_only_where_the_spec_does():
    standalone = _l2_page("redis:\n  - {name: store, topology: standalone}\n")
    assert not re.search(r"(?i)sentinel|failover|redisson", standalone), standalone
    sentinel = _l2_page("redis:\n  - {name: store, topology: sentinel, master_name: mymaster, quorum: 2, "
                        "replicas: 1, sentinels: 3}\n", provider="redisson")
    assert "RedisSentinelFailover" in sentinel and "failover" in sentinel
    assert "Redisson `RedisTimeoutException`" in sentinel
