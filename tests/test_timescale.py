"""``obsgen build --time-scale N``: durations divided by N, nothing else touched, promtool still happy."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import promql_parser
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT, load_spec, promtool
from obsgen import pipeline
from obsgen.render import rules as rules_renderer
from obsgen.cli import main
from obsgen.model.promql import Variable, parse, rate, render, scale_duration, selector
from obsgen.model.types import Duration


def scale(text: str, factor: float) -> str:
    return str(scale_duration(Duration.parse(text), factor))


@pytest.mark.parametrize(("text", "factor", "scaled"), [
    ("5m", 20, "15s"),
    ("5m", 10, "30s"),
    ("2m", 10, "12s"),
    ("1h30m", 60, "1m30s"),
    ("1d", 24, "1h"),
    ("90s", 7, "13s"),        # 12.86s rounds to whole seconds
    ("1m", 120, "1s"),        # 0.5s: never below 1s
    ("500ms", 2, "1s"),
    ("0s", 20, "0s"),         # `for: 0s` stays immediate
    ("0", 20, "0s"),
    ("5m", 1, "5m"),
    ("5m", 2.5, "2m"),
])
def test_durations_are_divided_rounded_to_seconds_and_at_least_one_second(text, factor, scaled):
    assert scale(text, factor) == scaled


@pytest.mark.parametrize("bad", ["5", "5x", "m", "1.5m", "-5m", "", "30m1h", "5m5m"])
def test_a_non_duration_is_an_error(bad):
    with pytest.raises(ValueError):
        Duration.parse(bad)


def test_a_factor_below_one_is_an_error():
    with pytest.raises(ValueError):
        scale("5m", 0.5)


@given(st.integers(min_value=1, max_value=10 ** 10), st.integers(min_value=1, max_value=1000))
def test_scaled_durations_parse_back_to_the_rounded_quotient(millis, factor):
    text = promql_parser.display_duration(timedelta(milliseconds=millis))
    scaled = promql_parser.parse_duration(scale(text, factor))
    assert scaled == timedelta(seconds=max(1, int(millis / factor / 1000 + 0.5)))


@pytest.mark.parametrize(("expr", "scaled"), [
    ("rate(x[5m])", "rate(x[15s])"),
    ("sum by (a) (rate(x{a=\"b\"}[1h30m])) > 0", "sum by (a) (rate(x{a=\"b\"}[4m30s])) > 0"),
    ("avg_over_time(x[10m:1m])", "avg_over_time(x[30s:3s])"),
    ("max_over_time((x > bool 0)[5m:])", "max_over_time((x > bool 0)[15s:])"),
    ("rate(x[5m] offset 1h)", "rate(x[15s] offset 3m)"),
    # names keep the durations they contain; only windows change
    ("instance_cache:hit:ratio_rate5m{tier=\"L1\"} < 0.8", "instance_cache:hit:ratio_rate5m{tier=\"L1\"} < 0.8"),
    ("rate5m:x[5m]", "rate5m:x[15s]"),
    # string literals are never rewritten, whatever they hold
    ("x{path=~\"/v[0-9]+/[5m]\"}", "x{path=~\"/v[0-9]+/[5m]\"}"),
    ("x{a='it\\'s [5m]'}[5m]", "x{a=\"it's [5m]\"}[15s]"),
    ("x{a=`raw [5m]`}[5m]", "x{a=`raw [5m]`}[15s]"),
    # a label or metric called offset is not an offset
    ("x{offset=\"5m\"} and offset", "x{offset=\"5m\"} and {__name__=\"offset\"}"),
    ("sum by (offset) (rate(y[5m]))", "sum by (offset) (rate(y[15s]))"),
    ("1e-05 < rate(x[5m])", "0.00001 < rate(x[15s])"),
])
def test_the_printer_scales_windows_subqueries_and_offsets_only(expr, scaled):
    assert render(parse(expr), 20).replace("\n", " ") == parse_back(scaled)


def parse_back(text: str) -> str:
    """``text`` printed the way the printer prints it (the examples above are written by hand)."""
    return render(parse(text)).replace("\n", " ")


def test_grafana_range_variables_are_never_scaled():
    assert render(rate(selector("x"), Variable("$__rate_interval")), 20) == "rate(x{}[$__rate_interval])"


def _times(expr: str) -> list[timedelta | None]:
    """Every range, subquery step and offset of an expression, in walk order, read by a real PromQL parser."""
    out: list = []

    def visit(node):
        if isinstance(node, promql_parser.MatrixSelector):
            out.extend([node.range, node.vector_selector.offset])
        elif isinstance(node, promql_parser.SubqueryExpr):
            out.extend([node.range, node.step, node.offset])
        elif isinstance(node, promql_parser.VectorSelector):
            out.append(node.offset)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return out


def _without_times(expr: str) -> str:
    text = str(promql_parser.parse(expr))
    return re.sub(r"offset -?[0-9a-z]+", "offset", re.sub(r"\[[0-9a-z:]*\]", "[]", text))


def _rules(text: str) -> list[dict]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


FACTOR = 10


@pytest.fixture(scope="module")
def maple_rules(maple):
    files = {o.path: o.content for o in pipeline.render(maple)}
    scaled = {o.path: o.content for o in pipeline.render(maple, time_scale=FACTOR)}
    return files, scaled


def test_maple_scaled_rules_differ_only_in_their_durations(maple_rules):
    files, scaled = maple_rules
    path = "maple-expectation/prometheus/rules.yaml"
    original, fast = _rules(files[path]), _rules(scaled[path])
    assert len(original) == len(fast) and original
    windows = 0
    for before, after in zip(original, fast):
        assert {k: v for k, v in before.items() if k not in ("expr", "for")} == \
            {k: v for k, v in after.items() if k not in ("expr", "for")}
        if "for" in before:
            assert after["for"] == scale(before["for"], FACTOR)
        assert _without_times(before["expr"]) == _without_times(after["expr"])
        expected = [t if t is None else promql_parser.parse_duration(scale(
            promql_parser.display_duration(t), FACTOR)) for t in _times(before["expr"])]
        assert _times(after["expr"]) == expected, before["expr"]
        windows += sum(1 for t in expected if t)
    assert windows > 20


def test_scaled_build_has_no_promtool_tests_and_says_so(maple_rules):
    files, scaled = maple_rules
    rule_files = {"maple-expectation/prometheus/rules.yaml", "maple-expectation/prometheus/slo.yaml"}
    assert "maple-expectation/prometheus/rules.test.yaml" in files
    assert not [p for p in scaled if p.endswith(".test.yaml")]
    for path in rule_files:
        assert scaled[path].startswith("# Time-scaled by `obsgen build --time-scale 10`"), path
    same = {p for p in files if p in scaled and files[p] == scaled[p]}
    assert same == set(scaled) - rule_files  # dashboards and runbooks as shipped


def test_scaled_rules_pass_promtool_lint(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(ROOT / "specs"), "--time-scale", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rules = out / "maple-expectation" / "prometheus" / "rules.yaml"
    assert "for: 3s" in rules.read_text()
    assert not (out / "maple-expectation" / "prometheus" / "rules.test.yaml").exists()
    checked = promtool("check", "rules", "--lint=all", "--lint-fatal", str(rules), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_time_scale_needs_an_explicit_out_and_is_documented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build", str(ROOT / "specs"), "--time-scale", "20"])
    assert result.exit_code == 2 and "--out" in result.output
    assert not (tmp_path / "generated").exists()
    assert "--time-scale" in CliRunner().invoke(main, ["build", "--help"]).output
    assert CliRunner().invoke(main, ["build", str(ROOT / "specs"), "--time-scale", "0.5", "--out", "x"]).exit_code == 2


def test_keep_firing_for_is_scaled_with_the_for():
    alert = next(a for a in pipeline.build(load_spec(ROOT / "specs" / "maple.yaml")).alerts)
    alert = replace(alert, for_=Duration.parse("10m"), keep_firing_for=Duration.parse("5m"))
    assert rules_renderer.rule(alert, 10)["for"] == "1m"
    assert rules_renderer.rule(alert, 10)["keep_firing_for"] == "30s"
