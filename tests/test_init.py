"""`obsgen init` on saved exposition texts: the spec it drafts and the coverage report it prints, per kind and
profile, with the label variants real libraries produce; and its errors, one line each.

The texts (tests/init/texts/) say in their first lines where they came from: recorded from the e2e reference
app (docs/examples/maple-app.prom), a real FastAPI service and redis_exporter over a real Redis with Sentinel (tests/init/record.py), or
written by hand from /work/shared/reference/metrics.md where no library runs here (Spring Boot 2 and 3).
Each draft is compared byte for byte with tests/golden/init/ (OBSGEN_UPDATE_GOLDEN=1 rewrites them), and each
test also asserts what the data told, so a golden file rewritten wrong still fails.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from obsgen.cli import main
from obsgen.spec import parse

ROOT = Path(__file__).resolve().parents[1]
TEXTS = Path("tests/init/texts")  # relative to ROOT: the spec's header names its sources as given
GOLDEN = ROOT / "tests" / "golden" / "init"
UPDATE = os.environ.get("OBSGEN_UPDATE_GOLDEN") == "1"
MAPLE_APP = "docs/examples/maple-app.prom"  # the reference app's scrape, which the README's tour reads
REDIS_SENTINEL = ("redis-sentinel-master.prom", "redis-sentinel-replica.prom", "redis-sentinel-sentinel.prom")


def init(*args: str):
    return CliRunner().invoke(main, ["init", *args], catch_exceptions=False)


def draft(case: str, *texts: str, options: tuple[str, ...] = ()) -> tuple[dict, str, str]:
    """Run init on ``texts`` (to stdout) from the repository root; compare with the golden draft and report."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        sources = [arg for name in texts for arg in ("--metrics", name if "/" in name else str(TEXTS / name))]
        result = init(*sources, *options, "-o", "-")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    for suffix, text in ((".yaml", result.stdout), (".report", result.stderr)):
        golden = GOLDEN / f"{case}{suffix}"
        if UPDATE:
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden.name} differs; OBSGEN_UPDATE_GOLDEN=1 rewrites it"
    parse(result.stdout, f"{case}.yaml")  # validates unchanged (raises SpecError otherwise)
    return yaml.safe_load(result.stdout), result.stdout, result.stderr


def named(spec: dict, kind: str) -> dict[str, dict]:
    return {c["name"]: c for c in spec.get(kind, [])}


def components(spec: dict) -> set[tuple[str, str]]:
    return {(kind, c["name"]) for kind, items in spec.items() if isinstance(items, list) for c in items}


# -- Micrometer ------------------------------------------------------------------------------------

def test_the_reference_app_and_its_redis_give_maples_components_and_verify_clean_against_the_same_texts():
    spec, text, report = draft("maple", MAPLE_APP, *REDIS_SENTINEL)
    maple = yaml.safe_load((ROOT / "specs" / "maple.yaml").read_text())
    # Maple's components, but for its lock: the reference app exports no lock metric (maple.yaml assumes names)
    expected = components(maple) - {("locks", "redisLock"), ("redis", "main"), ("slos", "api-latency")}
    assert expected <= components(spec)
    assert components(spec) - expected == {("http", "server"), ("redis", "mymaster"), ("slos", "latency")}
    assert spec["service"]["name"] == "maple-expectation"  # Spring's `application` tag
    redis = named(spec, "redis")["mymaster"]
    assert (redis["topology"], redis["master_name"], redis["sentinels"], redis["replicas"]) == \
        ("sentinel", "mymaster", 3, 1)
    executor = named(spec, "executors")["expectationComputeExecutor"]
    assert (executor["queue_capacity"], executor["core_threads"], executor["max_threads"]) == (200, 4, 8)
    # the guide's own executor_rejected_total{executor="expectation"} attaches by the only value its name begins with
    assert executor["metrics"]["rejected"] == {"name": "executor_rejected_total", "label": "executor",
                                               "value": "expectation"}
    assert named(spec, "caches")["equipment"]["tiers"] == {"l1": {"labels": {"layer": "L1"}},
                                                          "l2": {"labels": {"layer": "L2"}}}
    assert named(spec, "slos")["latency"]["latency_threshold"] == "500ms"
    assert "the draft verifies clean against the same data" in report
    assert "  # cache_gets_total{cache=\"equipment\"}" in text  # each entry cites its series
    assert "queue_capacity: 200  # executor_queued_tasks{name=\"expectationComputeExecutor\"} = 0 + " \
           "executor_queue_remaining_tasks{name=\"expectationComputeExecutor\"} = 200" in text


