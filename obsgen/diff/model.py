"""The typed change model of ``obsgen diff``: what changed, in the reviewer's terms, before any rendering.

Every difference is one of the change types below (a threshold with its direction, a ``for``, a severity,
a receiver, ...), never a text diff. The renderers (markdown, text, JSON) only format these objects, and
the risk rules (:mod:`obsgen.diff.risk`) only read them. ``as_json`` is the JSON contract (docs/gitops.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}

Receivers = tuple[str | None, ...]  # None: the platform's default receiver (no route of the service took it)


def ratio(old: float, new: float) -> float | None:
    """How many times larger ``new`` is (``inf`` from 0); ``None`` when the sign makes it meaningless."""
    if old > 0 and new >= 0:
        return new / old
    if old == 0 and new > 0:
        return math.inf
    return None


class Change:
    """One typed difference of an alert (or a recording, a panel)."""

    kind: ClassVar[str]

    def as_json(self) -> dict:
        out: dict = {"kind": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            # JSON has no infinity: a factor from 0 is null, like a factor without meaning.
            out[f.name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


@dataclass(frozen=True)
class Threshold(Change):
    """A comparison constant moved: ``signal op old`` → ``signal op new``."""

    kind: ClassVar[str] = "threshold"
    signal: str
    op: str
    old: float
    new: float
    direction: str | None  # "looser" (fires less), "stricter", or None for == / !=
    factor: float | None  # how many times looser or stricter (>= 1), inf from or to 0
    complement: bool = False
    """Both values are shares (0..1) and the factor is that of the share on the other side of the threshold
    (a hit ratio floor 0.9 → 0.5 tolerates 10% → 50% of misses: 5×), which moved more than the value did."""


@dataclass(frozen=True)
class Duration(Change):
    """``for`` or ``keep_firing_for`` changed (Prometheus duration text, and the ratio new/old)."""

    kind: ClassVar[str] = "duration"
    field: str
    old: str
    new: str
    factor: float | None


@dataclass(frozen=True)
class Severity(Change):
    kind: ClassVar[str] = "severity"
    old: str
    new: str
    direction: str | None  # "downgraded", "upgraded", or None for severities outside critical/warning/info


@dataclass(frozen=True)
class Label(Change):
    kind: ClassVar[str] = "label"
    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Annotation(Change):
    """summary, description, runbook_url, dashboard_url or another annotation."""

    kind: ClassVar[str] = "annotation"
    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Condition(Change):
    """The PromQL changed beyond its comparison constants (other selectors, windows, functions)."""

    kind: ClassVar[str] = "condition"
    old: str
    new: str


@dataclass(frozen=True)
class Receiver(Change):
    kind: ClassVar[str] = "receiver"
    old: Receivers
    new: Receivers


@dataclass(frozen=True)
class Firing:
    """How an alert would have behaved over a stretch of real data."""

    firings: int  # episodes, over all its instances
    minutes: float  # minutes during which at least one instance fired

    def as_json(self) -> dict:
        return {"firings": self.firings, "minutes_firing": self.minutes}


@dataclass(frozen=True)
class Backtest:
    """The old and the new version of one alert evaluated over the same real data (``--prometheus``)."""

    prometheus: str
    lookback: str
    old: Firing | None
    new: Firing | None
    error: str | None = None  # what Prometheus said when it refused a query
    missing: tuple[str, ...] = ()
    """Selectors the versions read that hold no series over the window: their counts say nothing."""
    step_seconds: float = 60.0
    """The evaluation step: one minute, coarser past a week (a range query's points are limited)."""

    def as_json(self) -> dict:
        return {"prometheus": self.prometheus, "lookback": self.lookback, "old": self.old and self.old.as_json(),
                "new": self.new and self.new.as_json(), "error": self.error, "missing": list(self.missing),
                "step_seconds": self.step_seconds}


@dataclass
class AlertDiff:
    status: str  # added | removed | renamed | changed
    name: str
    component: str
    qualifiers: tuple[tuple[str, str], ...]  # labels telling instances of one alert apart (tier, handler, ...)
    severity: str
    receivers: Receivers  # where it goes now (before, for a removed alert)
    changes: list[Change] = field(default_factory=list)
    renamed_from: str | None = None
    component_renamed_from: str | None = None  # the component's old name, when the component was renamed
    rules: tuple = field(default=(None, None), repr=False, compare=False)  # (old, new) outputs.Alert, for backtests
    backtest: Backtest | None = None

    @property
    def where(self) -> list[str]:
        """The qualifiers as a reviewer reads them: ``tier=L1``; an empty value is the catch-all rule of the
        routes no other rule names (``every other uri``), not a route called ''."""
        return [f"{k}={v}" if v else f"every other {k}" for k, v in self.qualifiers]

    def as_json(self) -> dict:
        return {"status": self.status, "alert": self.name, "component": self.component,
                "labels": dict(self.qualifiers), "severity": self.severity, "receivers": list(self.receivers),
                "renamed_from": self.renamed_from, "component_renamed_from": self.component_renamed_from,
                "changes": [c.as_json() for c in self.changes],
                "backtest": self.backtest and self.backtest.as_json()}


@dataclass
class RecordingDiff:
    status: str  # removed | renamed | changed
    name: str
    labels: tuple[tuple[str, str], ...]
    renamed_to: str | None = None
    readers: list[str] = field(default_factory=list)  # what still reads it on the new side, and now reads nothing
    changes: list[Change] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"status": self.status, "record": self.name, "labels": dict(self.labels),
                "renamed_to": self.renamed_to, "still_read_by": self.readers,
                "changes": [c.as_json() for c in self.changes]}


