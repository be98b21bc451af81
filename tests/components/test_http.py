"""HTTP error recordings and panels against known worlds in promtool: a route that served no server error has no
5xx series (the instrumentator and Micrometer create that child on the first 5xx), yet its error ratio is 0%, not
"No data"; an idle route reads 0 too; a failing route reads its true share."""

from __future__ import annotations

import pytest

from obsgen.spec import parse

from .world import Expect, build, grafana, panel_queries, passes, run

PROFILES = {  # profile: (route label, the request counter with `route` and the outcome labels to fill in)
    "python": ("handler", 'http_requests_total{{job="shop", handler="{route}", method="GET", status="{code}xx", '
                          'instance="{instance}"}}'),
    "micrometer": ("uri", 'http_server_requests_seconds_count{{job="shop", uri="{route}", method="GET", '
                          'status="{code}00", outcome="{outcome}", exception="None", instance="{instance}"}}'),
}
OUTCOMES = {"2": "SUCCESS", "4": "CLIENT_ERROR", "5": "SERVER_ERROR"}


def spec(profile: str):
    return parse(f"apiVersion: obsgen/v1\nservice: {{name: shop, team: web, profile: {profile}}}\n"
                 "http:\n  - name: api\n    latency: {}\n", "t.yaml")


def counter(profile: str, route: str, code: str, instance: str) -> str:
    return PROFILES[profile][1].format(route=route, code=code, outcome=OUTCOMES[code], instance=instance)


def world(profile: str, per_minute: dict[tuple[str, str], str]) -> dict[str, str]:
    """Two instances; ``(route, status class)`` → the counter's values on each."""
    return {counter(profile, route, code, i): values for (route, code), values in per_minute.items()
            for i in ("a:1", "b:1")}


def near(expr: str, value: float) -> str:
    return f"abs(({expr}) - {value}) < bool 1e-9"


def routes(profile: str, *names: str) -> dict[str, float]:
    """The label sets the route recordings carry, each expected to be 1 (a `near` check that held)."""
    label = PROFILES[profile][0]
    return {f'{{component="api", {label}="{r}", service="shop"}}': 1 for r in names}


def by_route(profile: str, *names: str) -> dict[str, float]:
    label = PROFILES[profile][0]
    return {f'{{{label}="{r}"}}': 1 for r in names}


def _verdicts(series: dict[str, float], *true: str) -> dict[str, float]:
    """1 for the series of the routes in ``true``, 0 for the others (a `near` check per route)."""
    return {labels: 1 if any(f'="{r}"' in labels for r in true) else 0 for labels in series}


# /menu and /orders at 5 req/s per instance for 1h, some 4xx, and not one 5xx: no 5xx series exists.
HEALTHY = {("/menu", "2"): "0+290x60", ("/menu", "4"): "0+10x60", ("/orders", "2"): "0+300x60"}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_routes_without_a_5xx_series_record_zero_errors_and_a_zero_ratio_and_do_not_alert(tmp_path, profile):
    out = build(tmp_path, spec(profile))
    expects = [Expect("1h", near(f'route:http_request_errors:{name}{{service="shop"}}', 0),
                      routes(profile, "/menu", "/orders")) for name in ("rate5m", "ratio_rate5m")]
    expects.append(Expect("1h", 'ALERTS{alertname="HttpErrorRateHigh"}'))
    passes(run(out, world(profile, HEALTHY), expects))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_error_panels_show_zero_on_a_healthy_service_not_no_data(tmp_path, profile):
    out = build(tmp_path, spec(profile))
    panels = panel_queries(out, "http")
    overview = panel_queries(out, "service-overview")
    expects = [Expect("1h", near(grafana(e), 0), by_route(profile, "/menu", "/orders"))
               for title in ("api: 5xx ratio by route", "api: 5xx by route") for e in panels[title]]
    expects += [Expect("1h", near(grafana(e), 0), {"{}": 1}) for e in overview["HTTP api: 5xx ratio"]]
    passes(run(out, world(profile, HEALTHY), expects))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_failing_route_reads_its_true_share_beside_a_healthy_one_and_an_idle_route_reads_zero(tmp_path, profile):
    """/orders answers 5% of its requests 5xx; /menu none (no 5xx series); /health served for 30m, then nothing."""
    out = build(tmp_path, spec(profile))
    traffic = {("/menu", "2"): "0+300x60", ("/orders", "2"): "0+285x60", ("/orders", "5"): "0+15x60",
               ("/health", "2"): "0+60x30 1800+0x30"}
    panels = panel_queries(out, "http")
    overview = panel_queries(out, "service-overview")
    recorded = 'route:http_request_errors:ratio_rate5m{service="shop"}'
    expects = [
        Expect("1h", near(recorded, 0.05), _verdicts(routes(profile, "/orders", "/menu", "/health"), "/orders")),
        Expect("1h", near(recorded, 0), _verdicts(routes(profile, "/orders", "/menu", "/health"), "/menu", "/health")),
        Expect("1h", near(grafana(panels["api: 5xx ratio by route"][0]), 0.05),
               _verdicts(by_route(profile, "/orders", "/menu", "/health"), "/orders")),
        Expect("1h", near(grafana(overview["HTTP api: 5xx ratio"][0]), 15 / 600), {"{}": 1}),
    ]
    passes(run(out, world(profile, traffic), expects))


