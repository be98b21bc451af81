"""`obsgen verify` against real servers: a Prometheus scraping the reference app (every 15s), Redis with Sentinel
through redis_exporter, and a FastAPI + prometheus-fastapi-instrumentator service; plus a Prometheus history
backfilled with `promtool tsdb create-blocks-from openmetrics` for --at and --lookback.

The e2e spec verifies clean; each broken copy of it gives exactly its one expected finding, at the spec field
to change, however many signals the mistake blinds. The servers are the e2e harness's own pieces, started once
for this module; one reference app (job maple-doomed) is there to be killed.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from obsgen.cli import main

from .harness import OUTAGE_APPS, SPEC, Failure, Proc, Stack, free_port, http, start_prometheus, tool, wait_until
from .spec_keys import assert_hints_name_real_keys

pytestmark = [pytest.mark.e2e]

APP_SCRAPE_S = 15          # the reference app, as a production Prometheus would scrape it
PY_BUCKETS = "0.1,0.25,0.5,1,2,4"  # what specs/table-order.yaml says the app sets
HISTORY_JOB = "maple-history"
DOOMED_JOB = "maple-doomed"  # a reference app of its own, killed by one test
ROOT = Path(__file__).resolve().parents[2]


class World:
    """The harness's Redis set, exporter and one reference app; two Python services; one Prometheus. The harness's
    first outage app is scraped as job maple-doomed, for a test to kill."""

    def __init__(self, root: Path):
        self.root = root
        self.stack = Stack(root, {"verify-app": {}})
        self.procs: list[Proc] = []
        self.history_end = 0.0

    def start(self) -> None:
        for name in ("prometheus", "promtool", "prometheus-redis-exporter", "redis-server", "redis-sentinel"):
            tool(name)
        self.stack._start_servers()
        self.doomed = self.stack.outage_apps[OUTAGE_APPS[0]]
        self.py = {job: self._pyapp(job, buckets) for job, buckets in
                   (("table-order", PY_BUCKETS), ("table-order-defaults", None))}
        for job, port in self.py.items():
            wait_until(lambda p=port: http(f"http://127.0.0.1:{p}/metrics"), 20, f"{job} to serve /metrics",
                       *self.procs)
            for path in ("/api/v1/menu", "/health/ready", "/health/live", "/api/v1/stores/s1/stream"):
                http(f"http://127.0.0.1:{port}{path}")
            http(f"http://127.0.0.1:{port}/api/v1/orders", b"")
        data = self._backfill()
        self._prometheus(data)
        for query in ('up{job="maple-e2e"} == 1', f'up{{job="{DOOMED_JOB}"}} == 1',
                      'redis_sentinel_master_ok_sentinels{job="redis"} >= 3',
                      'redis_connected_slaves{job="redis-sessions"} >= 1', 'http_requests_total{job="table-order"}',
                      'http_requests_total{job="table-order-defaults"}'):
            wait_until(lambda q=query: self.prom.query(q), APP_SCRAPE_S + 20, f"Prometheus to see {query}",
                       self.prometheus)

    def _pyapp(self, job: str, buckets: str | None) -> int:
        port = free_port()
        argv = [sys.executable, str(Path(__file__).with_name("tableorder.py")), "--port", str(port)]
        argv += ["--buckets", buckets] if buckets else []
        self.procs.append(Proc(job, argv, self.root / job, port).start())
        return port

    def _backfill(self) -> Path:
        """Cache series of a service that stopped 100 minutes ago, after three hours of samples every 15s."""
        end = int(time.time()) - 100 * 60
        self.history_end = end
        target = f'job="{HISTORY_JOB}",instance="old-host:8080"'
        labels = f'{target},cache="equipment"'
        families: dict[str, list[str]] = {f"# TYPE {name}": [] for name in (
            "up gauge", "cache_gets counter", "cache_lock_failure counter", "cache_l2_failure counter")}
        up, gets, lock, l2 = families.values()  # OpenMetrics wants each family's samples together
        for i, t in enumerate(range(end - 3 * 3600, end + 1, 15)):
            up.append(f"up{{{target}}} 1 {t}")
            gets += [f'cache_gets_total{{{labels},result="hit"}} {9 * i} {t}',
                     f'cache_gets_total{{{labels},result="miss"}} {i} {t}']
            lock.append(f"cache_lock_failure_total{{{labels}}} 0 {t}")
            l2.append(f"cache_l2_failure_total{{{labels}}} 0 {t}")  # unread: a cache without tiers has no L2
        source = self.root / "history.om"
        source.write_text("".join(f"{head}\n" + "".join(f"{x}\n" for x in body) for head, body in families.items())
                          + "# EOF\n")
        data = self.root / "prometheus-data"
        done = subprocess.run([tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise Failure(f"promtool tsdb create-blocks-from openmetrics failed:\n{done.stdout}{done.stderr}")
        return data

    def _prometheus(self, data: Path) -> None:
        apps = [a.instance for a in self.stack.apps.values()]
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [
            {"job_name": "maple-e2e", "scrape_interval": f"{APP_SCRAPE_S}s", "static_configs": [{"targets": apps}]},
            {"job_name": DOOMED_JOB, "static_configs": [{"targets": [self.doomed.instance]}]},
            *self.stack.redis_jobs(),
            *[{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
              for job, port in self.py.items()],
        ]}
        self.prometheus, self.prom = start_prometheus(self.root / "prometheus", config, data)
        self.procs.append(self.prometheus)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.stack.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = World(tmp_path_factory.mktemp("verify"))
    try:
        built.start()
        yield built
    finally:
        built.stop()


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


def spec_copy(tmp_path: Path, old: str = "", new: str = "", extra: str = "", name: str = "maple-e2e.yaml") -> Path:
    text = SPEC.read_text()
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text + extra)
    return path


def findings(result) -> list[dict]:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)["findings"]


def position(path: Path, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """Line and column (1-based) of the n-th ``needle`` in the file."""
    text, at = path.read_text(), -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    return text[:at].count("\n") + 1, at - text.rfind("\n", 0, at)


LATENCY_SLO = """
slos:
  - {name: api-latency, sli: latency, objective: 0.99, latency_threshold: 500ms}
