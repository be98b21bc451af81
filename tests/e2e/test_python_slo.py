"""Table Order's SLO and HTTP rules on a real FastAPI service, scraped by a real Prometheus.

The service (tests/e2e/pyapp.py) is instrumented with the real
prometheus-fastapi-instrumentator, as the python profile assumes; its rules are
``obsgen build specs/table-order.yaml --time-scale 60`` (5m becomes 5s, 1h 1m, 30d
12h). Real traffic goes through it in four phases, and every expected value comes
from the requests the test sent, never from the generator:

1. nothing served yet: no SLO or route series exist (nothing is invented);
2. healthy, every answer 2xx and fast: the 5xx series does not exist (the library
   creates it on the first error), yet every error ratio is 0 and the dashboards
   show a full budget and 0% errors, and no alert is active;
3. a fifth of the requests fail and a tenth are slower than 1s: each window's
   ratio is the share the test sent within it;
4. no request at all: the short windows read 0, not NaN, and the SLO window keeps
   its value (idle time neither spends nor dilutes the budget).

The Prometheus is seconds old throughout: its long windows count the time before
its first sample as clean traffic (phase 3 burns 20× without an alert).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, tool

from .harness import Failure, Prometheus, Proc, free_port, http, parse_time, start_prometheus, wait_until

pytestmark = [pytest.mark.e2e]

SCALE = 60
SPEC = ROOT / "specs" / "table-order.yaml"
SERVICE = JOB = "table-order"
ENVIRONMENT = "production"  # the spec builds one output set per environment; the app here stands for production
RATE_INTERVAL = "5s"        # Grafana's $__rate_interval at a 1s scrape (4 scrapes, rounded up)
SLOW_S = 1.2                # above the latency SLO's 1s bound
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320, "30d": 43200}
BUDGET = {"availability": 0.01, "latency": 0.05}

# One second of traffic each: 20 requests. Healthy: every answer 2xx and fast. Errors: 4 of 20 answer 500,
# 2 of 20 answer after 1.2s.
HEALTHY = ["/api/v1/menu", "/api/v1/orders"] * 10
FAILING = (["/api/v1/menu", "/api/v1/orders", "/api/v1/orders?fail=1", "/api/v1/menu", "/api/v1/orders"] * 4)
FAILING[3] = FAILING[13] = f"/api/v1/orders?delay={SLOW_S}"


@dataclass(frozen=True)
class Answer:
    done: float     # wall clock, to compare with Prometheus' windows
    failed: bool
    slow: bool
    route: str


class Traffic:
    """Requests on a fixed schedule (``len(pattern)`` per second) from a thread pool; every answer logged."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url, timeout=10)
        self.pool = ThreadPoolExecutor(max_workers=32)
        self.answers: list[Answer] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.pattern: list[str] = []
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def _one(self, path: str) -> None:
        try:
            status = self.client.get(path).status_code
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with self.lock:
                self.errors.append(exc)
            return
        with self.lock:
            self.answers.append(Answer(time.time(), status >= 500, "delay=" in path, path.split("?")[0]))

    def _run(self) -> None:
        i, next_at = 0, time.monotonic()
        while not self.stopped.is_set():
            pattern = self.pattern
            self.pool.submit(self._one, pattern[i % len(pattern)])
            i += 1
            next_at += 1 / len(pattern)
            self.stopped.wait(max(0.0, next_at - time.monotonic()))

    def send(self, pattern: list[str]) -> None:
        self.pattern = pattern
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="traffic", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread:
            self.thread.join(5)
        self.pool.shutdown(wait=True)
        self.client.close()

    def count(self, since: float, until: float, what: str | None = None, route: str | None = None) -> int:
        """Answers completed in (since, until]: all, or those that ``failed`` or were ``slow``; of one route or all."""
        with self.lock:
            return sum(1 for a in self.answers if since < a.done <= until and (what is None or getattr(a, what))
                       and (route is None or a.route == route))

    def share(self, since: float, until: float, what: str, route: str | None = None) -> float:
        return self.count(since, until, what, route) / self.count(since, until, route=route)

    def blurred_share(self, since: float, until: float, what: str, rate_s: float, step_s: float) -> float:
        """The share as the long windows weigh it: bad over all answers of the last ``rate_s`` seconds, each summed
        over one evaluation every ``step_s`` within (since, until] (answers near the end enter fewer sums)."""
        ends = [until - k * step_s for k in range(int((until - since) / step_s))]
        return (sum(self.count(e - rate_s, e, what) for e in ends) / sum(self.count(e - rate_s, e) for e in ends))


