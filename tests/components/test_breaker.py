"""Circuit breakers: runbook pages an engineer can trust, their queries run on a real Prometheus, and the
severity an open breaker gets from its fallback."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT
from obsgen.errors import SpecError
from obsgen.pipeline import build
from obsgen.spec import load, parse
from .runbook_pages import Server, World, blocks, check_layout, check_queries, render_pages, results, section

ALERTS = ("CircuitBreakerOpen", "CircuitBreakerFailureRateHigh", "CircuitBreakerNotOpening")
STATES = ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only")

SPRING = """\
apiVersion: obsgen/v1
service: {name: checkout, team: payments}
breakers:
  - name: pricing
    description: Pricing API
    fallback: the last price list cached in the database
    failure_rate_threshold: 50
  - name: ledger
    failure_rate_threshold: 40
retries:
  - {name: pricing, breaker: pricing}
time_limiters:
  - {name: pricing, breaker: pricing, timeout: 2s}
"""

SPRING_ONE = SPRING.replace("  - name: ledger\n    failure_rate_threshold: 40\n", "")

PYTHON = """\
apiVersion: obsgen/v1
service: {name: catalog, team: search, profile: python}
breakers:
  - name: terminus_db
    failure_rate_threshold: 20
    minimum_calls: 3
"""


def spring_world() -> World:
    """``pricing`` open on instance a and closed on b and c; ``ledger`` closed on a and b while 60% of its
    calls fail on b; around them, a breaker the spec does not declare and ``pricing`` of another service."""
    w = World()

    def breaker(name: str, instance: str, state: str, failed: float, ok: float, job: str = "checkout") -> None:
        at = {"name": name, "instance": instance, "job": job}
        for s in STATES:
            w.gauge("resilience4j_circuitbreaker_state", 1 if s == state else 0, state=s, **at)
        for kind, rate in (("failed", failed), ("successful", ok), ("ignored", 0.5)):
            w.counter("resilience4j_circuitbreaker_calls_seconds_count", rate, kind=kind, **at)
        w.counter("resilience4j_circuitbreaker_not_permitted_calls_total", 5 if state == "open" else 0,
                  kind="not_permitted", **at)
        share = failed / (failed + ok)
        w.gauge("resilience4j_circuitbreaker_failure_rate", round(share * 100, 3) if instance != "c" else -1, **at)
        w.gauge("resilience4j_circuitbreaker_slow_call_rate", 10 if state == "open" else (0 if instance != "c" else -1),
                **at)

    breaker("pricing", "a", "open", failed=8, ok=2)
    breaker("pricing", "b", "closed", failed=0.5, ok=9.5)
    breaker("pricing", "c", "closed", failed=0, ok=0.1)
    breaker("ledger", "a", "closed", failed=0.1, ok=9.9)
    breaker("ledger", "b", "closed", failed=6, ok=4)
    breaker("search", "a", "open", failed=9, ok=1)                      # not in the spec
    breaker("pricing", "a", "open", failed=9, ok=1, job="storefront")   # another service's breaker
    return w


def python_world() -> World:
    w = World()
    for job in ("catalog", "storefront"):
        for instance, state, failed, ok in (("a", 2, 3, 1), ("b", 0, 0.2, 4)):
            at = {"name": "terminus_db", "instance": instance, "job": job}
            w.gauge("circuit_breaker_state", state, **at)
            for result, rate in (("failure", failed), ("success", ok), ("rejected", 2 if state == 2 else 0)):
                w.counter("circuit_breaker_calls_total", rate, result=result, **at)
    return w


@pytest.fixture(scope="module")
def spring(tmp_path_factory):
    with Server(spring_world(), tmp_path_factory.mktemp("breakers-spring")) as server:
        yield render_pages(SPRING), server


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    with Server(python_world(), tmp_path_factory.mktemp("breakers-python")) as server:
        yield render_pages(PYTHON), server


def _query(pages: dict[str, str], alert: str, metric: str) -> str:
    """The page's diagnostic PromQL block that reads ``metric``."""
    found = [q for q in blocks(section(pages[alert], "Diagnosis"), "promql") if re.search(rf"\b{metric}\{{", q)]
    assert len(found) == 1, f"{alert}: expected one query of {metric}, found {found}"
    return found[0]


