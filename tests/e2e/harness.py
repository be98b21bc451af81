"""Real servers for the end-to-end tests, and the clients that talk to them.

Every server runs on 127.0.0.1 with a free port and its own directory under the
session's temp dir, is started with ``subprocess.Popen`` and stopped by its PID
(terminate, then kill after a bounded wait). Every wait is bounded in time and
fails with what it waited for and the tail of the servers' logs.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from conftest import ROOT, tool

SCALE = 10              # obsgen build --time-scale: 1m becomes 6s, [5m] becomes [30s]
SCRAPE_S = 1.0          # Prometheus scrape interval
EVAL_S = 1.0            # Prometheus rule evaluation interval
POLL_S = 0.2            # how often the watcher reads /api/v1/alerts
DOWN_AFTER_MS = 3000    # Sentinel down-after-milliseconds
SPEC = Path(__file__).with_name("maple-e2e.yaml")
BINARIES = ("promtool", "prometheus", "prometheus-redis-exporter", "redis-server", "redis-sentinel")
APP_JOB = "maple-e2e"
SERVICE = "maple-e2e"
# A second service of two instances of its own, for the outages (its apps renamed, then stopped)
OUTAGE_SPEC = Path(__file__).with_name("outage-e2e.yaml")
OUTAGE_SERVICE = OUTAGE_JOB = "outage-e2e"
OUTAGE_APPS = ("outage-a", "outage-b")


class Failure(AssertionError):
    """A server or a wait went wrong; the message says what and shows the logs."""


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port outside the kernel's ephemeral range, so that no outgoing connection can take it while
    its server is down (a killed Redis master restarts on its port; a connection to a free port in the
    ephemeral range can even connect to itself)."""
    low, high = _ephemeral_ports()
    ports = range(10000, low) if low > 11000 else range(high + 1, 65536)
    for port in random.sample(ports, 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise Failure(f"no free port found in {ports}")


@dataclass(frozen=True)
class Moment:
    """One instant on both clocks: monotonic for durations, wall clock to compare with Prometheus."""

    mono: float
    wall: float

    @classmethod
    def now(cls) -> Moment:
        return cls(time.monotonic(), time.time())


class Proc:
    """One server process, its log file, and how to stop it by PID."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int | None = None) -> None:
        self.name, self.argv, self.workdir, self.port = name, argv, workdir, port
        self.log = workdir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, *extra: str) -> Proc:
        """Start (or restart) the process; ``extra`` arguments apply to this start only (``--replicaof …``)."""
        argv = self.argv + list(extra)
        with open(self.log, "ab") as log:
            log.write(f"--- start: {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.workdir)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            text = [f"(no log: {exc})"]
        return f"--- {self.name} (pid {self.popen.pid if self.popen else '-'}) {self.log}:\n" + "\n".join(text)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL if it is still there after ``timeout``."""
        if not self.alive():
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)

    def kill9(self, timeout: float = 5.0) -> None:
        """The crash: SIGKILL by PID, then reap it."""
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout)


