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
from obsgen.render import dashboards, promtool_tests, runbooks
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


def render(spec: Spec) -> list[Output]:
    """All files of one service, with paths relative to the output directory."""
    spec = _rules_once(spec)
    groups = rule_groups(spec)
    alerts: list[Alert] = [r for g in groups for r in g.rules if isinstance(r, Alert)]
    base = spec.service.name
    outputs = [
        Output(f"{base}/{RULES_FILE}", rules_renderer.render(groups)),
        Output(f"{base}/{TESTS_FILE}", promtool_tests.render(alerts, "rules.yaml")),
    ]
    outputs += [Output(path, text) for path, text in dashboards.render(spec).items()]
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(spec, groups).items()]
    return outputs
