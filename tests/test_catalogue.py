"""The alert catalogue is a public contract: names, labels and annotations people route on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SPECS, VALID_SPECS
from obsgen.components.base import Alert
from obsgen.pipeline import build
from obsgen.spec import load

MAPLE_ALERTS = {
    "CacheHitRateLow", "CacheStampede", "CacheL2Unavailable", "CircuitBreakerOpen", "CircuitBreakerFailureRateHigh",
    "CircuitBreakerNotOpening",
    "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh", "ExecutorQueueFull", "ExecutorRejectingTasks",
    "ExecutorSaturated", "RedisDown", "RedisReplicaDown", "RedisExporterDown", "RedisReplicationBroken",
    "RedisSentinelFailover", "RedisSentinelQuorumAtRisk", "RedisSentinelDown", "RedisNoHealthyReplica",
    "RedisMemoryHigh", "RedisRejectedConnections",
    "ErrorBudgetBurnFast", "ErrorBudgetBurnSlow",
    "LockAcquireLatencyHigh", "LockAcquireFailuresHigh",
    "ServiceDown", "InstanceDown", "ComponentMetricsMissing",  # the service's own (components/service.py)
}


SERVICE_OWN = {"ServiceDown", "InstanceDown", "ComponentMetricsMissing"}  # every spec's (components/service.py)


def alerts_of(spec) -> list[Alert]:
    return [r for g in build(spec).groups for r in g.rules if isinstance(r, Alert)]


def test_maple_emits_every_applicable_catalogue_alert(maple):
    assert {a.name for a in alerts_of(maple)} == MAPLE_ALERTS


def test_every_alert_carries_routing_labels_and_annotations(maple):
    for alert in alerts_of(maple):
        assert alert.labels["service"] == "maple-expectation"
        assert alert.labels["team"] == "sre"
        assert alert.labels["severity"] in ("critical", "warning", "info")
        assert alert.labels["component"]
        assert alert.summary[0].isupper() and alert.summary.endswith(".") and "{{" not in alert.summary
        assert "{{" in alert.description, alert.name
        assert alert.runbook_url == f"../runbooks/{alert.name}.md"
        assert len(alert.name) <= 40 and re.fullmatch(r"[A-Z][A-Za-z0-9]+", alert.name)


def test_every_alert_has_a_firing_and_a_silent_scenario(maple):
    for alert in alerts_of(maple):
        verdicts = [c.fires for s in alert.scenarios for c in s.checks]
        assert True in verdicts and False in verdicts, alert.name


def test_severities_and_durations_follow_the_maple_guide(maple):
    by_name = {a.name: a for a in alerts_of(maple)}
    assert (by_name["CacheStampede"].severity, by_name["RedisDown"].severity,
            by_name["CircuitBreakerOpen"].severity) == ("critical",) * 3
    assert str(by_name["CircuitBreakerOpen"].for_) == "1m"
    assert str(by_name["ExecutorQueueFull"].for_) == "1m"
    assert str(by_name["CacheHitRateLow"].for_) == "5m"
    assert str(by_name["CircuitBreakerFailureRateHigh"].for_) == "2m"


def test_queue_full_threshold_is_ninety_percent_of_capacity(maple):
    queue = [a for a in alerts_of(maple) if a.name == "ExecutorQueueFull"]
    assert all(str(a.expr).endswith(">= 180") for a in queue)


def test_l2_alert_only_for_caches_with_an_l2_tier(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: shop, team: web}
caches:
  - name: local
    tiers: {l1: {provider: caffeine}}
  - name: shared
    tiers: {l2: {provider: redis}}
""")
    l2 = [a.labels["component"] for a in alerts_of(spec) if a.name == "CacheL2Unavailable"]
    assert l2 == ["shared"]


def test_topology_decides_which_redis_alerts_exist(spec_from):
    def names(redis: str) -> set[str]:
        spec = spec_from(f"apiVersion: obsgen/v1\nservice: {{name: s, team: t}}\nredis:\n  - {redis}\n")
        return {a.name for a in alerts_of(spec)} - {"ServiceDown", "InstanceDown"}

    standalone = names("{name: r, topology: standalone}")
    assert standalone == {"RedisDown", "RedisExporterDown", "RedisMemoryHigh", "RedisRejectedConnections"}
    cluster = names("{name: r, topology: cluster, replicas: 1}")
    assert {"RedisClusterStateFail", "RedisClusterSlotsFail", "RedisReplicationBroken"} <= cluster
    assert not {n for n in cluster if n.startswith("RedisSentinel")}
    sentinel = names("{name: r, topology: sentinel, master_name: m, sentinels: 3, quorum: 2, replicas: 1}")
    assert {"RedisSentinelFailover", "RedisSentinelQuorumAtRisk", "RedisSentinelDown", "RedisNoHealthyReplica",
            "RedisReplicaDown"} <= sentinel
    assert "RedisClusterStateFail" not in sentinel


def test_tuning_overrides_severity_and_for_and_disables_alerts(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t}
executors:
  - name: pool
    queue_capacity: 100
    alerts:
      ExecutorQueueFull: {severity: critical, for: 3m}
      ExecutorSaturated: {enabled: false}
""")
    by_name = {a.name: a for a in alerts_of(spec)}
    assert "ExecutorSaturated" not in by_name
    assert (by_name["ExecutorQueueFull"].severity, str(by_name["ExecutorQueueFull"].for_)) == ("critical", "3m")
    assert "for 3m" in by_name["ExecutorQueueFull"].description


def test_label_values_are_escaped_in_promql(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t, selector: {job: 'we"ird\\job'}}
executors: [{name: pool, queue_capacity: 10}]
""")
    expr = next(str(a.expr) for a in alerts_of(spec) if a.name == "ExecutorQueueFull")
    assert 'job="we\\"ird\\\\job"' in expr