@dataclass
class PanelDiff:
    status: str  # added | removed | changed; for a whole dashboard: dashboard-added | dashboard-removed
    dashboard: str
    title: str  # the panel's title; for a whole dashboard, how many panels it has
    old: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    renamed_from: str | None = None  # the old title of a panel in the same place whose title changed

    def as_json(self) -> dict:
        return {"status": self.status, "dashboard": self.dashboard, "panel": self.title,
                "renamed_from": self.renamed_from, "old_queries": list(self.old), "new_queries": list(self.new)}


@dataclass(frozen=True)
class Slo:
    """An objective as the outputs show it; ``objective`` is ``None`` when no rule reveals the budget."""

    objective: float | None
    window: str
    window_minutes: float

    @property
    def budget_minutes(self) -> float | None:
        return None if self.objective is None else round((1 - self.objective) * self.window_minutes, 6)

    def as_json(self) -> dict:
        return {"objective": self.objective, "window": self.window, "error_budget_minutes": self.budget_minutes}


@dataclass
class SloDiff:
    status: str  # added | removed | changed
    name: str
    old: Slo | None
    new: Slo | None

    def as_json(self) -> dict:
        return {"status": self.status, "slo": self.name, "old": self.old and self.old.as_json(),
                "new": self.new and self.new.as_json()}


@dataclass
class InhibitionDiff:
    status: str  # added | removed
    source: str
    target: str
    equal: tuple[str, ...]

    def as_json(self) -> dict:
        return {"status": self.status, "source": self.source, "target": self.target, "equal": list(self.equal)}


@dataclass(frozen=True)
class Risk:
    """A change a reviewer must not miss."""

    service: str
    kind: str  # critical-alert-removed | critical-alert-downgraded | threshold-loosened | for-lengthened |
    #            default-receiver | recording-still-read
    subject: str
    message: str

    def as_json(self) -> dict:
        return {"service": self.service, "kind": self.kind, "subject": self.subject, "message": self.message}


@dataclass
class ServiceDiff:
    name: str
    status: str  # added | removed | changed
    alerts: list[AlertDiff] = field(default_factory=list)
    recordings: list[RecordingDiff] = field(default_factory=list)
    panels: list[PanelDiff] = field(default_factory=list)
    slos: list[SloDiff] = field(default_factory=list)
    inhibitions: list[InhibitionDiff] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.alerts or self.recordings or self.panels or self.slos or self.inhibitions)

    def as_json(self) -> dict:
        return {"service": self.name, "status": self.status,
                **{name: [x.as_json() for x in getattr(self, name)]
                   for name in ("alerts", "recordings", "panels", "slos", "inhibitions")}}


@dataclass(frozen=True)
class Side:
    label: str  # the directory, or the git ref and work tree
    built_by: str  # "" for directories given as they are; else which code built them


@dataclass
class Report:
    old: Side
    new: Side
    services: list[ServiceDiff]
    risks: list[Risk] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.services)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per item type, how many of each status (over every service)."""
        out: dict[str, dict[str, int]] = {}
        for s in self.services:
            for name in ("alerts", "recordings", "panels", "slos", "inhibitions"):
                for item in getattr(s, name):
                    bucket = out.setdefault(name, {})
                    bucket[item.status] = bucket.get(item.status, 0) + 1
        return out

    def as_json(self) -> dict:
        return {"format": "obsgen-diff/v1",
                "old": {"source": self.old.label, "built_by": self.old.built_by or None},
                "new": {"source": self.new.label, "built_by": self.new.built_by or None},
                "summary": {"services": len(self.services), "risks": len(self.risks), **self.counts()},
                "risks": [r.as_json() for r in self.risks],
                "services": [s.as_json() for s in self.services]}
