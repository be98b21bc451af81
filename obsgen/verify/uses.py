"""What each selector of a spec is for: the one module of verify that reads the service model.

For every component of the :class:`~obsgen.model.service.ServiceModel` it takes
what obsgen would deploy (alerting and recording rules, dashboard panels and the
dashboards' ``job`` variable) and lists every vector selector in it as a
:class:`Use`: the component and signal it belongs to (the selector remembers its
signal), what the expression does with it (:class:`~obsgen.verify.selectors.Read`),
the alerts and panels that go blind without it, and where in the spec each of its
labels was set. obsgen's own recording rules are resolved to the selectors they
read, so a spec can be verified before its rules are deployed.

``up`` is the service's: Prometheus writes it per scrape target. ServiceDown and
InstanceDown read it, and so do every component's ``ComponentMetricsMissing``
and the dashboards' job variable: all of them are one signal of the service's
own component, so a wrong service selector is one finding, not one per component.

Everything else in verify sees only these plain records; when the model changes
shape, only this module follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from obsgen.components.base import Component
from obsgen.errors import Path as FieldPath
from obsgen.model.dashboards import OVERVIEW
from obsgen.model.promql import Expr, Matcher, Variable, regex_quote
from obsgen.model.rules import Alert
from obsgen.model.service import ComponentModel, ServiceModel
from obsgen.spec import Spec
from obsgen.verify.selectors import Read, reads

VARIABLES_SIGNAL = "dashboard variables"  # an exporter job's `up`, read only by the dashboards' job variable
UP = "up"  # the service's signal: Prometheus's per-target series
# Alert labels that do not tell alerts of one name apart within a finding (CacheHitRateLow{tier="L1"} does).
_COMMON_ALERT_LABELS = ("component", "component_kind", "service", "severity", "team", "breaker")

# Signals that count rare events: client libraries create their series on the first event (a prometheus_client
# counter with labels has no sample until `.labels(...).inc()`; Micrometer tags an HTTP timer with
# outcome=SERVER_ERROR on the first server error), so on a healthy service they may not exist yet.
EVENTS: dict[str, frozenset[str]] = {
    "http": frozenset({"errors"}),
    "slos": frozenset({"errors"}),
    "caches": frozenset({"lock_failures", "l2_failures"}),
    "etags": frozenset({"not_modified"}),
    "breakers": frozenset({"failed_calls", "not_permitted"}),
    "retries": frozenset({"exhausted"}),
    "time_limiters": frozenset({"timeouts"}),
    "executors": frozenset({"rejected"}),
    "backpressure": frozenset({"rejected"}),
    "rate_limiters": frozenset({"rejected"}),
    "locks": frozenset({"failures"}),
    "db_pools": frozenset({"timeouts"}),
    "streams": frozenset({"send_failures"}),
}


@dataclass(frozen=True)
class Place:
    """A field of the spec and where it is: the finding's location."""

    path: FieldPath
    line: int
    column: int


@dataclass
class Use:
    """One selector that a component's rules or dashboards read, and what it is for."""

    file: str
    service: str
    profile: str
    component: str
    kind: str  # the kind's spec key: caches, breakers, …; `service` for the service's own component
    noun: str  # what one component of the kind is called: cache, circuit breaker
    path: FieldPath  # of the component in the spec: ("caches", 0); ("service",) for the service's own
    identity: str | None  # the label naming the component in this signal's series (cache), if any
    signal: str  # the component's signal, or the metric's name when none of its signals is this metric
    read: Read
    place: Place  # where the metric is set (metrics.<signal>), else the component's name
    places: dict[str, Place]  # per matcher label: the field that set its value
    label_places: dict[str, Place]  # per matcher label: the field that named the label
    # per matcher label that no spec field sets, whose it is: "profile" (the profile's default metric for the
    # signal carries it: status="5xx") or "kind" (obsgen's own queries select it: a state name, role="slave")
    own: dict[str, str]
    scrape_labels: frozenset[str]  # labels a scrape adds rather than the app (job, instance, …)
    event: bool  # a signal of rare events whose series may not exist yet (see EVENTS)
    exporter: bool  # metrics of a separate exporter (redis_exporter), not of the service itself
    alerts: set[str] = field(default_factory=set)
    # the alert rules behind ``alerts``, each with the component that owns it: the four caches' CacheHitRateLow
    # {tier="L1"} are one name here and four rules there (what the summary counts)
    rules: set[tuple[FieldPath, str]] = field(default_factory=set)
    panels: set[str] = field(default_factory=set)
    fires: set[str] = field(default_factory=set)  # alerts that fire, whatever else there is, when this is missing


