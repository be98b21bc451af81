"""SLO burn-rate alerts: the workbook's thresholds and detection times, the low-traffic guard,
the SLO dashboard and runbook, and the spec mistakes SLOs invite."""

from __future__ import annotations

import json

import pytest

from obsgen import pipeline
from obsgen.model.promql import render
from obsgen.components import slo
from obsgen.errors import SpecError
from obsgen.model.types import Duration
from conftest import build_into, promtool
from obsgen.spec import parse

HOUR = Duration.parse("1h")


def spec_text(objective: float = 0.999, window: str = "30d", extra: str = "") -> str:
    return (f"apiVersion: obsgen/v1\nservice: {{name: shop, team: web}}\n"
            f"slos:\n  - name: api\n    objective: {objective}\n    window: {window}\n{extra}")


def slo_spec(**kw) -> slo.SloSpec:
    return parse(spec_text(**kw), "t.yaml").components[0].spec  # type: ignore[return-value]


@pytest.mark.parametrize("window, burns", [("30d", (14.4, 6, 1)), ("28d", (13.44, 5.6, 1))])
def test_burn_thresholds_follow_the_workbook_budget_shares(window, burns):
    w = Duration.parse(window)
    got = (slo.FAST.conditions[0].burn(w), *(c.burn(w) for c in slo.SLOW.conditions))
    assert got == pytest.approx(burns)


@pytest.mark.parametrize("burn", [1000, 100, 21.6, 15])
def test_fast_burn_is_detected_when_the_1h_window_crosses_14_4x(burn):
    """Workbook: a burn b crosses 14.4x over 1h after 1h * 14.4 / b (0.86 min for a full outage at 99.9%).

    Detection lands within one 1m evaluation of that time (rate() over 1h sees 59 increments).
    """
    spec = slo_spec(objective=0.999)
    ratio = min(1.0, burn * spec.budget)
    story = ((HOUR, 10.0, 0.0), (HOUR * 2, 10.0, ratio))
    detected = slo._detect(spec, slo.FAST, story)
    workbook = HOUR.total_seconds * 14.4 / (ratio / spec.budget)
    assert detected is not None
    assert abs((detected - HOUR).total_seconds - workbook) <= 60


def test_a_burn_under_the_page_threshold_never_pages():
    spec = slo_spec(objective=0.999)
    assert slo._detect(spec, slo.FAST, ((HOUR, 10.0, 0.0), (HOUR * 8, 10.0, 14 * spec.budget))) is None


def test_errors_within_budget_fire_neither_alert():
    spec = slo_spec(objective=0.999)
    story = ((HOUR * 8, 10.0, 0.99 * spec.budget),)
    assert slo._detect(spec, slo.FAST, story) is None
    assert slo._detect(spec, slo.SLOW, story) is None


@pytest.mark.parametrize("objective", [0.95, 0.99, 0.995, 0.999, 0.9999])
def test_default_traffic_guard_keeps_one_failed_request_from_firing_any_condition(objective):
    spec = slo_spec(objective=objective)
    for alert in (slo.FAST, slo.SLOW):
        for cond in alert.conditions:
            needed = slo.min_events(spec, cond)
            assert 1 / needed <= cond.burn(spec.window) * spec.budget, (alert.name, cond)


def test_explicit_min_events_appears_in_the_rule():
    text = spec_text(extra="    min_events: 250\n")
    groups = pipeline.build(parse(text, "t.yaml")).groups
    fast = next(r for g in groups for r in g.rules if getattr(r, "name", "") == "ErrorBudgetBurnFast")
    assert "slo:sli_requests:rate1h{service=\"shop\", slo=\"api\"} * 3600 >= 250" in render(fast.expr)


def test_slo_rules_go_to_their_own_file_with_a_fast_a_slow_and_an_hourly_test_clock():
    outputs = {o.path: o.content for o in pipeline.render(parse(spec_text(), "t.yaml"))}
    tests = {f"shop/prometheus/slo{clock}.test.yaml": clock or ".1m" for clock in ("", ".5m", ".1h")}
    assert {"shop/prometheus/slo.yaml", *tests} <= set(outputs)
    for path, clock in tests.items():
        assert f"evaluation_interval: {clock[1:]}" in outputs[path]
    assert "slow-burn-3d" in outputs["shop/prometheus/slo.1h.test.yaml"]