def test_each_cluster_reads_its_own_route_ratio_when_only_one_has_a_5xx_series(tmp_path):
    out = build(tmp_path, parse("apiVersion: obsgen/v1\nservice: {name: shop, team: web, profile: python, "
                                "cluster_label: cluster}\nhttp:\n  - name: api\n    latency: {}\n", "t.yaml"))
    base = 'http_requests_total{{job="shop", handler="/orders", status="{}", cluster="{}", instance="a:1"}}'
    world_ = {base.format("2xx", "eu"): "0+600x60", base.format("2xx", "us"): "0+570x60",
              base.format("5xx", "us"): "0+30x60"}
    labels = '{{cluster="{}", component="api", handler="/orders", service="shop"}}'
    recorded = 'route:http_request_errors:ratio_rate5m{service="shop"}'
    passes(run(out, world_, [Expect("1h", near(recorded, 0), {labels.format("eu"): 1, labels.format("us"): 0}),
                             Expect("1h", near(recorded, 0.05), {labels.format("eu"): 0, labels.format("us"): 1})]))


@pytest.mark.parametrize("average", ["1h45m", "15s", "3s86ms"])
def test_an_average_latency_story_shows_the_value_prometheus_computes(tmp_path, average):
    """The slow story's mean is sum/count, which Prometheus may compute a hair under the story's value: at 7h
    (4 × 1h45m) humanizeDuration then said 6h 59m 59s where the expected annotation said 7h 0m 0s, and at 60s
    `60s` against `1m 0s`. The story's mean sits where that hair changes no text."""
    from conftest import build_into, run_unit_tests

    spec = parse(f"""
apiVersion: obsgen/v1
service: {{name: api, team: web, profile: python}}
http:
  - name: api
    min_request_rate: 1553
    latency: {{avg: {average}}}
""", "api.yaml")
    build_into(tmp_path, spec)
    prom = tmp_path / "api" / "prometheus"
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_redirect_threshold_of_zero_is_proven_by_a_quiet_path_that_redirects_at_all(tmp_path):
    """With ``redirect_ratio_max: 0`` any redirect is too many: the quiet raw path's firing story told twice the
    threshold, that is no redirect at all, and its own generated test failed (found by make fuzz)."""
    import yaml

    from conftest import build_into, run_unit_tests

    spec = parse("""
apiVersion: obsgen/v1
service: {name: api, team: web}
http:
  - {name: api, redirect_ratio_max: 0}
""", "api.yaml")
    build_into(tmp_path, spec)
    prom = tmp_path / "api" / "prometheus"
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout[-3000:]
    fired = [a["exp_labels"]["uri"] for f in prom.glob("*.test.yaml") for t in yaml.safe_load(f.read_text())["tests"]
             for c in t["alert_rule_test"] if c["alertname"] == "HttpRedirectRatioHigh" for a in c["exp_alerts"]]
    assert any(uri.endswith("/raw-path") for uri in fired), fired


# ---------------------------------------------------------------------------------------------
# What no 5xx shows: redirects, and answers slower than the clients wait (OMS's integration report, seed 001)

FAILURES_NO_5XX_SHOWS = """\
apiVersion: obsgen/v1
service: {name: oms, team: oms, profile: python, selector: {job: oms}}
http:
  - name: api
    latency: {}
    redirect_ratio_max: 0.05
    client_timeout: 1s
"""


