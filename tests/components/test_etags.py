"""E-Tag runbooks: complete pages with at most three first checks, queries that promtool evaluates to the truth of
a known world (a route whose 304 series never appeared among them), and nothing of the integration report's story
on a kind page."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsgen.components import etag
from obsgen.spec import load

from .runbook_pages import FOREIGN, blocks, check_page, evaluate, pages, section

ROOT = Path(__file__).resolve().parents[2]
SPECS = {"python": ROOT / "tests/specs/valid/etag-python.yaml",  # routes by resource_type: object-types, object-type
         "micrometer": ROOT / "tests/specs/valid/etag-micrometer.yaml"}  # one route, /api/v1/characters/{ocid}
ROUTES = {"python": ("py-etags", "resource_type", {"object-types", "object-type"}),
          "micrometer": ("spring-etags", "route", {"/api/v1/characters/{ocid}"})}
JOB = 'job="py-etags"'
WORLD = {  # object-types answers every conditional request 200 (no hit series was ever created); object-type 1 in 2
    f'etag_requests_total{{{JOB}, resource_type="object-types", result="miss", instance="a:1"}}': "0+3x160",
    f'etag_requests_total{{{JOB}, resource_type="object-type", result="miss", instance="a:1"}}': "0+1x160",
    f'etag_requests_total{{{JOB}, resource_type="object-type", result="hit", instance="a:1"}}': "0+1x160",
    f'etag_requests_total{{{JOB}, resource_type="other", result="hit", instance="a:1"}}': "0+9x160",
}
TYPES, TYPE = '{instance="a:1", resource_type="object-types"}', '{instance="a:1", resource_type="object-type"}'


@pytest.fixture(scope="module")
def python():
    return pages(load(SPECS["python"]), etag.KIND)


@pytest.mark.parametrize("profile", sorted(SPECS))
def test_every_page_is_complete_short_on_top_and_tells_no_other_system_s_story(profile):
    etags = pages(load(SPECS[profile]), etag.KIND)
    assert set(etags) == {"ETagNeverNotModified", "ETagEffectivenessLow"}
    job, label, routes = ROUTES[profile]
    for alert, page in etags.items():  # the integration report's tag and TTL figures are its own
        check_page(alert, page, job=job, identity=label, names=routes, raw_labels=set(),
                   foreign=FOREIGN + ("de613aba", "300 s", "600 s"))


def test_never_page_counts_conditional_requests_and_the_304s_among_them(python, tmp_path):
    answers, not_modified = blocks(section(python["ETagNeverNotModified"], "Diagnosis"), "promql")
    evaluate(tmp_path, WORLD, [  # in the alert's window, 15 minutes
        (answers, {TYPES: 3 * 60, TYPE: 2 * 60}),
        (not_modified, {TYPE: 60}),  # object-types has no 304 series at all: no row
    ], at="30m", interval="15s")
    assert "No series at all means not one 304 was counted" in section(python["ETagNeverNotModified"], "Diagnosis")


def test_effectiveness_page_gives_the_304_share_and_the_conditional_traffic(python, tmp_path):
    ratio, conditional = blocks(section(python["ETagEffectivenessLow"], "Diagnosis"), "promql")
    evaluate(tmp_path, WORLD, [
        (ratio, {TYPES: 0, TYPE: 0.5}),  # no 304 series yet is no 304: a share of 0, not a missing row
        (conditional, {TYPES: 0.2, TYPE: 2 / 15}),  # conditional requests per second
    ], at="30m", interval="15s")
    assert "A route at 0 with conditional traffic" in section(python["ETagEffectivenessLow"], "Diagnosis")


def test_the_reproduction_is_one_command_for_any_route(python):
    for page in python.values():
        (reproduce,) = blocks(section(page, "Diagnosis"), "bash")
        assert 'curl -si -H "If-None-Match: $TAG" "$URL"' in reproduce


SEPARATE_COUNTERS = """\
apiVersion: obsgen/v1
service: {name: shop, team: web}
etags:
  - name: catalog
    min_conditional_requests: 7570
    never_window: 1h25m
    metrics:
      not_modified: etag_not_modified_total
      modified: etag_modified_total
"""


@pytest.mark.promtool
def test_separate_304_and_200_counters_count_conditional_requests_before_the_first_304_exists(tmp_path):
    """A spec naming the 304s and the 200s as counters of their own has no conditional counter: the never rule
    counts 304s + 200s, and the 304 counter has no series until its first 304 (prometheus_client), which must
    add 0 rather than empty the sum. The generated story with no 304 series at all proves it fires."""
    from conftest import build_into, run_unit_tests
    from obsgen.spec import parse

    build_into(tmp_path, parse(SEPARATE_COUNTERS, "shop.yaml"))
    prom = tmp_path / "shop" / "prometheus"
    rules = (prom / "rules.yaml").read_text()
    assert "etag_requests_total" not in rules  # the profile's conditional counter is not what this app exports
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout + result.stderr