def test_spring_boot_3_reads_executor_capacity_hikari_pool_size_bulkheads_and_histogram_buckets():
    spec, text, report = draft("boot3", "micrometer-boot3.prom", options=("--service", "shop"))
    assert spec["service"]["name"] == "shop"
    executor = named(spec, "executors")["reportExecutor"]
    assert (executor["queue_capacity"], executor["core_threads"], executor["max_threads"]) == (500, 4, 16)
    assert "applicationTaskExecutor" not in named(spec, "executors")
    assert "executors applicationTaskExecutor: an unbounded queue" in report
    assert named(spec, "db_pools")["HikariPool-1"]["pool_size"] == 10  # HikariCP's `pool` label and _max gauge
    bulkheads = named(spec, "backpressure")
    assert bulkheads["checkout"] == {"name": "checkout", "max_concurrent": 25, "rejection_rate_max": 0.1}
    assert (bulkheads["exports"]["max_concurrent"], bulkheads["exports"]["queue_capacity"]) == (8, 100)
    # Resilience4j's one-hot state series are the micrometer default: nothing to write
    assert "state_encoding" not in named(spec, "breakers")["payments"]
    assert named(spec, "retries")["payments"]["breaker"] == "payments"
    assert named(spec, "http")["server"]["histogram"] == {"smallest_bucket": "1ms", "largest_bucket": "30s"}
    assert named(spec, "slos")["latency"] == {"name": "latency", "sli": "latency", "objective": 0.99,
                                              "latency_threshold": "500ms"}
    assert "hit_rate_min: 0.8  # default threshold: the data cannot tell" in text
    # what the libraries do not export (metrics.md: no rejected-tasks metric) is said, with what to set
    assert "reportExecutor (executors) rejected: no metric `executor_rejected_total`" in report
    assert "not recognised, so not watched" in report and "  jvm_memory_used_bytes\n" in report


def test_spring_boot_2_cache_manager_label_and_a_timer_without_histogram_give_no_latency_judgement():
    spec, text, _ = draft("boot2", "micrometer-boot2.prom")
    assert set(named(spec, "caches")) == {"products", "sessions"}  # `cacheManager` instead of `cache_manager`
    assert named(spec, "http")["server"]["latency"] == {}
    assert "slos" not in spec  # no bucket to put a threshold on
    assert "no http_server_requests_seconds_bucket: latency cannot be judged" in text
    assert named(spec, "db_pools")["ordersPool"]["pool_size"] == 10


# -- python ----------------------------------------------------------------------------------------

def test_a_fastapi_service_with_prometheus_client_counters_is_the_python_profile():
    spec, text, report = draft("python-service", "python-service.prom")
    assert spec["service"]["profile"] == "python"
    assert set(named(spec, "caches")) == {"items", "prices"}
    # the defaults that decide a breaker's alerts most are written and said, the 0/1/2 gauge's numbers too
    breaker = named(spec, "breakers")["inventory"]
    assert (breaker["state_encoding"], breaker["minimum_calls"], breaker["fallback"]) == \
        ({"type": "enum", "closed": 0}, 100, "")
    assert ("state_encoding: {closed: 0, type: enum}  # circuit_breaker_state has no `state` label: one gauge, "
            "assumed closed 0, half-open 1, open 2; check the app's numbers\n") in text
    assert "fallback: ''  # default: none, so CircuitBreakerOpen is critical;" in text
    # no lock-failure family: single_flight false (no CacheStampede, no lock panel), without its threshold, and
    # said; no L2 tier: no L2 threshold. So the draft verifies clean against the data it came from.
    for cache in named(spec, "caches").values():
        assert cache["single_flight"] is False
        assert "stampede_rate_max" not in cache and "l2_failure_rate_max" not in cache
    assert "single_flight: false  # no cache_lock_failure_total in the data: no single-flight lock" in text
    assert "the draft verifies clean against the same data" in report
    assert named(spec, "http")["server"]["histogram"] == {"smallest_bucket": "50ms", "largest_bucket": "1s"}
    assert "backpressure inventory: max_concurrent is required" in report
    assert "backpressure_queue_size: backpressure inventory (skipped)" in report


