"""A Python service as the python profile names it: FastAPI + prometheus-fastapi-instrumentator for HTTP,
prometheus_client counters and gauges for its caches, circuit breaker, retries and a bulkhead.

Each request to ``/api/v1/items/{item_id}`` looks the item up in a cache, calls a backend through a breaker
with retries, and counts all of it the way a team using prometheus_client would (the names and labels the
python profile of obsgen reads: ``cache_requests_total{cache}``, ``circuit_breaker_state{name}`` as 0/1/2,
``retry_calls_total{name,result}`` …). ``obsgen init`` tests start it and read its real ``/metrics``.

    python tests/init/pyservice.py --port PORT
"""

from __future__ import annotations

import argparse

from prometheus_client import Counter, Gauge

CACHES = ("items", "prices")
HITS = Counter("cache_hits", "Cache lookups answered from the cache", ["cache"])
REQUESTS = Counter("cache_requests", "Cache lookups", ["cache"])
STATE = Gauge("circuit_breaker_state", "0 closed, 1 half-open, 2 open", ["name"])
CALLS = Counter("circuit_breaker_calls", "Calls through the breaker by result", ["name", "result"])
RETRIES = Counter("retry_calls", "Calls through the retry by result", ["name", "result"])
QUEUED = Gauge("backpressure_queue_size", "Requests waiting for a slot", ["name"])
ACTIVE = Gauge("backpressure_active_requests", "Requests holding a slot", ["name"])


def create_app():
    from fastapi import FastAPI
    from prometheus_fastapi_instrumentator import Instrumentator

    app = FastAPI(title="catalog")
    STATE.labels("inventory").set(0)
    for name in ("inventory",):
        QUEUED.labels(name).set(0)
        ACTIVE.labels(name).set(0)

    @app.get("/api/v1/items/{item_id}")
    async def item(item_id: str):
        for cache in CACHES:
            REQUESTS.labels(cache).inc()
            if item_id.startswith("hot"):
                HITS.labels(cache).inc()
        CALLS.labels("inventory", "success").inc()
        RETRIES.labels("inventory", "success").inc()
        return {"item": item_id}

    Instrumentator(excluded_handlers=["/metrics"]).instrument(
        app, latency_lowr_buckets=(0.05, 0.1, 0.25, 0.5, 1)).expose(app, include_in_schema=False)
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