@pytest.mark.parametrize("world", ["spring", "python"])
@pytest.mark.parametrize("alert", ALERTS)
def test_every_query_on_a_breaker_page_returns_only_the_breakers_that_fired_on_a_real_prometheus(
        world, alert, request):
    pages, server = request.getfixturevalue(world)
    labels = {"spring": {"job": {"checkout"}, "name": {"pricing", "ledger"}},
              "python": {"job": {"catalog"}, "name": {"terminus_db"}}}[world]
    check_queries(alert, pages[alert], server, labels, minimum=4)


def test_the_state_query_names_each_instance_s_state(spring, python):
    (pages, server), (py_pages, py_server) = spring, python
    for alert in ALERTS:
        found = {(m["instance"], m["name"], m["state"]): v
                 for m, v in results(server.query(_query(pages, alert, "resilience4j_circuitbreaker_state")))}
        assert found == {("a", "pricing", "open"): 1, ("b", "pricing", "closed"): 1, ("c", "pricing", "closed"): 1,
                         ("a", "ledger", "closed"): 1, ("b", "ledger", "closed"): 1}
        enum = {m["instance"]: v for m, v in results(py_server.query(_query(py_pages, alert, "circuit_breaker_state")))}
        assert enum == {"a": 2, "b": 0}
    page = section(py_pages["CircuitBreakerOpen"], "Diagnosis")
    assert "`terminus_db` reports its state as a number: 0 closed, 1 half-open, 2 open" in page


def test_the_failed_share_and_failure_rate_queries_give_each_instance_s_share(spring, python):
    (pages, server), (py_pages, py_server) = spring, python
    failed = [q for q in blocks(section(pages["CircuitBreakerNotOpening"], "Diagnosis"), "promql")
              if 'kind="failed"' in q]
    assert len(failed) == 1
    share = {(m["instance"], m["name"]): round(v, 6) for m, v in results(server.query(failed[0]))}
    # Every call counts in the total, the 0.5/s the breaker ignores too (as in the rule).
    assert share == {("a", "pricing"): round(8 / 10.5, 6), ("b", "pricing"): round(0.5 / 10.5, 6),
                     ("c", "pricing"): 0.0, ("a", "ledger"): round(0.1 / 10.5, 6), ("b", "ledger"): round(6 / 10.5, 6)}
    rate = {(m["instance"], m["name"]): v for m, v in results(server.query(
        _query(pages, "CircuitBreakerFailureRateHigh", "resilience4j_circuitbreaker_failure_rate")))}
    assert rate == {("a", "pricing"): 80, ("b", "pricing"): 5, ("a", "ledger"): 1, ("b", "ledger"): 60}  # -1 hidden
    py_failed = [q for q in blocks(section(py_pages["CircuitBreakerOpen"], "Diagnosis"), "promql")
                 if 'result="failure"' in q]
    assert {m["instance"]: round(v, 6) for m, v in results(py_server.query(py_failed[0]))} == {
        "a": round(3 / 6, 6), "b": round(0.2 / 4.2, 6)}  # rejected calls count in the total


def test_rejected_calls_query_shows_what_an_open_breaker_turns_away(spring):
    pages, server = spring
    rejected = {(m["instance"], m["name"]): v for m, v in results(server.query(
        _query(pages, "CircuitBreakerOpen", "resilience4j_circuitbreaker_not_permitted_calls_total")))}
    assert rejected[("a", "pricing")] == 5 and rejected[("b", "ledger")] == 0


@pytest.mark.parametrize("spec", [SPRING, PYTHON], ids=["spring", "python"])
def test_breaker_pages_put_meaning_and_at_most_three_first_checks_first(spec):
    pages = render_pages(spec)
    for alert in ALERTS:
        check_layout(alert, pages[alert])


def test_each_diagnostic_step_is_written_once_whatever_the_number_of_breakers():
    one = render_pages(PYTHON)
    three = render_pages(PYTHON.replace("breakers:\n", "breakers:\n  - {name: a}\n  - {name: b}\n"))
    for alert in ALERTS:
        assert len(blocks(three[alert], "promql")) == len(blocks(one[alert], "promql")) >= 4, alert
        assert 'name=~"a|b|terminus_db"' in blocks(three[alert], "promql")[0]


