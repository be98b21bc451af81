"""Health-check runbook pages say what the spec says about the check: its engine's words and tools, its degraded
mode's own controls, the alerts the service really emits, and who publishes the metrics the page reads."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT, SPECS, build_into, load_spec, output_sets, rendered, run_unit_tests, unit_tests
from obsgen import pipeline
from obsgen.components import KINDS
from obsgen.model.promql import render

ROOT_SPECS = {p.stem: p for p in SPECS}
HEALTH_PAGES = ("HealthCheckFailing", "HealthCheckSilent", "DegradedModeActive", "DegradedModeNotRecovering")
KNOWN_ALERTS = {d.name for kind in KINDS for d in kind.alerts}


def pages(spec) -> dict[str, str]:
    """Runbook pages of a loaded spec: alert name → Markdown."""
    return {p.rsplit("/", 1)[1][:-3]: t for p, t in rendered(spec).items() if "/runbooks/" in p}


def health_pages(spec) -> dict[str, str]:
    return {name: text for name, text in pages(spec).items() if name in HEALTH_PAGES}


SQLITE = """
apiVersion: obsgen/v1
service: {name: vault, team: media, profile: python}
health_checks:
  - name: database
    command: check_db()
    engine: sqlite
    interval: 30s
    failure_threshold: 3
    recovery_threshold: 2
    degraded_mode: {name: cache_only, recovery_check_interval: 60s}
"""
NETWORK_WORDS = ("credentials", "connection refused", "authentication", "fail over", "failover", "out of rotation",
                 "network path", "load balancer", "psql", "redis-cli")


@pytest.mark.parametrize("source", ["committed anivault", "a minimal sqlite spec"])
def test_a_sqlite_check_without_endpoint_gets_no_network_database_words(source, spec_from):
    spec = load_spec(ROOT_SPECS["anivault"]) if source == "committed anivault" else spec_from(SQLITE)
    for name, text in health_pages(spec).items():
        lowered = text.lower()
        assert not [w for w in NETWORK_WORDS if w in lowered], name
    failing = health_pages(spec)["HealthCheckFailing"]
    assert "sqlite3 <database file> 'PRAGMA quick_check'" in failing
    assert "database is locked" in failing


def test_anivault_pages_print_the_seeds_own_controls_for_cache_only_mode():
    """002:90-99 get_resilience_status() (cache_only_reason), 002:105-108 force_recovery_check(), 002:283-284
    metadata_cache.disable_cache_only_mode(): set in the spec, printed where on-call needs them."""
    found = health_pages(load_spec(ROOT_SPECS["anivault"]))
    stuck = found["DegradedModeNotRecovering"]
    assert "Trigger the application's recovery check by hand: `force_recovery_check()`" in stuck
    assert "Switch the mode off by hand: `metadata_cache.disable_cache_only_mode()`" in stuck
    assert "`get_resilience_status()` (inside the running process) says" in stuck
    assert "`get_resilience_status()`" in found["DegradedModeActive"]
    assert "`force_recovery_check()`" in found["HealthCheckFailing"]
    assert "admin endpoint" not in stuck


def test_without_the_mode_controls_the_pages_say_them_in_words(spec_from):
    stuck = health_pages(spec_from(SQLITE))["DegradedModeNotRecovering"]
    assert "its own way to force a recovery check, if it has one" in stuck
    assert "the application's own way to disable the mode" in stuck


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_health_pages_name_only_alerts_the_service_emits(path):
    """User, audit and Table Order once pointed at CircuitBreakerOpen and RetryExhaustionHigh, which they lack."""
    for merged, _ in output_sets(load_spec(path)):
        emitted = {a.name for a in pipeline.build(merged).alerts}
        for name, text in health_pages(merged).items():
            named = {w for w in re.findall(r"\b[A-Z][A-Za-z]+\b", text) if w in KNOWN_ALERTS}
            assert named <= emitted, (name, named - emitted)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_health_pages_name_only_hosts_of_engines_the_checks_have(path):
    for merged, _ in output_sets(load_spec(path)):
        engines = {c.spec.engine for c in pipeline.build(merged).components if c.kind == "health_checks"}
        for name, text in health_pages(merged).items():
            if "redis" not in engines:
                assert "<redis-host>" not in text, name
            if not engines & {"postgresql", "mysql"}:
                assert "<db-host>" not in text, name


def test_table_order_probe_by_hand_names_its_database_from_the_seed():
    """004:355: DATABASE_URL=postgresql+asyncpg://user:password@localhost:5432/tableorder."""
    for merged, _ in output_sets(load_spec(ROOT_SPECS["table-order"])):
        text = health_pages(merged)["HealthCheckFailing"]
        assert "psql -h <db-host> -p 5432 -U <db-user> -d tableorder -c 'SELECT 1'" in text
        assert "<database>" not in text


