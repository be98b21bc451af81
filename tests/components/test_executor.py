"""Executors: the queue, rejection and saturation pages, their queries run on a real Prometheus, and
Actuator commands that select one executor."""

from __future__ import annotations

import re

import pytest

from .runbook_pages import Server, World, blocks, check_layout, check_queries, render_pages, results, section

ALERTS = ("ExecutorQueueFull", "ExecutorRejectingTasks", "ExecutorSaturated")

TWO = """\
apiVersion: obsgen/v1
service: {name: checkout, team: payments}
executors:
  - name: pricingExecutor
    description: price computation (AbortPolicy)
    core_threads: 4
    max_threads: 8
    queue_capacity: 200
  - name: mailExecutor
    queue_capacity: 100
"""
ONE = TWO.split("  - name: mailExecutor")[0]
LABELLED = ONE.replace("    core_threads: 4\n", "    label: executor\n    core_threads: 4\n")

# Per instance of pricingExecutor: queued, active, pool size, rejected/s, completed/s.
PRICING = {"a": (195, 8, 8, 2.0, 40.0), "b": (3, 5, 8, 0.0, 60.0)}


def world() -> World:
    w = World()
    for job, name, instance, (queued, active, pool, rejected, completed) in (
            *(("checkout", "pricingExecutor", i, v) for i, v in PRICING.items()),
            ("checkout", "mailExecutor", "a", (10, 2, 2, 0.5, 5.0)),
            ("checkout", "applicationTaskExecutor", "a", (99, 8, 8, 9.0, 1.0)),   # not in the spec
            ("storefront", "pricingExecutor", "a", (99, 8, 8, 9.0, 1.0))):        # another service
        at = {"name": name, "instance": instance, "job": job}
        w.gauge("executor_queued_tasks", queued, **at)
        w.gauge("executor_active_threads", active, **at)
        w.gauge("executor_pool_size_threads", pool, **at)
        w.counter("executor_rejected_total", rejected, **at)
        w.counter("executor_completed_tasks_total", completed, **at)
    return w


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(world(), tmp_path_factory.mktemp("executors")) as s:
        yield s


@pytest.mark.parametrize("alert", ALERTS)
def test_every_query_returns_only_the_executors_that_fired(alert, server):
    check_queries(alert, render_pages(TWO)[alert], server,
                  {"job": {"checkout"}, "name": {"pricingExecutor", "mailExecutor"}}, minimum=5)


def test_the_queries_give_each_instance_s_queue_threads_and_rates(server):
    page = render_pages(ONE)["ExecutorSaturated"]
    found = {}
    for query in blocks(section(page, "Diagnosis"), "promql"):
        metric = re.search(r"\b(executor_\w+)\{", query).group(1)
        found[metric] = {m["instance"]: round(v, 6) for m, v in results(server.query(query))}
    assert found == {
        "executor_queued_tasks": {"a": 195, "b": 3}, "executor_active_threads": {"a": 8, "b": 5},
        "executor_pool_size_threads": {"a": 8, "b": 8}, "executor_rejected_total": {"a": 2, "b": 0},
        "executor_completed_tasks_total": {"a": 40, "b": 60}}


@pytest.mark.parametrize("spec", [ONE, TWO], ids=["one", "two"])
def test_pages_have_meaning_first_and_at_most_three_first_checks(spec):
    pages = render_pages(spec)
    for alert in ALERTS:
        check_layout(alert, pages[alert])
    assert "- executor `pricingExecutor` (price computation (AbortPolicy)): 4 core / 8 max threads, queue of 200 " \
           "tasks (full at 180)." in section(pages["ExecutorQueueFull"], "What it means")


def test_actuator_commands_select_one_executor_by_its_tag():
    """Without ``?tag=name:…`` Spring's metrics endpoint sums every executor of the application. The tag is the
    one Micrometer's executor meters carry: the busy-threads metric's label and value (Maple tags its own counters
    `executor="expectation"` while ExecutorServiceMetrics tags `name="expectationComputeExecutor"`)."""
    maple_like = LABELLED.replace("    label: executor\n", "    label: executor\n    value: pricing\n    metrics:\n"
                                  "      active: {name: executor_active_threads, label: name, value: pricingExecutor}\n")
    for spec, tags in ((ONE, ["name:pricingExecutor"]), (TWO, ["name:pricingExecutor", "name:mailExecutor"]),
                       (LABELLED, ["executor:pricingExecutor"]), (maple_like, ["name:pricingExecutor"])):
        for alert, page in render_pages(spec).items():
            curls = [line for b in blocks(page, "bash") for line in b.splitlines()]
            metrics = [line for line in curls if "/actuator/metrics/" in line]
            assert len(metrics) == 3 * len(tags), (alert, curls)
            for line, tag in zip(metrics, [t for t in tags for _ in range(3)]):
                assert line.endswith(f"?tag={tag}'") and line.startswith("curl -s 'http://<instance>/actuator/"), line
    assert "Executor `mailExecutor`:" in render_pages(TWO)["ExecutorQueueFull"]


def test_reference_says_the_app_counts_rejections_and_micrometer_the_rest():
    reference = section(render_pages(ONE)["ExecutorRejectingTasks"], "Reference")
    assert "- `executor_rejected_total`: **app-defined**" in reference
    for metric in ("executor_queued_tasks", "executor_active_threads", "executor_pool_size_threads",
                   "executor_completed_tasks_total"):
        assert f"- `{metric}`: published by Micrometer ExecutorServiceMetrics" in reference, metric


def test_queries_keep_the_cluster_label_where_the_rules_do():
    fleet = TWO.replace("team: payments}", "team: payments, cluster_label: cluster}")
    for alert, page in render_pages(fleet).items():
        for query in blocks(section(page, "Diagnosis"), "promql"):
            assert "by (cluster, instance, name)" in query, (alert, query)