def test_hits_and_misses_counted_apart_are_both_named_and_misses_is_watched(tmp_path):
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    registry = CollectorRegistry()
    hits = Counter("cache_hits", "Lookups answered from the cache", ["cache"], registry=registry)
    misses = Counter("cache_misses", "Lookups that went to the source", ["cache"], registry=registry)
    hits.labels("items").inc(8)
    misses.labels("items").inc(2)
    text = tmp_path / "m.prom"
    text.write_bytes(generate_latest(registry))
    result = init("--metrics", str(text), "-o", "-")
    assert result.exit_code == 0, result.output
    cache = named(yaml.safe_load(result.stdout), "caches")["items"]
    assert cache["metrics"] == {"hits": "cache_hits_total", "misses": "cache_misses_total"}
    assert "  cache_misses_total: caches items\n" in result.stderr and "not recognised" not in result.stderr
    # lookups are hits + misses: CacheHitRateLow reads what the app exports, and nothing else is missing
    assert "the draft verifies clean against the same data" in result.stderr


def test_table_order_health_checks_and_streams_are_found_and_its_pool_is_skipped_for_lack_of_a_size():
    spec, _, report = draft("python-tableorder", "python-tableorder.prom", options=("--team", "table-order"))
    assert spec["service"]["team"] == "table-order"
    assert set(named(spec, "health_checks")) == {"database", "liveness"}
    assert set(named(spec, "streams")) == {"orders"}
    assert "db_pools main: pool_size is required" in report
    assert "the draft verifies clean against the same data" in report


def test_a_python_breaker_with_a_state_label_is_written_one_hot(tmp_path):
    text = tmp_path / "m.prom"
    text.write_text('# TYPE circuit_breaker_state gauge\ncircuit_breaker_state{name="pay",state="closed"} 1\n'
                    'circuit_breaker_state{name="pay",state="open"} 0\n'
                    '# TYPE http_requests_total counter\nhttp_requests_total{handler="/x",status="2xx"} 1\n')
    result = init("--metrics", str(text), "-o", "-")
    assert result.exit_code == 0, result.output
    breaker = named(yaml.safe_load(result.stdout), "breakers")["pay"]
    assert breaker["state_encoding"] == {"type": "one_hot"}


def test_a_service_before_its_first_request_names_the_components_it_cannot_draft_yet_and_says_to_send_traffic():
    spec, text, report = draft("python-fresh", "python-fresh.prom")
    # the breaker's gauge is set at start-up: drafted; the caches and the retry count by a label not seen yet
    assert components(spec) == {("http", "server"), ("breakers", "inventory")}
    assert ("declared but not yet recorded (2): send traffic first, then run init again:\n"
            "  caches: cache_hits_total, cache_requests_total declared with no series yet; a component is named by "
            "its `cache` label, which a series carries from its first use\n"
            "  retries: retry_calls_total declared with no series yet; a component is named by its `name` label, "
            "which a series carries from its first use\n") in report
    assert "  cache_requests_total: caches (declared, no sample yet)\n" in report  # counted, not lost
    # the server is drafted from its declared families; no SLO until a bucket has been seen
    assert "slos" not in spec and "histogram" not in named(spec, "http")["server"]
    assert "run init again after traffic to draft a latency SLO" in text


def test_a_service_with_only_declared_families_is_one_line_saying_to_send_traffic(tmp_path):
    text = tmp_path / "fresh.prom"
    text.write_text("# HELP cache_requests_total Cache lookups\n# TYPE cache_requests_total counter\n")
    assert one_line(init("--metrics", str(text))) == (
        f"obsgen: no component recorded yet in {text}: its caches families are declared with no series; send "
        "traffic to the service first, then run init again\n")


def test_a_profile_the_data_contradicts_drafts_no_component_from_counters_both_profiles_name(tmp_path):
    result = init("--metrics", str(ROOT / MAPLE_APP), "--metrics", str(ROOT / TEXTS / REDIS_SENTINEL[0]),
                  "--profile", "python", "-o", "-")
    assert result.exit_code == 0, result.output
    assert "caches" not in yaml.safe_load(result.stdout)
    assert "profile python (--profile; but the data has 0 of its metric names against 16 for micrometer: " \
           "check it)" in result.stderr
    assert ("  caches equipment: only app-defined cache_l2_failure_total, cache_lock_failure_total; none of the "
            "python profile's own cache_hits_total, cache_requests_total\n") in result.stderr
    alone = init("--metrics", str(ROOT / MAPLE_APP), "--profile", "python")
    assert one_line(alone).startswith("obsgen: no component recognised in ")