def uses(spec: Spec, model: ServiceModel | None = None) -> list[Use]:
    """Every selector the spec's rules and dashboards read, merged per component, signal and selector."""
    from obsgen.pipeline import build

    return _Uses(spec, model or build(spec)).collect()


@dataclass(frozen=True)
class _Part:
    """One component: as the model has it, as the spec has it, and where."""

    model: ComponentModel
    component: Component
    path: FieldPath


class _Uses:
    """The uses of one spec, collected from its model's rules, panels and dashboards."""

    def __init__(self, spec: Spec, model: ServiceModel):
        self.spec, self.model = spec, model
        placed = {(c.kind.key, c.name): (c, path) for c, path in spec.placed()}
        self.parts = [_Part(m, *placed[(m.kind, m.name)]) for m in model.components]
        self.service = next(p for p in self.parts if p.path == ("service",))
        self.recordings = [r for m in model.components for r in m.recordings]
        self.out: dict[tuple, Use] = {}

    def collect(self) -> list[Use]:
        for part in self.parts:
            for rule in part.model.rules:  # every recording is deployed, read or not
                self._add(part, rule.expr, alert=_alert_label(rule) if isinstance(rule, Alert) else None)
            panels = part.model.panels
            boards = [(OVERVIEW.name, panels.health)] + [(part.model.concern.name, p) for p in panels.detail]
            for board, panel in boards:
                for query in panel.queries:
                    self._add(part, query.expr, panel=f"{board} / {panel.title}", jobs=panels.jobs)
        self._variables()
        return list(self.out.values())

    def _variables(self) -> None:
        """The dashboards' job and instance variables: ``label_values(up{job=~…}, …)``, as one ``up{job=…}``
        per job. The service's own job is its `up` signal; an exporter's job belongs to the components shown
        with it."""
        own = self.model.service.selector.get("job")
        for board in self.model.dashboards:
            panel = f"{board.name} / variables job, instance"
            for job in board.jobs:
                read = Read(UP, (Matcher("job", job),))
                if job == own:
                    self._merge(self.service, read, UP, panel=panel)
                    continue
                for part in self.parts:
                    if job in part.model.panels.jobs and board.slug in (OVERVIEW.slug, part.model.concern.slug):
                        self._merge(part, read, VARIABLES_SIGNAL, panel=panel)

    def _add(self, part: _Part, expr: Expr, *, alert: str | None = None, panel: str | None = None,
             jobs: tuple[str, ...] = ()) -> None:
        sources = [source for read in reads(expr)
                   for source in self._resolve(part, _dashboard_read(read, jobs) if panel is not None else read, set())
                   if source.metric]
        # a selector read for its absence (absent, unless) makes the alert fire when missing, not go blind; so
        # does one the alert reads both ways (ServiceDown: `max(up{…}) == 0 or absent(up{…}) * 0`)
        absent = {(s.metric, s.matchers) for s in sources if s.presence}
        valued = {(s.metric, s.matchers) for s in sources if not s.presence}
        for source in sources:
            owner, signal = self._owner(part, source)
            key = (source.metric, source.matchers)
            self._merge(owner, source, signal, alert=alert if key not in absent else None, rule=part.path,
                        panel=panel)
            if alert and source.presence and key in valued:  # `x == 0 or absent(x)`: fires whenever x is missing
                self.out[(owner.path, signal, source)].fires.add(alert)

    def _resolve(self, part: _Part, read: Read, seen: set[int]) -> list[Read]:
        """The selectors behind ``read`` when it names one of obsgen's recording rules (this component's own
        first: many components record under one name), else ``read`` itself.

        The matchers ``read`` puts on labels the rule does not set itself (``uri="/x"`` of a route's alert on
        ``sum by (uri) (…)``) select the rule's input series too: they go down with it, so a route no series
        has is found missing. Only matchers that select (``=``, ``=~``): a catch-all's ``uri!~"/x"`` selecting
        nothing means every route is a listed one, not a mistake."""
        equal = read.equal()
        for pool in (part.model.recordings, self.recordings):
            matching = [r for r in pool if r.record == read.metric and id(r) not in seen
                        and all(r.labels.get(k, v) == v for k, v in equal.items())]
            if matching:
                return [replace(src, presence=src.presence or read.presence)
                        for r in matching
                        for inner in reads(r.expr, compared=read.compared, carry=tuple(
                            m for m in read.matchers if m.op in ("=", "=~") and m.name not in r.labels))
                        for src in self._resolve(part, inner, seen | {id(r)})]
        return [read]

    def _owner(self, part: _Part, read: Read) -> tuple[_Part, str | None]:
        """The component and signal ``read`` belongs to: the signal its selector remembers; a custom signal's
        expression; the service's `up`, wherever it is read (a component's ComponentMetricsMissing)."""
        if read.signal is not None:
            return part, read.signal
        if part.component.kind.key == "custom":
            return part, "expr"
        if read.metric == self.service.component.metric(UP).name:
            return self.service, UP
        return part, None

    def _merge(self, part: _Part, read: Read, signal: str | None, *, alert: str | None = None,
               rule: FieldPath | None = None, panel: str | None = None) -> None:
        key = (part.path, signal, read)
        use = self.out.get(key)
        if use is None:
            use = self.out[key] = self._use(part, signal, read)
        if alert:
            use.alerts.add(alert)
            use.rules.add((rule or part.path, alert))
        if panel:
            use.panels.add(panel)

    def _use(self, part: _Part, signal: str | None, read: Read) -> Use:
        c, path, svc = part.component, part.path, self.model.service
        scrape = {"job", "instance"} | ({svc.cluster_label} if svc.cluster_label else set())
        if c.kind.app_metrics:
            scrape |= set(svc.selector)
        written = signal is not None and signal in c.spec.metrics
        if c.kind.key == "custom":
            at: FieldPath = path + ("expr",)
        else:
            at = path + (("metrics", signal) if written else ("name",))
        identity = _identity(c, signal)
        origins = {m.name: self._origin(part, m, signal, identity, at) for m in read.matchers}
        own = {m.name: self._own(part, m, signal) for m in read.matchers
               if origins[m.name] == (self._place(at), self._place(at)) and m.name != identity
               and self._written_value(path, m) is None}
        return Use(file=self.spec.file, service=svc.name, profile=svc.profile, component=part.model.name,
                   kind=part.model.kind, noun=_noun(part.model.kind_title), path=path, identity=identity,
                   signal=signal or read.metric, read=read, place=self._place(at),
                   places={k: v for k, (v, _) in origins.items()}, label_places={k: n for k, (_, n) in origins.items()},
                   own=own,
                   scrape_labels=frozenset(scrape), event=signal in EVENTS.get(part.model.kind, ()),
                   exporter=not c.kind.app_metrics)

    def _origin(self, part: _Part, m: Matcher, signal: str | None, identity: str | None,
                at: FieldPath) -> tuple[Place, Place]:
        """The spec fields that put ``m`` into the selector: the one that set its value and the one that named
        its label (the same key of a mapping, as in a selector, or two fields, as a component's `value` and
        `label`). Where the author wrote it, else where the signal is defined (``at``)."""
        c, path, label = part.component, part.path, m.name
        if c.kind.app_metrics and label in c.service.selector and label not in c.spec.selector:
            return self._keyed(("service", "selector", label))
        if label in c.spec.selector:
            return self._keyed(path + ("selector", label))
        own = path + ("metrics", signal) if signal else path
        if label == identity:  # the metric's own label/value, else the component's, else its name
            value = self._written(own + ("value",), path + ("value",)) or path + ("name",)
            return self._place(value), self._place(self._written(own + ("label",), path + ("label",)) or value)
        ref = c.spec.metrics.get(signal) if signal else None
        if ref is not None and label in dict(ref.matchers):
            return self._keyed(own + ("matchers", label))
        found = self._written_value(path, m)  # a tier's labels, a route
        if found is not None:
            return self._keyed(found) if found[-1] == label else (self._place(found), self._place(at))
        return self._place(at), self._place(at)

    @staticmethod
    def _own(part: _Part, m: Matcher, signal: str | None) -> str:
        """Whose a matcher no spec field sets is: the profile's default metric's, or obsgen's own query's."""
        c = part.component
        ref = c.metric(signal) if signal and signal not in c.spec.metrics and c.has(signal) else None
        return "profile" if ref is not None and m.name in dict(ref.matchers) else "kind"

    def _written(self, *paths: FieldPath) -> FieldPath | None:
        """The first of ``paths`` the author wrote."""
        source = self.spec.source
        return next((p for p in paths if source is not None and p in source.positions), None)

    def _written_value(self, path: FieldPath, m: Matcher) -> FieldPath | None:
        """The one field under ``path`` whose text is ``m``'s value (a field named like its label first):
        where a tier's `labels` or a route put the matcher."""
        if self.spec.source is None or m.op not in ("=", "=~"):
            return None
        found = [p for p, value in _strings(_at(self.spec.source.data, path), path) if value == m.value]
        named = [p for p in found if p[-1] == m.name]
        return next(iter(named if len(named) == 1 else found if len(found) == 1 else []), None)

    def _keyed(self, path: FieldPath) -> tuple[Place, Place]:
        """A mapping entry that is both: its value, and its key (the label's name)."""
        source = self.spec.source
        line, column = source.where(path, key=True) if source is not None else (1, 1)
        return self._place(path), Place(path, line, column)

    def _place(self, path: FieldPath) -> Place:
        line, column = self.spec.where(path)
        return Place(path, line, column)