def test_latency_slo_counts_requests_slower_than_the_bucket_bound():
    text = spec_text(objective=0.99, extra="    sli: latency\n    latency_threshold: 500ms\n")
    groups = pipeline.build(parse(text, "t.yaml")).groups
    rec = {r.record: str(r.expr) for g in groups for r in g.rules if getattr(r, "record", "")}
    assert 'http_server_requests_seconds_count{job="shop", uri!~"/actuator/.*"}[5m]' in rec["slo:sli_requests:rate5m"]
    assert ('http_server_requests_seconds_bucket{job="shop", le="0.5", uri!~"/actuator/.*"}[5m]'
            in rec["slo:sli_errors:rate5m"])


def test_slo_dashboard_draws_budget_sli_and_burn_rates_with_the_thresholds():
    outputs = {o.path: o.content for o in pipeline.render(parse(spec_text(objective=0.995), "t.yaml"))}
    board = json.loads(outputs["shop/dashboards/slo.json"])
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    sli = panels["api: SLI against the objective"]
    assert sli["targets"][0]["expr"] == '1 - slo:sli_error:ratio_rate5m{service="shop", slo="api"}'
    steps = sli["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 0.995
    burn = panels["api: burn rate per window"]
    assert [t["legendFormat"] for t in burn["targets"]] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert panels["api: error budget remaining"]["targets"][0]["expr"] == \
        '1 - slo:sli_error:burn_rate30d{service="shop", slo="api"}'
    assert outputs["shop/prometheus/slo.yaml"].count(" / 0.005\n") == 8  # one burn per window, over the budget


def test_page_runbook_explains_error_budgets_and_what_to_do():
    outputs = {o.path: o.content for o in pipeline.render(parse(spec_text(), "t.yaml"))}
    page = outputs["shop/runbooks/ErrorBudgetBurnFast.md"]
    assert "**Error budgets in two sentences.**" in page
    assert "## Mitigation" in page and "roll it back" in page


@pytest.mark.parametrize("extra, objective, message", [
    ("    sli: latency\n", 0.99, "a latency SLO needs `latency_threshold`"),
    ("", 0.9, "the fast-burn page needs an error ratio of 144%, which is impossible"),
    ("    latency_threshold: 1s\n", 0.99, "`latency_threshold` only applies to `sli: latency`"),
    ("    exclude: {uri: \"(/actuator\"}\n", 0.99, "slos[0].exclude.uri: `(/actuator` is not a regular expression"),
])
def test_slo_mistakes_are_located_spec_errors(extra, objective, message):
    with pytest.raises(SpecError) as err:
        parse(spec_text(objective=objective, extra=extra), "t.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize("objective, tuning", [
    (0.9307, ""),  # just above the lowest objective a page can fire at: even 100% errors burn only 14.45×
    (0.95, ""),  # 1.5× the page's burn would need 108% errors
    (0.999999, ""),  # six nines: the guard needs a million requests in 3d
    (0.999, "    alerts: {ErrorBudgetBurnFast: {for: 2m15s}, ErrorBudgetBurnSlow: {for: 2h}}\n"),
])
@pytest.mark.promtool
def test_generated_stories_fire_on_time_at_extreme_objectives_and_tuned_fors(tmp_path, objective, tuning):
    spec = parse(spec_text(objective=objective, extra=tuning), "t.yaml")
    build_into(tmp_path, spec)
    prom = tmp_path / "shop" / "prometheus"
    result = promtool("test", "rules", *sorted(p.name for p in prom.glob("*.test.yaml")), cwd=prom)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_slos_over_the_same_requests_are_refused_where_the_second_is_declared():
    text = spec_text() + "  - name: checkout\n    objective: 0.99\n    selector: {route: /checkout}\n"
    with pytest.raises(SpecError) as err:
        parse(text, "t.yaml")
    (problem,) = err.value.problems
    assert (problem.line, problem.path) == (9, ("slos", 1, "selector"))
    assert "counts the same availability events as slos[0] `api`" in problem.message


def test_slos_over_different_requests_or_bucket_bounds_build():
    text = (spec_text(extra="    selector: {route: /a}\n") + "  - name: b\n    objective: 0.99\n"
            "    selector: {route: /b}\n  - name: fast\n    objective: 0.99\n    sli: latency\n"
            "    latency_threshold: 500ms\n  - name: slow\n    objective: 0.99\n    sli: latency\n"
            "    latency_threshold: 2s\n")
    assert len(parse(text, "t.yaml").components) == 4
