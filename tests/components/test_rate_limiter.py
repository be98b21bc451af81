"""Rate limiter runbooks: each diagnostic query returns the truth of a known world, and the command that reads an
instance's series picks exactly the limiters that fired out of a real prometheus_client exposition."""

from __future__ import annotations

import pytest

from obsgen.components import rate_limiter
from obsgen.spec import parse

from .runbook_pages import (blocks, check_cluster_kept, check_docs, check_page, evaluate, exposed, pages,
                            reference_metrics, run_scrape_command, section)

RESILIENCE4J = """\
apiVersion: obsgen/v1
service: {name: gateway, team: integrations}
rate_limiters:
  - {name: partnerApi, description: Partner API quota, limit_for_period: 50, refresh_period: 1s, timeout: 5s}
  - {name: search, limit_for_period: 10, refresh_period: 1s}
"""
PYTHON = """\
apiVersion: obsgen/v1
service: {name: notifier, team: messaging, profile: python}
rate_limiters:
  - {name: sms, limit_for_period: 10, refresh_period: 1s, rejection_rate_max: 1}
  - {name: email, limit_for_period: 100, refresh_period: 1s}
"""
I1, I2 = "i1:8080", "i2:8080"


def _at(name: str, instance: str) -> str:
    return f'{{instance="{instance}", name="{name}"}}'


# partnerApi on i1: reservations took the gauge to -3, 4 callers parked, 60 refusals a minute; on i2: 20 permits
# left, nobody waiting, nothing ever refused (the app's counter has no series). search on i1: out of permits,
# 1 waiting, 30 refusals a minute.
TRUTH = {
    "permits": {_at("partnerApi", I1): -3, _at("partnerApi", I2): 20, _at("search", I1): 0},
    "waiting": {_at("partnerApi", I1): 4, _at("partnerApi", I2): 0, _at("search", I1): 1},
    "rejected": {_at("partnerApi", I1): 1.0, _at("search", I1): 0.5},
}


def world() -> dict[str, str]:
    out = {}
    for (name, instance), (permits, waiting) in {("partnerApi", I1): (-3, 4), ("partnerApi", I2): (20, 0),
                                                 ("search", I1): (0, 1)}.items():
        labels = f'job="gateway", name="{name}", instance="{instance}"'
        out[f"resilience4j_ratelimiter_available_permissions{{{labels}}}"] = f"{permits}+0x10"
        out[f"resilience4j_ratelimiter_waiting_threads{{{labels}}}"] = f"{waiting}+0x10"
    out['ratelimiter_rejected_calls_total{job="gateway", name="partnerApi", instance="i1:8080"}'] = "0+60x10"
    out['ratelimiter_rejected_calls_total{job="gateway", name="search", instance="i1:8080"}'] = "0+30x10"
    # a circuit breaker of the same name, and another service's limiter: neither belongs on these pages
    out['resilience4j_ratelimiter_available_permissions{job="gateway", name="other", instance="i1:8080"}'] = "-9+0x10"
    out['ratelimiter_rejected_calls_total{job="billing", name="search", instance="b:1"}'] = "0+600x10"
    return out


@pytest.fixture(scope="module")
def java():
    return pages(parse(RESILIENCE4J, "limiters.yaml"), rate_limiter.KIND)


@pytest.fixture(scope="module")
def python():
    return pages(parse(PYTHON, "limiters.yaml"), rate_limiter.KIND)


def test_every_page_is_complete_short_at_the_top_and_selects_its_limiters(java, python):
    assert set(java) == set(python) == {"RateLimiterPermitsExhausted", "RateLimiterRejectingCalls"}
    for alert, page in java.items():
        check_page(alert, page, job="gateway", identity="name", names={"partnerApi", "search"}, raw_labels=set())
    for alert, page in python.items():
        check_page(alert, page, job="notifier", identity="name", names={"sms", "email"}, raw_labels=set())


def test_each_diagnostic_query_returns_the_truth_of_a_known_world(java, tmp_path):
    checks = []
    for alert, page in java.items():
        queries = blocks(section(page, "Diagnosis"), "promql")
        assert len(queries) == 3, (alert, queries)
        checks += [(query, TRUTH[name]) for name, query in zip(("permits", "waiting", "rejected"), queries)]
    evaluate(tmp_path, world(), checks, at="10m")


def test_python_pages_do_not_ask_for_waiting_callers_python_limiters_cannot_have(python):
    for alert, page in python.items():
        queries = blocks(section(page, "Diagnosis"), "promql")
        assert len(queries) == 2 and not any("waiting" in q for q in queries), alert
        assert "parked" not in page, alert


def test_scrape_command_picks_the_limiters_that_fired_out_of_a_real_exposition(python):
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    permits = Gauge("rate_limiter_available_permits", "Permits left", ["name"], registry=registry)
    rejected = Counter("rate_limiter_rejected", "Calls refused", ["name"], registry=registry)
    for name, left in (("sms", 0), ("email", 40), ("push", 3)):
        permits.labels(name).set(left)
    rejected.labels("sms").inc(7)
    rejected.labels("push").inc(2)
    Counter("notifications_sent", "Sent", ["name"], registry=registry).labels("sms").inc()
    with exposed(registry) as instance:
        lines = run_scrape_command(python["RateLimiterRejectingCalls"], instance)
    assert sorted(lines) == ['rate_limiter_available_permits{name="email"} 40.0',
                             'rate_limiter_available_permits{name="sms"} 0.0',
                             'rate_limiter_rejected_total{name="sms"} 7.0']


def test_reference_says_resilience4j_has_no_rejection_counter(java, python):
    assert reference_metrics(java["RateLimiterRejectingCalls"]) == {
        "ratelimiter_rejected_calls_total": True, "resilience4j_ratelimiter_available_permissions": False,
        "resilience4j_ratelimiter_waiting_threads": False}
    assert set(reference_metrics(python["RateLimiterPermitsExhausted"]).values()) == {True}


def test_docs_list_every_rate_limiter_signal_with_its_metrics_and_origin():
    check_docs(rate_limiter.KIND)


def test_queries_keep_the_cluster_where_the_rules_do():
    check_cluster_kept(RESILIENCE4J, rate_limiter.KIND)


def test_scrape_command_follows_a_limiter_named_differently_on_one_of_its_metrics():
    from prometheus_client import CollectorRegistry, Counter, Gauge

    text = PYTHON.replace("{name: sms, ", "{name: sms, value: sms-gateway, metrics: {rejected: "
                          "{name: gateway_refused_total, label: limiter, value: sms}}, ")
    page = pages(parse(text, "limiters.yaml"), rate_limiter.KIND)["RateLimiterRejectingCalls"]
    registry = CollectorRegistry()
    Gauge("rate_limiter_available_permits", "Permits left", ["name"], registry=registry).labels("sms-gateway").set(0)
    refused = Counter("gateway_refused", "Refused", ["limiter"], registry=registry)
    refused.labels("sms").inc(3)
    refused.labels("push").inc(1)
    with exposed(registry) as instance:
        lines = run_scrape_command(page, instance)
    assert sorted(lines) == ['gateway_refused_total{limiter="sms"} 3.0',
                             'rate_limiter_available_permits{name="sms-gateway"} 0.0']
