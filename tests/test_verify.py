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
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from obsgen.cli import main
from obsgen.model.promql import Matcher, Variable, parse, rate, selector
from obsgen.pipeline import build
from obsgen.spec import load
from obsgen.verify.selectors import reads
from obsgen.verify.uses import uses

ROOT = Path(__file__).resolve().parent.parent
E2E_SPEC = ROOT / "tests" / "e2e" / "maple-e2e.yaml"


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


sys.path.insert(0, str(ROOT / "tests" / "e2e"))
try:
    from refapp import App
    from spec_keys import assert_hints_name_real_keys
finally:
    sys.path.pop(0)


def saved_scrape(path: Path, renames: str = "") -> Path:
    """A saved /metrics of the reference app (Micrometer names, written by prometheus_client), with ``renames``
    (``old=new,…``) applied as the app's /control does."""
    app = App()
    app.patch({"renames": renames})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(app)
    path.write_bytes(generate_latest(registry))
    return path


@pytest.fixture
def refapp_scrape(tmp_path) -> Path:
    return saved_scrape(tmp_path / "refapp.prom")


def app_only(tmp_path: Path, old: str = "", new: str = "", extra: str = "", *, count: int = 1) -> Path:
    """The e2e spec without its Redis (whose metrics come from redis_exporter, not the app's scrape)."""
    text = E2E_SPEC.read_text().split("\nredis:\n")[0] + "\n"
    if old:
        assert text.count(old) == count, old
        text = text.replace(old, new)
    path = tmp_path / "maple-app.yaml"
    path.write_text(text + extra)
    return path


def position(path: Path, needle: str, after: str = "") -> tuple[int, int]:
    """Line and column (1-based) of the first ``needle`` in the file after ``after``."""
    text = path.read_text()
    at = text.index(needle, text.index(after) if after else 0)
    return text[:at].count("\n") + 1, at - text.rfind("\n", 0, at)


def findings(result) -> list[dict]:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)["findings"]


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


def test_a_matcher_on_an_expressions_output_reaches_the_selectors_whose_labels_pass_through():
    """A route's alert reads `route:…{uri="/x"}`; the recording's inputs with uri="/x" are what it needs."""
    expr = parse('sum by (uri) (rate(a[5m])) + sum by (job) (b) + sum without (job) (c) + (x / on (job) group_left y) '
                 '+ label_replace(e, "uri", "/y", "", "") + z * ignoring (le) w or v')
    got = {r.metric: r.equal().get("uri") for r in reads(expr, carry=(Matcher("uri", "/x"),))}
    # kept by `by (uri)`, `without (job)`, the result side, a one-to-one match and `or`; not by `by (job)`, the
    # side matched `on (job)`, or a label_replace that writes the label itself
    assert got == {"a": "/x", "b": None, "c": "/x", "x": "/x", "y": None, "e": None, "z": "/x", "w": "/x", "v": "/x"}


def test_every_alert_and_panel_of_maple_is_traced_to_raw_selectors_with_recordings_resolved(maple):
    model = build(maple)
    found = uses(maple, model)
    assert not [u for u in found if ":" in u.read.metric], "a recording rule was left unresolved"
    # every alert but the two that read their selector for its absence too, and fire without it
    assert {a.name for a in model.alerts} - {"ServiceDown", "RedisSentinelQuorumAtRisk"} == {
        a.split("{")[0] for u in found for a in u.alerts}
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
    # ServiceDown reads `up` as `max(up{…}) == 0 or absent(up{…}) * 0`: without `up` it fires, it is not blind
    own = {a for u in up if u.kind == "service" for a in u.alerts}
    assert {"InstanceDown", "ComponentMetricsMissing"} == own
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


def test_a_metric_that_names_the_component_its_own_way_is_read_so_everywhere_and_located_at_its_label_and_value(
        maple):
    """maple's executors are `executor="expectation"`, but Micrometer's busy threads are `name=<bean>`."""
    active = [u for u in uses(maple) if u.component == "expectationComputeExecutor" and u.signal == "active"]
    assert {bool(u.alerts) for u in active} == {True, False}  # ExecutorSaturated, and the thread-pool panel
    for u in active:
        assert u.identity == "name"
        assert u.places["name"].path == ("executors", 0, "metrics", "active", "value")
        assert u.label_places["name"].path == ("executors", 0, "metrics", "active", "label")
        assert u.read.equal()["name"] == "expectationComputeExecutor" and "executor" not in u.read.equal()


