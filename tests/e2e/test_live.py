"""The generated alerts and dashboards against real Prometheus, Redis, Sentinel, redis_exporter and a live app.

The rules are those `obsgen build --time-scale 10` makes from tests/e2e/maple-e2e.yaml.
The scenarios themselves are in scenarios.py; they run side by side and each test
here asserts the outcome of one.
"""

import pytest

pytestmark = [pytest.mark.e2e]


@pytest.mark.scenario("healthy")
def test_a_healthy_run_has_no_alert_pending_or_firing(scenarios):
    scenarios.result("healthy")


@pytest.mark.scenario("breaker_open")
def test_an_open_breaker_fires_circuit_breaker_open_which_resolves_once_closed(scenarios):
    scenarios.result("breaker_open")


@pytest.mark.scenario("breaker_flapping")
def test_a_breaker_that_keeps_reopening_fires_circuit_breaker_open(scenarios):
    scenarios.result("breaker_flapping")


@pytest.mark.scenario("cache_hit_low")
def test_a_low_hit_ratio_with_traffic_fires_cache_hit_rate_low(scenarios):
    scenarios.result("cache_hit_low")


@pytest.mark.scenario("cache_hit_idle")
def test_the_same_ratios_without_traffic_fire_nothing(scenarios):
    scenarios.result("cache_hit_idle")


@pytest.mark.scenario("executor_queue")
def test_a_full_queue_fires_executor_queue_full_and_a_short_spike_does_not(scenarios):
    scenarios.result("executor_queue")


@pytest.mark.scenario("stampede")
def test_lock_failures_fire_cache_stampede(scenarios):
    scenarios.result("stampede")


@pytest.mark.scenario("catalogue")
def test_every_other_app_alert_fires_on_its_fault(scenarios):
    scenarios.result("catalogue")


@pytest.mark.scenario("redis_failover")
def test_killing_the_redis_master_fires_down_and_failover_and_the_returning_master_resolves_them(scenarios):
    scenarios.result("redis_failover")


@pytest.mark.scenario("redis_replication")
def test_a_replica_that_loses_its_master_fires_replication_broken_until_the_master_returns(scenarios):
    scenarios.result("redis_replication")


@pytest.mark.scenario("outages")
def test_a_renamed_metric_a_crashed_instance_and_a_dead_service_each_fire_their_own_alert(scenarios):
    scenarios.result("outages")


@pytest.mark.scenario("dashboards")
def test_every_dashboard_query_returns_data(scenarios):
    scenarios.result("dashboards")