def test_a_probed_check_page_debugs_the_target_it_knows_and_names_the_blackbox_exporter_as_publisher():
    text = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckFailing"]
    assert ("probe?module=http_2xx&target=http://audit-service:8092/health/detailed&debug=true" in text
            and "<URL>" not in text)
    for metric in ("probe_success", "probe_http_status_code"):
        (line,) = [line for line in text.splitlines() if line.startswith(f"- `{metric}`:")]
        assert "published by the Prometheus blackbox exporter" in line and "app-defined" not in line


def test_a_probed_check_with_silence_is_failure_fires_health_check_silent_on_the_probe_series():
    """Audit's detailed check: without the blackbox job nothing else would fire (ComponentMetricsMissing watches
    only what the app exports). The rule is absent() of the probe's own series."""
    model = pipeline.build(load_spec(ROOT_SPECS["audit-service"]))
    (silent,) = [a for a in model.alerts if a.name == "HealthCheckSilent" and a.labels.get("check") == "detailed"]
    assert silent.labels["check"] == "detailed"
    assert render(silent.expr) == ('absent(probe_success{job="blackbox", '
                                   'instance="http://audit-service:8092/health/detailed"})')
    page = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckSilent"]
    assert "the service may be fine, but its check is unwatched" in page


TWO_SILENT = """
apiVersion: obsgen/v1
service: {name: shop, team: web, profile: python}
health_checks:
  - name: liveness
    interval: 10s
    silence_is_failure: true
  - name: detailed
    endpoint: /health/detailed
    interval: 30s
    silence_is_failure: true
    probe: {selector: {job: blackbox}, target: "http://shop:8080/health/detailed"}
"""


@pytest.mark.promtool
def test_two_checks_whose_silence_is_failure_get_generated_tests_that_promtool_passes(spec_from, tmp_path):
    """Each absent() rule fires in every test entry without its series: the stories of one check show the other's
    series present, so each story is about its own rule (once, audit's two silent checks failed each other's)."""
    build_into(tmp_path, spec_from(TWO_SILENT))
    folder = tmp_path / "shop" / "prometheus"
    files = unit_tests(folder)
    assert files
    result = run_unit_tests(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any("HealthCheckSilent" in (folder / name).read_text() for name in files)


def test_a_degraded_modes_max_duration_is_told_as_the_alerts_assumed_limit_not_the_apps_behaviour():
    """AniVault's guide sets no limit on cache-only mode (002:258: it lasts until the database recovers): the 30m is
    DegradedModeNotRecovering's own limit, and the spec lists it among the check's assumptions."""
    for name, text in health_pages(load_spec(ROOT_SPECS["anivault"])).items():
        assert "for at most 30m" not in text, name
        assert "`DegradedModeNotRecovering` assumes the mode should not last over 30m" in text, name
        assert "the alert's limit, not the app's" in text, name
        assumed = text.split("from the spec's `assumptions`", 1)[1]
        assert "max\\_duration" in assumed.split("<!-- END GENERATED", 1)[0], name


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}", 1)[1].split("<!-- END GENERATED", 1)[0]


def test_a_probed_checks_first_mitigation_follows_what_the_endpoint_answered():
    """Audit's detailed check answered 500 (001:137): a crashing handler, fixed in the app (logs, roll back), not by
    restarting a database the page says is OMS's; only a 503 points at the dependency, and then at its owners."""
    text = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckFailing"]
    first = _section(text, "Mitigation").split("\n1. ", 1)[1].split("\n2. ", 1)[0]
    on_500, rest = first.split("On 500", 1)[1].split("On 503", 1)
    assert "roll back" in on_500 and "logs" in on_500 and "database" not in on_500
    assert "its owners restore it" in rest and "OMS's database" in rest


MIXED = """
apiVersion: obsgen/v1
service: {name: shop, team: web, profile: python}
health_checks:
  - name: database
    engine: postgresql
    interval: 30s
  - name: detailed
    endpoint: /health/detailed
    interval: 30s
    probe: {selector: {job: blackbox}, target: "http://shop:8080/health/detailed"}
"""


def test_a_probed_check_s_instance_is_the_probed_url_not_a_process(spec_from):
    found = health_pages(load_spec(ROOT_SPECS["audit-service"]))
    failing = found["HealthCheckFailing"]
    assert "`instance` is the URL the blackbox exporter probes (one series per URL" in failing
    assert "One instance or all" not in failing and "1. What did the endpoint answer?" in failing
    for name in ("HealthCheckFailing", "HealthCheckSilent"):
        assert "for a probed check, the URL the blackbox exporter probes" in found[name], name
    mixed = health_pages(spec_from(MIXED))["HealthCheckFailing"]
    assert "`instance` is the process (for `detailed`, the URL the blackbox exporter probes)" in mixed
    assert "For `detailed`, `instance` is the one probed URL: there is no per-instance view" in mixed