@dataclass
class World:
    """What the phases observed: query → value (NaN when the series exists as NaN, None when it has none)."""

    prom: Prometheus
    dashboards: Path
    traffic: Traffic | None = None
    seen: dict[str, dict[str, float | None]] = field(default_factory=dict)
    at: dict[str, float] = field(default_factory=dict)

    def value(self, expr: str) -> float | None:
        result = self.prom.query(expr)
        if len(result) > 1:
            raise Failure(f"{expr} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1]) if result else None

    def values(self, expr: str) -> dict[str, float]:
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in self.prom.query(expr)}


def ratio(slo: str, window: str) -> str:
    return f'slo:sli_error:ratio_rate{window}{{service="{SERVICE}", slo="{slo}"}}'


def panel_queries(world: World, board: str) -> dict[str, list[str]]:
    doc = json.loads((world.dashboards / f"{board}.json").read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in doc["panels"] if p["type"] != "row"}


def grafana(expr: str) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    return expr.replace("$job", JOB).replace("$instance", ".*")


def _build_rules(out: Path) -> list[str]:
    """The real CLI's time-scaled build, checked by promtool; returns the rule files."""
    built = subprocess.run([sys.executable, "-m", "obsgen", "build", str(SPEC), "--time-scale", str(SCALE),
                            "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    files = [str(out / SERVICE / ENVIRONMENT / "prometheus" / name) for name in ("rules.yaml", "slo.yaml")]
    checked = subprocess.run([tool("promtool"), "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return files


def _prometheus(root: Path, target: str, rule_files: list[str]) -> tuple[Proc, Prometheus]:
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
              "rule_files": rule_files,
              "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}]}
    return start_prometheus(root / "prometheus", config)


def _evaluated_after(prom: Prometheus, moment: float) -> bool:
    """Every rule group of the service evaluated at least once after ``moment`` (wall clock)."""
    groups = [g for g in prom.api("/api/v1/rules")["groups"] if g["name"].startswith(SERVICE)]
    return bool(groups) and all(parse_time(g["lastEvaluation"]) > moment for g in groups)


def _settle(prom: Prometheus, seconds: float) -> None:
    """Wait ``seconds``, then for one more evaluation of every group."""
    time.sleep(seconds)
    asked = time.time()
    wait_until(lambda: _evaluated_after(prom, asked), 5, "a rule evaluation")


def _observe(world: World, phase: str, exprs: list[str]) -> None:
    world.at[phase] = time.time()
    world.seen[phase] = {e: world.value(e) for e in exprs}


def _slo_queries(world: World) -> list[str]:
    out = [ratio(slo, w) for slo in BUDGET for w in WINDOWS]
    out += [f'slo:sli_errors:rate5m{{service="{SERVICE}", slo="{slo}"}}' for slo in BUDGET]
    return out + [budget_left(world)]


def budget_left(world: World) -> str:
    (expr,) = panel_queries(world, "slo")["availability: error budget remaining"]
    return grafana(expr)


# The panels that show 5xx, per dashboard.
ERROR_PANELS = {"http": ("api: 5xx ratio by route", "api: 5xx by route"), "service-overview": ("HTTP api: 5xx ratio",)}


def _run_phases(world: World, base_url: str) -> None:
    prom = world.prom
    # 1. nothing served: a few evaluations over the app's empty /metrics
    _settle(prom, 2)
    world.seen["never served"] = {
        "series": world.values(f'{{__name__=~"slo:.+|route:.+", service="{SERVICE}"}}') or None,
        "requests": world.values(f'http_requests_total{{job="{JOB}"}}') or None}

    world.traffic = traffic = Traffic(base_url)
    traffic.send(HEALTHY)
    _settle(prom, 8)
    _observe(world, "healthy", _slo_queries(world))
    world.seen["healthy routes"] = world.values(f'route:http_request_errors:ratio_rate5m{{service="{SERVICE}"}}')
    world.seen["healthy 5xx"] = world.values(f'http_requests_total{{job="{JOB}", status="5xx"}}')
    world.seen["healthy panels"] = {title: world.values(grafana(expr)) for board, titles in ERROR_PANELS.items()
                                    for title in titles for expr in panel_queries(world, board)[title]}
    world.seen["healthy alerts"] = world.values(
        'ALERTS{alertname=~"HttpErrorRateHigh|ErrorBudgetBurnFast|ErrorBudgetBurnSlow"}')

    traffic.send(FAILING)
    _settle(prom, 10)
    _observe(world, "errors", _slo_queries(world))
    world.seen["errors routes"] = world.values(f'route:http_request_errors:ratio_rate5m{{service="{SERVICE}"}}')
    world.seen["errors alerts"] = world.values('ALERTS{alertname=~"ErrorBudgetBurnFast|ErrorBudgetBurnSlow"}')

    traffic.stop()
    _settle(prom, 7)
    _observe(world, "idle", _slo_queries(world) + [f'slo:sli_requests:rate5m{{service="{SERVICE}", slo="availability"}}'])
    world.seen["idle routes"] = world.values(f'route:http_request_errors:ratio_rate5m{{service="{SERVICE}"}}')


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("python-slo")
    tool("prometheus")
    port = free_port()
    app = Proc("pyapp", [sys.executable, str(Path(__file__).with_name("pyapp.py")), "--port", str(port)],
               root / "pyapp", port).start()
    procs = [app]
    try:
        rule_files = _build_rules(root / "obsgen")
        prometheus, prom = _prometheus(root, f"127.0.0.1:{port}", rule_files)
        procs.append(prometheus)
        wait_until(lambda: http(f"http://127.0.0.1:{port}/metrics") is not None, 20, "the app's /metrics", app)
        wait_until(lambda: [t for t in prom.api("/api/v1/targets")["activeTargets"] if t["health"] == "up"], 30,
                   "the app's target to be up", prometheus, app)
        observed = World(prom, root / "obsgen" / SERVICE / ENVIRONMENT / "dashboards")
        try:
            _run_phases(observed, f"http://127.0.0.1:{port}")
        finally:
            if observed.traffic:
                observed.traffic.stop()
        yield observed
    finally:
        for proc in reversed(procs):
            proc.stop()


def near(value: float | None, expected: float, tolerance: float) -> bool:
    return value is not None and not math.isnan(value) and abs(value - expected) <= tolerance


def test_a_service_that_served_nothing_has_no_request_series_and_gets_no_slo_or_route_series(world):
    assert world.seen["never served"] == {"series": None, "requests": None}


def test_healthy_traffic_creates_no_5xx_series_yet_every_slo_error_ratio_is_zero(world):
    assert world.seen["healthy 5xx"] == {}, "the instrumentator exported a 5xx series before any server error"
    seen = world.seen["healthy"]
    for slo in BUDGET:
        for window in WINDOWS:
            assert seen[ratio(slo, window)] == 0, (slo, window, seen[ratio(slo, window)])
    assert seen[f'slo:sli_errors:rate5m{{service="{SERVICE}", slo="availability"}}'] == 0


def test_healthy_traffic_shows_a_full_budget_and_zero_5xx_on_the_dashboards_and_fires_nothing(world):
    assert world.seen["healthy"][budget_left(world)] == 1
    routes = world.seen["healthy routes"]
    assert sorted(json.loads(k)["handler"] for k in routes) == ["/api/v1/menu", "/api/v1/orders"]
    assert set(routes.values()) == {0}
    panels = world.seen["healthy panels"]
    for title, values in panels.items():
        assert values and set(values.values()) == {0}, (title, values)
    assert world.seen["healthy alerts"] == {}


@pytest.mark.parametrize("slo, what", [("availability", "failed"), ("latency", "slow")])
def test_after_errors_each_window_reads_the_share_of_bad_requests_sent_within_it(world, slo, what):
    """A window's expected ratio is the share of the test's answers within it that failed (or were slow).

    Tolerance: the sample-aligned windows of rate() against the client's clock, and the first scrape of the
    new 5xx series, whose value rate() cannot count (up to a second of errors, about 0.01 here)."""
    at, seen, traffic = world.at["errors"], world.seen["errors"], world.traffic
    since = min(a.done for a in traffic.answers) - 1
    for window, seconds in WINDOWS.items():
        if seconds <= WINDOWS["6h"]:  # straight from the counters
            expected = traffic.share(max(since, at - seconds), at, what)
        else:  # sums of the recorded 5m (here 5s) rates, one per 1s evaluation
            expected = traffic.blurred_share(max(since, at - seconds), at, what, rate_s=5, step_s=1)
        assert near(seen[ratio(slo, window)], expected, 0.02), (slo, window, seen[ratio(slo, window)], expected)
    assert near(seen[ratio(slo, "5m")], 0.2 if what == "failed" else 0.1, 0.02)


def test_a_fifth_of_requests_failing_on_a_prometheus_seconds_old_neither_pages_nor_tickets(world):
    """20× the availability budget for 10s (10m at scale 60) on a Prometheus under half a minute old: its 1h and
    6h windows count the time before its data as clean (the rules used to ticket within the 5m `for`)."""
    assert world.seen["errors alerts"] == {}


def test_the_failing_route_reads_its_share_and_the_healthy_route_zero(world):
    routes = {json.loads(k)["handler"]: v for k, v in world.seen["errors routes"].items()}
    assert routes["/api/v1/menu"] == 0
    # 12 of 20 requests a second go to /orders and 4 of them fail; the share as answered in the route's 5m window
    # (a loaded machine answers off the schedule; the nominal 1/3 missed by 0.05 once)
    at = world.at["errors"]
    answered = world.traffic.share(at - WINDOWS["5m"], at, "failed", route="/api/v1/orders")
    assert near(answered, 4 / 12, 0.1) and near(routes["/api/v1/orders"], answered, 0.05)


def test_idle_windows_read_zero_not_nan_and_the_slo_window_keeps_its_budget(world):
    idle, busy = world.seen["idle"], world.seen["errors"]
    assert idle[f'slo:sli_requests:rate5m{{service="{SERVICE}", slo="availability"}}'] == 0
    for slo in BUDGET:
        assert idle[ratio(slo, "5m")] == 0, (slo, idle[ratio(slo, "5m")])
        # the last seconds of traffic still enter the 30d sum as the idle ones add nothing
        assert near(idle[ratio(slo, "30d")], busy[ratio(slo, "30d")], 0.03), slo
    # The Prometheus is seconds old: its 30d (here 12h) window counts the time before the first request as clean.
    covered = (world.at["idle"] - min(a.done for a in world.traffic.answers)) / (WINDOWS["30d"] * 60 / SCALE)
    expected = 1 - idle[ratio("availability", "30d")] * covered / BUDGET["availability"]
    assert near(idle[budget_left(world)], expected, 2e-3), (idle[budget_left(world)], expected)
    assert set(world.seen["idle routes"].values()) == {0}