def test_not_opening_page_tells_the_kind_s_story_not_another_service_s():
    for spec in (SPRING, PYTHON):
        page = render_pages(spec)["CircuitBreakerNotOpening"]
        for story in ("integration report", "20 errors", "seed", "404", "OMS", "Maple", "Nexon"):
            assert story not in page, story
        assert "error handler turns failures into ordinary responses" in section(page, "Diagnosis")


def test_actuator_commands_name_the_breaker_or_say_where_its_name_comes_from():
    single = render_pages(SPRING_ONE)
    for alert in ALERTS:
        curls = [line for b in blocks(single[alert], "bash") for line in b.splitlines()]
        assert "curl -s http://<instance>/actuator/circuitbreakerevents/pricing" in curls, alert
        assert "`<instance>` is the alert's `instance` label" in single[alert]
    two = render_pages(SPRING)
    for alert in ALERTS:
        assert "/actuator/circuitbreakerevents/<breaker>" in two[alert]
        assert "`<breaker>` is the alert's `component` label" in two[alert]
    close = [b for b in blocks(section(single["CircuitBreakerOpen"], "Mitigation"), "bash")]
    assert close == ["curl -s -X POST -H 'Content-Type: application/json' -d '{\"updateState\":\"CLOSE\"}' "
                     "http://<instance>/actuator/circuitbreakers/pricing"]
    assert "**(destructive)** Forcing the breaker closed" in section(single["CircuitBreakerOpen"], "Mitigation")
    for page in render_pages(PYTHON).values():
        assert "actuator" not in page.lower() and "pybreaker" not in page
        assert "the application's logs of the breaker's state changes" in page


def test_reference_says_which_metrics_resilience4j_publishes_and_which_the_app_defines():
    spring = section(render_pages(SPRING)["CircuitBreakerOpen"], "Reference")
    assert "- `resilience4j_circuitbreaker_state`: published by resilience4j-micrometer" in spring
    python = section(render_pages(PYTHON)["CircuitBreakerOpen"], "Reference")
    assert "- `circuit_breaker_state`: **app-defined**" in python
    assert "- `circuit_breaker_calls_total`: **app-defined**" in python


# ---------------------------------------------------------------------------------------------
# The fallback decides how loud an open breaker is


def _open_severity(text: str) -> dict[str, str]:
    spec = parse(text, "test.yaml")
    return {a.labels["component"]: a.labels["severity"] for a in build(spec).alerts if a.name == "CircuitBreakerOpen"}


def test_an_open_breaker_with_a_fallback_warns_and_one_without_pages():
    assert _open_severity(SPRING) == {"pricing": "warning", "ledger": "critical"}


def test_the_spec_s_severity_wins_over_the_fallback_s_default():
    tuned = SPRING.replace("    failure_rate_threshold: 50\n", "    failure_rate_threshold: 50\n"
                           "    alerts: {CircuitBreakerOpen: {severity: critical}}\n")
    tuned = tuned.replace("    failure_rate_threshold: 40\n", "    failure_rate_threshold: 40\n"
                          "    alerts: {CircuitBreakerOpen: {severity: warning}}\n")
    assert _open_severity(tuned) == {"pricing": "critical", "ledger": "warning"}


def test_only_the_open_alert_follows_the_fallback():
    spec = parse(SPRING, "test.yaml")
    pricing = {a.name: a.labels["severity"] for a in build(spec).alerts if a.labels["component"] == "pricing"}
    assert pricing["CircuitBreakerFailureRateHigh"] == pricing["CircuitBreakerNotOpening"] == "warning"


def test_the_open_page_tells_what_callers_get_from_each_breaker():
    page = render_pages(SPRING)["CircuitBreakerOpen"]
    meaning = section(page, "What it means")
    assert "while open, callers get its fallback: the last price list cached in the database" in meaning
    assert "circuit breaker `ledger`: opens at 40% failed calls" in meaning and "no fallback" in meaning
    assert "| Circuit breaker `pricing` |" in meaning and "| `1m` | warning |" in meaning
    impact = section(page, "Impact")
    assert "`pricing`: callers get the last price list cached in the database" in impact
    assert "`ledger`: calls fail" in impact
    checks = " ".join(section(page, "First checks").split())
    assert "From `pricing` the fallback: check that it answers. `ledger` has none" in checks


