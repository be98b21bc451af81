"""Retries: the RetryExhaustionHigh page, its queries run on a real Prometheus holding a known world."""

from __future__ import annotations

import pytest

from .runbook_pages import Server, World, blocks, check_layout, check_queries, render_pages, results, section

ALERT = "RetryExhaustionHigh"

SPRING = """\
apiVersion: obsgen/v1
service: {name: checkout, team: payments}
breakers:
  - name: pricing
retries:
  - {name: pricing, breaker: pricing, max_attempts: 4, wait: 500ms}
  - {name: ledger}
"""
SPRING_ONE = SPRING.replace("  - {name: ledger}\n", "")

PYTHON = """\
apiVersion: obsgen/v1
service: {name: catalog, team: search, profile: python}
retries:
  - {name: terminus_db}
"""

# calls/s by Resilience4j kind: a third of pricing's calls on instance a gave up after every attempt.
PRICING_A = {"successful_without_retry": 4, "successful_with_retry": 1, "failed_without_retry": 1,
             "failed_with_retry": 3}


def spring_world() -> World:
    w = World()
    for job, name, instance, kinds in (
            ("checkout", "pricing", "a", PRICING_A),
            ("checkout", "pricing", "b", {"successful_without_retry": 9, "failed_with_retry": 1}),
            ("checkout", "ledger", "a", {"successful_without_retry": 2, "failed_with_retry": 0}),
            ("checkout", "search", "a", {"failed_with_retry": 5}),           # not in the spec
            ("storefront", "pricing", "a", {"failed_with_retry": 5})):       # another service
        for kind, rate in kinds.items():
            w.counter("resilience4j_retry_calls_total", rate, name=name, kind=kind, instance=instance, job=job)
    return w


def python_world() -> World:
    w = World()
    for job in ("catalog", "storefront"):
        for result, rate in (("success", 3), ("exhausted", 1)):
            w.counter("retry_calls_total", rate, name="terminus_db", result=result, instance="a", job=job)
    return w


@pytest.fixture(scope="module")
def spring(tmp_path_factory):
    with Server(spring_world(), tmp_path_factory.mktemp("retries-spring")) as server:
        yield render_pages(SPRING)[ALERT], server


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    with Server(python_world(), tmp_path_factory.mktemp("retries-python")) as server:
        yield render_pages(PYTHON)[ALERT], server


def test_every_query_returns_only_the_retries_that_fired(spring, python):
    check_queries(ALERT, *spring, {"job": {"checkout"}, "name": {"pricing", "ledger"}}, minimum=2)
    check_queries(ALERT, *python, {"job": {"catalog"}, "name": {"terminus_db"}}, minimum=2)


def test_exhausted_share_and_outcomes_are_each_instance_s_truth(spring, python):
    page, server = spring
    share, outcomes = blocks(section(page, "Diagnosis"), "promql")
    assert {(m["instance"], m["name"]): round(v, 6) for m, v in results(server.query(share))} == {
        ("a", "pricing"): round(3 / 9, 6), ("b", "pricing"): 0.1, ("a", "ledger"): 0.0}
    by_kind = {m["kind"]: v for m, v in results(server.query(outcomes))
               if (m["instance"], m["name"]) == ("a", "pricing")}
    assert by_kind == PRICING_A
    page, server = python
    share, outcomes = blocks(section(page, "Diagnosis"), "promql")
    assert [v for _, v in results(server.query(share))] == [0.25]
    assert {m["result"]: v for m, v in results(server.query(outcomes))} == {"success": 3, "exhausted": 1}


@pytest.mark.parametrize("spec", [SPRING, SPRING_ONE, PYTHON], ids=["spring", "spring-one", "python"])
def test_page_has_meaning_first_and_at_most_three_first_checks(spec):
    check_layout(ALERT, render_pages(spec)[ALERT])


def test_the_page_names_the_retry_in_its_facts_and_its_errors_command():
    one = render_pages(SPRING_ONE)[ALERT]
    assert "- retry `pricing`: 4 attempts, exponential backoff starting at 500ms, inside circuit breaker `pricing`." \
        in section(one, "What it means")
    assert blocks(section(one, "Diagnosis"), "bash") == ["curl -s http://<instance>/actuator/retryevents/pricing/error"]
    two = render_pages(SPRING)[ALERT]
    assert blocks(section(two, "Diagnosis"), "bash") == ["curl -s http://<instance>/actuator/retryevents/<retry>/error"]
    assert "`<retry>` is the alert's `component` label" in two
    python = render_pages(PYTHON)[ALERT]
    assert "actuator" not in python.lower() and "`result`" in python
    assert "tenacity" not in python and "The application's logs have the last exception" in python


def test_the_page_says_an_open_breaker_holds_it_back_only_where_a_breaker_guards_the_retry():
    assert "Alertmanager holds this\n  alert back" in section(render_pages(SPRING)[ALERT], "Alert behaviour")
    assert "Alertmanager" not in section(render_pages(PYTHON)[ALERT], "Alert behaviour")


def test_reference_names_resilience4j_as_the_publisher():
    assert "- `resilience4j_retry_calls_total`: published by resilience4j-micrometer" in \
        section(render_pages(SPRING)[ALERT], "Reference")
    assert "- `retry_calls_total`: **app-defined**" in section(render_pages(PYTHON)[ALERT], "Reference")
