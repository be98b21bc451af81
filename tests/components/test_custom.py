"""Custom signals: the team's expression survives obsgen's PromQL nodes and printer (raw strings, regex matchers,
offset, subqueries, bool, on/group_left), proven by promql-parser and by promtool on a known world; and the runbook
page of a custom alert says what the spec's `runbook:` block says, with the signal now and a week ago."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent

import pytest
import yaml
from click.testing import CliRunner

from conftest import build_into, promtool, rendered, run_unit_tests
from obsgen.cli import main
from obsgen.components import custom
from obsgen.spec import parse

from .runbook_pages import FOREIGN, blocks, check_page, evaluate, only_kinds, section, steps

ROOT = Path(__file__).resolve().parents[2]

# As a team writes it: raw strings (one with a regex escape), a regex matcher, an offset, a subquery, a `bool`
# comparison, `on` with `group_left` (with labels and without), and `$1` in a string.
WRITTEN = r'''label_replace(
  sum by (store_id) (rate(orders_total{job="shop", path=~`/api/v\d+/orders`}[5m] offset 1m))
  * on (store_id) group_left (name)
  (store_info{job="shop"} > bool 0)
  + on (store_id) group_left ()
  (max by (store_id) (max_over_time(rate(orders_total{job="shop"}[1m])[10m:1m]))),
  "region", "$1", "name", `(\w+)-.*`
)'''
# The same, in double-quoted strings only: what promql-parser 0.12 can read (it applies escapes inside backticks).
QUOTED = WRITTEN.replace(r"`/api/v\d+/orders`", r'"/api/v\\d+/orders"').replace(r"`(\w+)-.*`", r'"(\\w+)-.*"')
WORLD = {  # store 1 takes 4 orders/s on /api/v1/orders, 2/s on /api/v2/orders and 1/s elsewhere
    'orders_total{job="shop", path="/api/v1/orders", store_id="1", instance="a:1"}': "0+60x100",
    'orders_total{job="shop", path="/api/v2/orders", store_id="1", instance="a:1"}': "0+30x100",
    'orders_total{job="shop", path="/healthz", store_id="1", instance="a:1"}': "0+15x100",
    'store_info{job="shop", store_id="1", name="seoul-gangnam"}': "1x100",
}
# 6 orders/s on the API paths × the store's info (1) + the busiest series' rate (4/s); labels joined from store_info.
FIRING = {'{store_id="1", name="seoul-gangnam", region="seoul"}': 6 * 1 + 4}


def shape(node):
    """A promql-parser tree as nested tuples, parentheses left out (they only guide parsing; the tree is the
    meaning)."""
    import promql_parser as p

    if isinstance(node, p.ParenExpr):
        return shape(node.expr)
    if isinstance(node, p.VectorSelector):
        return ("selector", node.name, sorted((m.name, str(m.op), m.value) for m in node.matchers.matchers),
                node.offset, node.at)
    if isinstance(node, p.MatrixSelector):
        return ("range", shape(node.vector_selector), node.range)
    if isinstance(node, p.SubqueryExpr):
        return ("subquery", shape(node.expr), node.range, node.step, node.offset, node.at)
    if isinstance(node, p.Call):
        return ("call", node.func.name, tuple(shape(a) for a in node.args))
    if isinstance(node, p.AggregateExpr):
        grouping = node.modifier and (str(node.modifier.type), tuple(node.modifier.labels))
        return ("aggregate", str(node.op), shape(node.expr), node.param and shape(node.param), grouping)
    if isinstance(node, p.BinaryExpr):
        m = node.modifier
        matching = m and (m.return_bool, m.matching and (str(m.matching.type), tuple(m.matching.labels)),
                          str(m.card), tuple(m.group_labels or ()))
        return ("binary", str(node.op), shape(node.lhs), shape(node.rhs), matching)
    if isinstance(node, p.UnaryExpr):
        return ("negative", shape(node.expr))
    if isinstance(node, (p.NumberLiteral, p.StringLiteral)):
        return (type(node).__name__, node.val)
    raise TypeError(type(node).__name__)


def pages(spec) -> dict[str, str]:
    """Alert name → runbook page of the spec's custom signals (each names its own alert)."""
    base = f"{spec.service.name}/runbooks/"
    names = {custom.alert_name(c.spec) for c in spec.components if c.kind is custom.KIND}
    return {path[len(base):-3]: text for path, text in rendered(spec).items() if path[len(base):-3] in names}


def custom_spec(expr: str, more: str = "") -> str:
    return ("apiVersion: obsgen/v1\nservice: {name: shop, team: t, profile: python}\ncustom:\n"
            f"  - name: api-orders\n    description: Orders per second on the API, per store.\n"
            f"    expr: |\n{indent(expr, '      ')}\n    threshold: 5\n{more}")


TESTS = """\
    tests:
      - name: busy store
        series: [{series: 'orders_total{job="shop", path="/api/v1/orders", store_id="1"}', values: '0+60x100'},
                 {series: 'orders_total{job="shop", path="/healthz", store_id="1"}', values: '0+15x100'},
                 {series: 'store_info{job="shop", store_id="1", name="seoul-gangnam"}', values: '1x100'}]
        at: 20m
        fires: true
        labels: {store_id: "1", name: seoul-gangnam, region: seoul}
        value: 8  # 4/s on the API × 1 + the busiest series, 4/s
      - name: quiet store
        series: [{series: 'orders_total{job="shop", path="/api/v1/orders", store_id="1"}', values: '0+15x100'},
                 {series: 'store_info{job="shop", store_id="1", name="seoul-gangnam"}', values: '1x100'}]
        at: 20m
        fires: false
"""


