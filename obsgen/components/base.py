"""What a component kind is, and the helpers every kind uses to build one component.

A kind module (cache, breaker, …) declares its alerts (:class:`AlertDef`), its
spec fields, its default metric names per profile, a ``rules`` function that
turns one component into :class:`Alert` and :class:`Recording` rules (each
alert carrying the promtool scenarios that prove it) and a ``panels`` function
that draws it, given the alerts as built. :func:`obsgen.pipeline.build` calls
each once per component; renderers only ever see the resulting model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field, replace

from obsgen.components.timeline import STEP
from obsgen.errors import closest
from obsgen.model.panels import ComponentPanels, Concern
from obsgen.model.promql import Agg, Call, Expr, Matcher, Selector, Variable, call, children, selector, transform
from obsgen.model.records import record
from obsgen.model.rules import Alert, AlertDef, Inhibition, Recording, Rule, Scenario, Series
from obsgen.model.types import AlertTuning, ComponentSpec, Duration, Labels, MetricRef, Service

__all__ = ["Alert", "AlertDef", "Built", "Component", "Concern", "Finding", "Given", "Inhibition", "Kind",
           "RatioSignals", "Recording", "Rule", "Scenario", "Series"]


@record
class RatioSignals:
    """The counters of a ratio: ``part / total``, where ``rest`` is total minus part.

    When part and total are one metric family told apart by a label
    (``cache_gets_total{result="hit"}`` within ``cache_gets_total``), test data
    writes ``part`` and ``rest`` series, so ``rest`` must be in that family too
    (the spec checks it); otherwise ``part`` and ``total``. ``rest`` may name
    ``total`` itself when the family has no label for the rest.
    """

    part: str
    total: str
    rest: str


@record
class Finding:
    """A semantic problem in one component of a spec, found by its kind.

    ``path`` is relative to the component (``("tiers", "l1", "hit_rate_min")``);
    ``key`` points the location at the key rather than its value.
    """

    path: tuple[str | int, ...]
    message: str
    key: bool = False


@record
class Given:
    """One component as the spec gives it to a kind's ``check``.

    ``item`` has the schema's defaults filled in; ``written`` are the keys the
    author actually wrote; ``spec`` is the whole document (to resolve references;
    other components in it may themselves be invalid, so read them defensively);
    ``paths`` are all paths the author wrote, relative to the component
    (``("state_encoding", "closed")``), for nested keys that defaults fill in.
    """

    item: Mapping
    written: frozenset[str]
    spec: Mapping
    paths: frozenset[tuple[str | int, ...]] = frozenset()


# Labels obsgen puts on every alert (a rule's labels win over the series'), or sets itself in selectors,
# dashboards, recordings and tests: a component's own labels (its name, its state) cannot be one of them.
OBSGEN_LABELS = ("alertname", "breaker", "component", "instance", "job", "service", "severity", "team", "tier")


def no_findings(given: Given) -> list[Finding]:
    return []


def alert_enabled(given: Given, alert: str) -> bool:
    return given.item.get("alerts", {}).get(alert, {}).get("enabled", True)


def tuned_for(given: Given, alert: str, default: str) -> Duration:
    """The ``for`` the alert will have: the spec's tuning, else the kind's default."""
    return Duration.parse(given.item.get("alerts", {}).get(alert, {}).get("for", default))


def never_fires(given: Given, path: tuple[str | int, ...], alert: str, why: str,
                fix: str = "change the threshold") -> list[Finding]:
    """A setting that makes an enabled alert impossible ("a hit ratio is never below 0"): why, and what to do."""
    if not alert_enabled(given, alert):
        return []
    return [Finding(path, f"{why}, so {alert} could never fire; {fix}, or disable the alert "
                          f"(`alerts: {{{alert}: {{enabled: false}}}}`)")]


def breaker_reference(given: Given) -> list[Finding]:
    """A component's ``breaker`` must name a breaker of the spec."""
    ref = given.item.get("breaker")
    breakers = sorted(b["name"] for b in given.spec.get("breakers", []) if isinstance(b.get("name"), str))
    if ref is None or ref in breakers:
        return []
    close = closest(ref, breakers)
    hint = f"; did you mean `{close}`?" if close else "; declare it under `breakers`"
    return [Finding(("breaker",), f"no breaker named `{ref}`{hint}")]


