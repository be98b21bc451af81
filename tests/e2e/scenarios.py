"""The end-to-end scenarios: put one part of the system into a state, assert through Prometheus' HTTP API.

Scenarios run at the same time, each in its own thread, after the healthy run:
every scenario that drives the app has an app instance of its own, and the
alerts it looks for carry that instance (or a component no other scenario
touches: CacheStampede sums ``ocidCache`` lock failures over all instances), so
they cannot see each other's faults. Redis has two deployments, one per Redis
scenario.

Detection time is measured from the fault (the control call returning, the
SIGKILL, Sentinel reporting the switch) to the watcher first seeing the alert
``firing``; the bound each alert must meet is

    scaled ``for`` + fill + 2 × evaluation interval + watcher poll + 0.5 s

where the two evaluation intervals cover the scrape that first carries the fault
(≤ 1 scrape interval = 1 eval interval) and the evaluation that first sees it
(≤ 1 eval interval), and the last 0.5 s is HTTP and thread scheduling on a busy
two-core machine. ``fill`` is 0 for conditions on gauges; for conditions on a
range window it is that window (scaled), the time after which every sample in
the window comes from the faulty state; for RedisNoHealthyReplica the fault is
Sentinel itself reporting no healthy replica.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from obsgen.model.types import Duration
from obsgen.model.promql import scale_duration

from .harness import (EVAL_S, OUTAGE_SERVICE, POLL_S, SCALE, SCRAPE_S, SERVICE, AlertWatcher, Failure, Moment,
                      Stack, matches, parse_time)

SLACK_S = 2 * EVAL_S + POLL_S + 0.5
GRACE_S = 20.0          # how long past its bound a late alert is still waited for, to report its real time
SCENARIO_TIMEOUT_S = 480.0


@dataclass(frozen=True)
class Detection:
    scenario: str
    alert: str
    target: str
    for_s: float
    fill_s: float
    to_active: float     # fault → the alert's activeAt (pending)
    to_firing: float     # fault → seen firing
    bound: float

    @property
    def ok(self) -> bool:
        return self.to_firing <= self.bound


RESULTS: list[Detection] = []
NOTES: list[str] = []      # other timings and counts for the session summary
_RESULTS_LOCK = threading.Lock()


def note(text: str) -> None:
    with _RESULTS_LOCK:
        NOTES.append(text)


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Ctx], None]
    app: bool
    start: dict  # the state its app instance starts in, from before the first scrape


SCENARIOS: dict[str, Scenario] = {}


def scenario(*, app: bool = True, start: dict | None = None):
    """Register a scenario; ``app`` gives it an app instance of its own, which starts in state ``start``."""
    def register(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        SCENARIOS[fn.__name__] = Scenario(fn.__name__, fn, app, start or {})
        return fn
    return register


def scaled_seconds(production: str) -> float:
    return scale_duration(Duration.parse(production), SCALE).total_seconds


class Ctx:
    """What a scenario works with: its app instance, Prometheus, the alert history, and the checks."""

    def __init__(self, stack: Stack, name: str, done: dict[str, threading.Event]) -> None:
        self.stack, self.name, self.done = stack, name, done
        self.prom = stack.prom
        self.watcher: AlertWatcher = stack.watcher

    def after(self, *names: str) -> None:
        """Wait for other scenarios of this run (those not selected count as done)."""
        for name in names:
            if name in self.done and not self.done[name].wait(SCENARIO_TIMEOUT_S):
                raise Failure(f"{self.name}: scenario {name} did not finish within {SCENARIO_TIMEOUT_S:g}s")

    @property
    def app(self):
        return self.stack.apps[self.name]

    def for_s(self, alert: str, component: str | None = None, service: str = SERVICE, **labels: str) -> float:
        """The scaled ``for`` of ``alert`` of ``service`` (of ``component``, and of the rule that sets ``labels``
        of its own, such as a cache's ``tier``, when alerts of that name differ)."""
        found = {r["for"] for r in self.stack.rules
                 if r.get("alert") == alert and r["labels"]["service"] == service
                 and (component is None or r["labels"].get("component") == component)
                 and all(r["labels"].get(k, v) == v for k, v in labels.items())}
        if len(found) != 1:
            raise Failure(f"expected one `for` for {alert} ({component}) in the scaled rules, found {found}")
        return Duration.parse(found.pop()).total_seconds

    def fires(self, alert: str, fault: Moment, *, fill: float = 0.0, component: str | None = None,
              **labels: str) -> tuple[Detection, dict]:
        """Wait for ``alert`` with ``labels`` to fire after ``fault``; record and check its detection time."""
        labels = {"alertname": alert, "service": SERVICE, **labels}
        before = self.watcher.seen(labels, fault.mono - 2 * POLL_S, fault.mono)
        assert not before, f"{alert} {labels} was already active before the fault: {before[-1][1]}"
        for_s = self.for_s(alert, component, **{k: v for k, v in labels.items() if k != "alertname"})
        bound = for_s + fill + SLACK_S
        seen, found = self.watcher.first(labels, fault.mono, bound + GRACE_S, state="firing")
        target = ",".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "service"))
        detection = Detection(self.name, alert, target, for_s, fill, parse_time(found["activeAt"]) - fault.wall,
                              seen - fault.mono, bound)
        with _RESULTS_LOCK:
            RESULTS.append(detection)
        assert detection.ok, (f"{alert} ({target}) fired {detection.to_firing:.1f}s after the fault, beyond its bound "
                              f"{bound:.1f}s = for {for_s:g}s + fill {fill:g}s + slack {SLACK_S:g}s")
        assert found["annotations"].get("summary") and found["annotations"].get("runbook_url"), found
        return detection, found

    def resolves(self, alert: str, since: Moment, within: float, **labels: str) -> float:
        """Wait until no ``alert`` with ``labels`` is pending or firing; seconds since ``since``."""
        labels = {"alertname": alert, "service": SERVICE, **labels}
        seen, _ = self.watcher.first(labels, since.mono, within, absent=True)
        return seen - since.mono

    def quiet(self, labels: dict[str, str], since: Moment, until: float, states=("pending", "firing")) -> list[dict]:
        """Hold until ``until`` (monotonic), then the alerts with ``labels`` seen in ``states`` meanwhile."""
        time.sleep(max(0.0, until - time.monotonic()) + 2 * POLL_S)
        return [a for _, a in self.watcher.seen(labels, since.mono, until) if a["state"] in states]

    def inactive_now(self, *alerts: str, **labels: str) -> None:
        """After two more evaluations, none of ``alerts`` with ``labels`` is pending or firing."""
        time.sleep(2 * EVAL_S + 2 * POLL_S)
        active = [a for a in self.watcher.latest() if a["labels"]["alertname"] in alerts and matches(a, labels)]
        assert not active, f"still active: {AlertWatcher.describe(active)}"

    def value(self, expr: str, at: float | None = None) -> float:
        result = self.prom.query(expr, at)
        assert len(result) == 1, f"`{expr}` returned {result}"
        return float(result[0]["value"][1])