"""


# -- clean -----------------------------------------------------------------------------------------

def test_the_e2e_spec_with_its_redis_sentinel_and_a_latency_slo_verifies_clean(world, tmp_path):
    spec = spec_copy(tmp_path, extra=LATENCY_SLO)
    result = run(str(spec), "--prometheus", world.prom.url)
    assert result.exit_code == 0, result.output
    assert "obsgen verify: clean" in result.output
    doc = json.loads(run(str(spec), "--prometheus", world.prom.url, "--format", "json").output)
    assert doc["findings"] == [] and doc["checked"]["skipped"] == []
    kinds = {(n["kind"], n["signal"]) for n in doc["notes"]}
    # Redis components are checked (not skipped): every one of their metrics was found on the exporter. The 11
    # components of the spec, its latency SLO, and the service's own (`up`: ServiceDown, InstanceDown).
    assert doc["checked"]["components"] == 11 + 1 + 1 and ("redis", "up") not in kinds


def test_the_python_profile_spec_verifies_clean_against_fastapi_and_the_instrumentator(world):
    result = run(str(ROOT / "specs" / "table-order.yaml"), "--environment", "production", "--prometheus", world.prom.url,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    notes = {(n["component"], n["signal"], n["problem"]) for n in json.loads(result.output)["notes"]}
    # the failure counters the app declares but never incremented, and the 5xx it never answered
    assert notes == {("api", "errors", "no-series-yet"), ("availability", "errors", "no-series-yet"),
                     ("main", "timeouts", "no-series-yet"), ("orders", "send_failures", "no-series-yet")}


def test_the_instrumentators_default_buckets_cannot_judge_table_orders_p95_and_p99(world, tmp_path):
    spec = tmp_path / "table-order.yaml"
    spec.write_text((ROOT / "specs" / "table-order.yaml").read_text().replace(
        "  profile: python\n", "  profile: python\n  selector: {job: table-order-defaults}\n"))
    result = run(str(spec), "--environment", "production", "--prometheus", world.prom.url, "--format", "json")
    assert result.exit_code == 1
    got = {(f["signal"], f["problem"], tuple(f["alerts"])) for f in findings(result)}
    assert got == {("buckets", "buckets-below-threshold", ('HttpLatencyHigh{quantile="0.95", environment="production"}',)),
                   ("buckets", "buckets-below-threshold", ('HttpLatencyHigh{quantile="0.99", environment="production"}',))}
    assert all("latency_lowr_buckets" in f["hint"] for f in findings(result))


# -- broken copies: exactly the expected finding, located ------------------------------------------

def test_a_misspelled_cache_is_one_finding_naming_the_caches_that_exist(world, tmp_path):
    spec = spec_copy(tmp_path, "  - name: cubeTrials\n", "  - name: cubeTrails\n")
    result = run(str(spec), "--prometheus", world.prom.url, "--format", "json")
    assert result.exit_code == 1
    [got] = findings(result)
    line, column = position(spec, "cubeTrails")
    assert (got["line"], got["column"], got["component"], got["signal"], got["problem"]) == (
        line, column, "cubeTrails", "*", "value-missing")
    assert got["message"] == ("no cache `cubeTrails` in any of its 4 signals (hits, l2_failures, lock_failures, "
                              "misses); caches seen: cubeTrials, equipment, expectationV4, ocidCache")
    assert got["hint"] == "name the cache as its series do (`cubeTrials`?)"
    assert {"CacheHitRateLow{tier=\"L1\"}", "CacheHitRateLow{tier=\"L2\"}", "CacheStampede"} <= set(got["alerts"])


def test_a_wrong_label_name_is_one_finding_at_the_label_listing_the_labels_the_metrics_have(world, tmp_path):
    spec = spec_copy(tmp_path, "    label: executor\n    value: expectation\n", "    label: pool\n    value: expectation\n")
    [got] = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))
    assert (got["line"], got["column"], got["component"], got["problem"]) == (
        *position(spec, "pool"), "expectationComputeExecutor", "label-missing")
    assert got["message"] == ("`executor_pool_size`, `executor_queue_size`, `executor_rejected_total` have no label "
                              "`pool` (the selector has `pool=\"expectation\"`); their labels: application, executor, "
                              "instance, job")
    assert {s["signal"] for s in got["signals"]} == {"pool_size", "queued", "rejected"}


def test_a_latency_slo_on_a_bucket_the_app_does_not_publish_names_the_spring_setting(world, tmp_path):
    spec = spec_copy(tmp_path, extra=LATENCY_SLO.replace("500ms", "300ms"))
    got = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))
    assert [(f["component"], f["signal"], f["problem"]) for f in got] == [
        ("api-latency", "latency_bucket", "bucket-missing")]
    assert got[0]["message"] == 'no bucket `le="0.3"`; buckets: 0.1, 0.25, 0.5, 1.0, +Inf'
    assert "management.metrics.distribution.slo.http.server.requests=300ms" in got[0]["hint"]
    assert {"ErrorBudgetBurnFast", "ErrorBudgetBurnSlow"} <= set(got[0]["alerts"])


CUSTOM_5S = """
custom:
  - name: lookups
    description: Cache lookups per second
    expr: sum(rate(cache_gets_total{job="maple-e2e", cache="equipment"}[5s])) * 60
    op: "<"
    threshold: 1
    tests:
      - name: no lookups
        series: [{series: 'cache_gets_total{job="maple-e2e", cache="equipment"}', values: '0+0x40'}]
        at: 5m
        fires: true
        value: 0
      - name: lookups flowing
        series: [{series: 'cache_gets_total{job="maple-e2e", cache="equipment"}', values: '0+60x40'}]
        at: 5m
        fires: false