# -- --metrics on saved exposition text ----------------------------------------------------------------

def test_the_reference_apps_saved_scrape_verifies_the_app_side_of_the_e2e_spec(tmp_path, refapp_scrape):
    result = run(str(app_only(tmp_path)), "--metrics", str(refapp_scrape))
    assert result.exit_code == 0, result.output
    # 9 components and the service (its `up`: a series Prometheus writes, so not looked for in a scrape's text)
    assert result.output.splitlines()[-3].startswith("obsgen verify: clean, 0 notes; 1 spec, 10 components")
    assert result.output.splitlines()[-2:] == [
        "obsgen verify: skipped: windows against scrape intervals: exposition texts carry no scrape interval",
        # a wrong `job` would pass here too: the summary must not let the reader believe it was checked
        "obsgen verify: skipped: service selector (job): an exposition text has no scrape labels (check it with "
        "--prometheus)"]


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


def test_json_is_the_documented_contract_and_a_misnamed_cache_is_one_finding_listing_its_signals(
        tmp_path, refapp_scrape):
    spec = app_only(tmp_path, "  - name: ocidCache\n", "  - name: ocid\n")
    doc = json.loads(run(str(spec), "--metrics", str(refapp_scrape), "--format", "json").output)
    assert set(doc) == {"findings", "notes", "checked", "blind"}
    # one cause, one finding; its failure counters are findings too, not "no failure yet" notes
    assert doc["notes"] == []
    [first] = doc["findings"]
    assert list(first) == ["file", "line", "column", "service", "component", "kind", "signal", "selector",
                           "problem", "message", "alerts", "panels", "hint", "signals", "fires"]
    assert (first["component"], first["kind"], first["signal"], first["problem"]) == (
        "ocid", "caches", "*", "value-missing")
    assert first["message"] == ("no cache `ocid` in any of its 4 signals (hits, l2_failures, lock_failures, misses); "
                                "caches seen: ocidCache, cubeTrials, equipment, expectationV4")  # the closest first
    assert first["hint"] == "name the cache as its series do (`ocidCache`?)"
    assert first["signals"] == [{"kind": "caches", "component": "ocid", "signal": s}  # lookups = hits + misses
                                for s in ("hits", "l2_failures", "lock_failures", "misses")]
    assert {"CacheHitRateLow{tier=\"L1\"}", "CacheStampede", "CacheL2Unavailable"} <= set(first["alerts"])
    assert set(doc["checked"]) == {"specs", "components", "signals", "selectors", "source", "at", "lookback",
                                   "skipped"}


def test_a_misnamed_breaker_retry_and_time_limiter_are_one_finding_each_all_saying_what_was_meant(
        tmp_path, refapp_scrape):
    """A single typo used to give a line per signal (7 for the breaker), the guess on some of them only."""
    spec = app_only(tmp_path, "nexonApi", "nexonAPI", count=5)
    result = run(str(spec), "--metrics", str(refapp_scrape))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3 + 3 and lines[3].startswith("obsgen verify: 3 findings"), result.output
    got = findings(run(str(spec), "--metrics", str(refapp_scrape), "--format", "json"))
    assert [(f["kind"], f["signal"], f["problem"], len(f["signals"])) for f in got] == [
        ("breakers", "*", "value-missing", 7), ("retries", "*", "value-missing", 2),
        ("time_limiters", "*", "value-missing", 2)]
    for f in got:
        assert f["hint"].endswith("as its series do (`nexonApi`?)"), f
    assert got[0]["message"] == (
        "no circuit breaker `nexonAPI` in any of its 7 signals (calls, failed_calls, failure_rate, not_permitted, "
        "slow_call_rate, state, successful_calls); circuit breakers seen: nexonApi")
    assert got[1]["message"] == "no retry `nexonAPI` in any of its 2 signals (calls, exhausted); retries seen: nexonApi"
    assert got[2]["message"].endswith("time limiters seen: nexonApi")


