"""A metric that names its component by another label or value than the component's own (Micrometer's
``executor_active_threads{name="expectationComputeExecutor"}`` of an executor the spec labels
``executor: expectation``): every rule still judges that component alone, its alerts carry the component's
identity, and the generated promtool tests prove they fire."""

from __future__ import annotations

import pytest

from conftest import build_into, run_unit_tests, unit_test_entries
from obsgen.model.promql import render
from obsgen.model.rules import Alert
from obsgen.pipeline import build

SPECS = {
    # the failed calls of breaker `pay` are counted under another label (`Bmzm`) and value
    "breaker": """
apiVersion: obsgen/v1
service: {name: shop, team: web}
breakers:
  - name: pay
    minimum_calls: 8
    metrics:
      failed_calls: {name: pay_failed_total, label: client, value: payments-v2}
  - name: stock
""",
    # maple's executors: the pool gauges carry the bean's name, the queue gauge the spec's value
    "executor": """
apiVersion: obsgen/v1
service: {name: shop, team: web}
executors:
  - name: compute
    label: executor
    value: expectation
    core_threads: 4
    max_threads: 8
    queue_capacity: 200
    metrics:
      active: {name: executor_active_threads, label: name, value: expectationComputeExecutor}
      completed: {name: executor_completed_tasks_total, label: name, value: expectationComputeExecutor}
  - name: alerts
    label: executor
    core_threads: 2
    max_threads: 4
    queue_capacity: 100
""",
}


@pytest.mark.promtool
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_alerts_over_a_renamed_metric_fire_with_the_component_s_identity_in_promtool(kind, spec_from, tmp_path):
    spec = spec_from(SPECS[kind])
    build_into(tmp_path, spec)
    prom = tmp_path / "shop" / "prometheus"
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    tests = unit_test_entries(prom)
    fired = [e for t in tests for case in t["alert_rule_test"] for e in case.get("exp_alerts") or []]
    first = spec.components[0]
    (label, value), = first.identity.items()
    mine = [e for e in fired if e["exp_labels"]["component"] == first.name]
    assert mine and all(e["exp_labels"][label] == value for e in mine)


def test_an_aggregation_over_a_renamed_metric_drops_its_label_and_sets_the_component_s(spec_from):
    model = build(spec_from(SPECS["executor"]))
    (saturated,) = [r for c in model.components if c.name == "compute" for r in c.rules
                    if isinstance(r, Alert) and r.name == "ExecutorSaturated"]
    text = render(saturated.expr)
    assert ('label_replace(max by (instance) (executor_active_threads{job="shop", name="expectationComputeExecutor"}),'
            ' "executor", "expectation", "", "")') in text
    # the runbook's query groups by the metric's own label, as a person would type it
    queries = dict(saturated.queries)
    assert render(queries["active"]) == (
        'max by (instance, name) (executor_active_threads{job="shop", name="expectationComputeExecutor"})')
