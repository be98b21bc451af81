"""Table Order as the python profile sees it: FastAPI, prometheus-fastapi-instrumentator, prometheus_client.

Table Order's shape (specs/table-order.yaml, seed 004): an order API, readiness
and liveness checks, an SQLAlchemy-style connection pool and an SSE stream of
order updates. HTTP metrics are the instrumentator's own
(``Instrumentator().instrument(app, latency_lowr_buckets=…).expose(app)``);
everything else is declared with prometheus_client the way the spec assumes a
team would, failure counters included (they have no series until the first
failure, as prometheus_client does for counters with labels).

    python tests/e2e/pyapp.py --port N [--buckets 0.1,0.25,0.5,1,2,4]

``--buckets`` sets ``latency_lowr_buckets`` (the spec assumes 0.1 … 4 s); without
it the instrumentator's default 0.1, 0.5, 1 s applies.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from prometheus_fastapi_instrumentator import Instrumentator

ORDERS = Counter("orders_created", "Orders created (business.orders_created)")
POOL_OUT = Gauge("db_pool_checked_out_connections", "Connections checked out of the pool", ["pool"])
POOL_IN = Gauge("db_pool_checked_in_connections", "Idle connections in the pool", ["pool"])
POOL_TIMEOUTS = Counter("db_pool_checkout_timeouts", "Checkouts that timed out (pool_timeout)", ["pool"])
HEALTH = Gauge("health_check_status", "1 when the check passes, 0 when it fails", ["check"])
SSE_ACTIVE = Gauge("sse_connections_active", "Open SSE connections", ["stream", "store_id"])
SSE_OPENED = Counter("sse_connections_opened", "SSE connections opened", ["stream"])
SSE_SENT = Counter("sse_messages_sent", "SSE messages sent", ["stream"])
SSE_FAILURES = Counter("sse_send_failures", "SSE messages that could not be sent", ["stream"])


def create(buckets: tuple[float, ...] | None) -> FastAPI:
    app = FastAPI(title="table-order")
    options = {"latency_lowr_buckets": buckets} if buckets else {}
    Instrumentator().instrument(app, **options).expose(app, include_in_schema=False)
    POOL_OUT.labels(pool="main").set(1)
    POOL_IN.labels(pool="main").set(4)

    @app.get("/api/v1/menu")
    async def menu() -> dict:
        return {"items": ["bibimbap", "tteokbokki"]}

    @app.post("/api/v1/orders")
    async def order() -> dict:
        ORDERS.inc()
        SSE_SENT.labels(stream="orders").inc(2)  # the tablet and the kitchen screen hear of it
        return {"status": "created"}

    @app.get("/api/v1/stores/{store_id}/stream")
    async def stream(store_id: str) -> dict:
        """Opens (and here, at once, keeps) one SSE subscription of the store's screens."""
        SSE_OPENED.labels(stream="orders").inc()
        SSE_ACTIVE.labels(stream="orders", store_id=store_id).inc()
        return {"subscribed": store_id}

    @app.get("/health/ready")
    async def ready() -> dict:
        HEALTH.labels(check="database").set(1)
        return {"status": "ready"}

    @app.get("/health/live")
    async def live() -> dict:
        HEALTH.labels(check="liveness").set(1)
        return {"status": "alive"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--buckets", help="latency_lowr_buckets, comma-separated seconds")
    args = parser.parse_args()
    buckets = tuple(float(b) for b in args.buckets.split(",")) if args.buckets else None
    uvicorn.run(create(buckets), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
