"""``obsgen diff`` over real builds of maple: each change type a reviewer must see, typed and flagged.

Every case edits a copy of specs/maple.yaml, builds it with ``obsgen build`` (once per test run) and
compares it with the build of the unedited spec. The Markdown of each case is a golden file under
tests/golden/diff/; when obsgen's output changes on purpose, regenerate them and review the difference:

    OBSGEN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_diff.py

Goldens pin the wording; the tests assert the typed changes and risk flags through the JSON contract, so a
golden refresh cannot hide a lost change. Routing is checked against ``amtool config routes test``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, build_into, tool
from obsgen.cli import main

GOLDEN = ROOT / "tests" / "golden" / "diff"
UPDATE = os.environ.get("OBSGEN_UPDATE_GOLDEN") == "1"
MAPLE = (ROOT / "specs" / "maple.yaml").read_text()

# A team's own alert on a recording obsgen makes for the cache (what "removed while still read" is about).
CUSTOM = """
custom:
  - name: ocid-l2-hit-ratio
    description: Share of OCID lookups the Redis tier answers, as the cache's recording reports it.
    expr: min(instance_cache:hit:ratio_rate5m{cache="ocidCache", tier="L2"})
    op: "<"
    threshold: 0.5
    for: 15m
    unit: percentunit
"""
BREAKER = "      CircuitBreakerOpen: {severity: critical}\n"  # maple's breaker keeps its page (its fallback aside)
OCID_L2 = "      l2: {provider: redisson, ttl: 60m, labels: {layer: L2}, hit_rate_min: 0.9}\n  - name: expectationV4"


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"the spec no longer contains {old!r}"
    return text.replace(old, new, 1)


SPECS = {
    "base": MAPLE,
    "threshold-loosened": edit(MAPLE, "labels: {layer: L1}, hit_rate_min: 0.8}", "labels: {layer: L1}, hit_rate_min: 0.4}"),
    "severity-downgraded": edit(MAPLE, BREAKER, "      CircuitBreakerOpen: {severity: warning}\n"),
    "severity-info": edit(MAPLE, BREAKER, "      CircuitBreakerOpen: {severity: info}\n"),
    "alert-removed": edit(MAPLE, BREAKER, "      CircuitBreakerOpen: {enabled: false}\n"),
    "for-lengthened": edit(MAPLE, BREAKER, BREAKER + "      CircuitBreakerFailureRateHigh: {for: 6m}\n"),
    "receiver-changed": edit(MAPLE, "  profile: micrometer\n",
                             "  profile: micrometer\n  alertmanager: {receivers: {critical: sre-oncall}}\n"),
    "slo-objective": edit(MAPLE, "    objective: 0.99\n", "    objective: 0.995\n"),
    "panel-query": edit(MAPLE, "    quantile: 0.95\n", "    quantile: 0.99\n"),
    "reader": MAPLE + CUSTOM,
    "recording-removed": edit(MAPLE + CUSTOM, OCID_L2, "  - name: expectationV4"),
    "alert-renamed": edit(MAPLE + CUSTOM, "    threshold: 0.5\n", "    threshold: 0.5\n    alert: OcidTierHitRatioLow\n"),
    "component-renamed": MAPLE.replace("name: ocidCache", "name: ocid"),
    "hostile": edit(MAPLE + CUSTOM, "    description: Share of OCID lookups",
                    "    description: Pipes | and <b>tags</b>, `ticks`, *stars* and [links](x) in | a share of OCID lookups"),
}
# (golden, old, new)
CASES = [("threshold-loosened", "base", "threshold-loosened"), ("severity-downgraded", "base", "severity-downgraded"),
         ("alert-removed", "base", "alert-removed"), ("receiver-changed", "base", "receiver-changed"),
         ("recording-removed", "reader", "recording-removed"), ("panel-query", "base", "panel-query"),
         ("slo-objective", "base", "slo-objective"), ("component-renamed", "base", "component-renamed")]


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """``builds(name)``: the output directory of SPECS[name], built on first use (relative to ``builds.root``)."""
    root = tmp_path_factory.mktemp("diff-builds")
    done: set[str] = set()

    def build(name: str) -> str:
        if name not in done:
            spec = root / "specs" / name / "maple.yaml"
            spec.parent.mkdir(parents=True)
            spec.write_text(SPECS[name])
            result = CliRunner().invoke(main, ["build", str(spec), "--out", str(root / name), "--jobs", "1"])
            assert result.exit_code == 0, result.stderr
            done.add(name)
        return name

    build.root = root
    return build


def diff(builds, monkeypatch, old: str, new: str, *args: str):
    """``obsgen diff OLD NEW`` run in the builds' folder, so the report names them as given."""
    monkeypatch.chdir(builds.root)
    return CliRunner().invoke(main, ["diff", builds(old), builds(new), *args])