def wait_until(check: Callable[[], object], timeout: float, what: str, *procs: Proc, interval: float = 0.1):
    """``check()``'s first truthy value; a bounded wait that fails with the servers' log tails."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for proc in procs:
            if proc.popen is not None and not proc.alive():
                raise Failure(f"{proc.name} exited with code {proc.popen.returncode} while waiting for {what}\n"
                              + proc.tail())
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the server may not answer yet; keep the error for the report
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise Failure(f"timed out after {timeout:g}s waiting for {what}{detail}\n"
                          + "\n".join(p.tail() for p in procs))
        time.sleep(interval)


# -- Redis ---------------------------------------------------------------------------------------

class RedisError(Exception):
    pass


def _resp(reader) -> object:
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_resp(reader) for _ in range(size)]
    raise RedisError(f"unexpected reply {line!r}")


def redis_call(port: int, *args: str, timeout: float = 2.0) -> object:
    """One command to a Redis server or sentinel on 127.0.0.1 (RESP2, no client library)."""
    payload = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return _resp(sock.makefile("rb"))


def redis_info(port: int, section: str = "replication") -> dict[str, str]:
    text = redis_call(port, "INFO", section)
    return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)


def sentinel_master(port: int, name: str = "mymaster") -> str:
    host, master_port = redis_call(port, "SENTINEL", "get-master-addr-by-name", name)
    return f"{host}:{master_port}"


def sentinel_replicas(port: int, name: str = "mymaster") -> list[dict[str, str]]:
    return [dict(zip(r[::2], r[1::2])) for r in redis_call(port, "SENTINEL", "replicas", name)]


def replica_ok(replica: dict[str, str]) -> bool:
    """As redis_exporter counts ``ok_slaves``: not subjectively or objectively down."""
    flags = replica.get("flags", "").split(",")
    return "s_down" not in flags and "o_down" not in flags


def redis_server(name: str, root: Path, replica_of: int | None = None) -> Proc:
    port = free_port()
    argv = [tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root / name),
            "--save", "", "--appendonly", "no", "--maxmemory", "64mb", "--daemonize", "no",
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
    if replica_of:
        argv += ["--replicaof", "127.0.0.1", str(replica_of)]
    return Proc(name, argv, root / name, port)


def redis_sentinel(name: str, root: Path, master_port: int, quorum: int, port: int) -> Proc:
    workdir = root / name
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "sentinel.conf"  # fresh per session: Sentinel rewrites its config
    config.write_text(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
                      f"sentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\n"
                      f"sentinel down-after-milliseconds mymaster {DOWN_AFTER_MS}\n"
                      "sentinel failover-timeout mymaster 10000\nsentinel parallel-syncs mymaster 1\n")
    return Proc(name, [tool("redis-sentinel"), str(config)], workdir, port)


def redis_exporter(name: str, root: Path, target: str = "") -> Proc:
    """A redis_exporter: multi-target (``target`` empty: every server through ``/scrape?target=``), or a sidecar
    exporting the one server at ``target``."""
    port = free_port()
    return Proc(name, [tool("prometheus-redis-exporter"), f"-redis.addr={target}",
                       f"-web.listen-address=127.0.0.1:{port}"], root / name, port)


def redis_url(proc: Proc) -> str:
    return f"redis://127.0.0.1:{proc.port}"


# -- HTTP ----------------------------------------------------------------------------------------

def http(url: str, data: bytes | None = None, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params, doseq=True)
        body = json.loads(http(f"{self.url}{path}" + (f"?{query}" if query else "")))
        if body.get("status") != "success":
            raise Failure(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        return self.api("/api/v1/query", query=expr, **({"time": f"{at:.3f}"} if at else {}))["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        return self.api("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)["result"]

    def alerts(self) -> list[dict]:
        return self.api("/api/v1/alerts")["alerts"]


def parse_time(text: str) -> float:
    """Prometheus' RFC 3339 timestamps (nanoseconds, Z) as Unix seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class Snapshot:
    at: float                 # monotonic time the response came back
    alerts: tuple[dict, ...]


def matches(alert: dict, labels: dict[str, str]) -> bool:
    return all(alert["labels"].get(k) == v for k, v in labels.items())