"""


def test_a_5s_rate_window_against_a_15s_scrape_is_found_in_the_custom_expression(world, tmp_path):
    spec = spec_copy(tmp_path, extra=CUSTOM_5S)
    got = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))
    line, column = position(spec, "sum(rate(")
    assert [(f["line"], f["column"], f["component"], f["problem"]) for f in got] == [
        (line, column, "lookups", "window-too-short")]
    assert "[5s] window of rate() is under twice job `maple-e2e`'s 15s scrape interval" in got[0]["message"]
    assert got[0]["alerts"] == ["LookupsLow"]


# -- time: --at and --lookback on backfilled history --------------------------------------------------

HISTORY = """apiVersion: obsgen/v1
service: {name: maple-history, team: sre, selector: {job: maple-history}, profile: micrometer}
caches:
  - name: equipment
    hit_rate_min: 0.8
"""


def test_series_that_stopped_are_clean_in_the_past_and_one_target_down_finding_now(world, tmp_path):
    spec = tmp_path / "history.yaml"
    spec.write_text(HISTORY)
    then = str(world.history_end - 600)
    assert run(str(spec), "--prometheus", world.prom.url, "--at", then, "--lookback", "30m").exit_code == 0
    # its target is gone: one finding at the service selector, for every signal whose series stopped with it
    [now] = findings(run(str(spec), "--prometheus", world.prom.url, "--lookback", "3h", "--format", "json"))
    assert (now["kind"], now["component"], now["signal"], now["problem"]) == (
        "service", "maple-history", "selector.job", "targets-down")
    assert (now["line"], now["column"]) == position(spec, "maple-history}")
    assert {(s["kind"], s["signal"]) for s in now["signals"]} == {
        ("caches", "requests"), ("caches", "hits"), ("caches", "misses"), ("caches", "lock_failures"),
        ("service", "up")}
    assert now["message"] == ("the only target of job `maple-history` is down at the time checked: old-host:8080 "
                              "(no longer scraped); the series of 5 signals of 2 components stopped with it")
    # its `up` is gone too: InstanceDown and the dashboards' job variable are blind with the rest; ServiceDown's
    # absent(up) fires
    assert {"InstanceDown", "ComponentMetricsMissing", "CacheHitRateLow"} <= set(now["alerts"])
    assert "ServiceDown" not in now["alerts"]
    assert "Service Overview / variables job, instance" in now["panels"]
    [recent] = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))  # lookback 1h: gone
    assert (recent["kind"], recent["signal"], recent["problem"]) == ("service", "selector.job", "value-missing")
    assert recent["message"].startswith("Prometheus scrapes no target as job `maple-history` (no `up` series with it "
                                        "within the last 1h): none of the 5 signals of 2 components it selects can "
                                        "have series; jobs scraped: ")


# -- one cause, one finding: the service selector, a service down, a route ----------------------------------

def test_a_wrong_service_selector_is_one_finding_for_the_whole_service_with_what_it_blinds(world, tmp_path):
    """It used to be a ~300-character line per metric (19 for maple), all saying "no series from job"."""
    spec = spec_copy(tmp_path, "selector: {job: maple-e2e}", "selector: {job: maple}")
    result = run(str(spec), "--prometheus", world.prom.url)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[1].startswith("obsgen verify: 1 finding ("), result.output
    line, column = position(spec, "maple}")
    assert lines[0].startswith(f"{spec}:{line}:{column}: maple-e2e (service) selector.job: Prometheus scrapes no "
                               "target as job `maple` (no `up` series with it within the last 1h): none of the ")
    assert "jobs scraped: maple-e2e, " in lines[0]  # the closest first
    assert "set `service.selector` to the labels Prometheus scrapes the service with" in lines[0]
    assert " more; " in lines[0] and lines[0].endswith(" panels; fires at once: ServiceDown]")  # summarised
    [got] = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))
    assert {(s["kind"], s["component"]) for s in got["signals"]} >= {("caches", "equipment"), ("service", "maple-e2e")}
    assert not any(s["kind"] == "redis" for s in got["signals"])  # Redis is scraped as its own jobs: unaffected
    assert {"CacheHitRateLow{tier=\"L1\"}", "ExecutorSaturated", "CircuitBreakerOpen"} <= set(got["alerts"])
    # ServiceDown is `max(up{job="maple"}) == 0 or absent(up{job="maple"}) * 0`: it fires at once, it is not blind
    assert "ServiceDown" not in got["alerts"] and "InstanceDown" in got["alerts"]
    assert got["fires"] == ["ServiceDown"]
    assert_hints_name_real_keys(spec, [got])


def test_a_metric_the_app_renamed_is_one_disappeared_finding_at_the_anchor_naming_the_new_name(world, tmp_path):
    """The four caches share `metrics: &tiered {…, misses: cache_miss_total}`; the app renames it (refapp's
    /control, as a library upgrade does): one finding at the anchor, with the name its job exports now."""
    spec = spec_copy(tmp_path, "selector: {job: maple-e2e}", f"selector: {{job: {DOOMED_JOB}}}")
    old, new = (f'{name}{{job="{DOOMED_JOB}"}}' for name in ("cache_miss_total", "cache_misses_total"))
    world.doomed.set({"renames": "cache_miss_total=cache_misses_total"})
    try:
        wait_until(lambda: world.prom.query(new) and not world.prom.query(old), 15,
                   "Prometheus to see the rename", world.prometheus)
        [got] = findings(run(str(spec), "--prometheus", world.prom.url, "--format", "json"))
    finally:
        world.doomed.reset()
        wait_until(lambda: world.prom.query(old), 15, "Prometheus to see the name back", world.prometheus)
    assert (got["line"], got["column"], got["kind"], got["signal"], got["problem"]) == (
        *position(spec, "cache_miss_total"), "caches", "misses", "disappeared")
    assert got["component"] == "cubeTrials, equipment, expectationV4, ocidCache"
    assert "; closest names its job exports now: cache_misses_total" in got["message"], got["message"]
    assert got["hint"].startswith("set `caches[0].metrics.misses`, `caches[1].metrics.misses`, ")
    assert_hints_name_real_keys(spec, [got])


def test_a_service_whose_target_is_down_is_one_finding_saying_so(world, tmp_path):
    """Its app killed, every series it exported stops: one finding that says up = 0, not one per signal."""
    spec = spec_copy(tmp_path, "selector: {job: maple-e2e}", f"selector: {{job: {DOOMED_JOB}}}")
    assert run(str(spec), "--prometheus", world.prom.url).exit_code == 0  # while it runs
    world.doomed.proc.stop()
    query = f'up{{job="{DOOMED_JOB}"}} == 0'
    wait_until(lambda: world.prom.query(query), 15, f"Prometheus to see {query}", world.prometheus)
    result = run(str(spec), "--prometheus", world.prom.url, "--format", "json")
    assert result.exit_code == 1
    [got] = findings(result)
    assert (got["line"], got["column"], got["kind"], got["signal"], got["problem"]) == (
        *position(spec, f"{DOOMED_JOB}}}"), "service", "selector.job", "targets-down")
    assert got["message"].startswith(f"the only target of job `{DOOMED_JOB}` is down at the time checked: "
                                     f"{world.doomed.instance} (up = 0); the series of ")
    assert got["message"].endswith(" signals of 9 components stopped with it")
    assert got["hint"].startswith("bring it up")
    # blind: what reads its series; not the alerts that read `up` and fire now (InstanceDown, ServiceDown)
    assert {"CacheHitRateLow{tier=\"L1\"}", "ExecutorSaturated", "CircuitBreakerOpen"} <= set(got["alerts"])
    assert not {"InstanceDown", "ServiceDown"} & set(got["alerts"])
    assert not any(s["kind"] in ("service", "redis") for s in got["signals"])


def test_a_misspelled_route_is_a_finding_against_prometheus_that_says_a_rare_route_needs_a_longer_lookback(
        world, tmp_path):
    """Against the app's real traffic: a route the app does not serve is blind, not "clean, 1 note"."""
    spec = spec_copy(tmp_path, extra=HTTP_ROUTE)
    result = run(str(spec), "--prometheus", world.prom.url, "--format", "json")
    assert result.exit_code == 1
    [got] = findings(result)
    route = "/api/v4/characters/{ocid}/expectations"
    assert (got["line"], got["column"], got["kind"], got["signal"], got["problem"]) == (
        *position(spec, route), "http", "*", "value-missing")
    assert got["message"] == (f'no series with `uri="{route}"` within the last 1h in any of its 3 signals (buckets, '
                              "errors, requests); values of `uri`: /api/v4/characters/{ocid}/expectation")
    assert got["hint"].endswith(f"if `{route}` is right but rare, it has series only once it occurs: look further "
                                "back with --lookback")
    fixed = spec_copy(tmp_path, extra=HTTP_ROUTE.replace("expectations\n", "expectation\n"))
    assert run(str(fixed), "--prometheus", world.prom.url).exit_code == 0


