"""The python profile, the http and etags kinds and CircuitBreakerNotOpening: defaults that follow the
profile, rules shaped for the traps (absent series, NaN, low traffic), and the labels inhibition relies on."""

from __future__ import annotations

from conftest import build_into, run_unit_tests
from obsgen.components import KINDS
from obsgen.components.base import Alert, Recording
from obsgen.model.promql import render
from obsgen.pipeline import build


def rules_of(spec) -> list:
    return [r for g in build(spec).groups for r in g.rules]


def alerts(spec, name: str) -> list[Alert]:
    return [r for r in rules_of(spec) if isinstance(r, Alert) and r.name == name]


def test_python_breakers_default_to_a_0_1_2_gauge_and_an_explicit_encoding_wins(spec_from):
    def encoding(profile: str, extra: str = "") -> str:
        spec = spec_from(f"apiVersion: obsgen/v1\nservice: {{name: s, team: t, profile: {profile}}}\n"
                         f"breakers: [{{name: db{extra}}}]\n")
        return spec.components[0].spec.state_encoding.type

    assert encoding("python") == "enum"
    assert encoding("micrometer") == "one_hot"
    assert encoding("python", ", state_encoding: {type: one_hot}") == "one_hot"


def test_python_profile_names_the_oms_metrics_without_overrides(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: oms, team: t, profile: python}\n"
                     "caches: [{name: schemas}]\nbreakers: [{name: terminus_db}]\n")
    cache, breaker = spec.components
    assert (render(cache.select("hits")), render(cache.select("requests"))) == (
        'cache_hits_total{job="oms", cache="schemas"}', 'cache_requests_total{job="oms", cache="schemas"}')
    assert render(breaker.select("state")) == 'circuit_breaker_state{job="oms", name="terminus_db"}'
    open_expr = render(alerts(spec, "CircuitBreakerOpen")[0].expr)
    assert 'circuit_breaker_state{job="oms", name="terminus_db"} != 0' in open_expr and "state=" not in open_expr


def test_python_breaker_failure_rate_comes_from_calls_with_a_minimum_like_resilience4js_minus_one(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: oms, team: t, profile: python}\n"
                     "breakers: [{name: db, failure_rate_threshold: 20, minimum_calls: 30}]\n")
    (rule,) = alerts(spec, "CircuitBreakerFailureRateHigh")
    assert render(rule.expr).startswith('instance_breaker:failed:ratio_rate5m{name="db", service="oms"} > 0.16')
    assert render(rule.expr).endswith(">= 0.1")  # 30 calls in 5m


def test_a_breaker_that_opens_only_when_every_call_fails_is_still_caught_not_opening(spec_from, tmp_path):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: maple, team: t}\n"
                     "breakers: [{name: nexonApi, failure_rate_threshold: 100, failure_window: 10m}]\n")
    (rule,) = alerts(spec, "CircuitBreakerNotOpening")
    assert ") >= 1\nand\n" in render(rule.expr)
    build_into(tmp_path, spec)
    result = run_unit_tests(tmp_path / "maple" / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_not_opening_needs_failures_at_the_threshold_a_minimum_of_failures_and_a_breaker_closed_all_along(
        spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: maple, team: t}\n"
                     "breakers: [{name: nexonApi, failure_rate_threshold: 50, minimum_calls: 100, "
                     "failure_window: 10m}]\n")
    (rule,) = alerts(spec, "CircuitBreakerNotOpening")
    assert ") >= 0.5\nand\n" in render(rule.expr)  # Resilience4j opens at the threshold itself
    assert 'increase(resilience4j_circuitbreaker_calls_seconds_count{job="maple", name="nexonApi", kind="failed"}' \
           '[10m])) >= 100' in render(rule.expr)
    assert 'min_over_time(resilience4j_circuitbreaker_state{job="maple", name="nexonApi", state="closed"}[10m])) ' \
           '== 1' in render(rule.expr)
    assert str(rule.for_) == "10m"
    slugs = {s.slug: any(c.fires for c in s.checks) for s in rule.scenarios}
    assert slugs == {"failing-closed": True, "all-failing": True, "opens": False, "few-calls": False,
                     "under-threshold": False}


HTTP = """
apiVersion: obsgen/v1
service: {name: oms, team: platform, profile: python}
breakers: [{name: terminus_db}]
http:
  - name: api
    latency: {p95: 500ms}
    routes:
      - route: /api/v1/schemas/{branch}/object-types
        breaker: terminus_db
        latency: {p99: 800ms}
      - route: /api/v1/events
        latency: {}
"""


def test_http_listed_routes_get_their_own_rules_and_the_rest_excludes_them(spec_from):
    spec = spec_from(HTTP)
    errors = alerts(spec, "HttpErrorRateHigh")
    assert [a.labels.get("handler") for a in errors] == ["/api/v1/schemas/{branch}/object-types", "/api/v1/events",
                                                         None]
    # the rest leaves out the listed routes and the metrics scrape (prometheus-fastapi-instrumentator counts /metrics)
    assert 'handler!~"/api/v1/schemas/\\\\{branch\\\\}/object-types|/api/v1/events|/metrics"' in \
        render(errors[2].expr)
    latency = alerts(spec, "HttpLatencyHigh")
    assert [(a.labels.get("handler"), a.labels["quantile"]) for a in latency] == [
        ("/api/v1/schemas/{branch}/object-types", "0.99"), (None, "0.95")]  # the streaming route has none


