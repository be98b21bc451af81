"""`obsgen init` against real servers: the round trip init → build → verify on the e2e reference app and its
Redis with Sentinel, and recognition of a real FastAPI service and of redis_exporter over a plain master/replica.

The servers are the e2e harness's own pieces (``Stack._start_servers``: the reference app, Redis + Sentinel
through a multi-target redis_exporter, a sessions pair with sidecar exporters) plus tests/init/pyservice.py,
scraped every second by one Prometheus started for this module. The session stack of tests/e2e/conftest.py is
not used: its scenarios break the reference app and fail Redis over while they run, and a draft read in the
middle of a failover would be a draft of the failover.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from obsgen.cli import main

from .harness import Proc, Stack, free_port, http, start_prometheus, tool, wait_until

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
APP_JOB, PY_JOB = "maple-e2e", "catalog"


class World:
    def __init__(self, root: Path):
        self.root = root
        self.stack = Stack(root, {"init-app": {}})
        self.procs: list[Proc] = []

    def start(self) -> None:
        for name in ("prometheus", "prometheus-redis-exporter", "redis-server", "redis-sentinel"):
            tool(name)
        self.stack._start_servers()
        self.py_port = free_port()
        self.procs.append(Proc(PY_JOB, [sys.executable, str(ROOT / "tests" / "init" / "pyservice.py"), "--port",
                                        str(self.py_port)], self.root / PY_JOB, self.py_port).start())
        wait_until(lambda: http(f"http://127.0.0.1:{self.py_port}/metrics"), 20, "the Python service", *self.procs)
        for item in ("hot-1", "cold-2"):
            http(f"http://127.0.0.1:{self.py_port}/api/v1/items/{item}")
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [
            {"job_name": APP_JOB, "static_configs": [{"targets": [a.instance for a in self.stack.apps.values()]}]},
            *self.stack.redis_jobs(),
            {"job_name": PY_JOB, "static_configs": [{"targets": [f"127.0.0.1:{self.py_port}"]}]},
        ]}
        self.prometheus, self.prom = start_prometheus(self.root / "prometheus", config)
        self.procs.append(self.prometheus)
        # every series init and verify read, servers' as well as sentinels' (a run once drafted the spec before
        # the exporter's first scrape of the `redis` servers, and verify then found them missing)
        for query in (f'up{{job="{APP_JOB}"}} == 1', 'redis_sentinel_master_ok_sentinels{job="redis"} >= 3',
                      'redis_sentinel_master_ok_slaves{job="redis"} >= 1',
                      'redis_instance_info{job="redis", role="master"}', 'redis_connected_slaves{job="redis"} >= 1',
                      'redis_connected_slaves{job="redis-sessions"} >= 1', f'http_requests_total{{job="{PY_JOB}"}}'):
            wait_until(lambda q=query: self.prom.query(q), 30, f"Prometheus to see {query}", self.prometheus)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.stack.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = World(tmp_path_factory.mktemp("init"))
    try:
        built.start()
        yield built
    finally:
        built.stop()


def obsgen(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def round_trip(tmp_path: Path, *source: str) -> dict:
    """init from ``source`` → build → verify against the same source (the spec holds the selector): the spec,
    once all three passed."""
    spec = tmp_path / "spec.yaml"
    drafted = obsgen("init", *source, "-o", str(spec))
    assert drafted.exit_code == 0, drafted.output
    built = obsgen("build", str(spec), "--out", str(tmp_path / "generated"))
    assert built.exit_code == 0, built.output
    verified = obsgen("verify", str(spec), *(source[:2] if source[0] == "--prometheus" else source))
    assert verified.exit_code == 0, verified.output
    assert "obsgen verify: clean" in verified.output
    return yaml.safe_load(spec.read_text())


def components(spec: dict) -> set[tuple[str, str]]:
    return {(kind, c["name"]) for kind, items in spec.items() if isinstance(items, list) for c in items}


def maple_components() -> set[tuple[str, str]]:
    """specs/maple.yaml's components the reference app shows (it exports no lock metric) and Redis by kind."""
    maple = yaml.safe_load((ROOT / "specs" / "maple.yaml").read_text())
    return components(maple) - {("locks", "redisLock"), ("redis", "main"), ("slos", "api-latency")}


