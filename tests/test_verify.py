"""`obsgen verify` without servers: selectors read from real rules, saved scrapes of real client libraries,
the seed 001 story, and every way a user can call it wrongly (exit 2, one line).

The live proofs (Prometheus, Redis with Sentinel, FastAPI) are in tests/e2e/test_verify_live.py.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from obsgen.cli import main
from obsgen.model.promql import Variable, parse, rate, selector
from obsgen.pipeline import build
from obsgen.verify.selectors import reads
from obsgen.verify.uses import uses

ROOT = Path(__file__).resolve().parent.parent
E2E_SPEC = ROOT / "tests" / "e2e" / "maple-e2e.yaml"


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


@pytest.fixture
def refapp_scrape(tmp_path) -> Path:
    """A saved /metrics of the reference app (Micrometer names, written by prometheus_client)."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    try:
        from refapp import App
    finally:
        sys.path.pop(0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(App())
    path = tmp_path / "refapp.prom"
    path.write_bytes(generate_latest(registry))
    return path


def app_only(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """The e2e spec without its Redis (whose metrics come from redis_exporter, not the app's scrape)."""
    text = E2E_SPEC.read_text().split("\nredis:\n")[0] + "\n"
    if old:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "maple-app.yaml"
    path.write_text(text)
    return path


# -- what a spec reads -------------------------------------------------------------------------------

def test_reads_know_the_function_window_and_quantile_threshold_around_each_selector():
    got = reads(parse('histogram_quantile(0.95, sum by (le) (rate(x_bucket{job="a"}[5m]))) > 0.1 '
                      'and max(y_total{z!="1"}) >= 2 or {__name__="on", a="1"} offset 5m'))
    assert [(r.metric, r.function, str(r.range), r.quantile_above, r.compared) for r in got] == [
        ("x_bucket", "rate", "5m", 0.1, None), ("y_total", None, "None", None, 2.0), ("on", None, "None", None, None)]
    assert got[2].selector == '{__name__="on", a="1"}'
    grafana = reads(rate(selector("x_total", signal="calls"), Variable("$__rate_interval")))[0]
    assert grafana.grafana_range and grafana.range is None and grafana.function == "rate" and grafana.signal == "calls"


def test_reads_tell_a_selector_read_for_its_absence_from_one_whose_values_count():
    got = reads(parse('group(up{job="a"} == 1) unless on () group(x_total{job="a"}) or absent(y{job="a"})'))
    assert [(r.metric, r.function, r.presence) for r in got] == [
        ("up", None, False), ("x_total", "group", True), ("y", "absent", True)]
    # label_replace passes its argument's values on: a threshold on the result is the aggregation's
    inner = reads(parse('label_replace(max by (name) (z{name="e"}), "executor", "e", "", "") > 3'))[0]
    assert (inner.metric, inner.function, inner.compared, inner.presence) == ("z", None, 3.0, False)


def test_every_alert_and_panel_of_maple_is_traced_to_raw_selectors_with_recordings_resolved(maple):
    model = build(maple)
    found = uses(maple, model)
    assert not [u for u in found if ":" in u.read.metric], "a recording rule was left unresolved"
    assert {a.name for a in model.alerts} == {a.split("{")[0] for u in found for a in u.alerts}
    latency = [u for u in found if u.kind == "slos" and u.read.equal().get("le")]
    assert {u.read.equal()["le"] for u in latency} == {"0.5"}
    assert {"ErrorBudgetBurnFast", "ErrorBudgetBurnSlow"} <= {a for u in latency for a in u.alerts}
    hits = [u for u in found if u.component == "equipment" and u.signal == "hits"]
    assert {a for u in hits for a in u.alerts} == {'CacheHitRateLow{tier="L1"}', 'CacheHitRateLow{tier="L2"}'}
    # maple names hits and misses, so lookups are their sum: no `requests` metric is read, or looked for
    assert {u.signal for u in found if u.component == "equipment"} >= {"hits", "misses"}
    assert not [u for u in found if u.kind == "caches" and u.signal == "requests"]
    text = Path(maple.file).read_text()  # located at the metric's name: `metrics: &tiered {hits: cache_hit_total, …}`
    at = text.index("cache_hit_total", text.index("name: equipment"))
    assert {(u.place.line, u.place.column) for u in hits} == {(text[:at].count("\n") + 1, at - text.rfind("\n", 0, at))}


def test_up_is_the_services_signal_wherever_it_is_read_and_a_presence_check_blinds_no_alert(maple):
    found = uses(maple)
    up = [u for u in found if u.read.metric == "up"]
    assert {(u.kind, u.component, u.signal) for u in up} == {("service", "maple-expectation", "up"),
                                                            ("redis", "main", "scrape_up"),
                                                            ("redis", "main", "dashboard variables")}
    own = {a for u in up if u.kind == "service" for a in u.alerts}
    assert {"ServiceDown", "InstanceDown", "ComponentMetricsMissing"} == own
    # the redis exporter's scrapes are Redis's own signal, read under the Redis selector for Redis's alerts
    exporter = {a for u in up if u.signal == "scrape_up" for a in u.alerts}
    assert exporter == {"RedisExporterDown", "RedisDown"}
    assert {u.read.equal()["job"] for u in up if u.signal == "scrape_up"} == {"redis"}
    assert {p for u in up if u.kind == "service" for p in u.panels} >= {
        "Service Overview / variables job, instance", "Availability / maple-expectation: instances up"}
    # the breaker's presence signal: read by its own alerts, and by ComponentMetricsMissing only for its absence
    state = [u for u in found if u.component == "nexonApi" and u.kind == "breakers" and u.signal == "state"]
    assert not [a for u in state for a in u.alerts if a.startswith("ComponentMetricsMissing")]
    assert [u for u in state if u.read.presence and u.read.function == "group"]


def test_a_metric_that_names_the_component_its_own_way_is_read_so_everywhere_and_located_at_its_metrics_key(maple):
    """maple's executors are `executor="expectation"`, but Micrometer's busy threads are `name=<bean>`."""
    active = [u for u in uses(maple) if u.component == "expectationComputeExecutor" and u.signal == "active"]
    assert {bool(u.alerts) for u in active} == {True, False}  # ExecutorSaturated, and the thread-pool panel
    for u in active:
        assert (u.identity, u.places["name"].path) == ("name", ("executors", 0, "metrics", "active"))
        assert u.read.equal()["name"] == "expectationComputeExecutor" and "executor" not in u.read.equal()


# -- --metrics on saved exposition text ----------------------------------------------------------------

def test_the_reference_apps_saved_scrape_verifies_the_app_side_of_the_e2e_spec(tmp_path, refapp_scrape):
    result = run(str(app_only(tmp_path)), "--metrics", str(refapp_scrape))
    assert result.exit_code == 0, result.output
    # 9 components and the service (its `up`: a series Prometheus writes, so not looked for in a scrape's text)
    assert result.output.splitlines()[-2].startswith("obsgen verify: clean, 0 notes; 1 spec, 10 components")
    assert result.output.splitlines()[-1] == ("obsgen verify: skipped: windows against scrape intervals: "
                                              "exposition texts carry no scrape interval")


def test_a_renamed_retry_metric_is_located_at_its_metrics_key_with_the_closest_names(tmp_path, refapp_scrape):
    spec = app_only(tmp_path, "  - {name: nexonApi, breaker: nexonApi, max_attempts: 3,",
                    "  - {name: nexonApi, metrics: {calls: resilience4j_retry_call_total}, breaker: nexonApi, "
                    "max_attempts: 3,")
    result = run(str(spec), "--metrics", str(refapp_scrape))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    text = spec.read_text()
    at = text.index("resilience4j_retry_call_total")
    line, col = text[:at].count("\n") + 1, at - text.rfind("\n", 0, at)
    assert lines[0].startswith(f"{spec}:{line}:{col}: nexonApi (retries) calls: no metric "
                               "`resilience4j_retry_call_total`; closest: resilience4j_retry_calls_total")
    assert "set `retries[0].metrics.calls` to the metric the app exports" in lines[0]
    assert lines[0].endswith("[blinds: alerts RetryExhaustionHigh; panels Circuit Breaker / nexonApi: exhausted "
                             "ratio, Circuit Breaker / nexonApi: retry calls by outcome, Service Overview / Retry "
                             "nexonApi: exhausted ratio]")
    assert lines[1].startswith("obsgen verify: 1 finding (1 alert and 3 panels blind)")


def test_json_is_the_documented_contract(tmp_path, refapp_scrape):
    spec = app_only(tmp_path, "  - name: ocidCache\n", "  - name: ocid\n")
    doc = json.loads(run(str(spec), "--metrics", str(refapp_scrape), "--format", "json").output)
    assert set(doc) == {"findings", "notes", "checked"}
    first = doc["findings"][0]
    assert list(first) == ["file", "line", "column", "service", "component", "kind", "signal", "selector",
                           "problem", "message", "alerts", "panels", "hint"]
    assert (first["component"], first["kind"], first["problem"]) == ("ocid", "caches", "value-missing")
    assert first["message"] == "no cache `ocid`; caches seen: cubeTrials, equipment, expectationV4, ocidCache"
    assert set(doc["checked"]) == {"specs", "components", "signals", "selectors", "source", "at", "lookback",
                                   "skipped"}
    # a misnamed cache: its failure counters are findings too, not "no failure yet" notes
    assert doc["notes"] == []
    assert {f["signal"] for f in doc["findings"]} == {"hits", "misses", "lock_failures", "l2_failures"}  # lookups = hits + misses


def test_seed_001_oms_as_it_really_exported_leaves_its_breaker_and_etag_alerts_blind(tmp_path):
    """Seed 000 names the series OMS exports (000:219-228); a prometheus_client app exporting exactly those.
    Seed 001 found a breaker that never opened and E-Tags that never hit: verify says neither was watched."""
    registry = CollectorRegistry()
    Gauge("circuit_breaker_state", "0 closed, 1 half-open, 2 open", ["service"], registry=registry).labels("oms").set(0)
    Counter("cache_hits", "Cache hits", registry=registry).inc(90)
    Counter("cache_requests", "Cache lookups", registry=registry).inc(100)
    Gauge("etag_cache_effectiveness_ratio", "Share of 304s", ["resource_type"], registry=registry).labels("schema")
    Gauge("backpressure_queue_size", "Queued", ["circuit_name"], registry=registry).labels("heavy_operation").set(3)
    scrape = tmp_path / "oms.prom"
    scrape.write_bytes(generate_latest(registry))
    doc = json.loads(run(str(ROOT / "specs" / "oms.yaml"), "--metrics", str(scrape), "--format", "json").output)
    by = {(f["component"], f["signal"]): f for f in doc["findings"]}
    state = by[("terminus_db", "state")]
    assert state["problem"] == "label-missing"
    assert state["message"] == ('`circuit_breaker_state` has no label `circuit_name` (the selector has '
                                '`circuit_name="terminus_db"`); its labels: service')
    assert {"CircuitBreakerOpen", "CircuitBreakerNotOpening"} <= set(state["alerts"])
    etag = by[("object-types", "conditional")]
    assert etag["problem"] == "unknown-metric" and "closest: etag_cache_effectiveness_ratio" in etag["message"]
    assert set(etag["alerts"]) == {"ETagEffectivenessLow", "ETagNeverNotModified"}
    assert by[("smart_cache", "hits")]["problem"] == "label-missing"  # the seed's counters name no cache


# -- mistakes: exit 2, one line --------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ([], "obsgen: give either --prometheus URL or --metrics FILE_OR_URL (not both)"),
    (["--prometheus", "http://x", "--metrics", "m.prom"], "obsgen: give either --prometheus URL or --metrics"),
    (["--metrics", "m.prom", "--at", "0"], "obsgen: --at and --lookback apply to --prometheus"),
    (["--prometheus", "http://x", "--at", "yesterday"], "obsgen: --at 'yesterday': expected RFC 3339 with a time zone"),
    (["--prometheus", "http://x", "--at", "2026-01-01T00:00:00"], "obsgen: --at '2026-01-01T00:00:00': expected RFC"),
    (["--prometheus", "http://x", "--lookback", "an hour"], "obsgen: --lookback 'an hour': expected a Prometheus"),
    (["--prometheus", "http://x", "--header", "NoColon"], "obsgen: --header 'NoColon': expected 'Name: value'"),
    (["--prometheus", "http://x", "--bearer-token-file", "/nonexistent/t"],
     "obsgen: --bearer-token-file /nonexistent/t: No such file or directory"),
    (["--metrics", "/nonexistent/m.prom"], "obsgen: --metrics /nonexistent/m.prom: No such file or directory"),
])
def test_usage_mistakes_exit_2_with_one_line(args, message):
    result = run(str(E2E_SPEC), *args)
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output


