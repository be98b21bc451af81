"""Time limiters: the TimeLimiterTimeoutsHigh page, its queries run on a real Prometheus holding a known world."""

from __future__ import annotations

import pytest

from .runbook_pages import Server, World, blocks, check_layout, check_queries, render_pages, results, section

ALERT = "TimeLimiterTimeoutsHigh"

SPRING = """\
apiVersion: obsgen/v1
service: {name: checkout, team: payments}
breakers:
  - name: pricing
time_limiters:
  - {name: pricing, breaker: pricing, timeout: 2s}
  - {name: ledger, timeout: 500ms}
"""
SPRING_ONE = SPRING.replace("  - {name: ledger, timeout: 500ms}\n", "")

PYTHON = """\
apiVersion: obsgen/v1
service: {name: catalog, team: search, profile: python}
time_limiters:
  - {name: terminus_db, timeout: 5s}
"""

PRICING_A = {"successful": 6, "failed": 1, "timeout": 3}


def spring_world() -> World:
    w = World()
    for job, name, instance, kinds in (
            ("checkout", "pricing", "a", PRICING_A),
            ("checkout", "pricing", "b", {"successful": 10, "timeout": 0}),
            ("checkout", "ledger", "a", {"successful": 3, "timeout": 1}),
            ("checkout", "search", "a", {"timeout": 5}),            # not in the spec
            ("storefront", "pricing", "a", {"timeout": 5})):        # another service
        for kind, rate in kinds.items():
            w.counter("resilience4j_timelimiter_calls_total", rate, name=name, kind=kind, instance=instance, job=job)
    return w


def python_world() -> World:
    w = World()
    for job in ("catalog", "storefront"):
        for result, rate in (("success", 8), ("failure", 1), ("timeout", 1)):
            w.counter("time_limiter_calls_total", rate, name="terminus_db", result=result, instance="a", job=job)
    return w


@pytest.fixture(scope="module")
def spring(tmp_path_factory):
    with Server(spring_world(), tmp_path_factory.mktemp("limiters-spring")) as server:
        yield render_pages(SPRING)[ALERT], server


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    with Server(python_world(), tmp_path_factory.mktemp("limiters-python")) as server:
        yield render_pages(PYTHON)[ALERT], server


def test_every_query_returns_only_the_time_limiters_that_fired(spring, python):
    check_queries(ALERT, *spring, {"job": {"checkout"}, "name": {"pricing", "ledger"}}, minimum=2)
    check_queries(ALERT, *python, {"job": {"catalog"}, "name": {"terminus_db"}}, minimum=2)


def test_timeout_share_and_outcomes_are_each_instance_s_truth(spring, python):
    page, server = spring
    share, outcomes = blocks(section(page, "Diagnosis"), "promql")
    assert {(m["instance"], m["name"]): round(v, 6) for m, v in results(server.query(share))} == {
        ("a", "pricing"): 0.3, ("b", "pricing"): 0.0, ("a", "ledger"): 0.25}
    by_kind = {m["kind"]: v for m, v in results(server.query(outcomes))
               if (m["instance"], m["name"]) == ("a", "pricing")}
    assert by_kind == PRICING_A
    page, server = python
    share, outcomes = blocks(section(page, "Diagnosis"), "promql")
    assert [round(v, 6) for _, v in results(server.query(share))] == [0.1]
    assert {m["result"]: v for m, v in results(server.query(outcomes))} == {"success": 8, "failure": 1, "timeout": 1}


@pytest.mark.parametrize("spec", [SPRING, SPRING_ONE, PYTHON], ids=["spring", "spring-one", "python"])
def test_page_has_meaning_first_and_at_most_three_first_checks(spec):
    check_layout(ALERT, render_pages(spec)[ALERT])


def test_the_page_names_the_limiter_in_its_facts_and_its_events_command():
    one = render_pages(SPRING_ONE)[ALERT]
    assert "- time limiter `pricing`: cuts calls at 2s, inside circuit breaker `pricing`." in \
        section(one, "What it means")
    assert blocks(section(one, "Diagnosis"), "bash") == [
        "curl -s http://<instance>/actuator/timelimiterevents/pricing/timeout"]
    two = render_pages(SPRING)[ALERT]
    assert blocks(section(two, "Diagnosis"), "bash") == [
        "curl -s http://<instance>/actuator/timelimiterevents/<limiter>/timeout"]
    assert "`<limiter>` is the alert's `component` label" in two
    assert "actuator" not in render_pages(PYTHON)[ALERT].lower()


def test_the_page_says_an_open_breaker_holds_it_back_only_where_a_breaker_guards_the_limiter():
    assert "Alertmanager holds this\n  alert back" in section(render_pages(SPRING)[ALERT], "Alert behaviour")
    assert "Alertmanager" not in section(render_pages(PYTHON)[ALERT], "Alert behaviour")


def test_reference_names_resilience4j_as_the_publisher():
    assert "- `resilience4j_timelimiter_calls_total`: published by resilience4j-micrometer" in \
        section(render_pages(SPRING)[ALERT], "Reference")
    assert "- `time_limiter_calls_total`: **app-defined**" in section(render_pages(PYTHON)[ALERT], "Reference")
