"""How the generated promtool tests are laid out: a test file per component, named after it, never shared."""

from __future__ import annotations

import yaml

from conftest import rendered

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
    assert len({c.casefold() for c in copies}) == len(copies) == 8  # seven components and the service's own
    for path, text in files.items():
        if path.endswith(".test.yaml"):
            folder = path.rsplit("/", 1)[0]
            assert all(f"{folder}/{f}" in files for f in yaml.safe_load(text)["rule_files"]), path
