"""Prometheus rule files: groups of recording and alerting rules."""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components.base import Alert, Recording, Rule
from obsgen.components.timeline import STEP
from obsgen.model.types import Duration
from obsgen.render.yamlout import dump

GROUP_NAME_MAX = 40
GROUP_RULES_MAX = 20


@dataclass(frozen=True)
class RuleGroup:
    """A rule group, the file it goes to (``prometheus/<file>.yaml``) and the clock its tests run on."""

    name: str
    rules: tuple[Rule, ...]
    file: str = "rules"
    test_step: Duration = STEP


def group(service: str, kind: str, per_component: list[list[Rule]], *, file: str = "rules",
          test_step: Duration = STEP) -> list[RuleGroup]:
    """Pack whole components into groups of at most 20 rules, named ``<service>.<kind>[.n]``.

    A component's recordings stay in the same group as the alerts that read them,
    so an evaluation never sees a recording from the previous cycle.
    """
    chunks: list[list[Rule]] = []
    for rules in per_component:
        if not rules:
            continue
        if not chunks or len(chunks[-1]) + len(rules) > GROUP_RULES_MAX:
            chunks.append([])
        chunks[-1].extend(rules)
    out = []
    for i, chunk in enumerate(chunks, 1):
        suffix = f".{kind}" + (f".{i}" if len(chunks) > 1 else "")
        out.append(RuleGroup(service[: GROUP_NAME_MAX - len(suffix)] + suffix, tuple(chunk), file, test_step))
    return out


def _rule(rule: Rule) -> dict:
    if isinstance(rule, Recording):
        return {"record": rule.record, "expr": rule.expr, "labels": dict(sorted(rule.labels.items()))}
    assert isinstance(rule, Alert)
    out: dict = {"alert": rule.name, "expr": rule.expr, "for": str(rule.for_)}
    if rule.keep_firing_for:
        out["keep_firing_for"] = str(rule.keep_firing_for)
    out["labels"] = dict(sorted(rule.labels.items()))
    out["annotations"] = annotations(rule)
    return out


def annotations(alert: Alert) -> dict[str, str]:
    """The annotations as written (``description`` still a template)."""
    out = {"summary": alert.summary, "description": alert.description, "runbook_url": alert.runbook_url}
    if alert.dashboard_url:
        out["dashboard_url"] = alert.dashboard_url
    return out


def data(groups: list[RuleGroup]) -> dict:
    """The rule file as data: ``{"groups": [...]}`` (also the ``spec`` of a PrometheusRule)."""
    return {"groups": [{"name": g.name, "rules": [_rule(r) for r in g.rules]} for g in groups]}


def render(groups: list[RuleGroup]) -> str:
    return dump(data(groups))
