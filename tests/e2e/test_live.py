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


@pytest.mark.scenario("redis_drill")
def test_the_sentinel_drill_pages_only_for_master_loss_and_its_runbooks_end_each_outage_without_data_loss(scenarios):
    """A replica and a sentinel lost: warnings only. A refused replica link: RedisNoHealthyReplica while Sentinel
    counts the replica ok. The master killed: a failover within RedisDown's `for` pages nobody, and
    RedisSentinelFailover names old and new master. Quorum lost and the master killed: RedisDown pages and the
    page's manual failover ends it. Every command run is judged against the live servers."""
    scenarios.result("redis_drill")


@pytest.mark.scenario("redis_replication")
def test_the_plain_pair_pages_for_its_lost_master_and_its_runbook_restores_it_without_data_loss(scenarios):
    scenarios.result("redis_replication")


@pytest.mark.scenario("redis_exporter_down")
def test_a_stopped_redis_exporter_fires_redis_exporter_down_per_target_and_nothing_critical(scenarios):
    scenarios.result("redis_exporter_down")


@pytest.mark.scenario("redis_pages_covered")
def test_every_redis_cli_command_of_the_redis_runbooks_ran_against_the_live_servers(scenarios):
    scenarios.result("redis_pages_covered")


@pytest.mark.scenario("outages")
def test_a_renamed_metric_a_crashed_instance_and_a_dead_service_each_fire_their_own_alert(scenarios):
    scenarios.result("outages")


@pytest.mark.scenario("dashboards")
def test_every_dashboard_query_returns_data(scenarios):
    scenarios.result("dashboards")
