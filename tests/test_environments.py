"""`environments:`: one output set per environment under <service>/<environment>/, each from the spec with that
environment's values; `build --check`, the manifest, pruning, `validate`, `verify` and `diff` follow the layout.
(The overlay's mistakes are exact-message cases in tests/specs/invalid/environments-*.yaml.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, assert_mutation_caught, build_into, load_spec, promtool
from obsgen.cli import main

BASE = """\
apiVersion: obsgen/v1
service: {name: orders, team: web, profile: python}
db_pools:
  - name: main
    database: postgresql
    pool_size: 5
    max_overflow: 10
"""
ENVIRONMENTS = """\
environments:
  dev:
    db_pools:
      - name: main
        max_overflow: 5
  production:
    service:
      alertmanager: {receivers: {critical: orders-oncall}}
    db_pools:
      - name: main
        pool_size: 20
        max_overflow: 20
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def write(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "orders.yaml"
    spec.write_text(text)
    return spec


def exhausted_at(rules: Path) -> str:
    """The DbPoolExhausted threshold of one built rule file, as Prometheus will read it."""
    for group in yaml.safe_load(rules.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "DbPoolExhausted":
                return rule["expr"].rsplit(">=", 1)[1].strip()
    raise AssertionError(f"no DbPoolExhausted in {rules}")


def test_each_environment_gets_a_complete_output_set_with_its_own_values(tmp_path):
    out = tmp_path / "out"
    assert run("build", str(write(tmp_path, BASE + ENVIRONMENTS)), "--out", str(out)).exit_code == 0
    service = out / "orders"
    assert sorted(p.name for p in service.iterdir()) == [".obsgen-manifest.json", "dev", "production"]
    assert exhausted_at(service / "dev" / "prometheus" / "rules.yaml") == "10"
    assert exhausted_at(service / "production" / "prometheus" / "rules.yaml") == "40"
    for env in ("dev", "production"):  # each folder alone is what one cluster deploys
        assert {p.name for p in (service / env).iterdir()} >= {"prometheus", "alertmanager", "dashboards",
                                                              "runbooks", "kubernetes", "grafana"}
    assert "receiver: orders-oncall" in (service / "production" / "alertmanager" / "routes.yaml").read_text()
    assert "receiver: orders-oncall" not in (service / "dev" / "alertmanager" / "routes.yaml").read_text()
    manifest = json.loads((service / ".obsgen-manifest.json").read_text())
    assert manifest["environments"] == ["dev", "production"]
    on_disk = sorted(str(p.relative_to(out)) for p in service.rglob("*") if p.is_file() and p.name[0] != ".")
    assert manifest["files"] == on_disk


def test_a_spec_without_environments_keeps_the_single_layout_and_manifest(tmp_path):
    out = tmp_path / "out"
    assert run("build", str(write(tmp_path, BASE)), "--out", str(out)).exit_code == 0
    assert exhausted_at(out / "orders" / "prometheus" / "rules.yaml") == "15"
    assert "environments" not in json.loads((out / "orders" / ".obsgen-manifest.json").read_text())


def test_check_follows_the_environments_and_moving_to_them_prunes_the_single_layout(tmp_path):
    out = tmp_path / "out"
    spec = write(tmp_path, BASE)
    assert run("build", str(spec), "--out", str(out)).exit_code == 0
    spec.write_text(BASE + ENVIRONMENTS)
    stale = run("build", str(spec), "--out", str(out), "--check")
    assert stale.exit_code == 1
    assert f"orphaned: {out}/orders/prometheus/rules.yaml" in stale.stdout
    assert f"missing: {out}/orders/production/prometheus/rules.yaml" in stale.stdout
    assert run("build", str(spec), "--out", str(out)).exit_code == 0
    assert not (out / "orders" / "prometheus").exists()
    assert run("build", str(spec), "--out", str(out), "--check").exit_code == 0
    # a change to one environment's value is a difference in that environment's files only
    spec.write_text((BASE + ENVIRONMENTS).replace("pool_size: 20", "pool_size: 25"))
    changed = run("build", str(spec), "--out", str(out), "--check")
    assert changed.exit_code == 1
    assert f"changed: {out}/orders/production/prometheus/rules.yaml" in changed.stdout
    assert "/orders/dev/" not in changed.stdout


def test_validate_checks_every_environment(tmp_path):
    assert run("validate", str(write(tmp_path, BASE + ENVIRONMENTS))).exit_code == 0
    broken = run("validate", str(write(tmp_path, BASE + ENVIRONMENTS.replace("max_overflow: 5", "max_overflow: -1"))))
    assert broken.exit_code == 2
    assert broken.stderr.splitlines()[0] == (
        f"{tmp_path}/orders.yaml:12:23: environments.dev.db_pools[main].max_overflow: expected a value at least 0 "
        "(a number of connections, 0 or more; SQLAlchemy's -1 (no limit) cannot be exhausted and is not supported), "
        "found `-1`")


EXPOSITION = """\
# TYPE db_pool_checked_out_connections gauge
db_pool_checked_out_connections{job="orders",pool="main"} 3
# TYPE db_pool_checked_in_connections gauge
db_pool_checked_in_connections{job="orders",pool="main"} 2
# TYPE db_pool_checkout_timeouts_total counter
db_pool_checkout_timeouts_total{job="orders",pool="main"} 0
"""


def test_verify_needs_the_environment_the_server_serves(tmp_path):
    spec = write(tmp_path, BASE + ENVIRONMENTS)
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(EXPOSITION)
    ambiguous = run("verify", str(spec), "--metrics", str(scrape))
    assert ambiguous.exit_code == 2
    assert ambiguous.stderr == (f"obsgen: {spec}: the spec has environments (dev, production); say which one the "
                                "server serves with --environment NAME\n")
    unknown = run("verify", str(spec), "--metrics", str(scrape), "--environment", "staging")
    assert unknown.exit_code == 2
    assert unknown.stderr == (f"obsgen: {spec}: the spec has no environment `staging` (it has dev, production); "
                              "give one of them to --environment\n")
    chosen = run("verify", str(spec), "--metrics", str(scrape), "--environment", "production")
    assert chosen.exit_code in (0, 1) and "Traceback" not in chosen.output, chosen.output


def test_diff_compares_each_environment_as_a_service_of_its_own(tmp_path):
    spec = write(tmp_path, BASE + ENVIRONMENTS)
    assert run("build", str(spec), "--out", str(tmp_path / "old")).exit_code == 0
    spec.write_text((BASE + ENVIRONMENTS).replace("pool_size: 20", "pool_size: 10"))
    assert run("build", str(spec), "--out", str(tmp_path / "new")).exit_code == 0
    report = run("diff", str(tmp_path / "old"), str(tmp_path / "new"))
    assert report.exit_code == 0, report.output
    assert "orders/production:" in report.stdout and "orders/dev" not in report.stdout
    assert ">= 40 → >= 30 (stricter" in report.stdout


# --------------------------------------------------------------------------- Table Order on promtool


TABLE_ORDER = ROOT / "specs" / "table-order.yaml"
POOLS = {"dev": 10, "staging": 20, "production": 40}  # DB_POOL_SIZE + DB_MAX_OVERFLOW, seed 004:377-378


def exhausted_fires(tmp_path: Path, env: str, checked_out: int) -> bool:
    """Whether DbPoolExhausted is firing after 5 minutes of ``checked_out`` connections in use, on Table Order's
    rules of ``env`` as promtool evaluates them."""
    spec = load_spec(TABLE_ORDER).environment(env)
    build_into(tmp_path, spec)
    prom = tmp_path / "table-order" / "prometheus"
    firing = 'count(ALERTS{alertname="DbPoolExhausted", alertstate="firing"})'
    for expected in ([{"labels": "{}", "value": 1}], []):
        (prom / "probe.test.yaml").write_text(yaml.safe_dump({
            "rule_files": ["rules.yaml"], "evaluation_interval": "15s",
            "tests": [{"interval": "15s",
                       "input_series": [{"series": 'db_pool_checked_out_connections{job="table-order", pool="main", '
                                                   'instance="pod-1"}', "values": f"{checked_out}x40"}],
                       "promql_expr_test": [{"expr": firing, "eval_time": "5m", "exp_samples": expected}]}]}))
        if promtool("test", "rules", "probe.test.yaml", cwd=prom).returncode == 0:
            return bool(expected)
    raise AssertionError(f"promtool agreed with neither outcome for {env} at {checked_out} connections")


@pytest.mark.promtool
@pytest.mark.parametrize("env", sorted(POOLS))
def test_table_order_pool_exhaustion_fires_at_each_environments_own_pool(env, tmp_path):
    size = POOLS[env]
    assert exhausted_fires(tmp_path / "full", env, size)
    assert not exhausted_fires(tmp_path / "one-free", env, size - 1)


@pytest.mark.promtool
def test_table_order_orders_stalled_guard_counting_probes_is_caught_by_its_closed_night_story(tmp_path):
    spec = load_spec(TABLE_ORDER).environment("production")
    assert_mutation_caught(tmp_path, spec, r'(http_requests_total\{job="table-order"), handler!~"[^"]*"', r"\g<1>",
                           "OrdersStalled's traffic guard counting health probes")


def test_one_alertmanager_routes_each_environments_alerts_to_that_environments_receivers(tmp_path):
    """Both environments' snippets pasted into one real Alertmanager config (amtool): a production page reaches
    production's receiver, a dev page dev's, and every alert says its environment."""
    from test_alertmanager import amtool, full_config, receiver_of
    from test_alertmanager import write as write_config

    out = tmp_path / "out"
    assert run("build", str(write(tmp_path, BASE + ENVIRONMENTS)), "--out", str(out)).exit_code == 0
    snippets = {env: yaml.safe_load((out / "orders" / env / "alertmanager" / "routes.yaml").read_text())
                for env in ("dev", "production")}
    config = write_config(tmp_path, full_config(*snippets.values()))
    assert amtool("check-config", str(config)).returncode == 0
    page = {"alertname": "DbPoolExhausted", "service": "orders", "team": "web", "severity": "critical"}
    assert receiver_of(config, **page, environment="production") == "orders-oncall"
    assert receiver_of(config, **page, environment="dev") == "web-pager"
    for env in snippets:
        rules = yaml.safe_load((out / "orders" / env / "prometheus" / "rules.yaml").read_text())
        alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
        assert alerts and all(a["labels"]["environment"] == env for a in alerts)