def report(builds, monkeypatch, old: str, new: str) -> dict:
    result = diff(builds, monkeypatch, old, new, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def changes(rep: dict, alert: str, component: str, **labels: str) -> list[dict]:
    (found,) = [a for s in rep["services"] for a in s["alerts"]
                if a["alert"] == alert and a["component"] == component and a["labels"] == labels]
    return found


def risks(rep: dict) -> set[tuple[str, str]]:
    return {(r["kind"], r["subject"]) for r in rep["risks"]}


@pytest.mark.parametrize(("golden", "old", "new"), CASES, ids=[c[0] for c in CASES])
def test_markdown_matches_its_golden_file(builds, monkeypatch, golden, old, new):
    result = diff(builds, monkeypatch, old, new, "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    path = GOLDEN / f"{golden}.md"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.stdout)
    assert result.stdout == path.read_text(), f"regenerate with OBSGEN_UPDATE_GOLDEN=1 and review: {path}"


def test_json_matches_its_golden_file(builds, monkeypatch):
    result = diff(builds, monkeypatch, "base", "threshold-loosened", "--format", "json")
    path = GOLDEN / "threshold-loosened.json"
    if UPDATE:
        path.write_text(result.stdout)
    assert result.stdout == path.read_text(), f"regenerate with OBSGEN_UPDATE_GOLDEN=1 and review: {path}"


def test_a_loosened_threshold_says_which_way_and_how_far(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "threshold-loosened")
    alert = changes(rep, "CacheHitRateLow", "equipment", tier="L1")
    assert alert["status"] == "changed"
    # a hit-ratio floor is a share: 0.8 → 0.4 lets 20% → 60% of lookups miss, the larger of the two factors
    assert alert["changes"][0] == {"kind": "threshold", "signal": "instance_cache:hit:ratio_rate5m", "op": "<",
                                   "old": 0.8, "new": 0.4, "direction": "looser", "factor": 3.0,
                                   "complement": True}
    assert [c["name"] for c in alert["changes"][1:]] == ["description"]  # the description quotes the threshold
    assert risks(rep) == {("threshold-loosened", "CacheHitRateLow (equipment, tier=L1)")}
    # the same alert of the other tier and of the other caches did not change
    assert [a["labels"] for s in rep["services"] for a in s["alerts"]] == [{"tier": "L1"}]


def test_the_reverse_change_is_stricter_and_not_a_risk(builds, monkeypatch):
    rep = report(builds, monkeypatch, "threshold-loosened", "base")
    threshold = changes(rep, "CacheHitRateLow", "equipment", tier="L1")["changes"][0]
    assert (threshold["direction"], threshold["factor"], rep["risks"]) == ("stricter", 3.0, [])


def test_a_share_floor_loosened_less_than_twice_but_letting_five_times_the_misses_by_is_a_risk():
    from obsgen.diff.compare import _threshold
    from obsgen.diff.exprs import Comparison

    # 0.9 → 0.5 is 1.8× on the value, but tolerates 10% → 50% of misses; a ceiling of 1.5 → 2.5 is not a share
    floor = _threshold(Comparison("instance_cache:hit:ratio_rate5m", "<", 0.9, ()), 0.5)
    assert (floor.direction, floor.factor, floor.complement) == ("looser", pytest.approx(5.0), True)
    ceiling = _threshold(Comparison("executor_queue_size", ">", 1.5, ()), 2.5)
    assert (ceiling.direction, ceiling.factor, ceiling.complement) == ("looser", pytest.approx(5 / 3), False)


def test_a_renamed_component_is_a_rename_flagged_for_its_new_name_not_a_removed_page(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "component-renamed")
    alerts = [a for s in rep["services"] for a in s["alerts"]]
    assert {(a["status"], a["component"], a["component_renamed_from"], a["alert"]) for a in alerts} == {
        ("renamed", "ocid", "ocidCache", name) for name in ("CacheHitRateLow", "CacheL2Unavailable", "CacheStampede")}
    assert all(a["changes"] == [] for a in alerts)  # nothing but the name: no condition or description noise
    assert risks(rep) == {("component-renamed", "ocid (was ocidCache)")}
    (service,) = rep["services"]
    assert service["recordings"] == []
    assert {p["renamed_from"] for p in service["panels"]} >= {"ocidCache: hit ratio L1", "Cache ocidCache: hit ratio"}
    assert all(p["old_queries"] == p["new_queries"] == [] for p in service["panels"])


def test_a_downgraded_critical_alert_is_flagged_with_its_new_receiver(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "severity-downgraded")
    alert = changes(rep, "CircuitBreakerOpen", "nexonApi")
    assert alert["changes"] == [
        {"kind": "severity", "old": "critical", "new": "warning", "direction": "downgraded"},
        {"kind": "receiver", "old": ["sre-pager"], "new": ["sre-tickets"]}]
    assert risks(rep) == {("critical-alert-downgraded", "CircuitBreakerOpen (nexonApi)")}


def test_an_alert_that_now_reaches_no_route_of_the_service_is_flagged(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "severity-info")
    alert = changes(rep, "CircuitBreakerOpen", "nexonApi")
    assert alert["receivers"] == [None] and alert["changes"][-1] == {
        "kind": "receiver", "old": ["sre-pager"], "new": [None]}
    assert risks(rep) == {("critical-alert-downgraded", "CircuitBreakerOpen (nexonApi)"),
                          ("default-receiver", "CircuitBreakerOpen (nexonApi)")}


def test_a_removed_critical_alert_is_flagged_and_its_inhibition_goes_with_it(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "alert-removed")
    (service,) = rep["services"]
    assert [(a["status"], a["alert"], a["severity"], a["receivers"]) for a in service["alerts"]] == [
        ("removed", "CircuitBreakerOpen", "critical", ["sre-pager"]),
        # the breaker's missing-metrics alert names the alerts it would blind: one fewer now
        ("changed", "ComponentMetricsMissing", "warning", ["sre-tickets"])]
    assert service["inhibitions"] == [{
        "status": "removed", "source": "CircuitBreakerOpen",
        "target": "CircuitBreakerFailureRateHigh|RetryExhaustionHigh|TimeLimiterTimeoutsHigh",
        "equal": ["service", "breaker"]}]
    assert risks(rep) == {("critical-alert-removed", "CircuitBreakerOpen (nexonApi)")}


def test_a_for_lengthened_3x_is_flagged(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "for-lengthened")
    (duration,) = [c for c in changes(rep, "CircuitBreakerFailureRateHigh", "nexonApi")["changes"]
                   if c["kind"] == "duration"]
    assert duration == {"kind": "duration", "field": "for", "old": "2m", "new": "6m", "factor": 3.0}
    assert ("for-lengthened", "CircuitBreakerFailureRateHigh (nexonApi)") in risks(rep)


def test_a_receiver_rename_moves_every_page_and_nothing_else(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "receiver-changed")
    (service,) = rep["services"]
    moved = {(a["alert"], a["component"]): a["changes"] for a in service["alerts"]}
    assert len(moved) == 8 and all(c == [{"kind": "receiver", "old": ["sre-pager"], "new": ["sre-oncall"]}]
                                   for c in moved.values())
    assert rep["risks"] == [] and service["recordings"] == service["panels"] == []


def test_a_recording_removed_while_a_team_alert_and_its_panels_read_it_is_flagged(builds, monkeypatch):
    rep = report(builds, monkeypatch, "reader", "recording-removed")
    (service,) = rep["services"]
    read = {r["record"]: r["still_read_by"] for r in service["recordings"] if r["status"] == "removed"}
    assert read["instance_cache:hit:ratio_rate5m"] == [
        "alert OcidL2HitRatioLow (ocid-l2-hit-ratio)",
        "panel “ocid-l2-hit-ratio” (maple-expectation / Custom Signals)",
        "panel “ocid-l2-hit-ratio” (maple-expectation / Service Overview)"]
    assert read["instance_cache:requests:rate5m"] == []  # removed with its only reader
    assert {r["kind"] for r in rep["risks"]} == {"recording-still-read"}


def test_a_recording_still_produced_for_its_reader_is_not_flagged(builds, monkeypatch):
    """The same edit without the team's alert: the L2 recordings go with everything that read them."""
    rep = report(builds, monkeypatch, "base", "reader")
    assert rep["risks"] == [] and all(r["status"] != "removed" for s in rep["services"] for r in s["recordings"])


def test_an_alert_renamed_in_place_is_one_rename_not_a_removal(builds, monkeypatch):
    rep = report(builds, monkeypatch, "reader", "alert-renamed")
    (service,) = rep["services"]
    assert [(a["status"], a["alert"], a["renamed_from"]) for a in service["alerts"]] == [
        ("renamed", "OcidTierHitRatioLow", "OcidL2HitRatioLow")]


def test_a_panel_query_change_is_typed_and_keeps_the_panel_across_its_new_title(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "panel-query")
    (service,) = rep["services"]
    panels = {p["panel"]: p for p in service["panels"]}
    acquire = panels["redisLock: acquire latency p99"]
    assert acquire["status"] == "changed" and acquire["renamed_from"] == "redisLock: acquire latency p95"
    assert "histogram_quantile(0.95," in acquire["old_queries"][0]
    assert "histogram_quantile(0.99," in acquire["new_queries"][0]
    assert {p["status"] for p in service["panels"]} == {"changed"}
    assert [c["kind"] for c in changes(rep, "LockAcquireLatencyHigh", "redisLock")["changes"]] == [
        "condition", "annotation"]


def test_an_slo_objective_change_is_expressed_as_error_budget_minutes(builds, monkeypatch):
    rep = report(builds, monkeypatch, "base", "slo-objective")
    (service,) = rep["services"]
    assert service["slos"] == [{"status": "changed", "slo": "api-latency",
                                "old": {"objective": 0.99, "window": "30d", "error_budget_minutes": 432.0},
                                "new": {"objective": 0.995, "window": "30d", "error_budget_minutes": 216.0}}]
    # Tighter objective: the burn thresholds halve and the traffic floors double; not a loosening.
    assert rep["risks"] == []


def test_identical_builds_have_nothing_to_say(builds, monkeypatch):
    result = diff(builds, monkeypatch, "base", "base", "--fail-on", "change")
    assert result.exit_code == 0 and "No changes" in result.stdout


@pytest.mark.parametrize(("new", "fail_on", "code"), [
    ("threshold-loosened", "risk", 1), ("receiver-changed", "risk", 0), ("receiver-changed", "change", 1),
    ("threshold-loosened", None, 0)])
def test_fail_on_sets_the_exit_code(builds, monkeypatch, new, fail_on, code):
    result = diff(builds, monkeypatch, "base", new, *(["--fail-on", fail_on] if fail_on else []))
    assert result.exit_code == code, result.stderr


def test_markdown_is_one_comment_marker_risks_first_one_table_per_service(builds, monkeypatch, tmp_path):
    """Two services changed: the marker opens the comment, risks come before the tables, one table each."""
    root = builds.root
    for side, maple, shop in (("two-old", "base", "web"), ("two-new", "alert-removed", "ops")):
        specs = root / "specs" / side
        specs.mkdir(parents=True)
        (specs / "maple.yaml").write_text(SPECS[maple])
        (specs / "shop.yaml").write_text(f"apiVersion: obsgen/v1\nservice: {{name: shop, team: {shop}}}\n"
                                         "executors: [{name: pool, queue_capacity: 50}]\n")
        assert CliRunner().invoke(main, ["build", str(specs), "--out", str(root / side)]).exit_code == 0
    monkeypatch.chdir(root)
    out = CliRunner().invoke(main, ["diff", "two-old", "two-new", "--format", "markdown"]).stdout
    lines = out.splitlines()
    assert lines[0] == "<!-- obsgen-diff -->" and lines[3].startswith("**1 risk flag; 2 services changed")
    headings = [line for line in lines if line.startswith("#### ")]
    assert headings == ["#### Risks (1)", "#### maple-expectation", "#### shop"]
    tables = [i for i, line in enumerate(lines) if line == "| Component | What | Change | Receiver |"]
    assert len(tables) == 2 and all(lines[i + 1] == "|---|---|---|---|" for i in tables)
    rows = [line for line in lines if line.startswith("| pool |")]
    assert rows and all(line.count(" | ") == 3 for line in rows)  # four cells: no pipe leaked from the content
    assert "web-tickets → ops-tickets" in out


def test_an_added_service_is_counted_as_added_not_changed(builds, monkeypatch):
    root = builds.root
    specs = root / "specs" / "plus-shop"
    specs.mkdir(parents=True)
    (specs / "maple.yaml").write_text(SPECS["base"])
    (specs / "shop.yaml").write_text("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\n")
    assert CliRunner().invoke(main, ["build", str(specs), "--out", str(root / "plus-shop")]).exit_code == 0
    monkeypatch.chdir(root)
    out = CliRunner().invoke(main, ["diff", builds("base"), "plus-shop"]).stdout
    assert out.startswith("obsgen diff: no risk flags; 1 service added: ")


def test_text_from_the_outputs_cannot_break_the_markdown(builds, monkeypatch):
    """A description with pipes, HTML, backticks and emphasis stays inside its code span and its cell."""
    out = diff(builds, monkeypatch, "reader", "hostile", "--format", "markdown").stdout
    (row,) = [line for line in out.splitlines() if line.startswith("| ocid-l2-hit-ratio |")]
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four cells
    assert "``Pipes \\| and <b>tags</b>, `ticks`, *stars* and [links](x) in \\| a share" in row
    outside_code = re.sub(r"(`+).*?\1", "", row)
    assert not re.search(r"<b>|\*stars\*|\[links\]", outside_code)


def test_text_format_golden(builds, monkeypatch):
    result = diff(builds, monkeypatch, "base", "severity-downgraded")
    path = GOLDEN / "severity-downgraded.txt"
    if UPDATE:
        path.write_text(result.stdout)
    assert result.exit_code == 0 and result.stdout == path.read_text(), f"regenerate with OBSGEN_UPDATE_GOLDEN=1: {path}"


# --------------------------------------------------------------------------- routing against Alertmanager


@pytest.mark.slow
@pytest.mark.parametrize("name", ["base", "severity-info", "receiver-changed"])
def test_receivers_agree_with_amtool(builds, tmp_path, name):
    """Each alert's receivers as obsgen diff walks the tree = what amtool says of the pasted configuration."""
    from obsgen.diff.outputs import load
    from obsgen.diff.routing import receivers

    service = load(builds.root / builds(name)).services["maple-expectation"]
    routes = yaml.safe_load((builds.root / name / "maple-expectation" / "alertmanager" / "routes.yaml").read_text())
    names = sorted({r["receiver"] for r in routes["routes"][0]["routes"]} | {"default"})
    config = {"route": {"receiver": "default", "routes": routes["routes"]},
              "receivers": [{"name": n} for n in names], "inhibit_rules": routes["inhibit_rules"]}
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    seen = set()
    for alert in service.alerts:
        labels = {**alert.label_map, "alertname": alert.name}
        if tuple(sorted(labels.items())) in seen:
            continue
        seen.add(tuple(sorted(labels.items())))
        proc = subprocess.run([tool("amtool"), "config", "routes", "test", "--config.file", "alertmanager.yml",
                               *(f"{k}={v}" for k, v in labels.items())], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        ours = ",".join(r or "default" for r in receivers(service.routes, labels))
        assert proc.stdout.strip() == ours, (alert.name, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------- invalid input


def test_a_directory_that_is_not_an_output_is_invalid_input(builds, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(builds.root)
    result = CliRunner().invoke(main, ["diff", builds("base"), str(tmp_path / "empty")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"obsgen: {tmp_path / 'empty'}: not an obsgen output directory (no <service>/"
                             ".obsgen-manifest.json in it); give the --out of `obsgen build`, e.g. generated\n")


def test_a_broken_rule_file_is_invalid_input_located_in_the_file(builds, tmp_path, monkeypatch):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(builds.root / builds("base"), broken)
    rules = broken / "maple-expectation" / "prometheus" / "rules.yaml"
    rules.write_text("groups:\n- name: x\n  rules: [\n")
    result = CliRunner().invoke(main, ["diff", str(builds.root / "base"), str(broken)])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"obsgen: {rules}:4:1: not valid YAML") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [("one",), ("a", "b", "c"), ("a", "b", "--base-code")])
def test_wrong_arguments_are_usage_errors(args):
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code == 2 and result.stderr.startswith("Usage: obsgen diff [OPTIONS]")


HTTP_SPEC = """\
apiVersion: obsgen/v1
service: {name: parcel, team: web}
http:
  - name: api
    error_ratio_max: 0.01
    routes: [{route: /track, error_ratio_max: 0.05}]
"""


def test_the_catch_all_route_reads_as_every_other_route_and_risk_code_stays_code(tmp_path, spec_from):
    """The HTTP rule for the routes no other rule names carries an empty route label: a reviewer reads
    "every other uri", not "uri="; a risk's metric and thresholds are code spans, not escaped text."""
    build_into(tmp_path / "old", spec_from(HTTP_SPEC))
    build_into(tmp_path / "new", spec_from(HTTP_SPEC.replace("error_ratio_max: 0.01", "error_ratio_max: 0.03")))
    result = CliRunner().invoke(main, ["diff", str(tmp_path / "old"), str(tmp_path / "new"), "--format", "markdown"])
    assert result.exit_code == 0, result.stderr
    assert "`HttpErrorRateHigh (api, every other uri)`: threshold on `route:http_request_errors:ratio_rate5m` " \
           "loosened 3×: `> 0.01` → `> 0.03`" in result.stdout
    assert "uri=)" not in result.stdout
