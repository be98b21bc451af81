"""Prometheus rule files: groups of recording and alerting rules.

With a time scale (``obsgen build --time-scale N``, for end-to-end tests) every
alert ``for`` and ``keep_firing_for``, and in every expression every range
window, subquery range and step, ``offset`` and window length in seconds
(:class:`~obsgen.model.promql.Seconds`), is divided by N (whole seconds,
at least 1s) when printed. Everything else is exactly as rendered: names
(``instance_cache:hit:ratio_rate5m`` keeps its name), labels, thresholds and
annotations (their text still speaks of the real durations).
"""

from __future__ import annotations

from collections.abc import Sequence

from obsgen.model.promql import number, rule_text, scale_duration
from obsgen.model.promql import render as promql
from obsgen.model.rules import Alert, Recording, Rule
from obsgen.model.service import RuleGroup
from obsgen.model.types import Duration
from obsgen.render.yamlout import dump

SCALED_HEADER = ("# Time-scaled by `obsgen build --time-scale {n}`: every for, keep_firing_for, range window,\n"
                 "# subquery and offset is divided by {n}. For end-to-end tests only; do not deploy.\n")


def _duration(d: Duration, scale: float | None) -> str:
    return str(scale_duration(d, scale) if scale else d)


def rule(r: Rule, scale: float | None = None) -> dict:
    """One rule as the rule file writes it."""
    expr = promql(r.expr, scale) if scale else rule_text(r.expr)
    if isinstance(r, Recording):
        return {"record": r.record, "expr": expr, "labels": dict(sorted(r.labels.items()))}
    out: dict = {"alert": r.name, "expr": expr, "for": _duration(r.for_, scale)}
    if r.keep_firing_for:
        out["keep_firing_for"] = _duration(r.keep_firing_for, scale)
    out["labels"] = dict(sorted(r.labels.items()))
    out["annotations"] = annotations(r)
    return out


def annotations(alert: Alert) -> dict[str, str]:
    """The annotations as written (``description`` still a template)."""
    out = {"summary": alert.summary, "description": alert.description, "runbook_url": alert.runbook_url}
    if alert.dashboard_url:
        out["dashboard_url"] = alert.dashboard_url
    return out


def data(groups: Sequence[RuleGroup], scale: float | None = None) -> dict:
    """The rule file as data: ``{"groups": [...]}`` (also the ``spec`` of a PrometheusRule)."""
    return {"groups": [{"name": g.name, "rules": [rule(r, scale) for r in g.rules]} for g in groups]}


def render(groups: Sequence[RuleGroup], scale: float | None = None) -> str:
    text = dump(data(groups, scale))
    return SCALED_HEADER.format(n=number(scale)) + text if scale else text
