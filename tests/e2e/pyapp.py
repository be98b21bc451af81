"""A Table-Order-like FastAPI service instrumented with the real prometheus-fastapi-instrumentator.

What the python profile (and specs/table-order.yaml) assumes: the instrumentator's
defaults, ``http_requests_total{handler, method, status}`` with status grouped to
``2xx``..``5xx`` and ``http_request_duration_seconds{handler, method}``, with the
buckets Table Order sets (0.1 … 4 s) and ``/metrics`` itself excluded. The test
chooses each answer: ``?fail=1`` answers 500, ``?delay=S`` answers after S seconds.

Its health endpoints are probed from outside (the blackbox exporter), so the test
switches them for every caller: ``POST /control/health/detailed?crash=1`` makes the
detailed check's handler raise (500 Internal Server Error, as the audit service's
did, seed 001:137), ``?crash=0`` lets it answer 200 again. ``/health`` always answers.

    python tests/e2e/pyapp.py --port PORT
"""

from __future__ import annotations

import argparse
import asyncio

BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4)


def create_app():
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from prometheus_fastapi_instrumentator import Instrumentator

    app = FastAPI()

    async def answer(route: str, fail: int, delay: float):
        if delay:
            await asyncio.sleep(delay)
        if fail:
            return JSONResponse({"route": route, "error": "injected"}, status_code=500)
        return {"route": route}

    @app.get("/api/v1/menu")
    async def menu(fail: int = 0, delay: float = 0.0):
        return await answer("menu", fail, delay)

    @app.get("/api/v1/orders")
    async def orders(fail: int = 0, delay: float = 0.0):
        return await answer("orders", fail, delay)

    crashing: set[str] = set()  # the health checks whose handler raises

    @app.get("/health")
    async def health():
        return {"status": "healthy"}

    @app.get("/health/detailed")
    async def detailed():
        if "detailed" in crashing:
            raise RuntimeError("detailed health check crashed")  # Starlette answers 500 Internal Server Error
        return {"status": "healthy", "checks": {"database": "connected"}}

    @app.post("/control/health/{check}")
    async def control(check: str, crash: int):
        (crashing.add if crash else crashing.discard)(check)
        return {"crashing": sorted(crashing)}

    Instrumentator(excluded_handlers=["/metrics"]).instrument(app, latency_lowr_buckets=BUCKETS).expose(app)
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
