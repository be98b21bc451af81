"""The pipeline: spec → components → rules → rendered files, for one service.

Everything here is pure: it returns file contents keyed by path relative to the
output directory, and the writer decides how they reach the disk.
"""

from __future__ import annotations

from itertools import groupby

from obsgen.components.base import Alert
from obsgen.render import promtool_tests
from obsgen.render import rules as rules_renderer
from obsgen.spec import Spec
from obsgen.writer import Output

RULES_FILE = "prometheus/rules.yaml"
TESTS_FILE = "prometheus/rules.test.yaml"


def rule_groups(spec: Spec) -> list[rules_renderer.RuleGroup]:
    groups = []
    for kind, components in groupby(spec.components, key=lambda c: c.kind):
        groups += rules_renderer.group(spec.service.name, kind.key, [kind.rules(c) for c in components])
    return groups


def render(spec: Spec) -> list[Output]:
    """All files of one service, with paths relative to the output directory."""
    groups = rule_groups(spec)
    alerts: list[Alert] = [r for g in groups for r in g.rules if isinstance(r, Alert)]
    base = spec.service.name
    return [
        Output(f"{base}/{RULES_FILE}", rules_renderer.render(groups)),
        Output(f"{base}/{TESTS_FILE}", promtool_tests.render(alerts, "rules.yaml")),
    ]