def test_init_from_prometheus_builds_and_verifies_clean_with_maples_components(world, tmp_path):
    spec = round_trip(tmp_path, "--prometheus", world.prom.url, "--selector", f'job=~"{APP_JOB}|redis"')
    assert maple_components() <= components(spec)
    assert components(spec) - maple_components() == {("http", "server"), ("redis", "redis"), ("slos", "latency")}
    assert spec["service"]["selector"] == {"job": APP_JOB}
    redis = next(r for r in spec["redis"])
    assert {k: redis[k] for k in ("topology", "master_name", "sentinels", "replicas", "selector")} == {
        "topology": "sentinel", "master_name": "mymaster", "sentinels": 3, "replicas": 1, "selector": {"job": "redis"}}
    executor = next(e for e in spec["executors"] if e["name"] == "expectationComputeExecutor")
    assert (executor["queue_capacity"], executor["core_threads"], executor["max_threads"]) == (200, 4, 8)


def test_init_from_metrics_urls_builds_and_verifies_clean_against_the_same_urls(world, tmp_path):
    app = next(iter(world.stack.apps.values())).instance
    exporter = f"http://127.0.0.1:{world.stack.exporter.port}/scrape?target=redis://127.0.0.1:"
    sources = ["--metrics", f"http://{app}/metrics"]
    for port in (world.stack.redis["main-master"].port, world.stack.redis["main-replica"].port,
                 world.stack.sentinels[0].port):
        sources += ["--metrics", exporter + str(port)]
    spec = round_trip(tmp_path, *sources)
    assert maple_components() <= components(spec)
    assert next(r for r in spec["redis"])["topology"] == "sentinel"


def test_redis_exporter_sidecars_of_a_master_and_replica_are_one_standalone_redis_with_one_replica(world, tmp_path):
    spec = tmp_path / "sessions.yaml"
    # the selector in PromQL's own braces, as people copy it from a query
    result = obsgen("init", "--prometheus", world.prom.url, "--selector", '{job="redis-sessions"}',
                    "--service", "sessions", "-o", str(spec))
    assert result.exit_code == 0, result.output
    redis = yaml.safe_load(spec.read_text())["redis"]
    assert redis == [{"name": "redis-sessions", "topology": "standalone", "replicas": 1,
                      "selector": {"job": "redis-sessions"}, "memory_ratio_max": 0.9}]


def test_a_fastapi_service_with_prometheus_client_counters_is_recognised_through_prometheus(world, tmp_path):
    spec_path = tmp_path / "catalog.yaml"
    result = obsgen("init", "--prometheus", world.prom.url, "--selector", f'job="{PY_JOB}"', "-o", str(spec_path))
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(spec_path.read_text())
    assert spec["service"]["profile"] == "python" and spec["service"]["name"] == PY_JOB
    assert components(spec) == {("http", "server"), ("caches", "items"), ("caches", "prices"),
                                ("breakers", "inventory"), ("retries", "inventory"), ("slos", "latency")}
    assert "backpressure inventory: max_concurrent is required" in result.stderr
    # its caches count no lock failures: drafted without single-flight (no CacheStampede, no lock panel), so
    # the draft verifies clean against the same Prometheus
    assert all(c["single_flight"] is False for c in spec["caches"])
    assert "the draft verifies clean against the same data" in result.stderr, result.stderr
    assert "_created" not in result.stderr and "  up\n" not in result.stderr  # not the service's families
    built = obsgen("build", str(spec_path), "--out", str(tmp_path / "generated"))
    assert built.exit_code == 0, built.output


def test_a_selector_that_picks_nothing_is_one_line_and_exit_2(world, tmp_path):
    result = obsgen("init", "--prometheus", world.prom.url, "--selector", 'job="nope"', "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert result.output == (f'obsgen: {world.prom.url}: no series match {{job="nope"}}; check the selector against '
                             "the job names\n")
    assert not (tmp_path / "x.yaml").exists()