HTTP_ROUTE = """
http:
  - name: api
    latency: {p99: 500ms}
    routes:
      - route: /api/v4/characters/{ocid}/expectations
        error_ratio_max: 0.02
"""


# -- a Prometheus that scrapes nothing, or not the exporter ------------------------------------------

@pytest.fixture(scope="module")
def partial(world, tmp_path_factory):
    """Two more real Prometheus servers: one scraping nothing (a wrong URL, one that only evaluates rules), one
    scraping the reference apps but not redis_exporter."""
    root = tmp_path_factory.mktemp("partial")
    apps = [a.instance for a in world.stack.apps.values()]
    started = [start_prometheus(root / "empty", {"scrape_configs": []})]
    try:
        started.append(start_prometheus(root / "app", {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "maple-e2e", "static_configs": [{"targets": apps}]}]}))
        proc, prom = started[1]
        wait_until(lambda: prom.query('cache_gets_total{job="maple-e2e"}'), 20, "Prometheus to scrape the app", proc)
        yield {"empty": started[0][1], "app": prom}
    finally:
        for proc, _ in started:
            proc.stop()


def test_a_prometheus_that_scrapes_nothing_is_one_finding_saying_so_with_no_spec_key_to_set(partial, tmp_path):
    """It used to be one finding per component, telling the user to set `service.metrics.up` (no such key)."""
    spec = spec_copy(tmp_path)
    url = partial["empty"].url
    result = run(str(spec), "--prometheus", url, "--format", "json")
    assert result.exit_code == 1
    [got] = findings(result)
    assert (got["line"], got["column"], got["kind"], got["signal"], got["problem"]) == (
        *position(spec, "maple-e2e}"), "service", "up", "no-targets")
    assert got["message"].startswith(f"{url} has no `up` series: it scrapes no targets")
    assert got["hint"].startswith("point --prometheus at the Prometheus that scrapes the service")
    assert "ServiceDown" not in got["alerts"] and "ServiceDown" in got["fires"]  # its absent(up) fires
    assert {s["kind"] for s in got["signals"]} >= {"service", "caches", "redis"}
    lines = run(str(spec), "--prometheus", url).output.splitlines()
    assert lines[1].startswith("obsgen verify: 1 finding (") and len(lines) == 3, lines  # and the skipped windows