def _all(checks: list[Callable[[], object]]) -> None:
    """Run every check, then fail with all the failures at once."""
    errors = []
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)


# -- scenarios -----------------------------------------------------------------------------------

HEALTHY_S = scaled_seconds("5m") + 3  # the longest range window, full of healthy data, and a few evaluations


@scenario(app=False)
def healthy(ctx: Ctx) -> None:
    """Every app instance at its baseline, Redis at rest: no alert pending or firing, for a whole window."""
    # Start-up noise first: RedisSentinelQuorumAtRisk's absent() is true until the sentinels are scraped.
    asked = time.monotonic()
    settled, _ = ctx.watcher.first({}, asked, 30, absent=True)
    noise = {a["labels"]["alertname"] for _, a in ctx.watcher.seen({}, 0, settled)}
    begin = Moment(settled, time.time() - (time.monotonic() - settled))
    seen = ctx.quiet({}, begin, begin.mono + HEALTHY_S)
    assert not seen, f"alerts active in the healthy run: {AlertWatcher.describe(seen)}"
    note(f"healthy: no alert pending or firing for {HEALTHY_S:g}s ({len(ctx.stack.apps)} app instances, "
         f"{len(ctx.stack.rules)} rules); start-up noise before that: {', '.join(sorted(noise)) or 'none'}")