def test_fallback_text_goes_to_the_page_escaped_and_must_be_text():
    page = render_pages(SPRING.replace("the last price list cached in the database", '"*stale* `prices` <b>"'))
    assert r"\*stale\* \`prices\` \<b\>" in section(page["CircuitBreakerOpen"], "What it means")
    for value, found in (("[a, b]", "a list"), ("42", "`42`; quote it to make it a string")):
        with pytest.raises(SpecError) as caught:
            parse(SPRING.replace("the last price list cached in the database", value), "x.yaml")
        (problem,) = caught.value.problems
        assert str(problem).startswith("x.yaml:6:15: breakers[0].fallback: expected text"), problem
        assert found in problem.message


def _maple_resilience() -> dict[str, str]:
    """maple's own pages for its breaker, retry and time limiter (the spec without its other kinds)."""
    maple = yaml.safe_load((ROOT / "specs" / "maple.yaml").read_text())
    return render_pages(yaml.safe_dump({k: v for k, v in maple.items()
                                        if k in ("apiVersion", "service", "breakers", "retries", "time_limiters")}))


def test_maple_s_breaker_pages_tell_its_own_fallback_and_not_the_integration_report():
    pages = _maple_resilience()
    for alert in ALERTS:
        assert "integration report" not in pages[alert] and "20 errors" not in pages[alert], alert
    assert "`nexonApi`: callers get the equipment data stored in the database" in \
        section(pages["CircuitBreakerOpen"], "Impact")
    assert blocks(section(pages["CircuitBreakerNotOpening"], "Diagnosis"), "bash")[0].splitlines()[0] == \
        "curl -s http://<instance>/actuator/circuitbreakerevents/nexonApi"


def test_maple_declares_the_nexon_fallback_and_keeps_its_guide_s_critical_page():
    maple = load(ROOT / "specs" / "maple.yaml")
    (nexon,) = [c for c in maple.components if c.kind.key == "breakers"]
    assert "database" in nexon.spec.fallback and "database" not in nexon.spec.description
    assert nexon.spec.alerts["CircuitBreakerOpen"].severity == "critical"  # section 9.2 files it as P0


def test_queries_keep_the_cluster_label_where_the_rules_do():
    """Behind Thanos or Mimir one query sees every cluster: merging them would hide the one that is open."""
    fleet = SPRING.replace("team: payments}", "team: payments, cluster_label: cluster}")
    for alert, page in render_pages(fleet).items():
        for query in blocks(section(page, "Diagnosis"), "promql"):
            assert re.search(r"\bby \(cluster, instance, ", query), (alert, query)


# ---------------------------------------------------------------------------------------------
# An open breaker without a fallback is an outage, and its page says so


PYTHON_HTTP = PYTHON + """\
http:
  - name: api
    routes:
      - {route: /api/v1/schemas, breaker: terminus_db}
"""


def test_an_open_breaker_without_a_fallback_is_an_outage_page_that_holds_back_no_5xx_page():
    page = render_pages(PYTHON_HTTP)["CircuitBreakerOpen"]
    impact = " ".join(section(page, "Impact").split())
    assert "this is an outage of everything that calls through the breaker" in impact
    assert "not an outage" not in page and "fallback's quality" not in page
    checks = " ".join(section(page, "First checks").split())
    assert "[HttpErrorRateHigh](HttpErrorRateHigh.md) of the routes behind it is not held back" in checks
    behaviour = " ".join(section(page, "Alert behaviour").split())
    held = next(line for line in section(page, "Alert behaviour").splitlines() if "Alertmanager holds back" in line)
    assert "[CircuitBreakerFailureRateHigh](CircuitBreakerFailureRateHigh.md)" in held
    assert "[HttpLatencyHigh](HttpLatencyHigh.md)" in held and "with the same `breaker`" in held
    assert "is never held back" in behaviour
    assert "| `1m` | critical |" in section(page, "What it means")


def test_breaker_pages_name_time_limiters_and_retries_only_where_the_breaker_has_them():
    for alert, page in render_pages(PYTHON).items():
        assert "TimeLimiterTimeoutsHigh" not in page and "RetryExhaustionHigh" not in page, alert
    spring = render_pages(SPRING)["CircuitBreakerOpen"]
    assert "[TimeLimiterTimeoutsHigh](TimeLimiterTimeoutsHigh.md) and [RetryExhaustionHigh]" in spring