class AlertWatcher:
    """Reads /api/v1/alerts every :data:`POLL_S` and keeps every answer, so scenarios can ask about the past."""

    def __init__(self, prom: Prometheus) -> None:
        self.prom = prom
        self.snapshots: list[Snapshot] = []
        self.cond = threading.Condition()
        self.stopped = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="alert-watcher", daemon=True)

    def start(self) -> AlertWatcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                alerts = tuple(self.prom.alerts())
            except Exception as exc:  # noqa: BLE001 - reported by whoever waits next
                with self.cond:
                    self.error = exc
                    self.cond.notify_all()
            else:
                with self.cond:
                    self.snapshots.append(Snapshot(time.monotonic(), alerts))
                    self.cond.notify_all()
            self.stopped.wait(POLL_S)

    def _since(self, since: float) -> int:
        return bisect.bisect_left([s.at for s in self.snapshots], since)

    def first(self, labels: dict[str, str], since: float, timeout: float, state: str | None = "firing",
              absent: bool = False) -> tuple[float, dict | None]:
        """The first snapshot at or after ``since`` where an alert with ``labels`` is in ``state``
        (any state if None), or, with ``absent``, where no such alert is active; waits up to ``timeout``."""
        deadline = since + timeout
        with self.cond:
            index = self._since(since)
            while True:
                for snap in self.snapshots[index:]:
                    found = [a for a in snap.alerts if matches(a, labels) and (state is None or a["state"] == state)]
                    if absent and not [a for a in snap.alerts if matches(a, labels)]:
                        return snap.at, None
                    if found and not absent:
                        return snap.at, found[0]
                index = len(self.snapshots)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"{'no longer active' if absent else state or 'active'}: {labels} not seen within "
                                  f"{timeout:.1f}s; active alerts now: {self.describe(self.latest())}"
                                  + (f"; watcher error: {self.error}" if self.error else ""))
                self.cond.wait(min(left, 1.0))

    def seen(self, labels: dict[str, str], since: float, until: float) -> list[tuple[float, dict]]:
        """Every (time, alert) with ``labels`` that was pending or firing between ``since`` and ``until``."""
        with self.cond:
            return [(s.at, a) for s in self.snapshots[self._since(since):] if s.at <= until
                    for a in s.alerts if matches(a, labels)]

    def latest(self) -> tuple[dict, ...]:
        with self.cond:
            return self.snapshots[-1].alerts if self.snapshots else ()

    @staticmethod
    def describe(alerts) -> str:
        if not alerts:
            return "none"
        return "; ".join(f"{a['labels'].get('alertname')}[{a['state']}]"
                         + str({k: v for k, v in a["labels"].items() if k in ("instance", "name", "cache", "tier",
                                                                             "master_name", "job")})
                         for a in alerts)


# -- The reference app ---------------------------------------------------------------------------

class App:
    """One instance of tests/e2e/refapp.py and its control endpoint."""

    def __init__(self, name: str, root: Path) -> None:
        self.port_file = root / name / "port"
        self.proc = Proc(name, [sys.executable, str(Path(__file__).with_name("refapp.py")),
                                "--port-file", str(self.port_file)], root / name)
        self.port = 0

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc.start()

    def ready(self) -> None:
        self.port = int(wait_until(lambda: self.port_file.read_text().strip(), 15,
                                   f"{self.proc.name} to write its port", self.proc))
        self.proc.port = self.port
        wait_until(lambda: b"cache_gets_total" in http(f"http://{self.instance}/metrics"), 10,
                   f"{self.proc.name} to serve /metrics", self.proc)

    def set(self, patch: dict) -> Moment:
        """Apply a state patch; returns the moment it took effect (the fault time)."""
        http(f"http://{self.instance}/control", json.dumps(patch).encode())
        return Moment.now()

    def reset(self) -> Moment:
        http(f"http://{self.instance}/control/reset", b"")
        return Moment.now()


# -- The whole stack -----------------------------------------------------------------------------

