"""Bulkhead runbooks: each diagnostic query reads the concurrency signal its alert judges and returns the truth of
a known world, and the command that reads an instance's series picks exactly the bulkheads that fired out of a
real prometheus_client exposition (OMS-shaped handler, `circuit_name` label)."""

from __future__ import annotations

import re

import pytest

from obsgen.components import backpressure
from obsgen.spec import parse

from .runbook_pages import (blocks, check_cluster_kept, check_docs, check_page, evaluate, exposed, pages,
                            reference_metrics, run_scrape_command, section)

RESILIENCE4J = """\
apiVersion: obsgen/v1
service: {name: booking, team: travel}
backpressure:
  - {name: inventory, description: Semaphore bulkhead, max_concurrent: 25}
  - {name: pricing, description: Thread-pool bulkhead, max_concurrent: 8, queue_capacity: 100}
"""
PYTHON = """\
apiVersion: obsgen/v1
service: {name: ingest, team: data, profile: python}
backpressure:
  - {name: heavy_operation, label: circuit_name, max_concurrent: 100, queue_capacity: 1000, overload_status: 503}
  - {name: export, label: circuit_name, max_concurrent: 4}
"""
I1, I2 = "i1:8080", "i2:8080"


def _at(name: str, instance: str) -> str:
    return f'{{instance="{instance}", name="{name}"}}'


# inventory (semaphore, judged by free permits): none free on i1, 5 on i2, 30 refusals a minute on i1.
# pricing (thread pool with a queue): 8 of 8 threads busy and 95 queued on i1, 2 busy on i2; 120 refusals a minute
# on i1. Nothing was ever refused on i2: the app's counter has no series there.
TRUTH = {
    "in_use": {_at("pricing", I1): 8, _at("pricing", I2): 2},
    "free_permits": {_at("inventory", I1): 0, _at("inventory", I2): 5},
    "queued": {_at("pricing", I1): 95, _at("pricing", I2): 0},
    "rejected": {_at("inventory", I1): 0.5, _at("pricing", I1): 2.0},
}
DIAGNOSIS = {
    "BackpressureQueueNearFull": ("in_use", "queued", "rejected"),
    "BackpressureSaturated": ("in_use", "free_permits", "queued", "rejected"),
    "BackpressureSheddingLoad": ("in_use", "free_permits", "queued", "rejected"),
}
FIRES = {"BackpressureQueueNearFull": {"pricing"}, "BackpressureSaturated": {"inventory", "pricing"},
         "BackpressureSheddingLoad": {"inventory", "pricing"}}


def world() -> dict[str, str]:
    def gauge(metric: str, name: str, instance: str, value: float) -> tuple[str, str]:
        return f'{metric}{{job="booking", name="{name}", instance="{instance}"}}', f"{value}+0x10"

    return dict([
        gauge("resilience4j_bulkhead_available_concurrent_calls", "inventory", I1, 0),
        gauge("resilience4j_bulkhead_available_concurrent_calls", "inventory", I2, 5),
        gauge("resilience4j_bulkhead_active_thread_count", "pricing", I1, 8),
        gauge("resilience4j_bulkhead_active_thread_count", "pricing", I2, 2),
        gauge("resilience4j_bulkhead_queue_depth", "pricing", I1, 95),
        gauge("resilience4j_bulkhead_queue_depth", "pricing", I2, 0),
        # the semaphore bulkhead's free permits exist for the thread pool too: not what its alert judges
        gauge("resilience4j_bulkhead_available_concurrent_calls", "pricing", I1, 3),
        gauge("resilience4j_bulkhead_queue_depth", "unlisted", I1, 999),
        ('bulkhead_rejected_calls_total{job="booking", name="inventory", instance="i1:8080"}', "0+30x10"),
        ('bulkhead_rejected_calls_total{job="booking", name="pricing", instance="i1:8080"}', "0+120x10"),
        ('bulkhead_rejected_calls_total{job="flights", name="pricing", instance="f:1"}', "0+999x10"),
    ])


@pytest.fixture(scope="module")
def java():
    return pages(parse(RESILIENCE4J, "bulkheads.yaml"), backpressure.KIND)


@pytest.fixture(scope="module")
def python():
    return pages(parse(PYTHON, "bulkheads.yaml"), backpressure.KIND)


def test_every_page_is_complete_short_at_the_top_and_selects_its_bulkheads(java, python):
    assert set(java) == set(FIRES)
    for alert, page in java.items():
        check_page(alert, page, job="booking", identity="name", names=FIRES[alert], raw_labels=set())
    for alert, page in python.items():
        names = {"heavy_operation"} if alert == "BackpressureQueueNearFull" else {"heavy_operation", "export"}
        check_page(alert, page, job="ingest", identity="circuit_name", names=names, raw_labels=set())