@record
class Built:
    """A component's alerts as built (tuned by the spec), for the panels that describe them."""

    alerts: tuple[Alert, ...]

    def get(self, definition: AlertDef) -> Alert | None:
        return next((a for a in self.alerts if a.definition is definition), None)

    def fires(self, definition: AlertDef, text: str) -> str:
        """``text`` about how ``definition`` fires, with ``{for}`` its tuned ``for``; empty if the component
        does not emit it (the spec disabled it), so a panel never promises an alert that does not exist."""
        alert = self.get(definition)
        return text.replace("{for}", str(alert.for_)).replace("{alert}", alert.name) if alert else ""


@record
class Kind:
    """A component kind: everything obsgen knows about one sort of component.

    ``alerts`` is the kind's catalogue, each alert declared once. ``schema`` names
    the kind's JSON Schema fragment (``components/schemas/<schema>.json``);
    ``default_metrics`` maps a profile (or ``*`` for exporters every profile shares)
    to the metric behind each signal the kind reads (``None`` where that profile's
    libraries cannot export the signal: the kind then leaves out what reads it,
    unless the spec names a metric, see :meth:`Component.has_metric`); ``check`` finds what the
    schema cannot (cross-field rules, references); ``rules`` builds one component's
    rules and ``panels`` draws it for the ``concern`` dashboard, given its built alerts.
    ``app_metrics`` is false for exporter metrics (no service selector);
    ``identified`` is false when a component's series carry no label naming it
    (an SLO picks its events by matchers). Rules go to
    ``prometheus/<rules_file>.yaml``, tested on a ``test_step`` clock: kinds whose
    stories last hours (SLOs) get their own file so the rest stay fast to test.
    """

    key: str
    title: str
    schema: str
    spec: type[ComponentSpec]
    default_metrics: Mapping[str, Mapping[str, MetricRef | None]]
    alerts: tuple[AlertDef, ...]
    rules: Callable[[Component], list[Rule]]
    panels: Callable[[Component, Built], ComponentPanels]
    concern: Concern
    inhibitions: tuple[Inhibition, ...] = ()
    check: Callable[[Given], list[Finding]] = no_findings
    app_metrics: bool = True
    identified: bool = True
    rules_file: str = "rules"
    same_series: tuple[set[str], ...] = ()
    """Pairs of signals that may read one series (an SLO's requests, and its latency histogram's count)."""
    test_step: Duration = STEP
    ratios: tuple[RatioSignals, ...] = ()
    """The ratios the kind's alerts judge (hits within lookups): the spec must keep each one's rest countable."""
    optional: frozenset[str] = frozenset()
    """Signals a profile may lack (Python breakers export no failure-rate gauge); the kind then
    derives what it needs from other signals or leaves the panel out (see :meth:`Component.has`)."""
    presence: Mapping[str, str] = field(default_factory=dict)
    """Per profile (``*``: every one), the signal whose absence while the service is up means the component's
    metrics are missing (``ComponentMetricsMissing``): one that exists from start-up (a gauge, a Micrometer
    function counter), never a labelled prometheus_client counter, which has no series until first used."""
    exported: Callable[[ComponentSpec], bool] = lambda spec: True
    """Whether the app exports a component's metrics at all (a health check the blackbox exporter probes does not):
    only then does the absence of its presence signal mean they are missing."""
    published: Mapping[str, str] = field(default_factory=dict)
    """Metrics the kind reads besides its signals, and who publishes them (a probed health check reads the blackbox
    exporter's ``probe_success``): runbooks name that publisher, never "app-defined"."""

    def presence_signal(self, profile: str) -> str | None:
        return self.presence.get(profile) or self.presence.get("*")

    def defaults(self, profile: str) -> Mapping[str, MetricRef | None]:
        """The metric behind each signal in ``profile`` (exporter kinds: the ones every profile shares)."""
        return self.default_metrics.get(profile) or self.default_metrics.get("*") or {}

    def metric_ref(self, profile: str, metrics: Mapping, signal: str) -> MetricRef | None:
        """The metric a component of the spec reads for ``signal``: as its ``metrics`` name it (raw spec text or
        mapping), else the profile's; ``None`` if neither has one."""
        given = metrics.get(signal)
        return MetricRef.of(given) if given is not None else self.defaults(profile).get(signal)