def test_a_spec_problem_is_located_and_exits_2(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: x, team: t}\ncaches:\n  - {name: c, hit_rate_min: 80}\n")
    result = run(str(spec), "--metrics", str(spec))
    assert result.exit_code == 2
    assert f"{spec}:4:29: caches[0].hit_rate_min: expected a value at most 1" in result.output


def test_text_that_is_not_an_exposition_is_refused_with_its_line(tmp_path):
    scrape = tmp_path / "broken.prom"
    scrape.write_text('# TYPE x counter\nx_total 1\nx_total{a="1" 2\n')
    result = run(str(E2E_SPEC), "--metrics", str(scrape))
    assert result.exit_code == 2
    assert result.output == f'obsgen: {scrape}: not Prometheus exposition text (line 3: `x_total{{a="1" 2`)\n'


def test_an_unreachable_server_and_a_silent_one_are_one_line_each_and_bounded():
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = run(str(E2E_SPEC), "--prometheus", f"http://127.0.0.1:{port}", "--timeout", "0.5")
        assert result.exit_code == 2
        assert result.output == f"obsgen: http://127.0.0.1:{port}/api/v1/series: no answer within 0.5s\n"
    result = run(str(E2E_SPEC), "--prometheus", f"http://127.0.0.1:{port}")
    assert result.exit_code == 2 and "cannot connect: [Errno 111] Connection refused" in result.output
