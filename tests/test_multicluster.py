"""Fleets behind Thanos or Mimir (`service.cluster_label`): alerts keep the cluster, the generated promtool tests
prove it, dashboards pick one cluster, and without the key nothing changes."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import ROOT, assert_mutation_caught, load_spec, rendered
from obsgen.render.promtool_tests import TEST_CLUSTER
from obsgen.render.templates import render as render_template
from test_dashboards import schema_errors

FLEET = ROOT / "tests" / "specs" / "valid" / "fleet-multicluster.yaml"
AGGREGATION = re.compile(r"\b(sum|max|min|avg|count|group|topk|bottomk|quantile|stddev|stdvar)\s+(by|without)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")


@pytest.fixture(scope="module")
def fleet():
    return load_spec(FLEET)


@pytest.fixture(scope="module")
def files(fleet) -> dict[str, str]:
    return rendered(fleet)


def rules(files: dict[str, str]) -> list[dict]:
    data = yaml.safe_load(files["checkout/prometheus/rules.yaml"])
    return [r for g in data["groups"] for r in g["rules"]]


def test_every_aggregation_of_every_rule_keeps_the_cluster(files):
    found = 0
    for rule in rules(files):
        for op, mode, labels in AGGREGATION.findall(rule["expr"]):
            found += 1
            assert mode == "by" and labels.split(", ")[0] == "cluster", (rule.get("alert") or rule["record"], op)
        assert "absent(" not in rule["expr"]  # absent() sees the whole fleet, not one cluster
    assert found > 20


def test_generated_tests_expect_the_cluster_on_every_firing_alert(files):
    tests = [t for path, text in files.items() if path.startswith("checkout/prometheus/")
             and path.endswith(".test.yaml") for t in yaml.safe_load(text)["tests"]]  # every clock's file
    fired = [a for t in tests for case in t["alert_rule_test"] for a in case["exp_alerts"]]
    assert fired and all(a["exp_labels"]["cluster"] == TEST_CLUSTER for a in fired)
    assert all(f'cluster="{TEST_CLUSTER}"' in s["series"] for t in tests for s in t["input_series"])


@pytest.mark.promtool
def test_generated_tests_catch_an_aggregation_that_drops_the_cluster(fleet, tmp_path):
    # unmutated, the tests pass (tests/test_promtool.py, VALID_SPECS); the breaker's "open now" loses its cluster
    assert_mutation_caught(tmp_path, fleet, r"(max by \()cluster, (instance, name\))", r"\1\2",
                           "the breaker's open-now aggregation drops the cluster")


def test_quorum_alert_looks_for_an_unreported_master_per_cluster(files):
    (rule,) = [r for r in rules(files) if r.get("alert") == "RedisSentinelQuorumAtRisk"]
    assert ("group by (cluster) (redis_sentinel_master_ok_sentinels{job=\"redis\"})\n  unless\n"
            "  group by (cluster) (redis_sentinel_master_ok_sentinels{job=\"redis\", master_name=\"mymaster\"})"
            in rule["expr"])


def test_alerts_deep_link_to_the_dashboard_of_their_own_cluster(files):
    alerts = [r for r in rules(files) if "alert" in r]
    assert all(a["annotations"]["dashboard_url"].endswith("&var-cluster={{ $labels.cluster | urlquery }}")
               for a in alerts)
    url = render_template(alerts[0]["annotations"]["dashboard_url"], {"cluster": "eu west/1"}, None)
    assert url.endswith("&var-cluster=eu+west%2F1")  # Go's url.QueryEscape


def dashboards(files: dict[str, str]) -> dict[str, dict]:
    return {p: json.loads(t) for p, t in files.items() if p.startswith("checkout/dashboards/")}


def test_dashboards_pick_one_cluster_before_job_and_instance(files):
    for path, d in dashboards(files).items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert list(variables) == ["datasource", "cluster", "job", "instance"], path
        cluster = variables["cluster"]
        assert (cluster["type"], cluster["multi"], cluster["includeAll"], cluster["refresh"]) == ("query", False,
                                                                                                 False, 2)
        assert cluster["query"].startswith("label_values(up{job=~") and cluster["query"].endswith(", cluster)")
        assert 'cluster=~"$cluster"' in variables["job"]["query"]
        assert 'cluster=~"$cluster"' in variables["instance"]["query"]


def test_every_panel_selector_and_alert_annotation_is_filtered_by_cluster(files):
    count = 0
    for path, d in dashboards(files).items():
        exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
        for expr in exprs:
            for name, body in SELECTOR.findall(expr):
                count += 1
                assert 'cluster=~"$cluster"' in body, (path, expr)
    assert count > 50


def test_dashboards_with_a_cluster_still_match_grafanas_dashboard_schema(files):
    for path, d in dashboards(files).items():
        assert schema_errors({**d, "panels": []}) == [], path


def test_without_cluster_label_nothing_mentions_a_cluster(maple):
    for path, text in rendered(maple).items():
        assert "$cluster" not in text and "var-cluster" not in text and TEST_CLUSTER not in text, path
        if path.endswith(".json"):
            assert [v["name"] for v in json.loads(text)["templating"]["list"]] == ["datasource", "job", "instance"]
    assert "by (instance, cache)" in rendered(maple)["maple-expectation/prometheus/rules.yaml"]