def test_a_scrape_text_names_no_job_so_the_selectors_are_written_as_defaults_to_check():
    spec, text, _ = draft("redis-standalone", MAPLE_APP, *REDIS_SENTINEL[:2])
    assert spec["service"]["selector"] == {"job": "maple-expectation"}
    assert "  selector: {job: maple-expectation}  # default: the job Prometheus scrapes it as (a scrape text " \
           "names none); check\n" in text
    sentinel, _, _ = draft("maple", MAPLE_APP, *REDIS_SENTINEL)
    assert named(sentinel, "redis")["mymaster"]["selector"] == {"job": "redis"}


def test_a_name_the_data_gives_but_a_spec_cannot_take_is_said_and_the_file_name_used(tmp_path):
    text = tmp_path / "pricing.prom"
    text.write_text('# TYPE cache_gets_total counter\ncache_gets_total{application="con",cache="a",result="hit"} 1\n')
    result = init("--metrics", str(text), "-o", "-")
    assert result.exit_code == 0, result.output
    assert ("  name: pricing  # default: the source's file name (the `application` label of its series is 'con', "
            "which is no service name); set it (--service)\n") in result.stdout


def test_a_retry_links_the_breaker_of_its_label_value_by_the_breakers_spec_name(tmp_path):
    text = tmp_path / "fx.prom"
    text.write_text('# TYPE circuit_breaker_state gauge\ncircuit_breaker_state{name="fx.rates/eu"} 0\n'
                    '# TYPE retry_calls_total counter\nretry_calls_total{name="fx.rates/eu",result="success"} 1\n')
    result = init("--metrics", str(text), "-o", "-")
    assert result.exit_code == 0, result.output
    assert ("    breaker: fx.rates-eu  # a breaker of the same name exists (a call's breaker and retry are often named "
            "alike): check\n") in result.stdout
    assert "obsgen init: wrote" not in result.stderr  # to stdout: nothing written