def test_a_metric_shared_through_an_anchor_is_one_finding_there_and_the_total_counts_each_components_alerts(
        tmp_path):
    """maple's four caches share `metrics: &tiered {hits: cache_hit_total, misses: cache_miss_total}`: the app
    renaming cache_miss_total is one edit at the anchor, and blinds CacheHitRateLow of 4 caches × 2 tiers."""
    scrape = saved_scrape(tmp_path / "renamed.prom", "cache_miss_total=cache_misses_total")
    spec = ROOT / "specs" / "maple.yaml"
    result = run(str(spec), "--metrics", str(scrape), "--format", "json")
    doc = json.loads(result.output)
    [miss] = [f for f in doc["findings"] if "cache_miss_total" in f["message"]]
    assert (miss["line"], miss["column"], miss["kind"], miss["signal"], miss["problem"]) == (
        *position(spec, "cache_miss_total", "&tiered"), "caches", "misses", "unknown-metric")
    assert miss["component"] == "cubeTrials, equipment, expectationV4, ocidCache"
    assert {s["component"] for s in miss["signals"]} == {"cubeTrials", "equipment", "expectationV4", "ocidCache"}
    assert "closest: cache_misses_total" in miss["message"]
    assert miss["hint"].startswith("set `caches[0].metrics.misses`, `caches[1].metrics.misses`, `caches[2].metrics."
                                   "misses`, `caches[3].metrics.misses` (one value, shared through a YAML anchor)")
    assert miss["alerts"] == ['CacheHitRateLow{tier="L1"}', 'CacheHitRateLow{tier="L2"}']
    # blind alert rules, each once, per component: 4 caches × 2 tiers, and those of the other findings (one
    # component each: the unscraped Redis, the lock, …); the count used to merge the caches' into 2
    others = [f for f in doc["findings"] if f is not miss]
    assert all(len({s["component"] for s in f["signals"]}) == 1 for f in others)
    assert doc["blind"]["alerts"] == 4 * 2 + sum(len(f["alerts"]) for f in others) > 12
    text = run(str(spec), "--metrics", str(scrape)).output.splitlines()
    summary = next(x for x in text if x.startswith("obsgen verify: ") and " findings (" in x)
    assert f"({doc['blind']['alerts']} alerts and {doc['blind']['panels']} panels blind)" in summary


def test_every_hint_names_a_field_the_spec_schema_accepts(tmp_path, refapp_scrape):
    """A hint used to say `set redis[0].metrics.…` or `service.metrics.up`: keys no spec may have."""
    redis = CollectorRegistry()  # redis_exporter's names, but only two of them: the rest are unknown metrics
    Gauge("redis_up", "Redis is up", registry=redis).set(1)
    Gauge("redis_connected_clients", "Clients", registry=redis).set(3)
    exporter = tmp_path / "redis.prom"
    exporter.write_bytes(generate_latest(redis))
    renamed = saved_scrape(tmp_path / "renamed.prom", "cache_miss_total=cache_misses_total,"
                           "resilience4j_retry_calls_total=resilience4j_retry_call_total")
    cases = [
        (ROOT / "specs" / "maple.yaml", [renamed, exporter]),
        (ROOT / "specs" / "maple.yaml", [refapp_scrape]),
        (ROOT / "specs" / "oms.yaml", [refapp_scrape]),
        (ROOT / "specs" / "table-order.yaml", [refapp_scrape]),
        (app_only(tmp_path, "nexonApi", "nexonAPI", count=5), [refapp_scrape]),
        (app_only(tmp_path, extra=HTTP_ROUTE), [refapp_scrape]),
    ]
    checked = 0
    for spec, scrapes in cases:
        args = [a for s in scrapes for a in ("--metrics", str(s))]
        args += [a for name, _ in load(spec).environments[-1:] for a in ("--environment", name)]  # a server serves one environment
        got = findings(run(str(spec), *args, "--format", "json"))
        assert got, spec
        checked += assert_hints_name_real_keys(spec, got)
    assert checked >= 8  # the cases do name fields


HTTP_ROUTE = """
http:
  - name: api
    latency: {p99: 500ms}
    routes:
      - route: /api/v4/characters/{ocid}/expectations
        error_ratio_max: 0.02
"""


