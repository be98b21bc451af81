"""Health checks, streams and custom signals: timings from the seeds, traps the generated tests must catch,
and user PromQL that can neither break the rules nor go unproven."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import VALID_SPECS, assert_mutation_caught, build_into, promtool, run_unit_tests
from obsgen.components.base import Alert
from obsgen.errors import SpecError
from obsgen.model.promql import render
from obsgen.pipeline import build
from obsgen.render import dashboards
from obsgen.spec import load

ROOT = Path(__file__).resolve().parent.parent
VALID = ROOT / "tests" / "specs" / "valid"

ANIVAULT = """
apiVersion: obsgen/v1
service: {name: anivault, team: media, profile: python}
health_checks:
  - name: database
    interval: 30s
    timeout: 5s
    failure_threshold: 3
    recovery_threshold: 2
    degraded_mode: {name: cache_only, recovery_check_interval: 60s}
"""


def alerts(spec) -> dict[str, Alert]:
    return {r.name: r for g in build(spec).groups for r in g.rules if isinstance(r, Alert)}


# --------------------------------------------------------------------------- the generated tests catch broken rules

# (spec under tests/specs/valid, pattern, replacement): each breaks one thing the rules are built to get right.
MUTATIONS = {
    "a failing check without its for fires on one failed probe": (
        "health-checks-python", r"(alert: HealthCheckFailing\n(?:.*\n){1,2}?    for: )1m30s", r"\g<1>0s"),
    "a stuck-mode alert without the check condition fires during every outage": (
        "health-checks-python", r"\n *and on \(instance\)\n *min by \(instance\) \(health_check_status[^\n]*", ""),
    "a long-degraded branch without its history guard fires on a new instance": (
        "health-checks-python", r"\n *and\n *max by \(instance, mode\) \(degraded_mode_active\{[^}]*\} offset 27m\)", ""),
    "a long-degraded branch without the failing-check guard calls a long outage a broken recovery": (
        "health-checks-python", r"\n *unless on \(instance\)\n *min by \(instance\) \(health_check_status[^\n]*", ""),
    "a probed check judged on the probe's status code instead of probe_success never fires on a 500": (
        "health-checks-probe", r"probe_success\{", "probe_http_status_code{"),
    "a probe's silence tested with a comparison instead of absent() never fires": (
        "health-checks-probe", r"absent\((probe_success\{[^}]*\})\)", r"\1 == 0"),
    "silence tested with a comparison instead of absent() never fires": (
        "health-checks-python", r"absent\((health_check_status\{[^}]*\})\)", r"\1 == 0"),
    "a degraded-mode alert without its for fires on a blip the app recovers from": (
        "health-checks-python", r"(alert: DegradedModeActive\n(?:.*\n){1,2}?    for: )2m", r"\g<1>0s"),
    "a storm alert without the lifetime line fires on a deployment": (
        "streams", r"\n *>\n *sum by \(instance, stream\) \(sse_connections_active\{[^}]*\}\) / 60", ""),
    "a storm alert without its floor fires on a few flaky clients": (
        "streams", r"\n *and\n *sum by \(instance, stream\) \(rate\(sse_connections_opened_total[^\n]*>= 0.2", ""),
    "a send-failure ratio without the traffic guard fires on an idle stream": (
        "streams", r"\n *and\n *instance_stream:sent:rate15m\{[^}]*\} >= 2", ""),
    "a per-store limit judged per instance loses the store": (
        "streams", r"max by \(instance, stream, store_id\)", "max by (instance, stream)"),
    "a custom comparison turned around": ("custom-signals", r"\) < 5\n", r") > 5\n"),
    "a custom increase read with delta trips on a counter reset": ("custom-signals", r"sum\(increase\(", "sum(delta("),
    "a custom threshold off by ten": ("custom-signals", r"\)\s+> 0.05\n", r") > 0.5\n"),
}


@pytest.mark.promtool
@pytest.mark.parametrize("mutation", sorted(MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_catch_a_broken_rule(mutation, tmp_path):
    name, pattern, replacement = MUTATIONS[mutation]
    assert_mutation_caught(tmp_path, load(VALID / f"{name}.yaml"), pattern, replacement, mutation, keep_syntax=True)


# --------------------------------------------------------------------------- health checks


NAMED_BY_VALUE = """
apiVersion: obsgen/v1
service: {name: shop, team: t, profile: python}
health_checks:
  - {name: db, label: check, value: "primary database", failure_threshold: 3}
