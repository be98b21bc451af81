"""promtool unit tests from the scenarios each alert carries.

promtool reloads every rule for each entry under ``tests:`` (about 60 ms each),
so scenarios are packed into as few entries as possible: each scenario gets its
own ``instance`` label, and scenarios share an entry unless they would see each
other's series (a rule that aggregates the instance away) or check an alert at
different times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import Alert, Scenario
from obsgen.components.timeline import STEP
from obsgen.model.types import Duration
from obsgen.promql import selector
from obsgen.render.rules import annotations
from obsgen.render.templates import render as render_template
from obsgen.render.yamlout import dump


@dataclass
class _Entry:
    checks: dict[str, tuple[Duration, ...]] = field(default_factory=dict)
    rules: set[int] = field(default_factory=set)
    shared_rules: set[int] = field(default_factory=set)
    cases: list[tuple[int, Alert, Scenario]] = field(default_factory=list)
    # (component, alert) → metrics its scenarios write: another alert of the same component that reads them
    # could fire on them (50 queued tasks saturate an executor and also fill a queue of 10).
    writes: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def accepts(self, rule: int, alert: Alert, scenario: Scenario) -> bool:
        times = tuple(c.at for c in scenario.checks)
        if self.checks.get(alert.name, times) != times or rule in self.shared_rules:
            return False
        component, metrics = alert.labels["component"], {s.metric for s in scenario.series}
        if any(c == component and name != alert.name and wrote & metrics
               for (c, name), wrote in self.writes.items()):
            return False
        return scenario.per_instance or rule not in self.rules

    def add(self, rule: int, alert: Alert, scenario: Scenario) -> None:
        self.checks[alert.name] = tuple(c.at for c in scenario.checks)
        self.writes.setdefault((alert.labels["component"], alert.name), set()).update(
            s.metric for s in scenario.series)
        self.rules.add(rule)
        if not scenario.per_instance:
            self.shared_rules.add(rule)
        self.cases.append((rule, alert, scenario))


def _instance(alert: Alert, scenario: Scenario) -> str:
    return f"{alert.name}/{alert.labels['component']}/{scenario.slug}"


def _entry(entry: _Entry) -> dict:
    series, expected = [], {}
    for _, alert, scenario in entry.cases:
        instance = _instance(alert, scenario)
        for s in scenario.series:
            labels = dict(s.labels, instance=instance)
            series.append({"series": selector(s.metric, labels), "values": s.values})
        for check in scenario.checks:
            bucket = expected.setdefault((check.at, alert.name), [])
            if check.fires:
                labels = dict(scenario.labels)
                if scenario.per_instance:
                    labels["instance"] = instance
                labels.update(alert.labels)
                bucket.append({
                    "exp_labels": dict(sorted(labels.items())),
                    "exp_annotations": dict(
                        annotations(alert),
                        description=render_template(alert.description, labels, scenario.value)),
                })
    tests = [{"eval_time": str(at), "alertname": name, "exp_alerts": alerts}
             for (at, name), alerts in sorted(expected.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
    return {"interval": str(STEP), "input_series": series, "alert_rule_test": tests}


def render(alerts: list[Alert], rule_file: str) -> str:
    entries: list[_Entry] = []
    for rule, alert in enumerate(alerts):
        for scenario in alert.scenarios:
            target = next((e for e in entries if e.accepts(rule, alert, scenario)), None)
            if target is None:
                target = _Entry()
                entries.append(target)
            target.add(rule, alert, scenario)
    return dump({
        "rule_files": [rule_file],
        "evaluation_interval": str(STEP),
        "tests": [_entry(e) for e in entries],
    })