def test_http_alerts_of_a_guarded_route_carry_its_breaker_and_circuit_breaker_open_silences_only_latency(spec_from):
    """An open breaker explains slow routes, not failing ones: their 5xx still page (the outage users see)."""
    spec = spec_from(HTTP)
    guarded = [a for a in rules_of(spec) if isinstance(a, Alert) and a.name.startswith("Http")
               and a.labels.get("handler") == "/api/v1/schemas/{branch}/object-types"]
    assert {a.name for a in guarded} == {"HttpErrorRateHigh", "HttpLatencyHigh"}
    assert all(a.labels["breaker"] == "terminus_db" for a in guarded)
    http = next(k for k in KINDS if k.key == "http")
    (inhibition,) = http.inhibitions
    assert inhibition.source == "CircuitBreakerOpen" and set(inhibition.equal) == {"service", "breaker"}
    assert set(inhibition.targets) == {"HttpLatencyHigh", "HttpLatencyAverageHigh"}


def test_http_recordings_are_named_for_reuse_by_slos_and_judge_routes_across_instances(spec_from):
    spec = spec_from(HTTP)
    records = {r.record: r for r in rules_of(spec) if isinstance(r, Recording)}
    assert set(records) >= {"route:http_requests:rate5m", "route:http_request_errors:rate5m",
                            "route:http_request_errors:ratio_rate5m",
                            "route:http_request_duration_seconds:quantile_rate5m"}
    assert render(records["route:http_requests:rate5m"].expr) == \
        'sum by (handler) (rate(http_requests_total{job="oms"}[5m]))'
    # the 5xx series, or 0 for the routes that served requests without one (tests/components/test_http.py)
    assert render(records["route:http_request_errors:rate5m"].expr).split("\nor\n")[0] == \
        'sum by (handler) (rate(http_requests_total{job="oms", status="5xx"}[5m]))'
    assert records["route:http_requests:rate5m"].labels == {"service": "oms", "component": "api"}


def test_http_micrometer_reads_spring_server_requests_by_uri_and_outcome(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: shop, team: t}\nhttp: [{name: api}]\n")
    records = {r.record: render(r.expr) for r in rules_of(spec) if isinstance(r, Recording)}
    assert records["route:http_request_errors:rate5m"].split("\nor\n")[0] == (
        'sum by (uri) (rate(http_server_requests_seconds_count{job="shop", outcome="SERVER_ERROR"}[5m]))')
    assert "http_server_requests_seconds_bucket" in records["route:http_request_duration_seconds:quantile_rate5m"]


def test_table_order_and_maple_thresholds_are_expressible(spec_from):
    table_order = spec_from("""
apiVersion: obsgen/v1
service: {name: table-order, team: web, profile: python}
http:
  - name: api
    latency: {avg: 500ms, p95: 1s, p99: 2s}
    error_ratio_max: 0.01
    histogram: {largest_bucket: 5s}
""")
    exprs = {(a.name, a.labels.get("quantile")): render(a.expr) for a in rules_of(table_order) if isinstance(a, Alert)}
    assert exprs[("HttpLatencyAverageHigh", None)].split("\n")[0].endswith("> 0.5")
    assert exprs[("HttpLatencyHigh", "0.95")].split("\n")[0].endswith("> 1")
    assert exprs[("HttpLatencyHigh", "0.99")].split("\n")[0].endswith("> 2")
    assert exprs[("HttpErrorRateHigh", None)].split("\n")[0].endswith("> 0.01")
    maple = spec_from("apiVersion: obsgen/v1\nservice: {name: maple, team: sre}\n"
                      "http: [{name: api, latency: {p99: 500ms}, min_request_rate: 500}]\n")
    (p99,) = alerts(maple, "HttpLatencyHigh")
    assert render(p99.expr).split("\n")[0].endswith("> 0.5") and render(p99.expr).endswith(">= 500")


def test_etag_never_304_fires_on_conditional_traffic_unless_any_304_was_counted(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: oms, team: t, profile: python}\n"
                     "etags: [{name: object-types, label: resource_type}]\n")
    (never,) = alerts(spec, "ETagNeverNotModified")
    first, guard, hits = render(never.expr).split("\n")
    assert first.endswith(">= 20") and 'resource_type="object-types"' in first
    assert guard == "unless on (instance, resource_type)"
    assert hits.endswith("> 0") and 'result="hit"' in hits
    (low,) = alerts(spec, "ETagEffectivenessLow")
    assert render(low.expr).startswith('instance_etag:not_modified:ratio_rate5m{resource_type="object-types", '
                               'service="oms"} < 0.2')
    etags = next(k for k in KINDS if k.key == "etags")
    assert etags.inhibitions[0].source == "ETagNeverNotModified"