@pytest.fixture
def other_routes(tmp_path) -> Path:
    """A saved scrape of more routes of the same Micrometer timer, as prometheus_client writes them."""
    registry = CollectorRegistry()
    timer = Histogram("http_server_requests_seconds", "HTTP server requests", ["uri", "outcome"], registry=registry,
                      buckets=(0.1, 0.25, 0.5, 1.0))
    for uri in ("/actuator/health", "/api/v4/characters/{ocid}/equipment", "/api/v3/expectations"):
        timer.labels(uri, "SUCCESS").observe(0.05)
    path = tmp_path / "routes.prom"
    path.write_bytes(generate_latest(registry))
    return path


def test_a_misspelled_route_is_a_finding_at_the_route_listing_the_routes_seen_closest_first(
        tmp_path, refapp_scrape, other_routes):
    """It used to verify clean: the route's own alerts could never fire, its traffic judged by the catch-all."""
    spec = app_only(tmp_path, extra=HTTP_ROUTE)
    result = run(str(spec), "--metrics", str(refapp_scrape), "--metrics", str(other_routes), "--format", "json")
    assert result.exit_code == 1
    [f] = findings(result)
    route = "/api/v4/characters/{ocid}/expectations"
    assert (f["line"], f["column"], f["component"], f["kind"], f["problem"]) == (
        *position(spec, route), "api", "http", "value-missing")
    assert f["message"] == (
        f'no series with `uri="{route}"` in any of its 3 signals (buckets, errors, requests); values of `uri`: '
        "/api/v4/characters/{ocid}/expectation, /api/v4/characters/{ocid}/equipment, /api/v3/expectations, "
        "/actuator/health")
    assert f["hint"] == (
        "fix `http[0].routes[0].route` (`/api/v4/characters/{ocid}/expectation`?); if "
        f"`{route}` is right but rare, it has series only once it occurs: check a scrape taken after it occurred")
    assert set(f["alerts"]) == {f'HttpErrorRateHigh{{uri="{route}"}}', f'HttpLatencyHigh{{uri="{route}", quantile="0.99"}}'}
    # the route as the app serves it: clean, the 5xx counters it has not incremented yet being notes
    fixed = app_only(tmp_path, extra=HTTP_ROUTE.replace("expectations\n", "expectation\n"))
    result = run(str(fixed), "--metrics", str(refapp_scrape), "--format", "json")
    assert result.exit_code == 0, result.output
    assert {(n["signal"], n["problem"]) for n in json.loads(result.output)["notes"]} == {("errors", "no-series-yet")}


EXECUTOR = "  - name: expectationComputeExecutor\n"


@pytest.mark.parametrize("old, new, needle, after, problem, field", [
    # a tier's labels: its value, its name
    ("ttl: 5m, max_size: 5000, labels: {layer: L1}", "ttl: 5m, max_size: 5000, labels: {layer: l1}", "l1}", "",
     "value-missing", "`caches[0].tiers.l1.labels.layer`"),
    ("ttl: 5m, max_size: 5000, labels: {layer: L1}", "ttl: 5m, max_size: 5000, labels: {level: L1}", "level", "",
     "label-missing", "`caches[0].tiers.l1.labels.level`"),
    # the component's selector: its value, its name
    ("  - name: equipment\n", "  - name: equipment\n    selector: {application: maple}\n", "maple}", "equipment",
     "value-missing", "`caches[0].selector.application`"),
    ("  - name: equipment\n", "  - name: equipment\n    selector: {app: maple-expectation}\n", "app:",
     "equipment", "label-missing", "`caches[0].selector.app`"),
    # a metric's own matchers
    (EXECUTOR + "    label: executor\n    value: expectation\n    core_threads: 4\n    max_threads: 8\n"
     "    queue_capacity: 200\n    metrics:\n      queued: executor_queue_size\n",
     EXECUTOR + "    label: executor\n    value: expectation\n    core_threads: 4\n    max_threads: 8\n"
     "    queue_capacity: 200\n    metrics:\n      queued: {name: executor_queue_size, matchers: {application: mapel}}\n",
     "mapel", "", "value-missing", "`executors[0].metrics.queued.matchers.application`"),
    # the component's label and value
    (EXECUTOR + "    label: executor\n", EXECUTOR + "    label: exec\n", "exec\n", EXECUTOR, "label-missing",
     "the component's `label`"),
    (EXECUTOR + "    label: executor\n    value: expectation\n", EXECUTOR + "    label: executor\n    value: expectatoin\n",
     "expectatoin", EXECUTOR, "value-missing", "(`expectation`?)"),
    # a metric's own label and value
    ("active: {name: executor_active_threads, label: name, value: expectationComputeExecutor}",
     "active: {name: executor_active_threads, label: nam, value: expectationComputeExecutor}", "nam,", EXECUTOR,
     "label-missing", "the component's `label`"),
    ("active: {name: executor_active_threads, label: name, value: expectationComputeExecutor}",
     "active: {name: executor_active_threads, label: name, value: expectationComputeExecutr}",
     "expectationComputeExecutr", EXECUTOR, "value-missing", "(`expectationComputeExecutor`?)"),
])
def test_a_matcher_that_selects_nothing_is_located_where_the_spec_sets_it(tmp_path, refapp_scrape, old, new,
                                                                            needle, after, problem, field):
    spec = app_only(tmp_path, old, new)
    [f] = findings(run(str(spec), "--metrics", str(refapp_scrape), "--format", "json"))
    assert (f["line"], f["column"], f["problem"]) == (*position(spec, needle, after), problem), f
    assert field in f["hint"], f


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
    by = {(f["component"], s["signal"]): f for f in doc["findings"] for s in f["signals"]}
    # The spec models the seed's one unnamed state series (label: ""): verify finds it; the calls are missing.
    assert ("oms_breaker", "state") not in by
    calls = by[("oms_breaker", "calls")]
    assert calls["problem"] == "unknown-metric" and "closest: circuit_breaker_state" in calls["message"]
    assert {"CircuitBreakerFailureRateHigh", "CircuitBreakerNotOpening"} <= set(calls["alerts"])
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


