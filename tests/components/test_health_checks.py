"""Health-check runbooks: complete pages with at most three first checks, queries that promtool evaluates to the
truth of a known world (each instance's check, its flips, its degraded mode, the targets that went silent), the
health endpoint of the component to ask, and no other system's story."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsgen.components import health
from obsgen.spec import load, parse

from .runbook_pages import FOREIGN, blocks, check_page, evaluate, only_kinds, pages, section, steps

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "tests/specs/valid/health-checks-python.yaml"  # a database check with cache-only mode, a liveness one
SPRING = ROOT / "tests/specs/valid/health-checks-spring.yaml"  # Spring contributors, UP=3, a manual read-only mode
JOB = 'job="health-python"'
# The seed systems with health checks and degraded modes (002 AniVault, 004 Table Order), in their own words.
SEEDS = FOREIGN + ("AniVault", "Table Order", "TMDB", "get_resilience_status", "force_recovery_check",
                   "disable_cache_only_mode", "anivault.log")


def check(pages_: dict[str, str], job: str, identity: str, names: set[str], modes: set[str],
          foreign: tuple[str, ...] = SEEDS) -> None:
    for alert, page in pages_.items():
        check_page(alert, page, job=job, identity=identity, names=names, raw_labels={"mode"}, foreign=foreign,
                   others={"degraded_mode_active": ("mode", modes), "up": None})


@pytest.fixture(scope="module")
def python():
    return pages(load(PYTHON), health.KIND)


@pytest.fixture(scope="module")
def spring():
    return pages(load(SPRING), health.KIND)


def test_every_page_is_complete_short_on_top_and_tells_no_other_system_s_story(python, spring):
    assert set(python) == {"HealthCheckFailing", "HealthCheckSilent", "DegradedModeActive",
                           "DegradedModeNotRecovering"}
    assert set(spring) == {"HealthCheckFailing", "DegradedModeActive", "DegradedModeNotRecovering"}
    check(python, "health-python", "check", {"database", "liveness"}, {"cache_only"})
    check(spring, "health-spring", "contributor", {"db", "diskSpace"}, {"read_only"})


def test_failing_page_queries_give_each_instance_s_result_its_flips_and_its_mode(python, tmp_path):
    status, flips, mode = blocks(section(python["HealthCheckFailing"], "Diagnosis"), "promql")
    world = {  # instance a's database check fails from 10m on and it switches to cache-only at 11m; b stays well
        f'health_check_status{{{JOB}, check="database", instance="a:1"}}': "1x10 0x10",
        f'health_check_status{{{JOB}, check="database", instance="b:1"}}': "1x20",
        # liveness only ever reports success: HealthCheckSilent's, not this page's
        f'health_check_status{{{JOB}, check="liveness", instance="a:1"}}': "1x20",
        f'health_check_status{{{JOB}, check="other", instance="a:1"}}': "0x20",  # not a check of this page
        f'degraded_mode_active{{{JOB}, mode="cache_only", instance="a:1"}}': "0x11 1x9",
        f'degraded_mode_active{{{JOB}, mode="cache_only", instance="b:1"}}': "0x20",
    }
    evaluate(tmp_path, world, [
        (status, {'{instance="a:1", check="database"}': 0, '{instance="b:1", check="database"}': 1}),
        (flips, {'{instance="a:1", check="database"}': 1, '{instance="b:1", check="database"}': 0}),
        (mode, {'{instance="a:1", mode="cache_only"}': 1, '{instance="b:1", mode="cache_only"}': 0}),
    ], at="19m")


def test_silent_page_lists_the_targets_that_stopped_reporting_with_their_scrape_status(python, tmp_path):
    page = python["HealthCheckSilent"]
    (targets,) = blocks(section(page, "Diagnosis"), "promql")
    world = {  # both instances stop reporting the liveness check at 10m: a is still scraped, b no longer answers
        f'up{{{JOB}, instance="a:1"}}': "1x20",
        f'up{{{JOB}, instance="b:1"}}': "1x10 0x10",
        f'up{{{JOB}, instance="c:1"}}': "1x20",  # reports another check only: not a target of this one
        f'health_check_status{{{JOB}, check="liveness", instance="a:1"}}': "1x10 stale",
        f'health_check_status{{{JOB}, check="liveness", instance="b:1"}}': "1x10 stale",
        f'health_check_status{{{JOB}, check="database", instance="c:1"}}': "1x20",
    }
    evaluate(tmp_path, world, [(targets, {f'{{{JOB}, instance="a:1"}}': 1, f'{{{JOB}, instance="b:1"}}': 0})],
             at="15m")
    first = section(page, "First checks")
    assert "`up`: 0" in first and "no row at all" in first  # the three answers the query can give, explained


def test_degraded_mode_pages_put_the_mode_next_to_the_check(python, tmp_path):
    world = {  # a's database is back at 10m but a stays in cache-only mode
        f'health_check_status{{{JOB}, check="database", instance="a:1"}}': "0x10 1x10",
        f'health_check_status{{{JOB}, check="liveness", instance="a:1"}}': "1x20",
        f'degraded_mode_active{{{JOB}, mode="cache_only", instance="a:1"}}': "1x20",
    }
    for alert in ("DegradedModeActive", "DegradedModeNotRecovering"):
        mode, status = blocks(section(python[alert], "Diagnosis"), "promql")[:2]
        evaluate(tmp_path, world, [(mode, {'{instance="a:1", mode="cache_only"}': 1}),
                                   (status, {'{instance="a:1", check="database"}': 1})], at="19m")


def test_each_profile_asks_its_own_health_endpoint_for_the_check_that_fired(python, spring):
    # a python spec that names no endpoint or command gets a step in words: no route, no client is invented
    python_diagnosis = section(python["HealthCheckFailing"], "Diagnosis")
    assert blocks(python_diagnosis, "bash") == []
    assert "the spec names no endpoint or\n   command for this check" in python_diagnosis
    assert not any(word in python_diagnosis for word in ("/health", "psql", "SELECT 1"))
    spring_diagnosis = section(spring["HealthCheckFailing"], "Diagnosis")
    # Actuator's path for one contributor, named by the alert's label (the spec's `label: contributor`)
    assert blocks(spring_diagnosis, "bash") == ["curl -s http://<instance>/actuator/health/<contributor>"] * 2
    assert "`<contributor>` its `contributor` label" in spring_diagnosis
    assert "show-components" in spring_diagnosis  # why Spring may answer 404 for one component
    assert "(3 passes, lower fails)" in spring_diagnosis


SAID = """
apiVersion: obsgen/v1
service: {name: s, team: t, profile: python}
health_checks:
  - {name: ready, endpoint: /health/ready, engine: postgresql, port: 5433, error_status: false}
  - {name: local, command: get_database_health_status(), engine: sqlite}
  - name: detailed
    endpoint: /health/detailed
    error_status: true
    probe: {selector: {job: blackbox}, target: "http://s:8092/health/detailed"}