# --------------------------------------------------------------------------- every spec, every kind


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: p.stem)
def test_every_alert_of_every_spec_follows_the_catalogue_rules(path: Path):
    for alert in alerts_of(load(path)):
        assert {"service", "team", "severity", "component"} <= set(alert.labels), alert.name
        assert alert.summary[0].isupper() and alert.summary.endswith(".") and "{{" not in alert.summary
        assert "{{" in alert.description and "{for}" not in alert.description, alert.name
        assert alert.runbook_url == f"../runbooks/{alert.name}.md"
        assert len(alert.name) <= 40 and re.fullmatch(r"[A-Z][A-Za-z0-9]+", alert.name)
        verdicts = [c.fires for s in alert.scenarios for c in s.checks]
        assert True in verdicts and False in verdicts, alert.name


def test_one_summary_per_alert_name_whatever_the_component(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t, profile: python}
backpressure:
  - {name: queued, max_concurrent: 10, queue_capacity: 100}
  - {name: unqueued, max_concurrent: 10}
""")
    summaries = {}
    for a in alerts_of(spec):
        summaries.setdefault(a.name, set()).add(a.summary)
    assert all(len(s) == 1 for s in summaries.values()), summaries


def test_db_pool_exhaustion_needs_waiters_only_where_the_library_counts_them(spec_from):
    def pool_alerts(profile: str) -> dict[str, str]:
        spec = spec_from(f"apiVersion: obsgen/v1\nservice: {{name: s, team: t, profile: {profile}}}\n"
                         "db_pools: [{name: main, pool_size: 5, max_overflow: 10}]\n")
        return {a.name: str(a.expr) for a in alerts_of(spec) if a.name not in SERVICE_OWN}

    hikari, sqlalchemy = pool_alerts("micrometer"), pool_alerts("python")
    assert "hikaricp_connections_pending" in hikari["DbPoolExhausted"] and "DbPoolPendingHigh" in hikari
    assert hikari["DbPoolExhausted"].startswith("max by (instance, pool) (hikaricp_connections_active{")
    assert sqlalchemy["DbPoolExhausted"] == ('max by (instance, pool) (db_pool_checked_out_connections{job="s", '
                                             'pool="main"}) >= 15')
    assert set(sqlalchemy) == {"DbPoolExhausted", "DbPoolAcquireTimeouts"}


def test_a_python_pool_gets_waiter_alerts_once_the_spec_names_a_metric(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: s, team: t, profile: python}\n"
                     "db_pools: [{name: main, pool_size: 5, metrics: {pending: db_pool_checkout_waiting}}]\n")
    exprs = {a.name: str(a.expr) for a in alerts_of(spec)}
    assert "db_pool_checkout_waiting" in exprs["DbPoolExhausted"] and "DbPoolPendingHigh" in exprs


def test_bulkhead_alerts_follow_queue_and_library(spec_from):
    def of(profile: str, item: str) -> dict[str, str]:
        spec = spec_from(f"apiVersion: obsgen/v1\nservice: {{name: s, team: t, profile: {profile}}}\n"
                         f"backpressure: [{item}]\n")
        return {a.name: str(a.expr) for a in alerts_of(spec) if a.name not in SERVICE_OWN}

    semaphore = of("micrometer", "{name: b, max_concurrent: 25}")
    assert set(semaphore) == {"BackpressureSaturated", "BackpressureSheddingLoad"}
    assert semaphore["BackpressureSaturated"] == ('min by (instance, name) '
                                                  '(resilience4j_bulkhead_available_concurrent_calls{job="s", name="b"}) <= 0')
    oms = of("python", "{name: heavy_operation, label: circuit_name, max_concurrent: 100, queue_capacity: 1000}")
    assert oms["BackpressureQueueNearFull"].endswith(">= 900")
    assert "backpressure_active_requests" in oms["BackpressureSaturated"] and ">= 100" in oms["BackpressureSaturated"]
    assert 'circuit_name="heavy_operation"' in oms["BackpressureSheddingLoad"]


def test_lock_alerts_use_the_maple_guides_numbers(maple):
    by_name = {a.name: a for a in alerts_of(maple)}
    latency, failures = by_name["LockAcquireLatencyHigh"], by_name["LockAcquireFailuresHigh"]
    assert str(latency.expr).startswith("histogram_quantile(0.95, sum by (le, lock) (rate(lock_acquire_seconds_bucket{")
    assert ") > 0.1\nand\n" in str(latency.expr) and 'le="+Inf"' in str(latency.expr)
    assert "instance_lock:acquire_failure:ratio_rate5m" in str(failures.expr) and "> 0.1\n" in str(failures.expr)
    assert "LockHoldTimeHigh" not in by_name  # no hold-time limit in the guide


def test_percentile_alerts_check_no_traffic_and_low_traffic(maple):
    latency = next(a for a in alerts_of(maple) if a.name == "LockAcquireLatencyHigh")
    stories = {s.slug: s for s in latency.scenarios}
    assert not any(c.fires for c in stories["slow-idle"].checks)
    assert [c.fires for c in stories["slow-busy"].checks] == [False, True]
    assert stories["slow-busy"].value == pytest.approx(0.15)  # 10% in (100 ms, 200 ms]: p95 interpolates to 150 ms
