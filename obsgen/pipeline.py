"""The pipeline: spec → components → rules → rendered files, for one service.

Everything here is pure: it returns file contents keyed by path relative to the
output directory, and the writer decides how they reach the disk.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from obsgen.components.base import Alert
from obsgen.render import alertmanager, dashboards, grafana_provisioning, prometheusrule, promtool_tests, runbooks
from obsgen.render import rules as rules_renderer
from obsgen.spec import Spec
from obsgen.writer import Output

RULES_FILE = "prometheus/rules.yaml"


def rule_groups(spec: Spec) -> list[rules_renderer.RuleGroup]:
    """Rule groups per kind; every alert's ``dashboard_url`` deep-links to the panel that shows it."""
    links = dashboards.dashboard_links(spec)

    def linked(rule):
        return replace(rule, dashboard_url=links.get(rule.name)) if isinstance(rule, Alert) else rule

    groups = []
    for kind, components in groupby(spec.components, key=lambda c: c.kind):
        groups += rules_renderer.group(spec.service.name, kind.key,
                                       [[linked(r) for r in kind.rules(c)] for c in components],
                                       file=kind.rules_file, test_step=kind.test_step)
    return groups


def render(spec: Spec) -> list[Output]:
    """All files of one service, with paths relative to the output directory."""
    groups = rule_groups(spec)
    base = spec.service.name
    outputs = []
    for file in dict.fromkeys(g.file for g in groups):
        mine = [g for g in groups if g.file == file]
        alerts = [r for g in mine for r in g.rules if isinstance(r, Alert)]
        step = mine[0].test_step
        outputs.append(Output(f"{base}/prometheus/{file}.yaml", rules_renderer.render(mine)))
        tests = promtool_tests.render(alerts, f"{file}.yaml", step, spec.service.cluster_label)
        outputs += [Output(f"{base}/prometheus/{file}{'' if clock == step else f'.{clock}'}.test.yaml", text)
                    for clock, text in tests.items()]
    all_alerts: list[Alert] = [r for g in groups for r in g.rules if isinstance(r, Alert)]
    boards = dashboards.render(spec)
    outputs += [Output(path, text) for path, text in boards.items()]
    # What the platforms consume: prometheus-operator, Grafana provisioning / grafana-operator, Alertmanager.
    outputs += [Output(path, text) for path, text in prometheusrule.render(spec.service, groups).items()]
    outputs += [Output(path, text) for path, text in grafana_provisioning.render(spec.service, boards).items()]
    outputs.append(Output(f"{base}/{alertmanager.FILE}", alertmanager.render(spec.service, spec.components, all_alerts)))
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(spec, groups).items()]
    return outputs