def test_the_closed_story_follows_the_state_encoding():
    def closed(text: str) -> str:
        spec = parse(text, "test.yaml")
        (alert,) = [a for a in build(spec).alerts if a.name == "CircuitBreakerOpen" and a.labels["component"]
                    in ("terminus_db", "ledger")]
        return next(s.title for s in alert.scenarios if s.slug == "closed")
    assert closed(PYTHON) == "closed (the gauge at 0)"
    assert closed(SPRING) == "closed (its state=closed series 1, the others 0)"


UNNAMED = """\
apiVersion: obsgen/v1
service: {name: oms, team: oms, profile: python}
breakers:
  - name: oms_breaker
    label: ""
"""


def test_a_breaker_whose_series_name_no_breaker_is_picked_by_the_selector_alone_and_the_page_says_what_to_add():
    spec = parse(UNNAMED, "test.yaml")
    opened = [a for a in build(spec).alerts if a.name == "CircuitBreakerOpen"]
    assert [str(a.expr).count("circuit_breaker_state{job=\"oms\"}") for a in opened] == [2]
    assert all("$labels." not in a.description.split(" on ")[0] for a in build(spec).alerts
               if a.name.startswith("CircuitBreaker"))
    meaning = " ".join(section(render_pages(UNNAMED)["CircuitBreakerOpen"], "What it means").split())
    assert "Its series carry no label naming a breaker" in meaning
    assert "the app must add a label with the breaker's name to its breaker series" in meaning


def test_two_breakers_reading_the_same_unnamed_series_are_refused_with_where_and_what_to_do():
    with pytest.raises(SpecError) as caught:
        parse(UNNAMED + "  - name: other\n    label: \"\"\n", "x.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith("x.yaml:7:12: breakers[1].label: reads the same series as breakers[0] "
                                   "(`oms_breaker`)"), problem
    assert "add a label naming the breaker" in problem.message
    apart = UNNAMED + "    selector: {pod: a}\n  - name: other\n    label: \"\"\n    selector: {pod: b}\n"
    assert len([a for a in build(parse(apart, "x.yaml")).alerts if a.name == "CircuitBreakerOpen"]) == 2


# What the breaker guards (`dependency`, `protocol`): HTTP advice only for an HTTP dependency, and an error rate
# only where the service serves HTTP (AniVault: a SQLite database, no HTTP routes).
SQLITE = """\
apiVersion: obsgen/v1
service: {name: vault, team: vault, profile: python}
breakers:
  - name: database
    dependency: the SQLite database vault.db
    protocol: database
    fallback: cache-only mode
retries:
  - {name: database, breaker: database}
"""
HTTP_API = SQLITE.replace("the SQLite database vault.db", "the Pricing API").replace("protocol: database",
                                                                                    "protocol: http")
HTTP_ONLY = ("HTTP 429", "429 responses", "status page", "external API", "error rate stays flat", "4xx")


@pytest.mark.parametrize("alert", ["CircuitBreakerOpen", "CircuitBreakerFailureRateHigh", "RetryExhaustionHigh"])
def test_a_breaker_around_a_database_in_a_service_without_http_pages_name_no_http(alert):
    page = " ".join(render_pages(SQLITE)[alert].split())
    assert [w for w in HTTP_ONLY if w in page] == []
    assert "Check the SQLite database vault.db itself: a manual query from an application host" in page


def test_a_breaker_around_an_http_api_keeps_its_rate_limit_and_status_page_steps():
    pages = {alert: " ".join(page.split()) for alert, page in render_pages(HTTP_API).items()}
    assert "Is the Pricing API down or slow? Its status page and owners" in pages["CircuitBreakerOpen"]
    assert "also its status page, and rate-limit answers (HTTP 429)" in pages["CircuitBreakerOpen"]
    assert "Confirm: 429 responses and the failure rate drop" in pages["CircuitBreakerFailureRateHigh"]
    assert "Check the status of the Pricing API and its rate limits (HTTP 429)" in pages["RetryExhaustionHigh"]
    assert "a 4xx (bad request, auth) is not transient" in pages["RetryExhaustionHigh"]


def test_a_breaker_in_front_of_a_service_with_http_routes_confirms_the_error_rate_stays_flat():
    page = " ".join(render_pages(SQLITE + "http:\n  - name: api\n")["CircuitBreakerOpen"].split())
    assert "Confirm: the service's error rate stays flat while the breaker is open" in page