def test_an_exporter_prometheus_does_not_scrape_is_one_finding_per_redis_with_no_rare_advice(partial, tmp_path):
    """It used to add a second finding for the exporter job's `up`, advising a longer --lookback for a rare job."""
    spec = spec_copy(tmp_path)
    got = findings(run(str(spec), "--prometheus", partial["app"].url, "--format", "json"))
    assert [(f["component"], f["kind"], f["signal"], f["problem"]) for f in got] == [
        ("main", "redis", "*", "no-metrics"), ("sessions", "redis", "*", "no-metrics")]
    for f, job in zip(got, ("redis", "redis-sessions")):
        assert f"no series from job `{job}`; jobs with `up`: maple-e2e" in f["message"], f["message"]
        assert "dashboard variables" in {s["signal"] for s in f["signals"]}
        assert "rare" not in f["hint"] and "--lookback" not in f["hint"]
    assert_hints_name_real_keys(spec, got)


# -- a gateway like Mimir's: prefix, credentials, no targets API ---------------------------------------

class Gateway:
    """A reverse proxy in front of the real Prometheus, shaped like Mimir's: its query API under /prometheus,
    a bearer token and a tenant header required, and no /api/v1/targets (so no scrape intervals)."""

    ALLOWED = ("/api/v1/series", "/api/v1/query", "/api/v1/metadata", "/api/v1/label/")

    def __init__(self, upstream: str, token: str, tenant: str):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {token}" or \
                        self.headers.get("X-Scope-OrgID") != tenant:
                    return self._send(401, b'{"status":"error","error":"no valid token or tenant"}')
                path = self.path.removeprefix("/prometheus")
                if not self.path.startswith("/prometheus/") or not path.startswith(gateway.ALLOWED):
                    return self._send(404, b"404 page not found")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))) if self.command == "POST" else None
                request = urllib.request.Request(upstream + path, data=body, method=self.command,
                                                 headers={"Content-Type": self.headers.get("Content-Type", "")})
                with urllib.request.urlopen(request, timeout=10) as response:
                    self._send(response.status, response.read())

            do_GET = do_POST = _forward

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_through_a_mimir_like_gateway_with_token_and_tenant_only_the_window_check_is_skipped(world, tmp_path):
    gateway = Gateway(world.prom.url, "s3cret", "team-sre")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    spec = spec_copy(tmp_path, extra=CUSTOM_5S)
    result = run(str(spec), "--prometheus", gateway.url + "/prometheus", "--bearer-token-file", str(token),
                 "--header", "X-Scope-OrgID: team-sre")
    assert result.exit_code == 0, result.output  # the 5s window cannot be judged without scrape intervals
    assert "skipped: windows against scrape intervals: " in result.output and "has no /api/v1/targets" in result.output
    refused = run(str(spec), "--prometheus", gateway.url + "/prometheus", "--header", "X-Scope-OrgID: team-sre")
    assert refused.exit_code == 2
    assert refused.output.count("\n") == 1 and "the server refused: HTTP 401" in refused.output
    assert "no valid token or tenant" in refused.output
    no_prefix = run(str(spec), "--prometheus", gateway.url, "--bearer-token-file", str(token),
                    "--header", "X-Scope-OrgID: team-sre")
    assert no_prefix.exit_code == 2 and "Mimir serves it under /prometheus" in no_prefix.output
    gateway.server.shutdown()


