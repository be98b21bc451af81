"""The alert catalogue is a public contract: names, labels and annotations people route on."""

from __future__ import annotations

import re

from obsgen.components.base import Alert
from obsgen.pipeline import rule_groups

MAPLE_ALERTS = {
    "CacheHitRateLow", "CacheStampede", "CacheL2Unavailable", "CircuitBreakerOpen", "CircuitBreakerFailureRateHigh",
    "CircuitBreakerNotOpening",
    "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh", "ExecutorQueueFull", "ExecutorRejectingTasks",
    "ExecutorSaturated", "RedisDown", "RedisReplicationBroken", "RedisSentinelFailover", "RedisSentinelQuorumAtRisk",
    "RedisNoHealthyReplica", "RedisMemoryHigh", "RedisRejectedConnections",
    "ErrorBudgetBurnFast", "ErrorBudgetBurnSlow",
}


def alerts_of(spec) -> list[Alert]:
    return [r for g in rule_groups(spec) for r in g.rules if isinstance(r, Alert)]


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
    assert all(a.expr.endswith(">= 180") for a in queue)


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
        return {a.name for a in alerts_of(spec)}

    standalone = names("{name: r, topology: standalone}")
    assert standalone == {"RedisDown", "RedisMemoryHigh", "RedisRejectedConnections"}
    cluster = names("{name: r, topology: cluster, replicas: 1}")
    assert {"RedisClusterStateFail", "RedisClusterSlotsFail", "RedisReplicationBroken"} <= cluster
    assert not {n for n in cluster if n.startswith("RedisSentinel")}
    sentinel = names("{name: r, topology: sentinel, master_name: m, sentinels: 3, quorum: 2, replicas: 1}")
    assert {"RedisSentinelFailover", "RedisSentinelQuorumAtRisk", "RedisNoHealthyReplica"} <= sentinel
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
    expr = next(a.expr for a in alerts_of(spec) if a.name == "ExecutorQueueFull")
    assert 'job="we\\"ird\\\\job"' in expr