def test_each_diagnostic_query_returns_the_truth_of_a_known_world(java, tmp_path):
    checks = []
    for alert, names in DIAGNOSIS.items():
        queries = blocks(section(java[alert], "Diagnosis"), "promql")
        assert len(queries) == len(names), (alert, queries)
        for name, query in zip(names, queries):
            expected = {k: v for k, v in TRUTH[name].items() if re.search(r'name="(\w+)"', k)[1] in FIRES[alert]}
            checks.append((query, expected))
    evaluate(tmp_path, world(), checks, at="10m")


def test_scrape_command_picks_the_bulkheads_that_fired_out_of_a_real_exposition(python):
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    queued = Gauge("backpressure_queue_size", "Queued", ["circuit_name"], registry=registry)
    active = Gauge("backpressure_active_requests", "In progress", ["circuit_name"], registry=registry)
    rejected = Counter("backpressure_rejected", "Refused with a 503", ["circuit_name"], registry=registry)
    for name, busy in (("heavy_operation", 100), ("export", 4), ("search", 2)):
        active.labels(name).set(busy)
    for name, waiting in (("heavy_operation", 950), ("search", 10)):  # export has no queue
        queued.labels(name).set(waiting)
    rejected.labels("heavy_operation").inc(12)
    Counter("circuit_breaker_calls", "Calls", ["circuit_name"], registry=registry).labels("export").inc()
    with exposed(registry) as instance:
        lines = run_scrape_command(python["BackpressureSheddingLoad"], instance)
    assert sorted(lines) == ['backpressure_active_requests{circuit_name="export"} 4.0',
                             'backpressure_active_requests{circuit_name="heavy_operation"} 100.0',
                             'backpressure_queue_size{circuit_name="heavy_operation"} 950.0',
                             'backpressure_rejected_total{circuit_name="heavy_operation"} 12.0']


def test_reference_says_resilience4j_has_no_rejection_counter(java):
    assert reference_metrics(java["BackpressureSaturated"]) == {
        "resilience4j_bulkhead_available_concurrent_calls": False, "bulkhead_rejected_calls_total": True,
        "resilience4j_bulkhead_active_thread_count": False, "resilience4j_bulkhead_queue_depth": False}


def test_docs_list_every_bulkhead_signal_with_its_metrics_and_origin():
    check_docs(backpressure.KIND)


def test_queries_keep_the_cluster_where_the_rules_do():
    check_cluster_kept(RESILIENCE4J, backpressure.KIND)


# ---------------------------------------------------------------------------------------------
# A handler that sheds before its queue is full is warned about before it sheds

SHEDS_AT_50 = """\
apiVersion: obsgen/v1
service: {name: oms, team: oms, profile: python}
backpressure:
  - {name: heavy_operation, label: circuit_name, max_concurrent: 100, queue_capacity: 1000, shed_at: 50,
     overload_status: 503}
"""


def test_the_queue_warning_fires_before_a_handler_that_sheds_at_50_refuses_work_on_promtool(tmp_path):
    """OMS refuses heavy_operation at 50 queued of a 1000-call queue (seed 000:180): 46 queued warns, 44 does not,
    and 900 (the old mark) is never reached because the handler refuses from 50."""
    from .world import Expect, build, passes, run

    out = build(tmp_path, parse(SHEDS_AT_50, "oms.yaml"))
    at = 'job="oms", circuit_name="heavy_operation"'
    series = {f'backpressure_queue_size{{{at}, instance="a"}}': "46+0x15",
              f'backpressure_queue_size{{{at}, instance="b"}}': "44+0x15"}
    firing = 'ALERTS{alertname="BackpressureQueueNearFull", alertstate="firing"}'
    passes(run(out, series, [Expect("5m", firing, {
        '{__name__="ALERTS", alertname="BackpressureQueueNearFull", alertstate="firing", circuit_name="heavy_operation", '
        'component="heavy_operation", instance="a", service="oms", severity="warning", team="oms"}': 1})]))
    page = section(pages(parse(SHEDS_AT_50, "oms.yaml"), backpressure.KIND)["BackpressureQueueNearFull"],
                   "What it means")
    assert "queue of 1,000, refusing new calls from 50 queued (nearly full at 45); refused callers get HTTP 503" in page


def test_a_shedding_limit_needs_a_queue_it_can_be_reached_in():
    from obsgen.errors import SpecError

    for text, where, says in (
            (SHEDS_AT_50.replace("shed_at: 50", "shed_at: 1001"), "x.yaml:4:102: backpressure[0].shed_at",
             "expected shed_at at most queue_capacity (1000), found 1001"),
            (SHEDS_AT_50.replace("queue_capacity: 1000, ", ""), "x.yaml:4:71: backpressure[0].shed_at",
             "shed_at needs queue_capacity")):
        with pytest.raises(SpecError) as caught:
            parse(text, "x.yaml")
        (problem,) = caught.value.problems
        assert str(problem).startswith(where) and says in problem.message, problem