@scenario()
def breaker_open(ctx: Ctx) -> None:
    app, breaker = ctx.app, {"instance": ctx.app.instance, "name": "nexonApi"}
    fault = app.set({"breakers": {"nexonApi": {"mode": "open"}}})
    ctx.fires("CircuitBreakerOpen", fault, **breaker)
    closed = app.set({"breakers": {"nexonApi": {"mode": "closed"}}})
    resolved = ctx.resolves("CircuitBreakerOpen", closed, scaled_seconds("2m") + SLACK_S, **breaker)
    note(f"breaker_open: resolved {resolved:.1f}s after closing")


@scenario()
def breaker_flapping(ctx: Ctx) -> None:
    """Open 3.5s, half-open 0.5s, closed 1.1s, again and again: never open for the whole `for` (6s),
    closed long enough for every cycle to be scraped closed, not closed 78% of the time."""
    app, breaker = ctx.app, {"instance": ctx.app.instance, "name": "nexonApi"}
    cycle = {"mode": "flapping", "open_s": 3.5, "half_open_s": 0.5, "closed_s": 1.1}
    assert cycle["open_s"] + cycle["half_open_s"] < ctx.for_s("CircuitBreakerOpen")
    assert cycle["closed_s"] > SCRAPE_S
    fault = app.set({"breakers": {"nexonApi": cycle}})
    detection, _ = ctx.fires("CircuitBreakerOpen", fault, fill=scaled_seconds("2m"), **breaker)
    # The breaker was scraped closed while the alert stayed active: the re-opening branch carried it.
    fired = fault.wall + detection.to_firing
    span = math.floor(detection.to_firing - detection.to_active)
    closed = ctx.value(f'sum_over_time(resilience4j_circuitbreaker_state{{instance="{app.instance}", '
                       f'name="nexonApi", state="closed"}}[{span}s])', at=fired)
    assert closed >= 1, f"no closed sample in the {span}s the alert was active: the flapping was not seen"
    back = app.set({"breakers": {"nexonApi": {"mode": "closed"}}})
    resolved = ctx.resolves("CircuitBreakerOpen", back, scaled_seconds("2m") + SLACK_S, **breaker)
    note(f"breaker_flapping: {closed:g} closed scrape(s) while the alert was active; resolved {resolved:.1f}s "
         "after closing")


@scenario()
def cache_hit_low(ctx: Ctx) -> None:
    """equipment's L1 hit ratio drops to 30% at 50 lookups/s."""
    fault = ctx.app.set({"caches": {"equipment": {"rate": 50.0, "l1_hit": 0.3}}})
    _, alert = ctx.fires("CacheHitRateLow", fault, fill=scaled_seconds("5m"), instance=ctx.app.instance,
                         cache="equipment", tier="L1")
    assert "equipment (L1)" in alert["annotations"]["description"] and "%" in alert["annotations"]["description"]


IDLE = {  # healthy ratios, but no traffic or a trickle under each alert's minimum rate, from the start
    "caches": {"equipment": {"rate": 0.0}, "cubeTrials": {"rate": 0.5}},
    "breakers": {"nexonApi": {"calls": 0.0}},
    "retries": {"nexonApi": {"calls": 0.05}},
    "time_limiters": {"nexonApi": {"calls": 0.05}},
}


@scenario(start=IDLE)
def cache_hit_idle(ctx: Ctx) -> None:
    """An instance that has been idle since it started (a trickle under the minimum rate, a breaker without
    calls whose failure rate reads -1) gets the same bad ratios: nothing fires, nothing is even pending."""
    fault = ctx.app.set({
        "caches": {"equipment": {"l1_hit": 0.3}, "cubeTrials": {"l1_hit": 0.3, "l2_hit": 0.3}},
        "retries": {"nexonApi": {"exhausted": 0.5}},
        "time_limiters": {"nexonApi": {"timeouts": 0.5}},
    })
    until = fault.mono + scaled_seconds("5m") + SLACK_S + 3 * EVAL_S
    seen = ctx.quiet({"instance": ctx.app.instance}, fault, until)
    assert not seen, f"alerts on an idle instance: {AlertWatcher.describe(seen)}"
    inst = ctx.app.instance
    # Not vacuous: the trickle's ratio is bad and the failure rate is Resilience4j's -1.
    assert ctx.value(f'instance_cache:hit:ratio_rate5m{{instance="{inst}", cache="cubeTrials", tier="L1"}}') < 0.8
    assert ctx.value(f'resilience4j_circuitbreaker_failure_rate{{instance="{inst}", name="nexonApi"}}') == -1


