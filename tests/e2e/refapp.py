"""A Maple-like reference app: the Micrometer-profile metrics of MapleExpectation, driven over HTTP.

It does no real work; it exposes what a Spring Boot 3 service with Caffeine/Redis
tiered caches, Resilience4j (circuit breaker, retry, time limiter), two
thread-pool executors and the ``http.server.requests`` timer (with SLO buckets)
exposes through micrometer-registry-prometheus, plus the counters and gauges
MapleExpectation's guide (seed 003) queries by its own names: the TieredCache's
``cache_hit_total`` / ``cache_miss_total`` per ``layer`` (sections 1.6, 2.5, 7.1)
and ``executor_queue_size`` / ``executor_pool_size`` / ``executor_rejected_total``
with a short ``executor`` label (section 3.5), as specs/maple.yaml reads them. It lets a
test put each component into a state. Counters advance continuously at the rates
the state sets (a ticker every 100 ms, and once more at every scrape); gauges and
the breaker state are read at scrape time.

    python tests/e2e/refapp.py --port-file PATH [--host 127.0.0.1] [--port 0]

    GET  /metrics         Prometheus text format (prometheus_client)
    GET  /control         the state, as JSON
    POST /control         deep-merge a JSON patch into the state; unknown keys are a 400
                          {"breakers": {"nexonApi": {"mode": "open"}}}
                          {"caches": {"equipment": {"rate": 50, "l1_hit": 0.3}}}
                          {"executors": {"expectationComputeExecutor": {"queued": 195}}}
    POST /control/reset   back to the healthy baseline

``renames`` (``"executor_queued_tasks=executor_queue_tasks,…"``) exposes those
families under other names, as a library upgrade or a refactoring that renames a
metric does: the series the spec reads disappear while the app stays up.

Breaker modes: closed, open, half_open, forced_open, and flapping (open for
``open_s``, half-open for ``half_open_s``, closed for ``closed_s``, over and over,
starting when the mode is set). The failure rate reads -1 (Resilience4j's "not
enough calls yet") while the breaker sees no calls.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

APPLICATION = "maple-expectation"
CACHE_MANAGER = "cacheManager"
CACHES = ("equipment", "cubeTrials", "ocidCache", "expectationV4")
BREAKERS = ("nexonApi",)
EXECUTORS = {  # name: (core threads, max threads, queue capacity), as in ExecutorConfig.java
    "expectationComputeExecutor": (4, 8, 200),
    "alertTaskExecutor": (2, 4, 200),
}
GUIDE_EXECUTOR = {"expectationComputeExecutor": "expectation", "alertTaskExecutor": "alert"}  # section 3.5's label
BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only")
# http.server.requests with `management.metrics.distribution.slo.http.server.requests=100ms,250ms,500ms,1s`:
# Micrometer prints each bound as Java prints the double (0.5, 1.0). Share of requests at or under each bound.
HTTP_URI = "/api/v4/characters/{ocid}/expectation"
HTTP_BUCKETS = (("0.1", 0.7), ("0.25", 0.9), ("0.5", 0.98), ("1.0", 0.995))
TICK = 0.1


def baseline() -> dict:
    """A healthy service: busy caches that mostly hit, a closed breaker, executors keeping up."""
    return {
        "caches": {name: {
            "rate": 20.0,          # L1 lookups/s; L1 misses go to L2
            "l1_hit": 0.92,
            "l2_hit": 0.95,
            "lock_failures": 0.2,  # single-flight lock failures/s
            "l2_failures": 0.0,    # L2 (Redis) errors/s
        } for name in CACHES},
        "breakers": {name: {
            "mode": "closed",
            "open_s": 3.5, "half_open_s": 0.5, "closed_s": 1.1,
            "calls": 10.0,         # calls/s through the breaker
            "failure_rate": 2.0,   # percent; -1 while there are no calls
            "slow_call_rate": 0.0,
        } for name in BREAKERS},
        "retries": {name: {"calls": 10.0, "exhausted": 0.005, "retried": 0.04} for name in BREAKERS},
        "time_limiters": {name: {"calls": 10.0, "timeouts": 0.005, "failures": 0.005} for name in BREAKERS},
        "http": {"rate": 30.0},  # requests/s to the expectation endpoint, all answered 200
        "executors": {name: {  # half the core threads busy, so nothing waits in the queue
            "queued": 0, "active": core // 2, "pool_size": core, "completed": 20.0, "rejected": 0.0,
        } for name, (core, _, _) in EXECUTORS.items()},
        "renames": "",  # old=new,… : families exposed under another name
    }


def merge(into: dict, patch: dict, path: str = "") -> None:
    """Deep-merge ``patch`` into ``into``; a key the state does not have is an error."""
    for key, value in patch.items():
        where = f"{path}.{key}" if path else key
        if key not in into:
            raise ValueError(f"unknown key `{where}`; known: {', '.join(sorted(into))}")
        if isinstance(into[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"`{where}` takes an object")
            merge(into[key], value, where)
        elif isinstance(into[key], str) != isinstance(value, str):
            raise ValueError(f"`{where}` takes a {type(into[key]).__name__}")
        else:
            into[key] = value


class App:
    """The state, the counters it drives, and the Prometheus families it shows."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = baseline()
        self.since = {name: time.monotonic() for name in BREAKERS}  # when each breaker's mode was set
        self.counters: dict[tuple, float] = {}
        self.last = time.monotonic()

    # -- control -----------------------------------------------------------------------------
    def patch(self, patch: dict) -> dict:
        with self.lock:
            self._advance()
            state = copy.deepcopy(self.state)
            merge(state, patch)
            for name, breaker in patch.get("breakers", {}).items():
                if "mode" in breaker:
                    if breaker["mode"] not in (*BREAKER_STATES, "flapping"):
                        raise ValueError(f"unknown breaker mode `{breaker['mode']}`")
                    self.since[name] = time.monotonic()
            if any("=" not in pair for pair in state["renames"].split(",") if pair):
                raise ValueError("`renames` takes old=new pairs separated by commas")
            self.state = state
            return copy.deepcopy(self.state)

    def reset(self) -> dict:
        with self.lock:
            self._advance()
            self.state = baseline()
            self.since = {name: time.monotonic() for name in BREAKERS}
            return copy.deepcopy(self.state)

    # -- time --------------------------------------------------------------------------------
    def breaker_state(self, name: str, now: float) -> str:
        breaker = self.state["breakers"][name]
        if breaker["mode"] != "flapping":
            return breaker["mode"]
        cycle = (("open", breaker["open_s"]), ("half_open", breaker["half_open_s"]), ("closed", breaker["closed_s"]))
        t = (now - self.since[name]) % sum(span for _, span in cycle)
        for state, span in cycle:
            if t < span:
                return state
            t -= span
        return "closed"

    def _rates(self, now: float) -> dict[tuple, float]:
        """Per-second increase of every counter, keyed (family, labels...)."""
        s, out = self.state, {}
        for name, c in s["caches"].items():
            l2 = c["rate"] * (1 - c["l1_hit"])
            for layer, rate, hit in (("L1", c["rate"], c["l1_hit"]), ("L2", l2, c["l2_hit"])):
                out[("gets", name, layer, "hit")] = rate * hit
                out[("gets", name, layer, "miss")] = rate * (1 - hit)
            out[("lock", name)] = c["lock_failures"]
            out[("l2fail", name)] = c["l2_failures"]
        for name, b in s["breakers"].items():
            state = self.breaker_state(name, now)
            permitted = b["calls"] if state in ("closed", "half_open", "disabled", "metrics_only") else 0.0
            if state == "half_open":
                permitted = min(permitted, 1.0)
            failed = permitted * max(b["failure_rate"], 0) / 100
            out[("cb", name, "successful")] = permitted - failed
            out[("cb", name, "failed")] = failed
            out[("cb", name, "ignored")] = 0.0
            out[("cb_not_permitted", name)] = b["calls"] - permitted
        for name, r in s["retries"].items():
            exhausted, retried = r["calls"] * r["exhausted"], r["calls"] * r["retried"]
            out[("retry", name, "failed_with_retry")] = exhausted
            out[("retry", name, "successful_with_retry")] = retried
            out[("retry", name, "failed_without_retry")] = 0.0
            out[("retry", name, "successful_without_retry")] = max(r["calls"] - exhausted - retried, 0.0)
        for name, t in s["time_limiters"].items():
            timeouts, failures = t["calls"] * t["timeouts"], t["calls"] * t["failures"]
            out[("tl", name, "timeout")] = timeouts
            out[("tl", name, "failed")] = failures
            out[("tl", name, "successful")] = max(t["calls"] - timeouts - failures, 0.0)
        out[("http",)] = s["http"]["rate"]
        for name, e in s["executors"].items():
            out[("completed", name)] = e["completed"]
            out[("rejected", name)] = e["rejected"]
        return out

    def _advance(self) -> None:
        """Move every counter on to now at the current rates (caller holds the lock)."""
        now = time.monotonic()
        dt, self.last = now - self.last, now
        for key, rate in self._rates(now).items():
            self.counters[key] = self.counters.get(key, 0.0) + rate * dt

    def tick_forever(self) -> None:
        while True:
            time.sleep(TICK)
            with self.lock:
                self._advance()

    # -- exposition --------------------------------------------------------------------------
    def collect(self):
        renames = dict(pair.split("=", 1) for pair in self.state["renames"].split(",") if pair)
        for family in self._families():
            exposed = family.name + ("_total" if family.type == "counter" else "")
            if exposed in renames:  # the family and each of its samples (`_total`, `_count`, … keep their suffix)
                new = renames[exposed].removesuffix("_total") if family.type == "counter" else renames[exposed]
                family.samples = [sample._replace(name=new + sample.name[len(family.name):])
                                  for sample in family.samples]
                family.name = new
            yield family

    def _families(self):
        with self.lock:
            self._advance()
            now, s, n = time.monotonic(), copy.deepcopy(self.state), dict(self.counters)
            states = {name: self.breaker_state(name, now) for name in BREAKERS}
        app = [APPLICATION]

        gets = CounterMetricFamily("cache_gets", "The number of times cache lookup methods have returned a cached "
                                   "(hit) or uncached (miss) value.",
                                   labels=["application", "cache", "cache_manager", "layer", "result"])
        # TieredCache's own counters (the guide's `cache.hit` / `cache.miss`), one per layer
        hit = CounterMetricFamily("cache_hit", "Cache lookups answered by the layer.", labels=["application", "cache",
                                                                                                "layer"])
        miss = CounterMetricFamily("cache_miss", "Cache lookups the layer did not answer.",
                                   labels=["application", "cache", "layer"])
        lock = CounterMetricFamily("cache_lock_failure", "Single-flight lock acquisitions that failed.",
                                   labels=["application", "cache"])
        l2fail = CounterMetricFamily("cache_l2_failure", "L2 (Redis) cache operations that failed.",
                                     labels=["application", "cache"])
        for name in s["caches"]:
            for layer in ("L1", "L2"):
                for result in ("hit", "miss"):
                    gets.add_metric(app + [name, CACHE_MANAGER, layer, result], n[("gets", name, layer, result)])
                hit.add_metric(app + [name, layer], n[("gets", name, layer, "hit")])
                miss.add_metric(app + [name, layer], n[("gets", name, layer, "miss")])
            lock.add_metric(app + [name], n[("lock", name)])
            l2fail.add_metric(app + [name], n[("l2fail", name)])
        yield from (gets, hit, miss, lock, l2fail)

        state = GaugeMetricFamily("resilience4j_circuitbreaker_state", "The states of the circuit breaker",
                                  labels=["application", "name", "state"])
        rate = GaugeMetricFamily("resilience4j_circuitbreaker_failure_rate", "The failure rate of the circuit breaker",
                                 labels=["application", "name"])
        slow = GaugeMetricFamily("resilience4j_circuitbreaker_slow_call_rate",
                                 "The slow call of the circuit breaker", labels=["application", "name"])
        calls = SummaryMetricFamily("resilience4j_circuitbreaker_calls_seconds",
                                    "Total number of calls which finished", labels=["application", "kind", "name"])
        calls_max = GaugeMetricFamily("resilience4j_circuitbreaker_calls_seconds_max",
                                      "Total number of calls which finished", labels=["application", "kind", "name"])
        not_permitted = CounterMetricFamily("resilience4j_circuitbreaker_not_permitted_calls",
                                            "Total number of not permitted calls",
                                            labels=["application", "kind", "name"])
        for name, b in s["breakers"].items():
            for st in BREAKER_STATES:
                state.add_metric(app + [name, st], 1.0 if states[name] == st else 0.0)
            no_calls = b["calls"] <= 0
            rate.add_metric(app + [name], -1.0 if no_calls else float(b["failure_rate"]))
            slow.add_metric(app + [name], -1.0 if no_calls else float(b["slow_call_rate"]))
            for kind in ("successful", "failed", "ignored"):
                count = n[("cb", name, kind)]
                calls.add_metric(app + [kind, name], count_value=count, sum_value=count * 0.12)
                calls_max.add_metric(app + [kind, name], 0.25 if count else 0.0)
            not_permitted.add_metric(app + ["not_permitted", name], n[("cb_not_permitted", name)])
        yield from (state, rate, slow, calls, calls_max, not_permitted)

        retry = CounterMetricFamily("resilience4j_retry_calls", "The number of calls by kind",
                                    labels=["application", "kind", "name"])
        for name in s["retries"]:
            for kind in ("successful_without_retry", "successful_with_retry", "failed_with_retry",
                         "failed_without_retry"):
                retry.add_metric(app + [kind, name], n[("retry", name, kind)])
        limiter = CounterMetricFamily("resilience4j_timelimiter_calls", "The number of calls by kind",
                                      labels=["application", "kind", "name"])
        for name in s["time_limiters"]:
            for kind in ("successful", "failed", "timeout"):
                limiter.add_metric(app + [kind, name], n[("tl", name, kind)])
        yield from (retry, limiter)

        labels = ["application", "name"]
        gauges = {key: GaugeMetricFamily(f"executor_{key}", help_, labels=labels) for key, help_ in (
            ("queued_tasks", "The approximate number of tasks that are queued for execution"),
            ("active_threads", "The approximate number of threads that are actively executing tasks"),
            ("pool_size_threads", "The current number of threads in the pool"),
            ("pool_core_threads", "The core number of threads for the pool"),
            ("pool_max_threads", "The maximum allowed number of threads in the pool"),
            ("queue_remaining_tasks", "The number of additional elements that this queue can accept"),
        )}
        completed = CounterMetricFamily("executor_completed_tasks",
                                        "The approximate total number of tasks that have completed execution",
                                        labels=labels)
        # the guide's own (section 3.5): RejectionPolicyFactory's counter and two gauges, by a short name
        guide = ["application", "executor"]
        queue = GaugeMetricFamily("executor_queue_size", "Tasks waiting in the executor's queue", labels=guide)
        pool = GaugeMetricFamily("executor_pool_size", "Threads in the executor's pool", labels=guide)
        rejected = CounterMetricFamily("executor_rejected", "Tasks rejected by the RejectedExecutionHandler",
                                       labels=guide)
        for name, e in s["executors"].items():
            core, most, capacity = EXECUTORS[name]
            values = {"queued_tasks": e["queued"], "active_threads": e["active"], "pool_size_threads": e["pool_size"],
                      "pool_core_threads": core, "pool_max_threads": most,
                      "queue_remaining_tasks": max(capacity - e["queued"], 0)}
            for key, value in values.items():
                gauges[key].add_metric(app + [name], float(value))
            completed.add_metric(app + [name], n[("completed", name)])
            short = app + [GUIDE_EXECUTOR[name]]
            queue.add_metric(short, float(e["queued"]))
            pool.add_metric(short, float(e["pool_size"]))
            rejected.add_metric(short, n[("rejected", name)])
        yield from (*gauges.values(), completed, queue, pool, rejected)

        http = HistogramMetricFamily("http_server_requests_seconds", "Duration of HTTP server request handling",
                                     labels=["application", "error", "exception", "method", "outcome", "status",
                                             "uri"])
        requests = n[("http",)]
        http.add_metric(app + ["none", "none", "GET", "SUCCESS", "200", HTTP_URI],
                        [(le, requests * share) for le, share in HTTP_BUCKETS] + [("+Inf", requests)],
                        sum_value=requests * 0.08)
        yield http


def serve(app: App, host: str, port: int) -> ThreadingHTTPServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(app)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/control":
                with app.lock:
                    self._send(200, json.dumps(app.state).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:  # noqa: N802
            try:
                if self.path == "/control/reset":
                    state = app.reset()
                elif self.path == "/control":
                    length = int(self.headers.get("Content-Length", 0))
                    state = app.patch(json.loads(self.rfile.read(length) or b"{}"))
                else:
                    self._send(404, b'{"error": "not found"}')
                    return
            except ValueError as exc:
                self._send(400, json.dumps({"error": str(exc)}).encode())
                return
            self._send(200, json.dumps(state).encode())

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep scrapes out of the log
            if not self.path.startswith("/metrics"):
                super().log_message(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (written to --port-file)")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    app = App()
    server = serve(app, args.host, args.port)
    threading.Thread(target=app.tick_forever, daemon=True).start()
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    os.replace(tmp, args.port_file)  # appears whole, only once the port is listening
    server.serve_forever()


if __name__ == "__main__":
    main()