def test_a_redis_whose_exporter_is_in_no_text_is_one_finding_although_prometheus_own_up_is_never_in_one():
    """RedisExporterDown reads Prometheus' `up` of the exporter targets, which no exposition text carries: it is
    left out of the check, and must not split a Redis none of whose exporter metrics exist into one finding per
    signal (OMS's saved scrape has no redis_exporter series: 8 findings instead of 1)."""
    root = Path(__file__).resolve().parents[1]
    got = findings(run(str(root / "specs/oms.yaml"), "--metrics", str(root / "docs/examples/oms.prom"),
                       "--format", "json"))
    redis = [f for f in got if f["kind"] == "redis"]
    assert [(f["signal"], f["problem"]) for f in redis] == [("*", "no-metrics")], redis
    assert "scrape_up" not in {s["signal"] for s in redis[0]["signals"]}
    assert "redis_up" in redis[0]["message"] and "`up`" not in redis[0]["message"]


def test_an_unless_whose_right_side_reads_the_left_sides_selector_is_no_presence_read():
    """`x unless x offset 5m` (RedisSentinelFailover) and `x == 0 or (… x[1d] unless x)` (RedisExporterDown)
    cannot fire for a missing x: x is read for its value, so a wrong selector blinds them; `y unless x` can."""
    gated = reads(parse('max by (a) (x{j="r"}) unless on (a) max by (a) (x{j="r"} offset 5m)'))
    assert [r.presence for r in gated] == [False, False]
    blind = reads(parse('x{j="r"} == 0 or (group(last_over_time(x{j="r"}[1d])) unless on () group(x{j="r"}))'))
    assert [r.presence for r in blind] == [False, False, False]
    assert [r.presence for r in reads(parse('y unless on () x'))] == [False, True]


ONE_HOT_PYTHON = """\
apiVersion: obsgen/v1
service: {name: pay, team: sre, profile: python}
breakers:
  - name: pay
    state_encoding: {type: one_hot}
"""


def python_breaker_text(path: Path, result: str = "success") -> Path:
    """A prometheus_client one-hot breaker: a series per state the app knows (not Resilience4j's six)."""
    registry = CollectorRegistry(auto_describe=False)
    state = Gauge("circuit_breaker_state", "1 for the current state", ["name", "state"], registry=registry)
    for name, value in (("closed", 1), ("open", 0), ("half_open", 0)):
        state.labels("pay", name).set(value)
    calls = Counter("circuit_breaker_calls", "Calls by result", ["name", "result"], registry=registry)
    calls.labels("pay", result).inc(3)
    calls.labels("pay", "failure").inc()
    path.write_bytes(generate_latest(registry))
    return path