def _fastapi_exposition(redirected: int = 6, heavy_calls: int = 2, fast_calls: int = 4) -> str:
    """A real FastAPI app instrumented by prometheus-fastapi-instrumentator: document creation called without
    its trailing slash (FastAPI answers 307, as OMS did), a handler slower than a 1s client timeout, a fast one;
    each called as often as asked."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_fastapi_instrumentator import Instrumentator

    app, registry = FastAPI(), CollectorRegistry()

    @app.post("/api/v1/documents/crud/")
    def create() -> dict:
        return {"created": True}

    @app.get("/api/v1/heavy")
    async def heavy() -> dict:
        await asyncio.sleep(1.05)
        return {"done": True}

    @app.get("/api/v1/fast")
    def fast() -> dict:
        return {"done": True}

    Instrumentator(registry=registry).instrument(app)
    with TestClient(app) as client:
        for _ in range(redirected):
            assert client.post("/api/v1/documents/crud", follow_redirects=False).status_code == 307
        for _ in range(heavy_calls):
            assert client.get("/api/v1/heavy").status_code == 200
        for _ in range(fast_calls):
            assert client.get("/api/v1/fast").status_code == 200
    return generate_latest(registry).decode()


def test_a_real_fastapi_app_s_307s_and_answers_slower_than_the_clients_timeout_fire_their_alerts(tmp_path):
    """Each counter of the app's real exposition grows by its count every second for 20 minutes: the redirects
    (labelled with the raw path, which no route template matches) fire HttpRedirectRatioHigh, the handler slower
    than the clients' 1s timeout fires HttpClientTimeoutsHigh (its bucket written le="1.0"), the fast one nothing."""
    series = _growing(_fastapi_exposition(), per_second=1)
    assert any('le="1.0"' in s for s in series)  # as prometheus_client writes the bucket
    out = build(tmp_path, parse(FAILURES_NO_5XX_SHOWS, "oms.yaml"))
    firing = 'count by (alertname, handler) (ALERTS{alertstate="firing", alertname=~"Http.*"})'
    passes(run(out, series, [Expect("15m", firing, {
        '{alertname="HttpRedirectRatioHigh", handler="/api/v1/documents/crud"}': 1,
        '{alertname="HttpClientTimeoutsHigh", handler="/api/v1/heavy"}': 1})]))


def _growing(exposition: str, per_second: float) -> dict[str, str]:
    """promtool input series: each request counter and bucket of the exposition grows by ``per_second`` times its
    value every second, sampled every minute for 20 minutes."""
    from prometheus_client.parser import text_string_to_metric_families

    series = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in ("http_requests_total", "http_request_duration_seconds_bucket"):
                labels = ", ".join(f'{k}="{v}"' for k, v in sorted({**sample.labels, "job": "oms"}.items()))
                series[f"{sample.name}{{{labels}}}"] = f"0+{sample.value * per_second * 60:g}x20"
    return series


@pytest.mark.parametrize("redirected, fires", [(1, True), (0, False)])
def test_a_real_fastapi_app_s_quiet_307s_fire_once_they_are_a_share_of_the_service_s_traffic(tmp_path, redirected,
                                                                                          fires):
    """The report's document creation is rare: 0.5 redirects/s on its raw path, far under the 1 req/s guard, beside
    5 req/s of other requests. Its 307s are 9% of what those routes serve (threshold 5%): the guard judges the
    routes' traffic together, so it fires and names the raw path; the same traffic without a redirect does not."""
    series = _growing(_fastapi_exposition(redirected=redirected, heavy_calls=0, fast_calls=10), per_second=0.5)
    out = build(tmp_path, parse(FAILURES_NO_5XX_SHOWS, "oms.yaml"))
    firing = 'count by (alertname, handler) (ALERTS{alertstate="firing", alertname="HttpRedirectRatioHigh"})'
    want = {'{alertname="HttpRedirectRatioHigh", handler="/api/v1/documents/crud"}': 1} if fires else {}
    passes(run(out, series, [Expect("15m", firing, want)]))


@pytest.mark.parametrize("profile, buckets, says", [
    ("python", "", "x.yaml:7:21: http[0].client_timeout: client_timeout 2s is not a bucket bound of the request "
                   "histogram (100ms, 500ms, 1s, from the python profile's default buckets)"),
    ("python", "    histogram: {buckets: [250ms, 1s, 5s], largest_bucket: 5s}\n",
     "x.yaml:7:21: http[0].client_timeout: client_timeout 2s is not a bucket bound of the request histogram "
     "(250ms, 1s, 5s, from `histogram.buckets`)"),
    ("micrometer", "", "x.yaml:7:21: http[0].client_timeout: client_timeout 2s needs a bucket at exactly that bound "
                       "in the request histogram, and the micrometer profile's buckets are not known; add one to the "
                       "app (Spring Boot: management.metrics.distribution.slo.http.server.requests=2000ms)"),
])
def test_a_client_timeout_between_histogram_buckets_is_refused_with_where_and_what_to_do(profile, buckets, says):
    from obsgen.errors import SpecError

    text = (FAILURES_NO_5XX_SHOWS.replace("profile: python", f"profile: {profile}")
            .replace("client_timeout: 1s", "client_timeout: 2s") + buckets)
    with pytest.raises(SpecError) as caught:
        parse(text, "x.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith(says), problem
    fine = text.replace("client_timeout: 2s", "client_timeout: 1s") if profile == "python" and not buckets else None
    if fine:
        parse(fine, "x.yaml")