"""


def test_a_check_s_endpoint_command_probe_and_engine_are_what_its_page_tells():
    page = pages(parse(SAID, "said.yaml"), health.KIND)["HealthCheckFailing"]
    diagnosis, impact = section(page, "Diagnosis"), section(page, "Impact")
    assert blocks(diagnosis, "bash") == ["curl -s -i http://<instance>/health/ready",
                                         "curl -s -i http://s:8092/health/detailed"]
    assert "Call `get_database_health_status()` inside the running process" in diagnosis
    assert ("`psql -h <db-host> -p 5433 -U <db-user> -d <database> -c 'SELECT 1'`" in diagnosis
            and "`sqlite3 <database file>" in diagnosis)
    assert "probe_http_status_code{job=\"blackbox\", instance=\"http://s:8092/health/detailed\"}" in diagnosis
    assert "`/health/ready` answers 200 while the check fails" in impact
    assert "`/health/detailed` answers an error status while the check fails" in impact
    # `local` has no endpoint: nothing the spec names steers traffic by it, and no rotation is promised
    assert "the spec names no endpoint serving the\n  check that anything could read to steer traffic away" in impact
    assert "mysql" not in page and "redis-cli" not in page and "actuator" not in page.lower()


def test_first_checks_of_a_failing_check_follow_its_degraded_mode_only_when_it_has_one(python):
    assert "degraded mode (`cache_only`)" in section(python["HealthCheckFailing"], "First checks")
    plain = pages(parse("apiVersion: obsgen/v1\nservice: {name: s, team: t, profile: python}\n"
                        "health_checks:\n  - {name: cache, interval: 10s}\n", "plain.yaml"), health.KIND)
    first = steps(section(plain["HealthCheckFailing"], "First checks"))
    assert len(first) == 3 and not any("degraded" in s for s in first)
    assert len(blocks(section(plain["HealthCheckFailing"], "Diagnosis"), "promql")) == 2  # no mode to query


def test_a_manual_mode_is_told_to_be_switched_off_by_a_person(spring):
    page = spring["DegradedModeNotRecovering"]
    assert "A mode only a person switches off (`read_only`)" in section(page, "What it means")
    assert "recovery check interval" not in section(page, "What it means")


def test_queries_keep_the_cluster_where_the_rules_do():
    fleet = pages(parse("apiVersion: obsgen/v1\nservice: {name: s, team: t, profile: python, cluster_label: "
                        "cluster}\nhealth_checks:\n  - name: db\n    degraded_mode: {name: cache_only}\n"
                        "  - {name: live, silence_is_failure: true}\n", "fleet.yaml"), health.KIND)
    status, flips, mode = blocks(section(fleet["HealthCheckFailing"], "Diagnosis"), "promql")
    assert status.startswith("min by (cluster, instance, check)")
    assert flips.startswith("sum by (cluster, instance, check)")
    assert mode.startswith("max by (cluster, instance, mode)")
    (targets,) = blocks(section(fleet["HealthCheckSilent"], "Diagnosis"), "promql")
    assert "and on (cluster, instance)" in targets


def test_the_seed_systems_pages_fit_them():
    """AniVault (seed 002): a SQLite database check with cache-only mode; Table Order (seed 004): a readiness check
    that answers 200 with `not_ready`, and a liveness probe."""
    anivault = pages(only_kinds(ROOT / "specs/anivault.yaml", "health_checks", "breakers"), health.KIND)
    assert set(anivault) == {"HealthCheckFailing", "DegradedModeActive", "DegradedModeNotRecovering"}
    assert "degraded mode `cache_only`, which the app leaves by itself (it tries every 1m)" in anivault[
        "DegradedModeNotRecovering"]
    check(anivault, "anivault", "check", {"database"}, {"cache_only"}, foreign=FOREIGN + ("Table Order",))
    table_order = pages(only_kinds(ROOT / "specs/table-order.yaml", "health_checks"), health.KIND)
    assert set(table_order) == {"HealthCheckFailing", "HealthCheckSilent"}
    assert "The endpoint answers 200 even when the check fails" in section(table_order["HealthCheckFailing"],
                                                                           "Diagnosis")  # 004:145-162
    check(table_order, "table-order", "check", {"database", "liveness"}, set(),
          foreign=FOREIGN + ("AniVault", "TMDB", "get_resilience_status", "cache-only"))


def test_a_check_s_own_past_incidents_are_told_on_its_pages_only():
    told = "2024-03-02: the database disk filled up; cache-only mode held for 40 minutes."
    spec = parse("apiVersion: obsgen/v1\nservice: {name: s, team: t, profile: python}\nhealth_checks:\n"
                 f"  - name: database\n    degraded_mode: {{name: cache_only}}\n    history: ['{told}']\n"
                 "  - {name: liveness, silence_is_failure: true}\n", "history.yaml")
    mine = pages(spec, health.KIND)
    assert (f"Past incidents of health check `database` (from the spec's `history`):\n\n- {told}"
            in section(mine["DegradedModeActive"], "What it means"))
    assert told not in mine["HealthCheckSilent"]  # the liveness check's page: not its history