# -- --metrics on a URL, and a fleet with its progress bar ---------------------------------------------

def test_metrics_urls_scraped_once_verify_the_app_and_the_redis_exporter(world, tmp_path):
    app = world.stack.apps["verify-app"].instance
    exporter = f"http://127.0.0.1:{world.stack.exporter.port}/scrape?target=redis://127.0.0.1:"
    sources = ["--metrics", f"http://{app}/metrics"]
    for name in ("main-master", "main-replica", "sessions-master", "sessions-replica"):
        sources += ["--metrics", exporter + str(world.stack.redis[name].port)]
    sources += ["--metrics", exporter + str(world.stack.sentinels[0].port)]
    result = run(str(spec_copy(tmp_path, extra=LATENCY_SLO)), *sources)
    assert result.exit_code == 0, result.output
    assert "skipped: windows against scrape intervals: exposition texts carry no scrape interval" in result.output


def test_a_directory_of_specs_against_one_prometheus_shows_a_progress_bar_on_a_terminal(world, tmp_path):
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    spec_copy(fleet, name="maple-e2e.yaml")
    (fleet / "table-order.yaml").write_text((ROOT / "specs" / "table-order.yaml").read_text())
    main, tty = pty.openpty()
    # table-order has environments: the one this Prometheus serves is named (the maple copy has none, so it is unaffected)
    proc = subprocess.Popen([sys.executable, "-m", "obsgen", "verify", str(fleet), "--environment", "production",
                             "--prometheus", world.prom.url],
                            stdout=subprocess.PIPE, stderr=tty, cwd=ROOT, env={**os.environ, "COLUMNS": "120"})
    os.close(tty)
    out, _ = proc.communicate(timeout=60)
    drawn = b""
    while select.select([main], [], [], 0.5)[0]:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main)
    assert proc.returncode == 0, out.decode()
    assert b"obsgen: verifying [" in drawn and b"2/2 services" in drawn
    assert out.decode().splitlines()[-1].startswith("obsgen verify: clean, ")