def test_a_written_expression_survives_the_printer_in_the_rule_and_on_the_page(tmp_path):
    import promql_parser as p

    spec = parse(custom_spec(WRITTEN, TESTS), "shop.yaml")
    build_into(tmp_path, spec)
    rules = yaml.safe_load((tmp_path / "shop/prometheus/rules.yaml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ApiOrdersHigh"]
    comparison = p.parse(rule["expr"])
    assert (str(comparison.op), comparison.rhs.val) == (">", 5)
    printed = comparison.lhs
    assert shape(printed) == shape(p.parse(QUOTED))  # the same tree as the team's expression
    (on_page, _) = blocks(section(pages(spec)["ApiOrdersHigh"], "Diagnosis"), "promql")
    assert shape(p.parse(on_page)) == shape(printed)
    # Prometheus' engine reads the team's raw text and the printed rule alike, and both mean the world's truth.
    evaluate(tmp_path, WORLD, [(WRITTEN, FIRING), (rule["expr"], FIRING), (on_page, FIRING)], at="20m",
             interval="15s")
    # and the generated promtool tests of the printed rule pass (it fires, with the labels joined from store_info)
    result = run_unit_tests(tmp_path / "shop/prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("expr", [
    'sum(rate(orders_total{job="shop", path=~`/api/v\\d+`}[5m]))',  # promql-parser alone refuses `\d` in backticks
    'histogram_quantile(0.99, sum by (le) (rate(order_seconds_bucket{job="shop"}[5m])))',  # a function on top
])
def test_expressions_prometheus_accepts_are_valid_signals(expr, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(custom_spec(expr, TESTS))
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_the_at_modifier_is_a_located_spec_error(tmp_path):
    at = tmp_path / "at.yaml"
    at.write_text(custom_spec('sum(orders_total{job="shop"} @ 1700000000)', TESTS))
    result = CliRunner().invoke(main, ["validate", str(at)])
    assert result.exit_code == 2, result.output
    assert f"{at}:6:11: custom[0].expr: obsgen cannot write this expression into a rule (the @ modifier is not " \
           "supported); write it without that" in result.output


PAGES = """\
apiVersion: obsgen/v1
service: {name: shop, team: t, profile: python}
custom:
  - name: pending-orders
    description: Orders waiting for the kitchen, per store.
    expr: max by (store_id) (orders_pending{job="shop"})
    threshold: 50
    for: 10m
    runbook:
      meaning: Orders pile up faster than the kitchen prepares them.
      impact: Guests wait longer for their food.
      actions: [Ask the store whether its kitchen display shows new orders., Restart the kitchen display client.]
  - name: refunds
    description: Refunds per second.
    expr: sum(rate(refunds_total{job="shop"}[5m]))
    threshold: 1
"""


@pytest.fixture(scope="module")
def custom_pages():
    return pages(parse(PAGES, "shop.yaml"))


def test_each_custom_alert_gets_a_complete_page_in_the_spec_s_words(custom_pages):
    assert set(custom_pages) == {"PendingOrdersHigh", "RefundsHigh"}
    for alert, page in custom_pages.items():
        check_page(alert, page, job=None, identity=None, names=set(), raw_labels={"store_id"})
    pending = custom_pages["PendingOrdersHigh"]
    assert section(pending, "What it means").strip().startswith("Orders pile up faster than the kitchen prepares")
    assert section(pending, "Impact").split("<!--")[0].strip() == "- Guests wait longer for their food."
    actions = steps(section(pending, "Mitigation"))
    assert [a.split("\n")[0] for a in actions] == ["1. Ask the store whether its kitchen display shows new orders.",
                                                   "2. Restart the kitchen display client."]
    assert all("the alert fires when the signal is above 50 for 10m" in a for a in actions)
    refunds = custom_pages["RefundsHigh"]
    assert "add `runbook.impact` to custom signal `refunds`" in section(refunds, "Impact")
    assert "add what you did as\n   `runbook.actions`" in section(refunds, "Mitigation")


def test_the_page_shows_the_signal_now_and_a_week_ago(custom_pages, tmp_path):
    now, last_week = blocks(section(custom_pages["PendingOrdersHigh"], "Diagnosis"), "promql")
    assert now == 'max by (store_id) (orders_pending{job="shop"})'
    world = {'orders_pending{job="shop", store_id="1", instance="a:1"}': "5x20 80x10100",  # 1m apart: 5 until 20m
             'orders_pending{job="shop", store_id="1", instance="b:1"}': "3x10120"}
    evaluate(tmp_path, world, [(now, {'{store_id="1"}': 80}), (last_week, {'{store_id="1"}': 5})], at="168h10m")


def test_table_order_s_stalled_orders_page_carries_its_expression_and_its_runbook():
    """Seed 004's orders per hour, alerted on as requests without orders (specs/table-order.yaml)."""
    spec_file = ROOT / "specs/table-order.yaml"
    page = pages(only_kinds(spec_file, "custom"))["OrdersStalled"]
    check_page("OrdersStalled", page, job=None, identity=None, names=set(), raw_labels=set(),
               foreign=FOREIGN + ("AniVault",))
    (now, _) = blocks(section(page, "Diagnosis"), "promql")
    assert "and on ()" in now
    assert "Guests browse menus (requests keep arriving) but no order reaches the database." in page