def test_a_one_hot_python_breaker_verifies_clean_the_resilience4j_only_states_being_notes(tmp_path):
    spec = tmp_path / "pay.yaml"
    spec.write_text(ONE_HOT_PYTHON)
    result = run(str(spec), "--metrics", str(python_breaker_text(tmp_path / "pay.prom")))
    assert result.exit_code == 0, result.output
    assert "obsgen verify: clean, " in result.output
    assert (f"{spec}:4:11: pay (breakers) state: note: no series with `state=\"forced_open\"`; values of `state`: "
            "half_open, closed, open; obsgen's panels map `state=\"forced_open\"` in case it occurs: nothing to fix "
            "unless the app should report it") in result.output
    assert "fix `breakers[0].name`" not in result.output


def test_a_profile_matcher_the_app_labels_otherwise_names_the_signals_metrics_not_the_component_name(tmp_path):
    spec = tmp_path / "pay.yaml"
    spec.write_text(ONE_HOT_PYTHON)
    result = run(str(spec), "--metrics", str(python_breaker_text(tmp_path / "pay.prom", result="ok")))
    assert result.exit_code == 1, result.output
    assert ("no series with `result=\"success\"`; values of `result`: failure, ok; `result=\"success\"` is the "
            "python profile's matcher for successful_calls, not a value of the spec: if the app labels it "
            "otherwise, set `breakers[0].metrics.successful_calls` with the `matchers` its series carry") \
        in result.output


def test_a_redis_role_no_scraped_server_has_says_to_scrape_one_not_to_rename_the_redis(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: r, team: sre}\nredis:\n  - name: main\n"
                    "    topology: standalone\n    replicas: 1\n")
    master = ROOT / "tests" / "init" / "texts" / "redis-sentinel-master.prom"
    result = run(str(spec), "--metrics", str(master))
    assert result.exit_code == 1, result.output
    assert ("main (redis) instance_info: no series with `role=\"slave\"`; values of `role`: master; "
            "`role=\"slave\"` is selected by obsgen's own queries for the redis's instance_info, not set by the "
            "spec: no server scraped reports it; pass the /metrics of the exporter of such a server with another "
            "--metrics") in result.output
    assert "fix `redis[0].name`" not in result.output


def test_prometheus_clients_created_timestamps_are_never_suggested_as_a_metric():
    from prometheus_client.parser import text_string_to_metric_families

    from obsgen.verify.inventory import without_created

    registry = CollectorRegistry()
    Counter("cache_hits", "hits", ["cache"], registry=registry).labels("a").inc()
    Histogram("lock_wait_seconds", "wait", registry=registry).observe(0.1)
    Gauge("job_created", "a gauge of the app's own that happens to end so", registry=registry).set(1)
    names = sorted({s.name for f in text_string_to_metric_families(generate_latest(registry).decode())
                    for s in f.samples})
    assert "cache_hits_created" in names  # what Prometheus' __name__ values hold, as the server's all_names
    assert without_created(names) == ["cache_hits_total", "job_created", "lock_wait_seconds_bucket",
                                      "lock_wait_seconds_count", "lock_wait_seconds_sum"]


def test_a_service_that_has_served_only_its_own_scrapes_is_told_to_send_traffic_not_to_rename_its_slo(tmp_path):
    spec = tmp_path / "api.yaml"
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: api, team: sre, profile: python}\nhttp:\n"
                    "  - name: server\nslos:\n  - name: latency\n    sli: latency\n    objective: 0.99\n"
                    "    latency_threshold: 500ms\n")
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests", ["handler", "method", "status"], registry=registry)
    duration = Histogram("http_request_duration_seconds", "Latency", ["handler", "method"], registry=registry,
                         buckets=(0.1, 0.5, 1))
    for _ in range(3):  # what the instrumentator counts when nothing but Prometheus has called the service
        requests.labels("/metrics", "GET", "2xx").inc()
        duration.labels("/metrics", "GET").observe(0.01)
    text = tmp_path / "api.prom"
    text.write_bytes(generate_latest(registry))
    result = run(str(spec), "--metrics", str(text))
    assert result.exit_code == 1, result.output
    assert ("`handler!~\"/metrics\"` is obsgen's own exclusion (requests it does not judge: scrapes, health checks), "
            "not set by the spec; every series the app has is excluded: send real traffic first") in result.output
    assert "fix `slos[0].name`" not in result.output
