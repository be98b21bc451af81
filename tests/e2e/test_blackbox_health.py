"""The audit service's detailed health check, watched through a real blackbox exporter.

Seed 001:137: the detailed check answered 500 Internal Server Error while the basic one passed, and nothing
noticed: a crashing handler sets no gauge, and one probe every 30s never reaches an error-rate alert's traffic
guard. specs/audit-service.yaml watches the check through the blackbox exporter's ``probe_success``. Here the
real exporter (Debian ``prometheus-blackbox-exporter``, ``http_2xx`` module) probes the reference app's
``/health/detailed`` (tests/e2e/pyapp.py), a real Prometheus scrapes it with the exporter's documented
relabelling and evaluates the rules ``obsgen build --time-scale`` makes of that spec (its health checks only,
the probe target pointed at the app). The check's handler is made to crash, then to answer again; what fires
and when comes from Prometheus, never from the generator.

Cheap on purpose (it runs in CI on 2 cores): one app, one exporter, one Prometheus, about 20 seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, tool

from .harness import Prometheus, Proc, free_port, http, start_prometheus, wait_until

pytestmark = [pytest.mark.e2e]

SCALE = 30                  # 1m30s (3 probes every 30s) becomes 3s
SPEC = ROOT / "specs" / "audit-service.yaml"
SERVICE = JOB = "audit-service"
CHECK = "detailed"
SLACK_S = 4.0               # a 1s scrape, a 1s evaluation, and the exporter's answer


def _spec(root: Path, target: str) -> tuple[Path, float]:
    """The committed spec's service and its detailed check, probing ``target``; and the check's `for` (seconds,
    scaled) as the spec sets it: failure_threshold × interval."""
    data = yaml.safe_load(SPEC.read_text())
    (check,) = [c for c in data["health_checks"] if c["name"] == CHECK]
    assert "probe" in check, "the audit service's detailed check is no longer probed"
    check["probe"]["target"] = target
    spec = {"apiVersion": data["apiVersion"], "service": data["service"], "health_checks": [check]}
    path = root / "audit-e2e.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    interval = float(check["interval"].rstrip("s"))
    return path, max(interval * check["failure_threshold"], 60) / SCALE


def _rules(spec: Path, out: Path) -> list[str]:
    """The real CLI's time-scaled build, checked by promtool."""
    built = subprocess.run([sys.executable, "-m", "obsgen", "build", str(spec), "--time-scale", str(SCALE),
                            "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    files = [str(out / SERVICE / "prometheus" / "rules.yaml")]
    checked = subprocess.run([tool("promtool"), "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return files


def _blackbox(root: Path) -> Proc:
    workdir = root / "blackbox"
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"modules": {"http_2xx": {"prober": "http", "timeout": "2s"}}}
    (workdir / "blackbox.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    return Proc("blackbox", [tool("prometheus-blackbox-exporter"), f"--config.file={workdir / 'blackbox.yml'}",
                             f"--web.listen-address=127.0.0.1:{port}"], workdir, port).start()


def _prometheus(root: Path, rule_files: list[str], target: str, exporter: str, app: str) -> tuple[Proc, Prometheus]:
    """Prometheus with the blackbox exporter's documented scrape config: the target in ``__param_target`` and
    ``instance``, the exporter's own address scraped."""
    probe = {"job_name": "blackbox", "metrics_path": "/probe", "params": {"module": ["http_2xx"]},
             "static_configs": [{"targets": [target]}],
             "relabel_configs": [
                 {"source_labels": ["__address__"], "target_label": "__param_target"},
                 {"source_labels": ["__param_target"], "target_label": "instance"},
                 {"target_label": "__address__", "replacement": exporter}]}
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
              "rule_files": rule_files,
              "scrape_configs": [probe, {"job_name": JOB, "static_configs": [{"targets": [app]}]}]}
    return start_prometheus(root / "prometheus", config)


def _failing(prom: Prometheus, target: str) -> list[dict]:
    """HealthCheckFailing alerts (pending or firing) of the detailed check on the probed URL."""
    return [a for a in prom.alerts() if a["labels"].get("alertname") == "HealthCheckFailing"
            and a["labels"].get("check") == CHECK and a["labels"].get("instance") == target]


def _silent(prom: Prometheus) -> list[dict]:
    """HealthCheckSilent alerts (pending or firing) of the detailed check."""
    return [a for a in prom.alerts() if a["labels"].get("alertname") == "HealthCheckSilent"
            and a["labels"].get("check") == CHECK]


def _answer(prom: Prometheus, target: str) -> tuple[float, float] | None:
    """The probe's latest (probe_success, probe_http_status_code) for the target."""
    success = prom.query(f'probe_success{{job="blackbox", instance="{target}"}}')
    status = prom.query(f'probe_http_status_code{{job="blackbox", instance="{target}"}}')
    if not success or not status:
        return None
    return float(success[0]["value"][1]), float(status[0]["value"][1])


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> dict:
    """Healthy for twice the check's `for`, then the handler crashes until the alert fires, then it answers again.
    Returns what Prometheus showed at each step."""
    root = tmp_path_factory.mktemp("blackbox-health")
    for binary in ("prometheus", "promtool", "prometheus-blackbox-exporter"):
        tool(binary)  # a missing server fails the test, never skips it
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    target = f"{app_url}/health/detailed"
    spec, for_s = _spec(root, target)
    procs = [Proc("pyapp", [sys.executable, str(Path(__file__).with_name("pyapp.py")), "--port", str(port)],
                  root / "pyapp", port).start()]
    try:
        rule_files = _rules(spec, root / "obsgen")
        exporter = _blackbox(root)
        procs.append(exporter)
        prometheus, prom = _prometheus(root, rule_files, target, f"127.0.0.1:{exporter.port}", f"127.0.0.1:{port}")
        procs.append(prometheus)
        wait_until(lambda: http(f"{app_url}/health"), 20, "the app's /health", procs[0])
        wait_until(lambda: http(f"http://127.0.0.1:{exporter.port}/-/healthy"), 20, "the blackbox exporter", exporter)
        seen: dict = {"for_s": for_s}
        seen["healthy_answer"] = wait_until(lambda: _answer(prom, target), 30, "a first probe", *procs)
        healthy_until = time.monotonic() + 2 * for_s + SLACK_S
        seen["healthy_alerts"] = []
        while time.monotonic() < healthy_until:
            seen["healthy_alerts"] += _failing(prom, target)
            time.sleep(0.5)

        http(f"{app_url}/control/health/{CHECK}?crash=1", data=b"")
        crashed = time.monotonic()
        seen["fired"] = wait_until(lambda: [a for a in _failing(prom, target) if a["state"] == "firing"],
                                   for_s + SLACK_S + 2, "HealthCheckFailing to fire", *procs)
        seen["fired_after_s"] = time.monotonic() - crashed
        seen["failing_answer"] = _answer(prom, target)

        http(f"{app_url}/control/health/{CHECK}?crash=0", data=b"")
        answered = time.monotonic()
        wait_until(lambda: not _failing(prom, target), 3 * SLACK_S, "HealthCheckFailing to resolve", *procs)
        seen["resolved_after_s"] = time.monotonic() - answered
        seen["recovered_answer"] = _answer(prom, target)

        exporter.stop()  # the probe's job loses its exporter: nothing watches the check any more
        stopped = time.monotonic()
        seen["silent"] = wait_until(lambda: [a for a in _silent(prom) if a["state"] == "firing"],
                                    2 * for_s + 2 * SLACK_S, "HealthCheckSilent to fire",
                                    *[p for p in procs if p is not exporter])
        seen["silent_after_s"] = time.monotonic() - stopped
        return seen
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_a_detailed_check_answering_200_stays_silent(story):
    assert story["healthy_answer"] == (1.0, 200.0)
    assert story["healthy_alerts"] == []


def test_a_detailed_check_whose_handler_crashes_answers_500_and_fires_within_its_detection_time(story):
    assert story["failing_answer"] == (0.0, 500.0)
    (alert,) = story["fired"]
    assert alert["labels"]["service"] == SERVICE and alert["labels"]["severity"] == "critical"
    # not before the check's `for` (3 failed probes), and within it plus a scrape, an evaluation and the probe
    assert story["for_s"] - 1 <= story["fired_after_s"] <= story["for_s"] + SLACK_S, story["fired_after_s"]


def test_the_alert_resolves_once_the_check_answers_200_again(story):
    assert story["recovered_answer"] == (1.0, 200.0)
    assert story["resolved_after_s"] <= 3 * SLACK_S


def test_a_probe_that_disappears_fires_health_check_silent_after_twice_the_detection_time(story):
    """The spec sets silence_is_failure on the probed check: the exporter gone, the check is unwatched and pages
    (its `for` is twice the detection time), rather than leaving the detailed check blind unnoticed."""
    (alert,) = story["silent"]
    assert alert["labels"]["service"] == SERVICE and alert["labels"]["instance"].endswith("/health/detailed")
    assert 2 * story["for_s"] - 1 <= story["silent_after_s"] <= 2 * story["for_s"] + 2 * SLACK_S, story["silent_after_s"]