"""


@pytest.mark.promtool
def test_a_check_whose_series_name_it_by_its_value_is_expected_to_fire_with_that_value(spec_from, tmp_path):
    """The series say check="primary database", not the component's name: the firing alert carries the value,
    and its generated test must expect it (it expected check="db" and failed on a valid spec)."""
    build_into(tmp_path, spec_from(NAMED_BY_VALUE))
    prom = tmp_path / "shop" / "prometheus"
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout[-3000:]
    expected = {a["exp_labels"].get("check") for f in prom.glob("rules.health_checks.db*.test.yaml")
                for t in yaml.safe_load(f.read_text())["tests"] for c in t["alert_rule_test"]
                if c["alertname"] == "HealthCheckFailing" for a in c["exp_alerts"]}
    assert expected == {"primary database"}


def test_anivault_timings_come_from_interval_and_thresholds(spec_from):
    by_name = alerts(spec_from(ANIVAULT))
    assert str(by_name["HealthCheckFailing"].for_) == "1m30s"  # 3 failed runs × 30s
    assert str(by_name["DegradedModeActive"].for_) == "2m"  # 2 passing runs × 30s + one 60s recovery check
    assert str(by_name["DegradedModeNotRecovering"].for_) == "3m"  # that recovery + 1m of scrape delay
    assert by_name["HealthCheckFailing"].severity == "critical"
    assert "HealthCheckSilent" not in by_name  # a database check reports failure; it is not silent


def test_short_checks_wait_at_least_a_minute(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: t, team: t, profile: python}\n"
                     "health_checks: [{name: readiness, interval: 5s, failure_threshold: 3}]\n")
    assert str(alerts(spec)["HealthCheckFailing"].for_) == "1m"


def test_absent_only_where_silence_is_the_failure():
    spec = load(VALID / "health-checks-python.yaml")
    uses_absent = {(a.name, a.labels["component"]) for g in build(spec).groups for a in g.rules
                   if isinstance(a, Alert) and "absent(" in render(a.expr)}
    assert uses_absent == {("HealthCheckSilent", "liveness"), ("ServiceDown", "health-python")}


def test_stuck_mode_joins_the_mode_with_its_check_per_instance():
    expr = render(alerts(load(VALID / "health-checks-python.yaml"))["DegradedModeNotRecovering"].expr)
    assert 'degraded_mode_active{job="health-python", mode="cache_only"}) == 1\n  and on (instance)' in expr
    assert 'health_check_status{job="health-python", check="database"}) >= 1' in expr
    assert "min_over_time(" in expr and "offset 27m" in expr  # 30m max_duration − 3m for


def test_spring_encoding_fails_below_up():
    by_name = alerts(load(VALID / "health-checks-spring.yaml"))
    assert render(by_name["HealthCheckFailing"].expr).startswith("min by (instance, contributor) (health{")
    assert render(by_name["HealthCheckFailing"].expr).endswith("< 3")


def test_degraded_mode_while_its_check_fails_is_inhibited(spec_from):
    from obsgen.components.health import KIND
    inhibition = KIND.inhibitions[0]
    assert (inhibition.source, inhibition.targets) == ("HealthCheckFailing", ("DegradedModeActive",))
    assert "instance" in inhibition.equal and "component" in inhibition.equal


# --------------------------------------------------------------------------- streams


def test_table_order_limit_is_judged_per_store_at_ninety_percent():
    by_name = alerts(load(VALID / "streams.yaml"))
    near = [a for g in build(load(VALID / "streams.yaml")).groups for a in g.rules
            if isinstance(a, Alert) and a.name == "StreamConnectionsNearLimit"]
    assert [a.labels["component"] for a in near] == ["orders"]  # kitchen has no limit, so no such alert
    assert render(near[0].expr) == ('max by (instance, stream, store_id) (sse_connections_active{job="sse-python", '
                            'stream="orders"}) >= 90')
    assert "> 0.001" in render(by_name["StreamSendFailuresHigh"].expr)


def test_stream_metric_names_follow_prometheus_client_convention_in_both_profiles():
    from obsgen.components.streams import KIND
    python, micrometer = KIND.default_metrics["python"], KIND.default_metrics["micrometer"]
    assert python == micrometer
    assert {s: m.name for s, m in python.items()} == {
        "connections": "sse_connections_active", "opened": "sse_connections_opened_total",
        "sent": "sse_messages_sent_total", "send_failures": "sse_send_failures_total"}


# --------------------------------------------------------------------------- custom signals


CUSTOM = """
apiVersion: obsgen/v1
service: {{name: shop, team: web}}
custom:
  - name: {name}
    description: A signal.
    expr: {expr}
    threshold: 5
{more}"""


def custom(spec_from, expr: str, name: str = "signal", more: str = ""):
    return spec_from(CUSTOM.format(name=name, expr=json.dumps(expr), more=more))


def test_custom_expression_is_reprinted_in_parentheses_with_its_strings_intact_and_comments_dropped(spec_from,
                                                                                                      tmp_path):
    hostile = 'sum(rate(x_total{path="a # b", q="\\"}\\n"}[5m])) # a comment with ) and {{ $value }}'
    spec = custom(spec_from, hostile)
    build_into(tmp_path, spec)
    prom = tmp_path / "shop" / "prometheus"
    (rule,) = [r for g in yaml.safe_load((prom / "rules.yaml").read_text())["groups"] for r in g["rules"]
               if r.get("alert") == "SignalHigh"]
    assert rule["expr"] == '(sum(rate(x_total{path="a # b", q="\\"}\\n"}[5m]))) > 5'

    assert promtool("check", "rules", "rules.yaml", cwd=prom).returncode == 0
    assert run_unit_tests(prom).returncode == 0


@pytest.mark.parametrize("expr, why", [
    ("rate(x[5m]", "not valid PromQL"),
    ("x[5m]", "range vector"),
    ("1 + 1", "scalar"),
    ("x > 5", "`expr` is the signal"),
    ('x{a="1" or b="2"}', "Prometheus 3"),
])
def test_custom_expressions_that_cannot_be_a_signal_are_spec_errors(spec_from, expr, why):
    with pytest.raises(SpecError) as err:
        custom(spec_from, expr)
    assert why in str(err.value)


def test_a_comparison_with_bool_is_a_signal(spec_from):
    with pytest.raises(SpecError) as err:  # accepted as a signal; only its proof is missing
        custom(spec_from, "sum(x > bool 5)")
    assert "is the signal" not in str(err.value) and "add a `tests:` block" in str(err.value)


@pytest.mark.parametrize("expr, derived, kept", [
    ('queue_depth{job="shop"}', "gauge", {"job": "shop"}),
    ('max by (store) (queue_depth{job="shop", store="7"})', "gauge", {"store": "7"}),
    ('sum(rate(orders_total{job="shop"}[5m]))', "counter", {}),
    ('sum without (job) (increase(orders_total{job="shop", store="7"}[1h]))', "counter", {"store": "7"}),
])
def test_simple_expressions_get_derived_proofs(spec_from, expr, derived, kept):
    alert = alerts(custom(spec_from, expr))["SignalHigh"]
    fires = next(s for s in alert.scenarios if s.slug == "fires")
    assert fires.alone and fires.labels == kept and fires.value == 10
    assert {s.slug for s in alert.scenarios} == {"fires", "healthy", "restart" if derived == "counter" else "spike"}


def test_an_expression_obsgen_cannot_read_needs_written_tests(spec_from):
    with pytest.raises(SpecError) as err:
        custom(spec_from, "sum(rate(a_total[5m])) / sum(rate(b_total[5m]))")
    assert "add a `tests:` block" in str(err.value)


def test_written_tests_become_isolated_promtool_cases():
    alert = alerts(load(VALID / "custom-signals.yaml"))["OrderFailuresHigh"]
    assert [(s.slug, s.alone, [c.fires for c in s.checks]) for s in alert.scenarios] == [
        ("one-order-in-ten-fails", True, [True]), ("one-order-in-a-hundred-fails", True, [False])]
    assert alert.scenarios[0].series[0].labels == {"job": "custom-demo"}  # exactly as written, no instance added


def test_custom_alert_names_units_and_descriptions(spec_from):
    by_name = alerts(load(VALID / "custom-signals.yaml"))
    # no ComponentMetricsMissing: a custom signal's absence is the team's own expression's business
    assert set(by_name) == {"OrdersPerHourLow", "PendingOrdersHigh", "OrderFailuresHigh", "ServiceDown",
                            "InstanceDown"}
    assert by_name["OrdersPerHourLow"].description.startswith("Orders created in the last hour")
    assert "{{ $value | humanize }} orders/h, below 5 orders/h, for 30m." in by_name["OrdersPerHourLow"].description
    assert "{{ $value | humanizePercentage }}, above 5%" in by_name["OrderFailuresHigh"].description
    assert by_name["PendingOrdersHigh"].severity == "info"
    assert custom_name("5xx-ratio") == "Custom5xxRatioHigh"


def custom_name(name: str) -> str:
    from obsgen.components.custom import alert_name
    return alert_name({"name": name, "op": ">"})


def test_template_braces_in_custom_text_are_refused(spec_from):
    with pytest.raises(SpecError) as err:
        spec_from(CUSTOM.format(name="s", expr='"x"', more="").replace("A signal.", "Now {{ $value }}."))
    assert "without `{{` or `}}`" in str(err.value)


# --------------------------------------------------------------------------- panels and runbooks


def test_panels_read_the_right_metric_and_draw_the_threshold():
    spec = load(VALID / "streams.yaml")
    d = {json.loads(t)["uid"]: json.loads(t) for t in dashboards.render(build(spec)).values()}["sse-python-streaming"]
    panel = next(p for p in d["panels"] if p["title"] == "orders: open connections")
    steps = [(s["color"], s["value"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [("green", None), ("orange", 90), ("red", 100)]
    assert panel["targets"][0]["expr"].startswith("max by (instance, store_id) (sse_connections_active{")

    spec = load(VALID / "custom-signals.yaml")
    d = {json.loads(t)["uid"]: json.loads(t) for t in dashboards.render(build(spec)).values()}["custom-demo-custom-signals"]
    panel = next(p for p in d["panels"] if p["title"] == "orders-per-hour")
    assert panel["targets"][0]["expr"] == 'sum(increase(orders_created_total{job="custom-demo"}[1h]))'
    assert panel["fieldConfig"]["defaults"]["unit"] == "suffix:orders/h"
    assert [s["color"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]] == ["red", "green"]


@pytest.mark.parametrize("path", [p for p in VALID_SPECS if not p.stem.startswith("redis")], ids=lambda p: p.stem)
def test_every_alert_has_a_runbook_page_and_a_main_panel(path, tmp_path):
    spec = load(path)
    build_into(tmp_path, spec)
    names = set(alerts(spec))
    pages = {p.stem for p in (tmp_path / spec.service.name / "runbooks").glob("*.md")} - {"README"}
    assert pages == names
    assert {name for name, a in alerts(spec).items() if a.dashboard_url} == names
    for name in names:
        page = (tmp_path / spec.service.name / "runbooks" / f"{name}.md").read_text()
        mitigation = page.split("## Mitigation")[1].split("## Escalation")[0]
        assert re.search(r"^\d+\. ", mitigation, re.M), name
