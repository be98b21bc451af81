"""obsgen.model.labels.carried, held against promtool: the labels an expression's result keeps decide which
Alertmanager inhibitions are written (``equal: [instance]``), so each answer is checked on a known world.

Each case names the exact series Prometheus returns (written by hand from the world below, then confirmed by
promtool); carried() must name only labels every one of them has, and every label they all have that the
expression keeps for certain.
"""

from __future__ import annotations

import pytest

from obsgen.model.labels import carried
from obsgen.model.promql import Call, Str, agg, and_, binop, render, selector

from .world import promql_test

pytestmark = pytest.mark.promtool

STATUS = selector("health_check_status", {"job": "app", "check": "database"})
MODE = selector("degraded_mode_active", {"job": "app", "mode": "cache_only"})
WORLD = {
    'health_check_status{job="app", check="database", instance="a:1"}': "0x5",
    'health_check_status{job="app", check="database", instance="b:1"}': "1x5",
    'degraded_mode_active{job="app", mode="cache_only", instance="a:1"}': "1x5",
    'degraded_mode_active{job="app", mode="cache_only", instance="b:1"}': "1x5",
}
A = {"instance": "a:1"}
B = {"instance": "b:1"}
CASES = {  # expression → the series Prometheus returns at 4m, with their values (worked out by hand)
    "a selector keeps its matchers and the target labels": (
        STATUS, [({"__name__": "health_check_status", "job": "app", "check": "database", **A}, 0),
                 ({"__name__": "health_check_status", "job": "app", "check": "database", **B}, 1)]),
    "an aggregation keeps exactly its by labels": (
        binop("<", agg("min", STATUS, ("instance", "check")), 1), [({"check": "database", **A}, 0)]),
    "a one-to-one join on instance keeps the left side's labels": (
        and_(binop("==", agg("max", MODE, ("instance", "mode")), 1),
             binop(">=", agg("min", STATUS, ("instance",)), 1), on=("instance",)), [({"mode": "cache_only", **B}, 1)]),
    "unless keeps the left side's labels": (
        binop("unless", agg("max", MODE, ("instance", "mode")), binop("<", agg("min", STATUS, ("instance",)), 1),
              on=("instance",)), [({"mode": "cache_only", **B}, 1)]),
    "arithmetic on() keeps only the on labels": (
        binop("+", agg("max", MODE, ("instance", "mode")), agg("min", STATUS, ("instance",)), on=("instance",)),
        [(A, 1), (B, 2)]),
    "absent() keeps the selector's equality matchers": (
        Call("absent", (selector("health_check_status", {"job": "app", "check": "gone"}),)),
        [({"job": "app", "check": "gone"}, 1)]),
    "label_replace adds its destination": (
        Call("label_replace", (agg("min", STATUS, ("instance",)), Str("check"), Str("database"), Str(""), Str(""))),
        [({"check": "database", **A}, 0), ({"check": "database", **B}, 1)]),
    "or keeps what both sides have": (
        binop("or", agg("max", MODE, ("instance", "mode")), agg("min", STATUS, ("instance", "check"))),
        [({"mode": "cache_only", **A}, 1), ({"mode": "cache_only", **B}, 1),
         ({"check": "database", **A}, 0), ({"check": "database", **B}, 1)]),
}


def _series(labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels.get('__name__', '')}{{{inner}}}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.replace(" ", "-"))
def test_carried_names_the_labels_every_result_series_of_the_expression_has(case, tmp_path):
    expr, returned = CASES[case]
    text = render(expr)
    result = promql_test(tmp_path, WORLD, [{"expr": text, "eval_time": "4m", "exp_samples": [
        {"labels": _series(labels), "value": value} for labels, value in returned]}])
    assert result.returncode == 0, f"{text}\n{result.stdout}{result.stderr}"
    common = set.intersection(*(set(labels) - {"__name__"} for labels, _ in returned))
    assert carried(expr) == common, (text, carried(expr), common)
