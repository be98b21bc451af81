"""The pipeline: spec → components → rules → rendered files, for one service.

Everything here is pure: it returns file contents keyed by path relative to the
output directory, and the writer decides how they reach the disk.

The renderers each ask a component for its rules (rule groups, the dashboards
twice, the runbooks); :func:`render` has every kind compute them once per
component and hand out copies.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from obsgen.components.base import Alert
from obsgen.render import (alertmanager, dashboards, grafana_provisioning, prometheusrule, promtool_tests, runbooks,
                           timescale)
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


def _rules_once(spec: Spec) -> Spec:
    """The spec with each kind's ``rules`` memoised per component, for one render."""
    memo: dict[int, tuple[object, list]] = {}

    def once(rules):
        def cached(component):
            hit = memo.get(id(component))
            if hit is None or hit[0] is not component:
                hit = memo[id(component)] = (component, rules(component))
            return list(hit[1])
        return cached

    kinds: dict[str, object] = {}
    components = tuple(replace(c, kind=kinds.setdefault(c.kind.key, replace(c.kind, rules=once(c.kind.rules))))
                       for c in spec.components)
    return replace(spec, components=components)


def render(spec: Spec, time_scale: float | None = None) -> list[Output]:
    """All files of one service, with paths relative to the output directory.

    With a ``time_scale`` above 1 the rules run that many times faster (see
    :mod:`obsgen.render.timescale`) and the promtool tests, written for the real
    durations, are not emitted.
    """
    spec = _rules_once(spec)
    groups = rule_groups(spec)
    base = spec.service.name
    outputs = []
    scaled = bool(time_scale and time_scale != 1)
    for file in dict.fromkeys(g.file for g in groups):
        mine = [g for g in groups if g.file == file]
        rules_text = rules_renderer.render(mine)
        if scaled:
            outputs.append(Output(f"{base}/prometheus/{file}.yaml", timescale.scale_rules(rules_text, time_scale)))
            continue
        alerts = [r for g in mine for r in g.rules if isinstance(r, Alert)]
        step = mine[0].test_step
        outputs.append(Output(f"{base}/prometheus/{file}.yaml", rules_text))
        tests = promtool_tests.render(alerts, f"{file}.yaml", step, spec.service.cluster_label)
        outputs += [Output(f"{base}/prometheus/{file}{'' if clock == step else f'.{clock}'}.test.yaml", text)
                    for clock, text in tests.items()]
    boards = dashboards.render(spec)
    outputs += [Output(path, text) for path, text in boards.items()]
    if not scaled:  # what the platforms consume: prometheus-operator, Grafana provisioning, Alertmanager
        all_alerts: list[Alert] = [r for g in groups for r in g.rules if isinstance(r, Alert)]
        outputs += [Output(path, text) for path, text in prometheusrule.render(spec.service, groups).items()]
        outputs += [Output(path, text) for path, text in grafana_provisioning.render(spec.service, boards).items()]
        outputs.append(Output(f"{base}/{alertmanager.FILE}", alertmanager.render(spec.service, spec.components,
                                                                                all_alerts)))
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(spec, groups).items()]
    return outputs
