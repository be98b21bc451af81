"""Rules in obsgen's own terms: alert declarations, the alerts and recordings built from them, and their proof.

A kind declares each of its alerts once, as an :class:`AlertDef` (name, severity,
default ``for``, summary, related alerts); building a component turns each
declaration into :class:`Alert` s (one per component, or per cache tier), tuned by
the spec and carrying the promtool :class:`Scenario` s that prove them.
Renderers read these types and never look at a kind.
"""

from __future__ import annotations

from dataclasses import field

from obsgen.model.promql import Expr
from obsgen.model.records import record
from obsgen.model.types import Duration, Labels

SEVERITIES = ("critical", "warning", "info")
STEP = Duration(15_000)
"""The clock of every promtool story: a sample, and a rule evaluation, every 15 s."""


@record
class AlertDef:
    """One alert of the catalogue, declared once by its kind.

    ``for_`` is the default ``for`` ("5m"); a kind whose ``for`` derives from the
    component's timing (a health check's silence) passes it when building.
    ``related`` names the alerts an on-call engineer looks at next, of any kind:
    the catalogue (:mod:`obsgen.components`) refuses a name no kind declares.
    The runbook's prose for the alert is in its kind's template, one macro per
    section named ``<runbook>__<section>``; ``runbook`` is the alert's name unless
    alerts share their prose (the alerts a team names for its custom signals).
    """

    name: str
    severity: str
    for_: str
    summary: str
    related: tuple[str, ...] = ()
    runbook: str = ""
    template: str = ""
    """The kind whose runbook template holds the prose, when the alert is emitted for components of any kind
    (``ComponentMetricsMissing``); empty: the emitting component's kind."""

    @property
    def prose(self) -> str:
        """The prefix of the runbook macros that hold this alert's prose."""
        return self.runbook or self.name

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: unknown severity {self.severity!r}")
        if not (self.summary[:1].isupper() and self.summary.endswith(".")):
            raise ValueError(f"{self.name}: a summary is a sentence (capital first, period last)")


@record
class Series:
    """One input series of a promtool test: metric, labels and expanding-notation values."""

    metric: str
    labels: Labels
    values: str


@record
class Check:
    """At ``at`` after the scenario starts, the alert must (or must not) be firing.

    ``clock`` is the slowest evaluation clock the check keeps its meaning on (promtool compares a check with the
    last evaluation at or before ``at``); ``None``: only the scenario's own clock.
    """

    at: Duration
    fires: bool
    clock: Duration | None = None


@record
class Scenario:
    """A small story told to promtool: input series, and when the alert fires.

    ``labels`` are the labels the firing alert gets from its expression and
    ``value`` its ``$value`` at firing checks (for the rendered description).
    The renderer gives each scenario its own ``instance`` so that many scenarios
    share one promtool test group; ``per_instance`` says whether the alert keeps
    that label (otherwise the scenario needs a group to itself for its rule).
    Scenarios naming the same ``story`` (of one component) are one set of input
    series told to several alerts, in a test group of their own: for rules that
    read series no identity label separates (an SLO's request counters).
    ``clock`` evaluates the scenario's rules less often than its samples arrive, for
    stories hours long whose checks need no finer timing (promtool's cost is
    evaluations times rules).
    ``alone`` scenarios get a test entry to themselves and their series exactly as
    written (no ``instance`` added): stories about absent series (``absent()``),
    tests written by the spec's author, and series that would disturb other rules'
    stories (alerts aggregated across instances from the same metrics, such as HTTP routes).
    """

    slug: str
    title: str
    series: tuple[Series, ...]
    checks: tuple[Check, ...]
    labels: Labels = field(default_factory=dict)
    value: float | None = None
    per_instance: bool = True
    story: str | None = None
    clock: Duration | None = None
    alone: bool = False

    def clock_on(self, step: Duration) -> Duration:
        """The clock promtool evaluates this scenario on, given its series' ``step``: its own ``clock``, else the
        slowest every check allows (an evaluation is what promtool pays for), else ``step``."""
        if self.clock:
            return self.clock
        allowed = [c.clock for c in self.checks]
        return min(allowed) if allowed and None not in allowed else step


@record
class Recording:
    """A recording rule: ``record`` is ``expr`` with ``labels`` added."""

    record: str
    expr: Expr
    labels: Labels


@record
class Alert:
    """An alerting rule with its documentation and its proof.

    ``condition`` says when it fires in this component's numbers, as plain prose
    for the runbook ("hit ratio below 80% while serving at least 1 lookups/s").
    ``tag`` are the labels that tell several alerts of one name and component
    apart (a cache's ``tier``); ``queries`` are the runbook's diagnostic queries
    by name, built with the same builders as the rule.
    """

    definition: AlertDef
    expr: Expr
    for_: Duration
    severity: str
    labels: Labels
    description: str
    condition: str
    runbook_url: str
    scenarios: tuple[Scenario, ...]
    keep_firing_for: Duration | None = None
    dashboard_url: str | None = None
    tag: Labels = field(default_factory=dict)
    queries: tuple[tuple[str, Expr], ...] = ()
    enabled: bool = True
    """False when the spec disabled it: the pipeline drops it, after checking the spec's tuning against it."""

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def summary(self) -> str:
        return self.definition.summary

    @property
    def component(self) -> str:
        return self.labels["component"]


Rule = Alert | Recording


@record
class Inhibition:
    """While ``source`` fires, ``targets`` with the same ``equal`` labels are symptoms, not news.

    Rendered as an Alertmanager inhibit rule: RedisDown makes CacheL2Unavailable
    of the same service redundant.
    """

    source: str
    targets: tuple[str, ...]
    equal: tuple[str, ...] = ("service",)