@scenario()
def executor_queue(ctx: Ctx) -> None:
    """expectationComputeExecutor's queue held at 195/200 fires; alertTaskExecutor's 2s spike to 195 does not."""
    app = ctx.app
    fault = app.set({"executors": {"expectationComputeExecutor": {"queued": 195}}})
    spike = app.set({"executors": {"alertTaskExecutor": {"queued": 195}}})
    time.sleep(ctx.for_s("ExecutorQueueFull") / 3)
    spike_end = app.set({"executors": {"alertTaskExecutor": {"queued": 0}}})
    ctx.fires("ExecutorQueueFull", fault, instance=app.instance, executor="expectation")
    labels = {"alertname": "ExecutorQueueFull", "instance": app.instance, "executor": "alert"}
    seen = ctx.quiet(labels, spike, spike_end.mono + ctx.for_s("ExecutorQueueFull") + SLACK_S, states=("pending",
                                                                                                       "firing"))
    assert seen, "the spike was never even pending: it was not scraped, so the test proves nothing"
    assert not [a for a in seen if a["state"] == "firing"], "a 2s spike fired ExecutorQueueFull"
    note(f"executor_queue: a {spike_end.mono - spike.mono:.1f}s spike to 195/200 was pending, never firing")


@scenario()
def stampede(ctx: Ctx) -> None:
    """30 single-flight lock failures/s on ocidCache (threshold 10/s, summed over all instances)."""
    fault = ctx.app.set({"caches": {"ocidCache": {"lock_failures": 30.0}}})
    _, alert = ctx.fires("CacheStampede", fault, fill=scaled_seconds("2m"), cache="ocidCache")
    assert float(alert["value"]) > 10


@scenario()
def catalogue(ctx: Ctx) -> None:
    """The app's other alerts, all at once on one instance: each fires within its bound."""
    inst = ctx.app.instance
    fault = ctx.app.set({
        "breakers": {"nexonApi": {"failure_rate": 45.0}},
        "retries": {"nexonApi": {"exhausted": 0.6}},
        "time_limiters": {"nexonApi": {"timeouts": 0.6}},
        "caches": {"expectationV4": {"l2_failures": 1.0}},
        "executors": {"expectationComputeExecutor": {"active": 4, "queued": 50},
                      "alertTaskExecutor": {"rejected": 2.0}},
    })
    window = scaled_seconds("5m")
    _all([
        lambda: ctx.fires("CircuitBreakerFailureRateHigh", fault, instance=inst, name="nexonApi"),
        lambda: ctx.fires("RetryExhaustionHigh", fault, fill=window, instance=inst, name="nexonApi"),
        lambda: ctx.fires("TimeLimiterTimeoutsHigh", fault, fill=window, instance=inst, name="nexonApi"),
        lambda: ctx.fires("CacheL2Unavailable", fault, fill=window, instance=inst, cache="expectationV4"),
        lambda: ctx.fires("ExecutorRejectingTasks", fault, fill=window, instance=inst, executor="alert"),
        lambda: ctx.fires("ExecutorSaturated", fault, instance=inst, executor="expectation"),
    ])