def test_the_written_line_counts_the_service_as_verify_does(tmp_path):
    out = tmp_path / "svc.yaml"
    result = init("--metrics", str(ROOT / TEXTS / "python-service.prom"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == \
        f"obsgen init: wrote {out} (the service and 6 components); next: obsgen build {out}"


# -- Redis -----------------------------------------------------------------------------------------

def test_redis_exporter_over_a_master_and_replica_alone_is_standalone_with_one_replica():
    spec, text, _ = draft("redis-standalone", MAPLE_APP, *REDIS_SENTINEL[:2])
    # the servers cannot tell that Sentinel manages them: the comment says where that shows
    assert "topology: standalone  # no sentinel or cluster series; Sentinel shows only in a sentinel's own " \
           "scrape: if Sentinel manages it, add one" in text
    assert named(spec, "redis")["redis"] == {"name": "redis", "topology": "standalone", "replicas": 1,
                                             "selector": {"job": "redis"}, "memory_ratio_max": 0.9}


def test_redis_exporter_on_a_cluster_node_is_a_cluster_with_its_masters_replicas():
    spec, text, report = draft("redis-cluster", "redis-cluster-node.prom")
    assert named(spec, "redis")["redis"] == {"name": "redis", "topology": "cluster", "replicas": 1,
                                             "selector": {"job": "redis"}, "memory_ratio_max": 0.9}
    assert spec["service"]["profile"] == "micrometer"
    # the comment counts families as the report does: a text of one exporter has no other
    total = report.split("recognised ")[1].split(" of ")[1].split(" ")[0]
    assert f"  # {total} redis_* families\n" in text
    assert "profile micrometer (the default: the data has no metric name of either profile's own)" in report


# -- errors ----------------------------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
    return result.output


def test_an_unreachable_metrics_url_is_one_line_and_exit_2():
    port = closed_port()
    assert one_line(init("--metrics", f"http://127.0.0.1:{port}/metrics")) == \
        f"obsgen: http://127.0.0.1:{port}/metrics: cannot connect: [Errno 111] Connection refused\n"


def test_an_unreachable_prometheus_is_one_line_and_exit_2():
    port = closed_port()
    assert one_line(init("--prometheus", f"http://127.0.0.1:{port}", "--selector", 'job="x"')) == \
        f"obsgen: http://127.0.0.1:{port}/api/v1/query: cannot connect: [Errno 111] Connection refused\n"


def test_an_unparseable_file_names_its_line(tmp_path):
    bad = tmp_path / "bad.prom"
    bad.write_text("# TYPE x counter\nx_total 1\nthis is not { exposition\n")
    assert one_line(init("--metrics", str(bad))) == \
        f"obsgen: {bad}: not Prometheus exposition text (line 3: `this is not {{ exposition`)\n"


def test_a_text_with_no_known_kind_says_so(tmp_path):
    text = tmp_path / "jvm.prom"
    text.write_text("# TYPE jvm_threads_live_threads gauge\njvm_threads_live_threads 12\n")
    assert one_line(init("--metrics", str(text))) == (
        f"obsgen: no component recognised in {text} (profile micrometer: 1 metric families, none of them a kind "
        "obsgen knows); try --profile python, or check the source\n")


def test_an_existing_output_is_kept_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "spec.yaml"
    out.write_text("mine\n")
    source = str(ROOT / TEXTS / "micrometer-boot3.prom")
    result = init("--metrics", source, "-o", str(out))
    assert one_line(result) == f"obsgen: {out} exists; pass --force to overwrite it\n"  # before any report
    assert out.read_text() == "mine\n"
    forced = init("--metrics", source, "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text().startswith("# Drafted by `obsgen init`")


@pytest.mark.parametrize("where, message", [
    ("exists.yaml", "{out} exists; pass --force to overwrite it"),
    (".", "-o {out}: is a directory; give a file name"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_source_is_read(tmp_path, where, message):
    (tmp_path / "exists.yaml").write_text("mine\n")
    out = tmp_path / where if where != "." else tmp_path
    result = init("--metrics", str(tmp_path / "not-read.prom"), "-o", str(out))  # a source that does not exist
    assert one_line(result) == "obsgen: " + message.format(out=out) + "\n"


@pytest.fixture(scope="module")
def answers_404():
    """A real HTTP server (http.server) on 127.0.0.1 that answers every GET with 404: a wrong /metrics path."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotHere(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotHere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/nothere"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [("init",), ("verify", "specs/maple.yaml")])
def test_a_metrics_url_that_answers_404_is_one_line_and_exit_2(answers_404, command, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, [*command, "--metrics", answers_404], catch_exceptions=False)
    assert one_line(result) == (f"obsgen: --metrics {answers_404}: the server has no such page (HTTP 404, 405 or "
                                "501); check the path: /metrics, or Spring Boot's /actuator/prometheus\n")


@pytest.mark.parametrize("source, hint", [
    ("127.0.0.1:18081/metrics", "; for a URL write http://127.0.0.1:18081/metrics"),
    ("htp://127.0.0.1:18081/metrics", "; a URL starts with http:// or https:// (not htp://)"),
])
def test_a_url_without_its_scheme_is_told_how_to_write_one(source, hint):
    assert one_line(init("--metrics", source)) == f"obsgen: --metrics {source}: No such file or directory{hint}\n"


def test_a_prometheus_url_without_its_scheme_is_told_how_to_write_one():
    assert one_line(init("--prometheus", "127.0.0.1:19091", "--selector", 'job="x"')) == \
        "obsgen: --prometheus 127.0.0.1:19091: expected an http:// or https:// URL (http://127.0.0.1:19091?)\n"


def test_a_selector_in_promql_braces_is_taken_as_its_matchers():
    port = closed_port()  # the selector passes: what fails is reaching the server
    assert one_line(init("--prometheus", f"http://127.0.0.1:{port}", "--selector", ' {job="pricing"} ')) == \
        f"obsgen: http://127.0.0.1:{port}/api/v1/query: cannot connect: [Errno 111] Connection refused\n"


def test_an_empty_source_says_it_has_no_metric_family():
    assert one_line(init("--metrics", "/dev/null")) == (
        "obsgen: no metric family in /dev/null: is it a /metrics scrape (or, with --prometheus, does the selector "
        "pick the service's series)?\n")


@pytest.mark.parametrize("args, message", [
    ((), "give either --metrics FILE_OR_URL... or --prometheus URL --selector MATCHERS"),
    (("--prometheus", "http://x"), "--prometheus needs --selector, the service's series: --selector 'job=\"checkout\"'"),
    (("--prometheus", "http://x", "--selector", "job=x"),
     "--selector 'job=x': expected label matchers such as 'job=\"checkout\"' (several separated by commas)"),
    (("--metrics", "m.prom", "--service", "Shop"),
     "--service 'Shop': expected a service name: lowercase letters, digits and '-', starting with a letter, at most "
     "63 characters, not a reserved device name (con, prn, aux, nul, com1, lpt1, …)"),
])
def test_usage_mistakes_are_one_line(args, message):
    assert one_line(init(*args)) == f"obsgen: {message}\n"
