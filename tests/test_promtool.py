"""Every spec's generated rules pass promtool's lint and their generated unit tests pass,
and those unit tests are strong enough to catch a broken rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SPECS, VALID_SPECS, build_into, promtool
from obsgen.spec import load


@pytest.fixture(scope="module", params=SPECS + VALID_SPECS, ids=lambda p: p.stem)
def built(request, tmp_path_factory) -> Path:
    spec = load(request.param)
    out = tmp_path_factory.mktemp(request.param.stem)
    build_into(out, spec)
    return out / spec.service.name / "prometheus"


def test_rules_pass_promtool_lint(built):
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", cwd=built)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_unit_tests_pass(built):
    result = promtool("test", "rules", "rules.test.yaml", cwd=built)
    assert result.returncode == 0, result.stdout + result.stderr


# Each mutation breaks one trap the rules are built to avoid; the generated tests must catch it.
MUTATIONS = {
    "breaker open ignoring half-open misses a re-opening breaker": (r'state=~"open\|half_open\|forced_open"', 'state=~"open"'),
    "breaker state without a state matcher fires on closed breakers": (r', state=~"open\|half_open\|forced_open"', ""),
    "hit ratio without the traffic guard fires on idle caches": (r"\n *and\n *instance_cache:hit_total:rate5m\{[^}]*\} >= 1", ""),
    "memory ratio without the maxmemory guard fires without a limit": (r"\n *and\n *redis_memory_max_bytes\{[^}]*\} > 0", ""),
    "queue alert without `for` pages on a spike": (r"(alert: ExecutorQueueFull\n(?:.*\n){1,3}?    for: )1m", r"\g<1>0s"),
    "hit ratio threshold off by a tier": (r"< 0.8\n", "< 0.3\n"),
    "stampede counted with delta trips on a restart": (r"rate\(cache_lock_failure_total", "delta(cache_lock_failure_total"),
    "failover window too short": (r"(last_over_time\([^\n]*)\[5m\]\)", r"\g<1>[1m])"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_catch_a_broken_rule(mutation, tmp_path, maple):
    build_into(tmp_path, maple)
    prom = tmp_path / maple.service.name / "prometheus"
    rules = (prom / "rules.yaml").read_text()
    pattern, replacement = MUTATIONS[mutation]
    mutated, count = re.subn(pattern, replacement, rules)
    assert count, f"mutation pattern no longer matches the rules: {pattern}"
    (prom / "rules.yaml").write_text(mutated)
    result = promtool("test", "rules", "rules.test.yaml", cwd=prom)
    assert result.returncode != 0, f"the generated tests did not notice: {mutation}"


# The same for the kinds the small specs exercise: (spec under specs/ or tests/specs/valid/, pattern, replacement).
SPEC_MUTATIONS = {
    "lock percentile without the traffic guard fires on an idle lock": (
        "maple", r'\n *and\n *sum by \(lock\) \(rate\(lock_acquire_seconds_bucket\{[^}]*le="\+Inf"\}\[5m\]\)\) >= 0.1', ""),
    "lock p99 instead of p95 fires on a tail the p95 leaves out": (
        "maple", r"histogram_quantile\(0.95, sum by \(le, lock\) \(rate\(lock_acquire", "histogram_quantile(0.99, sum by (le, lock) (rate(lock_acquire"),
    "quantile without `le` in the grouping never fires": ("lock-python", r"sum by \(le, lock\)", "sum by (lock)"),
    "quantile of bucket deltas breaks on a counter reset": (
        "lock-python", r"\(rate\(lock_acquire_seconds_bucket", "(delta(lock_acquire_seconds_bucket"),
    "pool exhaustion without waiters fires on a pool keeping up": (
        "db-pool-hikari", r"\n *and\n *max by \(instance, pool\) \(hikaricp_connections_pending\{[^}]*\}\) > 0", ""),
    "pool exhaustion at pool_size ignores the overflow": ("db-pool-sqlalchemy", r"\) >= 15\n", ") >= 5\n"),
    "saturation without the queue condition fires on a bulkhead keeping up": (
        "backpressure-python", r"\n *and\n *max by \(instance, circuit_name\) \(backpressure_queue_size\{[^}]*\}\) > 0", ""),
    "queue alert at capacity instead of 90% misses a nearly full queue": ("backpressure-python", r">= 900\n", ">= 1000\n"),
    "free permits below 0 instead of at 0 miss a full semaphore bulkhead": (
        "backpressure-micrometer", r"(resilience4j_bulkhead_available_concurrent_calls\{[^}]*\}\) )<= 0", r"\g<1>< 0"),
    "permit exhaustion without `for` fires on a burst": (
        "rate-limiter-micrometer", r"(alert: RateLimiterPermitsExhausted\n(?:.*\n){1,3}?    for: )5m", r"\g<1>0s"),
}
SPEC_FILES = {p.stem: p for p in SPECS + VALID_SPECS}


@pytest.mark.parametrize("mutation", sorted(SPEC_MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_of_every_kind_catch_a_broken_rule(mutation, tmp_path):
    name, pattern, replacement = SPEC_MUTATIONS[mutation]
    spec = load(SPEC_FILES[name])
    build_into(tmp_path, spec)
    prom = tmp_path / spec.service.name / "prometheus"
    rules = (prom / "rules.yaml").read_text()
    mutated, count = re.subn(pattern, replacement, rules)
    assert count, f"mutation pattern no longer matches the rules of {name}: {pattern}"
    (prom / "rules.yaml").write_text(mutated)
    result = promtool("test", "rules", "rules.test.yaml", cwd=prom)
    assert result.returncode != 0, f"the generated tests did not notice: {mutation}"