def _at(data: object, path: FieldPath) -> object:
    """The part of the spec's plain data at ``path`` (None where there is none)."""
    for step in path:
        if isinstance(data, dict) and step in data or isinstance(data, list) and isinstance(step, int) \
                and 0 <= step < len(data):
            data = data[step]
        else:
            return None
    return data


def _strings(data: object, path: FieldPath):
    """Every text value under ``data`` with its path."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, path + (i,))


def _noun(title: str) -> str:
    """A kind's title inside a sentence: ``circuit breaker``, but ``HTTP server``, ``E-Tag``, ``DB pool``."""
    first = title.split(" ")[0]
    return title[0].lower() + title[1:] if first[1:].islower() and "-" not in first else title


def _identity(c: Component, signal: str | None) -> str | None:
    """The label naming ``c`` in the series of ``signal``: the component's ``label``, unless this signal's metric
    names it by another (``executor_active_threads{name=…}`` of an executor labelled ``executor``)."""
    if not c.identity:
        return None
    (label, _), = c.identity.items()
    if signal is None or not c.has(signal):
        return label
    return c.metric(signal).label or label


def _dashboard_read(read: Read, jobs: tuple[str, ...]) -> Read:
    """A panel's selector as Grafana runs it with every variable on All: ``$job`` is any of the dashboard's
    jobs, ``$instance`` and ``$cluster`` anything."""
    matchers = []
    for m in read.matchers:
        if not isinstance(m.value, Variable):
            matchers.append(m)
        elif m.value == "$job" and jobs:
            matchers.append(Matcher("job", jobs[0]) if len(jobs) == 1 else
                            Matcher("job", "|".join(regex_quote(j) for j in jobs), "=~"))
    return replace(read, matchers=tuple(matchers))


def _alert_label(alert: Alert) -> str:
    """The alert's name, with the labels that tell it from others of that name: ``CacheHitRateLow{tier="L1"}``."""
    extra = [Matcher(k, v).text() for k, v in alert.labels.items() if k not in _COMMON_ALERT_LABELS]
    return alert.name + ("{" + ", ".join(extra) + "}" if extra else "")

