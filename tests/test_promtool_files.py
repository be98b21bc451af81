"""How the generated promtool tests are laid out: a test file per component, named after it, never shared."""

from __future__ import annotations

import pytest
import yaml

from conftest import build_into, rendered, run_unit_tests

CLASHING = """
apiVersion: obsgen/v1
service: {name: shop, team: t}
caches:
  - {name: equipment}
  - {name: Equipment}
  - {name: equipment.2}
  - {name: "equip:ment"}
  - {name: equip-ment}
breakers:
  - {name: nexonApi}
  - {name: nexonApi.1m}
"""


def _tested_components(files: dict[str, str]) -> dict[str, set[str]]:
    """Per test file, the components whose alerts it expects to fire."""
    out = {}
    for path, text in files.items():
        if path.endswith(".test.yaml"):
            out[path.rsplit("/", 1)[1]] = {a["exp_labels"]["component"] for t in yaml.safe_load(text)["tests"]
                                           for c in t["alert_rule_test"] for a in c["exp_alerts"]}
    return out


def test_names_that_would_share_a_file_keep_their_tests_apart_and_the_earlier_keeps_its_name(spec_from):
    """Case twins (one file on macOS and Windows), ':' against '-', and a name ending like a clock
    (``nexonApi`` on its 1m clock and ``nexonApi.1m``) once overwrote each other's tests without a word."""
    files = rendered(spec_from(CLASHING))
    tested = _tested_components(files)
    assert len({name.casefold() for name in tested}) == len(tested)
    assert tested["rules.caches.equipment.test.yaml"] == {"equipment"}
    assert tested["rules.caches._2.test.yaml"] == {"Equipment"}
    assert tested["rules.caches.equipment.2.test.yaml"] == {"equipment.2"}
    assert tested["rules.caches.equip-ment.test.yaml"] == {"equip:ment"}
    assert tested["rules.caches._5.test.yaml"] == {"equip-ment"}
    assert tested["rules.breakers.nexonApi.test.yaml"] == {"nexonApi"}
    assert tested["rules.breakers._2.test.yaml"] == {"nexonApi.1m"}
    copies = sorted(p.rsplit("/", 1)[1] for p in files if "/prometheus/components/" in p)
    # seven components and the service's own: a copy per clock whose tests check only some of their rules
    assert len({c.casefold() for c in copies}) == len(copies) == 18
    for path, text in files.items():
        if path.endswith(".test.yaml"):
            folder = path.rsplit("/", 1)[0]
            assert all(f"{folder}/{f}" in files for f in yaml.safe_load(text)["rule_files"]), path


READS_A_RECORDING = """
apiVersion: obsgen/v1
service: {name: shop, team: t}
caches:
  - {name: catalog}
custom:
  - name: catalog-hits
    description: The catalog cache's hit ratio, as the cache's own recording computes it.
    expr: min(instance_cache:hit:ratio_rate5m{cache="catalog"})
    op: "<"
    threshold: 0.5
    for: 5m
    unit: percentunit
    tests:
      - name: a third of lookups hit
        series:
          - {series: 'cache_gets_total{job="shop", cache="catalog", result="hit", instance="a"}', values: '0+10x80'}
          - {series: 'cache_gets_total{job="shop", cache="catalog", result="miss", instance="a"}', values: '0+20x80'}
        at: 15m
        fires: true
        value: 0.3333333333333333
      - name: two thirds hit
        series:
          - {series: 'cache_gets_total{job="shop", cache="catalog", result="hit", instance="a"}', values: '0+20x80'}
          - {series: 'cache_gets_total{job="shop", cache="catalog", result="miss", instance="a"}', values: '0+10x80'}
        at: 15m
        fires: false
"""


@pytest.mark.promtool
def test_a_signal_reading_another_components_recording_is_tested_with_that_components_rules(spec_from, tmp_path):
    """A custom signal may read a cache's recording: its tests load the cache's rules first, or the recording
    would never exist in promtool and the firing case would fail (as it does with the cache's copy left out)."""
    build_into(tmp_path, spec_from(READS_A_RECORDING))
    prom = tmp_path / "shop" / "prometheus"
    test = prom / "rules.custom.catalog-hits.test.yaml"
    assert yaml.safe_load(test.read_text())["rule_files"] == ["components/caches.catalog.yaml",
                                                              "components/custom.catalog-hits.yaml"]
    result = run_unit_tests(prom)
    assert result.returncode == 0, result.stdout + result.stderr
    test.write_text(test.read_text().replace("- components/caches.catalog.yaml\n", ""))
    assert run_unit_tests(prom).returncode != 0


PACED = """
apiVersion: obsgen/v1
service: {name: shop, team: t}
caches:
  - name: catalog
    alerts:
      CacheHitRateLow: {for: 20m}
      CacheStampede: {for: 1m}
"""


def test_a_long_for_is_evaluated_every_minute_on_samples_every_15s_and_a_short_one_every_15s(spec_from):
    """promtool pays per evaluation: a story outlasting a 20-minute ``for`` needs no evaluation every 15 s to
    prove it, one a minute proves the same (the samples, and so every rate window, stay as they were)."""
    files = rendered(spec_from(PACED))
    by_clock = {path.rsplit("/", 1)[1]: yaml.safe_load(text) for path, text in files.items()
                if path.rsplit("/", 1)[1].startswith("rules.caches.catalog.")}
    assert {name: doc["evaluation_interval"] for name, doc in by_clock.items()} == {
        "rules.caches.catalog.test.yaml": "15s", "rules.caches.catalog.1m.test.yaml": "1m"}
    checked = {name: {c["alertname"] for t in doc["tests"] for c in t["alert_rule_test"]}
               for name, doc in by_clock.items()}
    assert checked["rules.caches.catalog.test.yaml"] == {"CacheStampede"}
    assert "CacheHitRateLow" in checked["rules.caches.catalog.1m.test.yaml"]
    assert {t["interval"] for doc in by_clock.values() for t in doc["tests"]} == {"15s"}
