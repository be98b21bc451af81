"""The pipeline: spec → components → rules → rendered files, for one service.

Everything here is pure: it returns file contents keyed by path relative to the
output directory, and the writer decides how they reach the disk.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from obsgen.components.base import Alert
from obsgen.render import dashboards, promtool_tests, runbooks, timescale
from obsgen.render import rules as rules_renderer
from obsgen.spec import Spec
from obsgen.writer import Output

RULES_FILE = "prometheus/rules.yaml"
TESTS_FILE = "prometheus/rules.test.yaml"


def rule_groups(spec: Spec) -> list[rules_renderer.RuleGroup]:
    """Rule groups per kind; every alert's ``dashboard_url`` deep-links to the panel that shows it."""
    links = dashboards.dashboard_links(spec)

    def linked(rule):
        return replace(rule, dashboard_url=links.get(rule.name)) if isinstance(rule, Alert) else rule

    groups = []
    for kind, components in groupby(spec.components, key=lambda c: c.kind):
        groups += rules_renderer.group(spec.service.name, kind.key,
                                       [[linked(r) for r in kind.rules(c)] for c in components])
    return groups


def render(spec: Spec, time_scale: float | None = None) -> list[Output]:
    """All files of one service, with paths relative to the output directory.

    With a ``time_scale`` above 1 the rules run that many times faster (see
    :mod:`obsgen.render.timescale`) and the promtool tests, written for the real
    durations, are not emitted.
    """
    groups = rule_groups(spec)
    alerts: list[Alert] = [r for g in groups for r in g.rules if isinstance(r, Alert)]
    base = spec.service.name
    rules_text = rules_renderer.render(groups)
    if time_scale and time_scale != 1:
        outputs = [Output(f"{base}/{RULES_FILE}", timescale.scale_rules(rules_text, time_scale))]
    else:
        outputs = [Output(f"{base}/{RULES_FILE}", rules_text),
                   Output(f"{base}/{TESTS_FILE}", promtool_tests.render(alerts, "rules.yaml"))]
    outputs += [Output(path, text) for path, text in dashboards.render(spec).items()]
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(spec, groups).items()]
    return outputs