def test_silence_of_a_probed_check_is_not_told_as_a_dead_process_and_the_page_restores_the_probe():
    spec = load_spec(ROOT_SPECS["audit-service"])
    model = pipeline.build(spec)
    for alert in (a for a in model.alerts if a.name == "HealthCheckSilent"):
        assert "the process is gone" not in alert.summary
    mitigation = _section(health_pages(spec)["HealthCheckSilent"], "Mitigation")
    assert "restore the probe: start the blackbox exporter" in mitigation
    assert "put `http://audit-service:8092/health/detailed` back in the job's targets" in mitigation


def test_a_guard_held_back_during_the_outage_is_not_a_first_check_to_look_for(tmp_path):
    """AniVault: CircuitBreakerOpen holds back RetryExhaustionHigh in the written routes, so during a database outage
    on-call would look for an alert that cannot show; the page says so instead of asking for it."""
    spec = load_spec(ROOT_SPECS["anivault"])
    build_into(tmp_path, spec)
    routes = yaml.safe_load((tmp_path / "anivault" / "alertmanager" / "routes.yaml").read_text())
    held = [r for r in routes["inhibit_rules"] if 'alertname="CircuitBreakerOpen"' in r["source_matchers"]
            and any(m.startswith("alertname") and "RetryExhaustionHigh" in m for m in r["target_matchers"])]
    assert held, routes["inhibit_rules"]
    checks = _section(health_pages(spec)["HealthCheckFailing"], "First checks")
    step = checks.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    assert "or [RetryExhaustionHigh]" not in step
    assert "[RetryExhaustionHigh](RetryExhaustionHigh.md) does not show then: Alertmanager" in step


def test_a_degraded_mode_page_asks_for_no_scale_out_or_load_shedding_the_app_may_not_have():
    """AniVault is one process with an in-process cache on SQLite and no load shedding (002)."""
    text = health_pages(load_spec(ROOT_SPECS["anivault"]))["DegradedModeActive"].lower()
    assert "scale out" not in text and "shed load" not in text


def test_an_error_status_endpoint_is_not_said_to_take_instances_out_of_rotation_when_nothing_says_it_is_read():
    """Nothing in seed 001 reads the audit service's /health/detailed: taking instances out of rotation is a guess."""
    impact = _section(health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckFailing"], "Impact")
    (line,) = [line for line in impact.split("\n- ") if "`/health/detailed`" in line]
    assert "the spec does not say whether anything reads it" in line
    assert "the service is down for users" not in line


def test_a_probed_check_s_detection_time_is_told_as_the_blackbox_job_s_probes_not_the_app_s_runs():
    text = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckFailing"]
    (row,) = [line for line in text.splitlines() if line.startswith("| Health check `detailed`")]
    assert "3 probes 30s apart (the blackbox job's scrape interval, not the app's)" in row
    assert "the time the app needs" not in row
    meaning = _section(text, "What it means")
    assert "The blackbox exporter's probe of a health endpoint has failed" in meaning
    assert "the application itself needs" not in meaning


def test_a_check_whose_silence_is_its_failure_gets_no_failing_rule_that_could_never_fire():
    """Audit's liveness check only ever reports success (silence_is_failure): HealthCheckFailing on its value could
    never fire, so only HealthCheckSilent watches it and its page says why; the probed check keeps both."""
    spec = load_spec(ROOT_SPECS["audit-service"])
    fired = {(a.name, a.component) for a in pipeline.build(spec).alerts}
    assert ("HealthCheckSilent", "liveness") in fired and ("HealthCheckFailing", "liveness") not in fired
    assert ("HealthCheckFailing", "detailed") in fired
    assert "no `HealthCheckFailing` rule watches the value of such a check" in health_pages(spec)["HealthCheckSilent"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_health_pages_end_a_sentence_before_a_step_s_next_paragraph(path):
    """AniVault's stuck-mode page once ran "the check's own report:" straight into "Call …" on the next line."""
    for name, text in health_pages(load_spec(path)).items():
        lines = text.splitlines()
        glued = [(a, b) for a, b in zip(lines, lines[1:]) if a.rstrip().endswith(":") and b.strip()[:1].isupper()
                 and b.startswith("   ") and not b.lstrip().startswith(("`", "|", "-", "#", "<"))]
        assert not glued, (name, glued)


def test_silent_page_says_once_per_cluster_only_where_the_rule_compares_a_cluster(spec_from):
    bare = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckSilent"]
    assert "cluster" not in _section(bare, "Alert behaviour")
    clustered = health_pages(spec_from(TWO_SILENT.replace("profile: python}", "profile: python, cluster_label: region}")))
    assert "once per check and cluster (its `region` label)" in clustered["HealthCheckSilent"]


def test_a_failing_page_links_the_silent_alert_in_its_related_alerts_when_the_service_emits_it():
    text = health_pages(load_spec(ROOT_SPECS["audit-service"]))["HealthCheckFailing"]
    assert "emits no related alerts" not in text
    assert "Related alerts of this service: [HealthCheckSilent](HealthCheckSilent.md)" in text
