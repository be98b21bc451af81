"""Re-record the exposition texts of tests/init/texts/ that come from real libraries and servers.

    PYTHONPATH=tests .venv/bin/python -m tests.init.record

Starts, on 127.0.0.1 with free ports: the e2e reference app (tests/e2e/refapp.py, prometheus_client; saved as
docs/examples/maple-app.prom, which the README's tour reads too), the tests' Python service
(tests/init/pyservice.py), the Table Order FastAPI service (tests/e2e/tableorder.py:
prometheus-fastapi-instrumentator + prometheus_client), and Redis master + replica + three sentinels read through the Debian redis_exporter, as the e2e harness
starts them. Each text is saved with a header comment saying where it came from; the Micrometer texts that no
library here can produce (Spring Boot 2/3, HikariCP, bulkheads) are written by hand from
/work/shared/reference/metrics.md and say so in their own headers.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.harness import (Proc, free_port, http, redis_call, redis_exporter, redis_sentinel, redis_server,
                               replica_ok, sentinel_replicas, wait_until)

HERE = Path(__file__).with_name("texts")
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"  # the README's tour reads the reference app's
E2E = Path(__file__).resolve().parents[1] / "e2e"


def version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split("\n")[0].strip()


def save(name: str, header: str, text: str, where: Path = HERE) -> None:
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.strip().splitlines())
    (where / name).write_text(lines + text)
    print(f"wrote {where / name}")


def main() -> None:
    from importlib.metadata import version as pkg

    root = Path(tempfile.mkdtemp(prefix="obsgen-record-"))
    procs: list[Proc] = []
    try:
        port_file = root / "refapp.port"
        procs.append(Proc("refapp", [sys.executable, str(E2E / "refapp.py"), "--port-file", str(port_file)],
                          root / "refapp").start())
        wait_until(port_file.exists, 20, "the reference app", *procs)
        save("maple-app.prom", f"""
Recorded from the e2e reference app (tests/e2e/refapp.py, prometheus_client {pkg('prometheus-client')}):
MapleExpectation's Spring Boot 3 exposition (micrometer-registry-prometheus names, `application` common tag,
`cache_manager`, the `error` label on http_server_requests) plus the guide's own counters.
Re-record: PYTHONPATH=tests .venv/bin/python -m tests.init.record""", http(f"http://127.0.0.1:{port_file.read_text()}/metrics").decode(),
             EXAMPLES)

        port = free_port()
        procs.append(Proc("tableorder", [sys.executable, str(E2E / "tableorder.py"), "--port", str(port),
                                         "--buckets", "0.1,0.25,0.5,1,2,4"], root / "tableorder", port).start())
        wait_until(lambda: http(f"http://127.0.0.1:{port}/metrics"), 20, "Table Order", *procs)
        for path in ("/api/v1/menu", "/health/ready", "/health/live", "/api/v1/stores/s1/stream"):
            http(f"http://127.0.0.1:{port}{path}")
        http(f"http://127.0.0.1:{port}/api/v1/orders", b"")
        save("python-tableorder.prom", f"""
Recorded from a real FastAPI service (tests/e2e/tableorder.py): fastapi {pkg('fastapi')},
prometheus-fastapi-instrumentator {pkg('prometheus-fastapi-instrumentator')} (latency_lowr_buckets 0.1 … 4),
prometheus_client {pkg('prometheus-client')} app gauges and counters, after one request to each route.
Re-record: PYTHONPATH=tests .venv/bin/python -m tests.init.record""", http(f"http://127.0.0.1:{port}/metrics").decode())

        port = free_port()
        procs.append(Proc("pyservice", [sys.executable, str(Path(__file__).with_name("pyservice.py")), "--port",
                                        str(port)], root / "pyservice", port).start())
        wait_until(lambda: http(f"http://127.0.0.1:{port}/metrics"), 20, "the Python service", *procs)
        save("python-fresh.prom", f"""
Recorded from the same real FastAPI service (tests/init/pyservice.py) just started, before any request: its
labelled prometheus_client counters and the instrumentator's families are declared (# TYPE) with no sample.
Re-record: PYTHONPATH=tests .venv/bin/python -m tests.init.record""", http(f"http://127.0.0.1:{port}/metrics").decode())
        for item in ("hot-1", "cold-2"):
            http(f"http://127.0.0.1:{port}/api/v1/items/{item}")
        save("python-service.prom", f"""
Recorded from a real FastAPI service (tests/init/pyservice.py): fastapi {pkg('fastapi')},
prometheus-fastapi-instrumentator {pkg('prometheus-fastapi-instrumentator')} (latency_lowr_buckets 0.05 … 1),
prometheus_client {pkg('prometheus-client')} counters and gauges in the python profile's names, after two requests.
Re-record: PYTHONPATH=tests .venv/bin/python -m tests.init.record""", http(f"http://127.0.0.1:{port}/metrics").decode())

        master = redis_server("master", root).start()
        procs.append(master)
        wait_until(lambda: redis_call(master.port, "PING") == "PONG", 10, "master", master)
        replica = redis_server("replica", root, master.port).start()
        procs.append(replica)
        sentinels = [redis_sentinel(f"sentinel-{i}", root, master.port, quorum=2, port=free_port()).start()
                     for i in range(3)]
        procs += sentinels
        exporter = redis_exporter("exporter", root).start()
        procs.append(exporter)
        for s in sentinels:
            wait_until(lambda s=s: len(redis_call(s.port, "SENTINEL", "sentinels", "mymaster")) == 2
                       and [r for r in sentinel_replicas(s.port) if replica_ok(r)], 30, "sentinels", *procs)
        wait_until(lambda: http(f"http://127.0.0.1:{exporter.port}/metrics"), 10, "exporter", exporter)
        exporter_version = version("prometheus-redis-exporter")
        for name, proc in (("master", master), ("replica", replica), ("sentinel", sentinels[0])):
            text = http(f"http://127.0.0.1:{exporter.port}/scrape?target=redis://127.0.0.1:{proc.port}").decode()
            save(f"redis-sentinel-{name}.prom", f"""
Recorded from the Debian redis_exporter ({exporter_version}) scraping a real {version('redis-server')}
{name} (master + one replica + three sentinels, quorum 2, master name mymaster) through /scrape?target=.
Re-record: PYTHONPATH=tests .venv/bin/python -m tests.init.record""", text)
    finally:
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    main()