@dataclass
class Stack:
    """Redis (Sentinel set and a plain master/replica pair), redis_exporters, apps, Prometheus."""

    root: Path
    app_states: dict[str, dict]  # app instance name: the state patch it starts in (before the first scrape)
    procs: list[Proc] = field(default_factory=list)
    apps: dict[str, App] = field(default_factory=dict)
    outage_apps: dict[str, App] = field(default_factory=dict)
    redis: dict[str, Proc] = field(default_factory=dict)
    sentinels: list[Proc] = field(default_factory=list)
    rules_files: list[Path] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    prom: Prometheus | None = None
    watcher: AlertWatcher | None = None
    exporter: Proc | None = None
    sidecars: dict[str, Proc] = field(default_factory=dict)  # sessions server name: its sidecar exporter
    prometheus: Proc | None = None
    started: float = 0.0
    ready_after: float = 0.0

    def _start(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc.start()

    def _spec(self, sentinel_ports: list[int]) -> Path:
        """The e2e spec with the sentinels' addresses of this run (the runbooks ask each of them)."""
        spec = yaml.safe_load(SPEC.read_text())
        main = next(r for r in spec["redis"] if r["name"] == "main")
        main["sentinel_addresses"] = [f"127.0.0.1:{port}" for port in sentinel_ports]
        path = self.root / SPEC.name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    def _build_rules(self, spec: Path) -> subprocess.Popen:
        """``obsgen build --time-scale`` through the real CLI, in the background while servers start."""
        out = self.root / "obsgen"
        self.rules_files = [out / service / "prometheus" / "rules.yaml" for service in (SERVICE, OUTAGE_SERVICE)]
        return subprocess.Popen([sys.executable, "-m", "obsgen", "build", str(spec), str(OUTAGE_SPEC),
                                 "--time-scale", str(SCALE), "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)

    def _check_rules(self, build: subprocess.Popen) -> None:
        try:
            output, _ = build.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            build.kill()
            raise Failure("obsgen build --time-scale did not finish within 120s") from None
        if build.returncode:
            raise Failure(f"obsgen build --time-scale failed:\n{output}")
        checked = subprocess.run([tool("promtool"), "check", "rules", "--lint=all", "--lint-fatal",
                                  *map(str, self.rules_files)], capture_output=True, text=True, timeout=60)
        if checked.returncode:
            raise Failure(f"promtool check rules on the scaled rules failed:\n{checked.stdout}{checked.stderr}")
        self.rules = [r for path in self.rules_files for g in yaml.safe_load(path.read_text())["groups"]
                      for r in g["rules"]]

    @property
    def dashboards(self) -> list[Path]:
        return sorted((self.root / "obsgen" / SERVICE / "dashboards").glob("*.json"))

    def runbook(self, alert: str) -> str:
        return (self.root / "obsgen" / SERVICE / "runbooks" / f"{alert}.md").read_text()

    def server_at(self, port: int) -> Proc:
        """The Redis server (of either deployment) listening on ``port``: roles move, processes do not."""
        return next(p for p in self.redis.values() if p.port == port)

    def start(self) -> None:
        """Everything up, scraped and with the rules loaded; slow steps overlap (the build, Sentinel's
        discovery of its peers, Prometheus' first scrapes)."""
        self.started = time.monotonic()
        for name in BINARIES:  # all of them before anything starts: a missing one fails the run, never skips it
            tool(name)
        sentinel_ports = [free_port() for _ in range(3)]
        build = self._build_rules(self._spec(sentinel_ports))
        try:
            self._start_servers(sentinel_ports)
            self._start_prometheus()  # before the rules exist: its first scrapes take ~6s whatever we do
        except BaseException:
            build.kill()
            build.wait(10)
            raise
        self._check_rules(build)
        wait_until(lambda: http(f"{self.prom.url}/-/ready"), 30, "Prometheus to be ready", self.prometheus)
        http(f"{self.prom.url}/-/reload", b"")  # synchronous; the rules were checked by promtool first
        for s in self.sentinels:
            wait_until(lambda s=s: len(redis_call(s.port, "SENTINEL", "sentinels", "mymaster")) == 2
                       and [r for r in sentinel_replicas(s.port) if replica_ok(r)], 20,
                       f"{s.name} to see the other two sentinels and the replica", *self.sentinels)
        self._wait_for_prometheus()
        self.ready_after = time.monotonic() - self.started

    def _start_servers(self, sentinel_ports: list[int] | None = None) -> None:
        # Redis: the Sentinel-managed set (component main) and a plain pair (component sessions).
        for prefix in ("main", "sessions"):
            master = self._start(redis_server(f"{prefix}-master", self.root))
            self.redis[f"{prefix}-master"] = master
            self.redis[f"{prefix}-replica"] = self._start(redis_server(f"{prefix}-replica", self.root, master.port))
        for app_name in self.app_states:
            self.apps[app_name] = App(app_name, self.root)
        self.outage_apps = {name: App(name, self.root) for name in OUTAGE_APPS}
        for app in (*self.apps.values(), *self.outage_apps.values()):
            self.procs.append(app.proc)
            app.start()
        # main: one multi-target exporter (-redis.addr= : no default target, every server through
        # /scrape?target=); sessions: a sidecar exporter per server, as one deploys it next to each Redis pod.
        self.exporter = self._start(redis_exporter("redis-exporter", self.root))
        for name in ("sessions-master", "sessions-replica"):
            self.sidecars[name] = self._start(redis_exporter(f"{name}-exporter", self.root, redis_url(self.redis[name])))
        for proc in self.redis.values():
            wait_until(lambda p=proc: redis_call(p.port, "PING") == "PONG", 10, f"{proc.name} to answer PING", proc)
        self.sentinels = [self._start(redis_sentinel(f"sentinel-{i}", self.root, self.redis["main-master"].port,
                                                     quorum=2, port=port))
                          for i, port in enumerate(sentinel_ports or [free_port() for _ in range(3)], 1)]
        for prefix in ("main", "sessions"):
            replica = self.redis[f"{prefix}-replica"]
            wait_until(lambda r=replica: redis_info(r.port).get("master_link_status") == "up", 15,
                       f"{replica.name} to sync", replica, self.redis[f"{prefix}-master"])
        for exporter in (self.exporter, *self.sidecars.values()):
            wait_until(lambda e=exporter: http(f"http://127.0.0.1:{e.port}/metrics"), 10, exporter.name, exporter)
        for name, app in self.apps.items():
            app.ready()
            if self.app_states[name]:
                app.set(self.app_states[name])
        for app in self.outage_apps.values():
            app.ready()

    def redis_jobs(self) -> list[dict]:
        """Scrape configs of the two Redis deployments: main through the exporter's /scrape?target=, sessions
        through one sidecar exporter per server, its `instance` the server's URL (the runbooks reach servers by
        it)."""
        procs = [self.redis["main-master"], self.redis["main-replica"], *self.sentinels]
        multi_target = {"job_name": "redis", "metrics_path": "/scrape",
                        "static_configs": [{"targets": [redis_url(p) for p in procs]}],
                        "relabel_configs": [
                            {"source_labels": ["__address__"], "target_label": "__param_target"},
                            {"source_labels": ["__param_target"], "target_label": "instance"},
                            {"target_label": "__address__", "replacement": f"127.0.0.1:{self.exporter.port}"}]}
        sidecars = {"job_name": "redis-sessions", "static_configs": [
            {"targets": [f"127.0.0.1:{exporter.port}"], "labels": {"instance": redis_url(self.redis[name])}}
            for name, exporter in self.sidecars.items()]}
        return [multi_target, sidecars]

    def _start_prometheus(self) -> None:
        config = {
            "global": {"scrape_interval": f"{SCRAPE_S:g}s", "scrape_timeout": f"{SCRAPE_S:g}s",
                       "evaluation_interval": f"{EVAL_S:g}s"},
            "rule_files": [str(path) for path in self.rules_files],
            "scrape_configs": [
                {"job_name": APP_JOB, "static_configs": [{"targets": [a.instance for a in self.apps.values()]}]},
                {"job_name": OUTAGE_JOB,
                 "static_configs": [{"targets": [a.instance for a in self.outage_apps.values()]}]},
                *self.redis_jobs(),
            ],
        }
        workdir = self.root / "prometheus"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        self.prometheus = self._start(Proc("prometheus", [
            tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle", "--log.level=warn"], workdir, port))
        self.prom = Prometheus(f"http://127.0.0.1:{port}")

    def _wait_for_prometheus(self) -> None:
        proc = self.prometheus
        targets = 2 + 3 + 2 + len(self.apps) + len(self.outage_apps)

        def all_up():
            active = self.prom.api("/api/v1/targets")["activeTargets"]
            return len(active) == targets and all(t["health"] == "up" for t in active)

        wait_until(all_up, 30, f"all {targets} scrape targets to be up", proc)
        groups = self.prom.api("/api/v1/rules")["groups"]
        if sum(len(g["rules"]) for g in groups) != len(self.rules):
            raise Failure(f"Prometheus loaded {sum(len(g['rules']) for g in groups)} rules, the file has "
                          f"{len(self.rules)}\n{proc.tail()}")
        self.watcher = AlertWatcher(self.prom).start()

    def stop(self) -> None:
        if self.watcher:
            self.watcher.stop()
        for proc in reversed(self.procs):
            proc.stop()

    def tails(self) -> str:
        return "\n".join(p.tail(15) for p in self.procs)


def start_prometheus(workdir: Path, config: dict, data: Path | None = None) -> tuple[Proc, Prometheus]:
    """A real Prometheus with ``config``, ready to answer."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = Proc("prometheus", [
        tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={data or workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn"], workdir, port).start()
    prom = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: http(f"{prom.url}/-/ready"), 30, "Prometheus to be ready", proc)
    except BaseException:
        proc.stop()
        raise
    return proc, prom
