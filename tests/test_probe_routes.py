"""`service.probe_routes`: health probes are not traffic. On promtool, with three pods probing a readiness route that
answers 503 (and guests away): the SLO counts no request and spends no budget, and HttpErrorRateHigh stays silent;
the same rules without `probe_routes` count the probes, so the checks can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import build_into, promtool
from obsgen.spec import parse

pytestmark = pytest.mark.promtool

SPEC = """\
apiVersion: obsgen/v1
service: {name: shop, team: web, profile: python%s}
http:
  - name: api
    min_request_rate: 0.2
slos:
  - name: availability
    objective: 0.99
"""
PROBES = ", probe_routes: [/health/ready, /health/live]"


def probes(status: str = "5xx") -> list[dict]:
    """Three pods, /health/ready every 5s answering ``status`` and /health/live every 10s: 0.9 requests/s, 15s
    samples for 20 minutes."""
    out = []
    for pod in (1, 2, 3):
        out.append({"series": f'http_requests_total{{job="shop", instance="pod-{pod}", handler="/health/ready", '
                              f'status="{status}", method="GET"}}', "values": "0+3x80"})
        out.append({"series": f'http_requests_total{{job="shop", instance="pod-{pod}", handler="/health/live", '
                              'status="2xx", method="GET"}', "values": "0+1.5x80"})
    return out


def holds(tmp_path: Path, spec_text: str, rule_file: str, expr: str, samples: list[dict]) -> bool:
    """Whether ``expr`` evaluates to ``samples`` at 15m over the probes alone, on the rules obsgen builds."""
    build_into(tmp_path, parse(spec_text, "shop.yaml"))
    prom = tmp_path / "shop" / "prometheus"
    (prom / "probe.test.yaml").write_text(yaml.safe_dump({
        "rule_files": [rule_file], "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": probes(),
                   "promql_expr_test": [{"expr": expr, "eval_time": "15m", "exp_samples": samples}]}]}))
    return promtool("test", "rules", "probe.test.yaml", cwd=prom).returncode == 0


SLO_REQUESTS = 'count(slo:sli_requests:rate5m{slo="availability"} > 0.8)'


def test_slo_counts_no_probe_request(tmp_path):
    """No request at all (no sample): the burn-rate guards have nothing to count. Counted, the probes are 0.9/s."""
    assert holds(tmp_path / "probes", SPEC % PROBES, "slo.yaml", SLO_REQUESTS, [])
    assert holds(tmp_path / "counted", SPEC % "", "slo.yaml", SLO_REQUESTS, [{"labels": "{}", "value": 1}])


HTTP_FIRING = 'count(ALERTS{alertname="HttpErrorRateHigh", alertstate="firing"})'


def test_failing_probes_alone_do_not_page_http_error_rate(tmp_path):
    assert holds(tmp_path / "probes", SPEC % PROBES, "rules.yaml", HTTP_FIRING, [])
    assert holds(tmp_path / "counted", SPEC % "", "rules.yaml", HTTP_FIRING, [{"labels": "{}", "value": 1}])


def scrapes(handler: str) -> list[dict]:
    """Three pods each asked once every 15s on ``handler`` (0.2 requests/s in all, exactly `min_request_rate`), every
    answer taking between 0.5s and 1s (prometheus-fastapi-instrumentator's buckets), for 20 minutes."""
    out = []
    for pod in (1, 2, 3):
        labels = f'job="shop", instance="pod-{pod}", handler="{handler}", method="GET"'
        out.append({"series": f'http_requests_total{{{labels}, status="2xx"}}', "values": "0+1x80"})
        for le, step in (("0.1", 0), ("0.5", 0), ("1.0", 1), ("+Inf", 1)):
            out.append({"series": f'http_request_duration_seconds_bucket{{{labels}, le="{le}"}}',
                        "values": f"0+{step}x80"})
    return out


LATENCY_FIRING = 'count(ALERTS{alertname="HttpLatencyHigh", alertstate="firing"})'


@pytest.mark.parametrize("handler, fires", [("/metrics", False), ("/api/v1/report", True)])
def test_slow_metrics_scrapes_are_not_judged_as_a_route_users_call(tmp_path, handler, fires):
    """Prometheus scraping three pods every 15s is 0.2 requests/s on /metrics, which the instrumentator counts and
    times: judged as a route it would meet the 0.2 req/s guard and page on a slow scrape. The same requests on a
    route users call fire HttpLatencyHigh (p99 above 500ms), so the check can fail."""
    build_into(tmp_path, parse(SPEC % "", "shop.yaml"))
    prom = tmp_path / "shop" / "prometheus"
    (prom / "scrape.test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"], "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": scrapes(handler),
                   "promql_expr_test": [{"expr": LATENCY_FIRING, "eval_time": "19m",
                                         "exp_samples": [{"labels": "{}", "value": 1}] if fires else []}]}]}))
    result = promtool("test", "rules", "scrape.test.yaml", cwd=prom)
    assert result.returncode == 0, result.stdout