@record
class Component:
    """One component of one service, with the helpers every kind needs."""

    kind: Kind
    spec: ComponentSpec
    service: Service

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identity(self) -> Labels:
        """Labels that pick out this component's series (``cache="equipment"``); a kind whose label values are
        not valid names (routes) has a ``value`` field for them."""
        value = getattr(self.spec, "value", None) or self.spec.name
        identified = self.kind.app_metrics and self.kind.identified and self.spec.label
        return {self.spec.label: value} if identified else {}

    @property
    def base_labels(self) -> Labels:
        base = dict(self.service.selector) if self.kind.app_metrics else {}
        base.update(self.spec.selector)
        base.update(self.identity)
        return base

    def has(self, signal: str) -> bool:
        """Whether the spec or the profile names a metric for ``signal`` (optional signals may lack one)."""
        return signal in self.spec.metrics or signal in self.kind.defaults(self.service.profile)

    def metric(self, signal: str) -> MetricRef:
        return self.spec.metrics.get(signal) or self.kind.defaults(self.service.profile)[signal]

    def has_metric(self, signal: str) -> bool:
        """Whether ``signal`` has a metric here: named by the spec, or by the profile (not ``None``)."""
        return self.metric(signal) is not None

    def labels(self, signal: str, extra: Mapping[str, str] | None = None, base: Labels | None = None) -> Labels:
        """The equality matchers of ``signal``: the base labels (service and component selectors, identity), the
        metric's own matchers and ``extra``. A metric that names the component by another label or value
        (``executor_rejected_total{executor="expectation"}``) carries that identity instead, in a ``base`` the
        caller gives too (a panel's, which leaves the job to the dashboard's variable)."""
        metric = self.metric(signal)
        out = dict(self.base_labels if base is None else base)
        if (metric.label or metric.value) and self.identity and next(iter(self.identity)) in out:
            (label, value), = self.identity.items()
            del out[label]
            out[metric.label or label] = metric.value or value
        out.update(metric.matchers)
        out.update(extra or {})
        return out

    def select(self, signal: str, extra: Mapping[str, str] | None = None, *, regex: Mapping[str, str] | None = None,
               base: Labels | None = None) -> Selector:
        """A selector for ``signal`` of this component (it remembers the signal it reads).

        A label the spec's selectors pin must reach the selector as the spec wrote it: a kind that matches it
        itself (a one-hot breaker's ``state``, a sentinel's ``master_name``) would silently replace the user's
        matcher (:class:`OwnMatcher`). Dashboard variables (``job=~"$job"``) are the dashboards' own choice.
        """
        labels = self.labels(signal, extra, base)
        self._own_matchers(labels, regex or {})
        return selector(self.metric(signal).name, labels, regex, signal=signal)

    def _own_matchers(self, labels: Mapping[str, str], regex: Mapping[str, str]) -> None:
        pinned = dict(self.service.selector) if self.kind.app_metrics else {}
        pinned.update(self.spec.selector)
        for key, value in pinned.items():
            if key in self.identity:
                continue
            where = "selector" if key in self.spec.selector else "service"
            if key in regex and not isinstance(regex[key], Variable):
                raise OwnMatcher(key, Matcher(key, regex[key], "=~").text(), where)
            if key not in regex and key in labels and labels[key] != value:
                raise OwnMatcher(key, Matcher(key, labels[key]).text(), where)

    @property
    def renames_identity(self) -> bool:
        """Whether a metric of this component names it by another label or value than its identity."""
        if not self.identity:
            return False
        declared = {**self.kind.defaults(self.service.profile), **self.spec.metrics}
        return any(m is not None and (m.label or m.value) for m in declared.values())

    def keep_identity(self, expr: Expr, *, own_label: bool = False) -> Expr:
        """``expr`` with every aggregation that keeps the component's identity label (``by (instance, executor)``)
        over a metric that names the component by another label or value (``executor_active_threads{name=…}``
        of an executor labelled ``executor``) rewritten to aggregate without that label and set it again with
        ``label_replace``: every side of a comparison, and every alert, carries the same identity. With
        ``own_label`` (a runbook's diagnostic query, read by a person) it groups by the metric's own label
        instead (``by (instance, name)``), as one would type it.

        Applied once to everything the component computes (:func:`obsgen.components.compute.component_model`),
        so no rule or panel builder has to remember it."""
        if not self.identity:
            return expr
        (label, value), = self.identity.items()

        def renamed(node: Expr) -> MetricRef | None:
            """The metric with its own identity a selector below ``node`` reads (none already relabelled)."""
            if isinstance(node, Call) and node.fn == "label_replace":
                return None
            if isinstance(node, Selector):
                metric = self._declared(node.signal)
                own = metric is not None and (metric.label or metric.value) and any(
                    m.name == (metric.label or label) and m.value == (metric.value or value) for m in node.matchers)
                return metric if own else None
            return next((m for child in children(node) if (m := renamed(child))), None)

        def fix(node: Expr) -> Expr:
            if not (isinstance(node, Agg) and not node.without and node.by and label in node.by):
                return node
            metric = renamed(node.expr)
            if metric is None:
                return node
            if own_label:
                return replace(node, by=tuple(metric.label or label if b == label else b for b in node.by))
            inner = replace(node, by=tuple(b for b in node.by if b != label))
            # label_replace expands `$1`/`$name` in its replacement: `$$` writes a `$` of the value itself
            return call("label_replace", inner, label, value.replace("$", "$$"), "", "")

        return transform(expr, fix)

    def _declared(self, signal: str | None) -> MetricRef | None:
        """The metric of ``signal`` if this component declares one (a selector may read another's: ``up``)."""
        if signal is None:
            return None
        return self.spec.metrics.get(signal) or self.kind.defaults(self.service.profile).get(signal)

    def series(self, signal: str, values: str, extra: Mapping[str, str] | None = None,
               base: Labels | None = None) -> Series:
        """A test input series for ``signal``, labelled exactly as the selectors expect."""
        return Series(self.metric(signal).name, self.labels(signal, extra, base), values)

    def alert(self, definition: AlertDef, *, expr: Expr, description: str, condition: str,
              scenarios: Callable[[Duration], list[Scenario]], for_: Duration | None = None,
              keep_firing_for: Duration | None = None, labels: Labels | None = None,
              queries: Mapping[str, Expr] | None = None, severity: str | None = None) -> list[Alert]:
        """Build ``definition`` for this component with the user's tuning applied.

        ``for_`` replaces the declared default where the kind derives it (a health check's silence);
        ``scenarios`` receives the final ``for`` so the proof matches the rule as tuned, and ``{for}`` in the
        description becomes that duration. ``labels`` tell alerts of one name apart (a cache's tier). An alert
        the spec disabled comes back with ``enabled=False`` and no scenarios: the pipeline checks the spec's
        tuning against every alert the component offers, then drops it. ``severity`` replaces the declared
        default where the component's settings decide it (a breaker with a fallback); the spec's tuning wins.
        """
        tuning = self.spec.alerts.get(definition.name, AlertTuning())
        default = for_ if for_ is not None else Duration.parse(definition.for_)
        final_for = tuning.for_ if tuning.for_ is not None else default
        final_severity = tuning.severity or severity or definition.severity
        tag = dict(labels or {})
        all_labels = {**tag, "component": self.name, "service": self.service.name,
                      "severity": final_severity, "team": self.service.team}
        if self.service.environment:
            all_labels["environment"] = self.service.environment
        guard = getattr(self.spec, "breaker", None)
        if guard:  # Alertmanager inhibits the symptoms of an open breaker by this label.
            all_labels.setdefault("breaker", guard)
        return [Alert(
            definition=definition, expr=expr, for_=final_for, severity=final_severity, labels=all_labels,
            description=description.replace("{for}", str(final_for)), condition=condition,
            runbook_url=f"{self.service.runbook_base_url}{definition.name}.md",
            scenarios=tuple(scenarios(final_for)) if tuning.enabled else (), keep_firing_for=keep_firing_for,
            tag=tag, queries=tuple((queries or {}).items()), enabled=tuning.enabled,
        )]


class OwnMatcher(Exception):
    """The spec pins a label the kind matches itself; ``where`` says which selector (``selector`` or ``service``)."""

    def __init__(self, key: str, matcher: str, where: str):
        super().__init__(key)
        self.key, self.matcher, self.where = key, matcher, where
