"""The reference app on its own: Micrometer names, counters that advance at the set rates, a strict control API."""

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from .refapp import App

pytestmark = [pytest.mark.e2e]


def exposition(app: App) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(app)
    return generate_latest(registry).decode()


def sample(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return float(lines[0].rsplit(" ", 1)[1])


def test_the_exposition_uses_the_micrometer_names_and_no_created_series():
    text = exposition(App())
    for name in ("cache_gets_total{", "cache_lock_failure_total{", "cache_l2_failure_total{",
                 "resilience4j_circuitbreaker_state{", "resilience4j_circuitbreaker_failure_rate{",
                 "resilience4j_circuitbreaker_calls_seconds_count{", "resilience4j_circuitbreaker_calls_seconds_max{",
                 "resilience4j_circuitbreaker_not_permitted_calls_total{", "resilience4j_retry_calls_total{",
                 "resilience4j_timelimiter_calls_total{", "executor_queued_tasks{", "executor_active_threads{",
                 "executor_pool_size_threads{", "executor_completed_tasks_total{", "executor_rejected_total{",
                 # the guide's own names, as specs/maple.yaml reads them
                 "cache_hit_total{", "cache_miss_total{", "executor_queue_size{", "executor_pool_size{"):
        assert name in text, name
    assert "_created" not in text
    # one series per breaker state, exactly one of them 1
    states = [line for line in text.splitlines() if line.startswith("resilience4j_circuitbreaker_state{")]
    assert len(states) == 6 and sum(float(s.rsplit(" ", 1)[1]) for s in states) == 1


def test_counters_advance_at_the_rates_the_state_sets():
    app = App()
    app.patch({"caches": {"equipment": {"rate": 100.0, "l1_hit": 0.25}}})
    hits = 'cache_gets_total{application="maple-expectation",cache="equipment",cache_manager="cacheManager",' \
           'layer="L1",result="hit"}'
    misses = hits.replace('result="hit"', 'result="miss"')
    first, start = exposition(app), time.monotonic()
    time.sleep(0.5)
    second, elapsed = exposition(app), time.monotonic() - start
    assert sample(second, hits) - sample(first, hits) == pytest.approx(25 * elapsed, rel=0.2)
    assert sample(second, misses) - sample(first, misses) == pytest.approx(75 * elapsed, rel=0.2)
    # the TieredCache's own counters count the same lookups
    hit = 'cache_hit_total{application="maple-expectation",cache="equipment",layer="L1"}'
    assert sample(second, hit) == sample(second, hits)
    assert sample(second, hit.replace("cache_hit", "cache_miss")) == sample(second, misses)


def test_a_breaker_without_calls_reads_minus_one_and_an_open_one_permits_nothing():
    app = App()
    app.patch({"breakers": {"nexonApi": {"calls": 0.0}}})
    assert sample(exposition(app), 'resilience4j_circuitbreaker_failure_rate{') == -1
    app.patch({"breakers": {"nexonApi": {"calls": 10.0, "mode": "open"}}})
    text = exposition(app)
    assert sample(text, 'resilience4j_circuitbreaker_state{application="maple-expectation",name="nexonApi",'
                        'state="open"}') == 1


def test_flapping_cycles_open_half_open_closed():
    app = App()
    app.patch({"breakers": {"nexonApi": {"mode": "flapping", "open_s": 2.0, "half_open_s": 0.5, "closed_s": 1.0}}})
    since = app.since["nexonApi"]
    seen = [app.breaker_state("nexonApi", since + t) for t in (0.1, 1.9, 2.1, 2.6, 3.4, 3.6)]
    assert seen == ["open", "open", "half_open", "closed", "closed", "open"]


def test_a_renamed_family_is_exposed_under_its_new_name_only():
    app = App()
    app.patch({"renames": "executor_queued_tasks=executor_queue_tasks,executor_completed_tasks_total=done_total"})
    text = exposition(app)
    assert "executor_queue_tasks{" in text and "executor_queued_tasks" not in text
    assert "done_total{" in text and "executor_completed_tasks_total" not in text
    app.patch({"renames": ""})
    assert "executor_queued_tasks{" in exposition(app)


@pytest.mark.parametrize("patch", [
    {"renames": "executor_queued_tasks"},
    {"caches": {"nope": {"rate": 1.0}}},
    {"breakers": {"nexonApi": {"mod": "open"}}},
    {"breakers": {"nexonApi": {"mode": "ajar"}}},
    {"executors": {"expectationComputeExecutor": {"queued": "many"}}},
    {"caches": {"equipment": 5}},
])
def test_the_control_api_rejects_what_it_does_not_know(patch):
    app = App()
    before = exposition(app).count("\n")
    with pytest.raises(ValueError):
        app.patch(patch)
    assert exposition(app).count("\n") == before