@scenario(app=False)
def outages(ctx: Ctx) -> None:
    """outage-e2e's two instances: a metric its executor is watched by renamed in both (an upgrade that renames
    it) fires ComponentMetricsMissing; then one instance crashes (InstanceDown, and no ServiceDown while the
    other serves), then the other (ServiceDown; InstanceDown, now ServiceDown's news, goes away)."""
    first, second = ctx.stack.outage_apps.values()
    service = {"service": OUTAGE_SERVICE}
    renamed = {"renames": "executor_queued_tasks=executor_queue_tasks"}
    second.set(renamed)
    fault = first.set(renamed)
    _, alert = ctx.fires("ComponentMetricsMissing", fault, component="expectationComputeExecutor", **service)
    description = alert["annotations"]["description"]
    assert "executor_queued_tasks{" in description and "ExecutorQueueFull" in description, description
    second.set({"renames": ""})
    back = first.set({"renames": ""})
    ctx.resolves("ComponentMetricsMissing", back, 3 * SCRAPE_S + SLACK_S, **service)

    crash = Moment.now()
    second.proc.kill9()
    ctx.fires("InstanceDown", crash, instance=second.instance, **service)
    early = ctx.watcher.seen({"alertname": "ServiceDown", **service}, crash.mono, time.monotonic())
    assert not early, f"ServiceDown while an instance still served: {AlertWatcher.describe([a for _, a in early])}"

    last = Moment.now()
    first.proc.kill9()
    _, alert = ctx.fires("ServiceDown", last, **service)
    assert alert["annotations"]["description"].startswith("0 instances of service outage-e2e up"), alert
    gone = ctx.resolves("InstanceDown", last, ctx.for_s("ServiceDown", service=OUTAGE_SERVICE) + SLACK_S, **service)
    note(f"outages: InstanceDown went away {gone:.1f}s after the last instance crashed (ServiceDown's news)")


# -- dashboards ----------------------------------------------------------------------------------

RATE_INTERVAL = f"{max(4 * SCRAPE_S, SCRAPE_S + 1):g}s"  # Grafana: max($__interval + scrape, 4 × scrape)
BUILTINS = {"__rate_interval": RATE_INTERVAL, "__interval": f"{SCRAPE_S:g}s", "__range": "5m",
            "__range_s": "300", "datasource": "prometheus"}
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.*),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


def substitute(text: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


def _panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and every annotation query of a dashboard."""
    out = [(f"panel {p.get('id')} `{p.get('title')}`", t["expr"]) for p in _panels(dashboard.get("panels", []))
           for t in p.get("targets", []) if t.get("expr") and not t.get("hide")]
    out += [(f"annotation `{a.get('name')}`", a["expr"]) for a in dashboard.get("annotations", {}).get("list", [])
            if a.get("expr")]
    return out


def variable_values(dashboard: dict, prom) -> dict[str, str]:
    """Each query variable as Grafana sets it with "All" selected; its own query must return values."""
    values = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = substitute(var["query"] if isinstance(var["query"], str) else var["query"]["query"], values)
        match = LABEL_VALUES.fullmatch(query.strip())
        assert match, f"variable ${var['name']}: unsupported query `{query}`"
        found = prom.api(f"/api/v1/label/{match['label']}/values", **{"match[]": match["selector"]})
        assert found, f"variable ${var['name']}: `{query}` returns no values"
        values[var["name"]] = var.get("allValue") or "(" + "|".join(re.escape(v) for v in found) + ")"
    return values


@scenario()
def dashboards(ctx: Ctx) -> None:
    """Every panel and annotation query of every generated dashboard returns data from this Prometheus,
    with an alert firing (for the alert table and annotations) and Redis back to master + replica."""
    fault = ctx.app.set({"breakers": {"nexonApi": {"mode": "open"}}})
    ctx.after("redis_drill", "redis_replication")
    ctx.watcher.first({"alertname": "CircuitBreakerOpen", "instance": ctx.app.instance}, fault.mono, 30)
    empty, checked = [], 0
    assert ctx.stack.dashboards, "obsgen wrote no dashboards"
    for path in ctx.stack.dashboards:
        dashboard = json.loads(path.read_text())
        values = variable_values(dashboard, ctx.prom)
        for where, expr in dashboard_queries(dashboard):
            query = substitute(expr, values)
            assert "$" not in query, f"{path.name} {where}: unresolved variable in `{query}`"
            end = time.time()
            result = ctx.prom.query_range(query, end - 30, end)
            points = [v for series in result for _, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")]
            checked += 1
            if not points:
                empty.append(f"{path.name} {where}: `{query}`")
    assert checked > 40, f"only {checked} queries found"
    assert not empty, f"{len(empty)} of {checked} dashboard queries return no data:\n" + "\n".join(empty)
    note(f"dashboards: all {checked} panel and annotation queries of {len(ctx.stack.dashboards)} dashboards "
         "returned data")
