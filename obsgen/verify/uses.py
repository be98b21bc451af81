"""What each selector of a spec is for: the one module of verify that reads obsgen's components.

For every component it takes what obsgen would deploy (alerting and recording
rules, dashboard panels and the dashboards' ``job`` variable) and lists every
vector selector in it as a :class:`Use`: the component and signal it belongs
to, what the expression does with it (:class:`~obsgen.verify.selectors.Read`),
the alerts and panels that go blind without it, and where in the spec each of
its labels was set. obsgen's own recording rules are resolved to the selectors
they read, so a spec can be verified before its rules are deployed.

Everything else in verify sees only these plain records; when components
change shape, only this module follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsgen.components.base import Alert, Component, Recording
from obsgen.errors import Path as FieldPath
from obsgen.spec import Spec
from obsgen.verify.selectors import Matcher, Read, reads

OVERVIEW = "Service Overview"
VARIABLES_SIGNAL = "dashboard variables"  # the `up` series the dashboards' job and instance variables list
# Alert labels every alert has; the rest tell alerts of one name apart (CacheHitRateLow{tier="L1"}).
_COMMON_ALERT_LABELS = ("component", "service", "severity", "team", "breaker")
# Grafana variables in panel selectors: $job ranges over the dashboard's jobs, the others over everything.
_VARIABLES = ("$job", "$instance", "$cluster")

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
    kind: str  # the kind's spec key: caches, breakers, …
    noun: str  # what one component of the kind is called: cache, circuit breaker
    path: FieldPath  # of the component in the spec: ("caches", 0)
    identity: str | None  # the label naming the component in its series (cache), if any
    signal: str  # the component's signal, or the metric's name when none of its signals is this metric
    read: Read
    place: Place  # where the metric is set (metrics.<signal>), else the component's name
    places: dict[str, Place]  # per matcher label: the field that set it
    scrape_labels: frozenset[str]  # labels a scrape adds rather than the app (job, instance, …)
    event: bool  # a signal of rare events whose series may not exist yet (see EVENTS)
    exporter: bool  # metrics of a separate exporter (redis_exporter), not of the service itself
    alerts: set[str] = field(default_factory=set)
    panels: set[str] = field(default_factory=set)


def uses(spec: Spec) -> list[Use]:
    """Every selector the spec's rules and dashboards read, merged per component, signal and selector."""
    rules = {id(c): c.kind.rules(c) for c in spec.components}
    out: dict[tuple, Use] = {}
    for c in spec.components:
        _Component(spec, c, rules).collect(out)
    return list(out.values())


class _Component:
    """The uses of one component: its alerts, recordings and panels."""

    def __init__(self, spec: Spec, c: Component, rules: dict[int, list]):
        self.spec, self.c, self.rules = spec, c, rules
        self.path = spec.path_of(c)
        self.mine = [r for r in rules[id(c)] if isinstance(r, Recording)]
        self.everyone = [r for c2 in spec.components for r in rules[id(c2)] if isinstance(r, Recording)]

    def collect(self, out: dict[tuple, Use]) -> None:
        c = self.c
        for rule in self.rules[id(c)]:
            if isinstance(rule, Alert):
                self._add(out, rule.expr, alert=_alert_label(rule))
            else:  # every recording is deployed, read or not
                self._add(out, rule.expr)
        panels = c.kind.panels(c)
        detail = c.kind.concern.name
        for board, panel in [(OVERVIEW, panels.health)] + [(detail, p) for p in panels.detail]:
            for query in panel.queries:
                self._add(out, query.expr, panel=f"{board} / {panel.title}", jobs=panels.jobs)
        for job in panels.jobs:  # the dashboards' job and instance variables: label_values(up{job=~…}, …)
            read = Read("up", (Matcher("job", "=", job),))
            for board in (OVERVIEW, detail):
                self._merge(out, read, panel=f"{board} / variables job, instance", signal=VARIABLES_SIGNAL)

    def _add(self, out, expr: str, *, alert: str | None = None, panel: str | None = None,
             jobs: tuple[str, ...] = ()) -> None:
        for read in reads(expr):
            if panel is not None:
                read = _dashboard_read(read, jobs)
            for source in self._resolve(read, set()):
                if source.metric:
                    self._merge(out, source, alert=alert, panel=panel)

    def _resolve(self, read: Read, seen: set[int]) -> list[Read]:
        """The selectors behind ``read`` when it names one of obsgen's recording rules (this component's own
        first: many components record under one name), else ``read`` itself."""
        equal = read.equal()
        for pool in (self.mine, self.everyone):
            matching = [r for r in pool if r.record == read.metric and id(r) not in seen
                        and all(r.labels.get(k, v) == v for k, v in equal.items())]
            if matching:
                return [src for r in matching for inner in reads(r.expr, compared=read.compared)
                        for src in self._resolve(inner, seen | {id(r)})]
        return [read]

    def _merge(self, out, read: Read, *, alert: str | None = None, panel: str | None = None,
               signal: str | None = None) -> None:
        signal = signal or _signal(self.c, read)
        key = (self.path, signal, read)
        use = out.get(key)
        if use is None:
            use = out[key] = self._use(signal, read)
        if alert:
            use.alerts.add(alert)
        if panel:
            use.panels.add(panel)

    def _use(self, signal: str | None, read: Read) -> Use:
        c, spec, path = self.c, self.spec, self.path
        svc = c.service
        scrape = {"job", "instance"} | ({svc.cluster_label} if svc.cluster_label else set())
        if c.kind.app_metrics:
            scrape |= set(svc.selector)
        written = signal is not None and signal in c.spec.metrics
        if c.kind.key == "custom":
            at: FieldPath = path + ("expr",)
        else:
            at = path + (("metrics", signal) if written else ("name",))
        places = {m.label: self._place(self._origin(m.label, signal, at)) for m in read.matchers}
        identity = next(iter(c.identity), None)
        return Use(file=spec.file, service=svc.name, profile=svc.profile, component=c.name, kind=c.kind.key,
                   noun=c.kind.title[0].lower() + c.kind.title[1:], path=path, identity=identity,
                   signal=signal or read.metric, read=read, place=self._place(at), places=places,
                   scrape_labels=frozenset(scrape), event=signal in EVENTS.get(c.kind.key, ()),
                   exporter=not c.kind.app_metrics)

    def _origin(self, label: str, signal: str | None, at: FieldPath) -> FieldPath:
        """The spec field that put ``label`` into the selector."""
        c, path = self.c, self.path
        if c.kind.app_metrics and label in c.service.selector and label not in c.spec.selector:
            return ("service", "selector", label)
        if label in c.spec.selector:
            return path + ("selector", label)
        if label in c.identity:
            return path + (("value",) if getattr(c.spec, "value", None) else ("name",))
        if signal and signal in c.spec.metrics and label in dict(c.spec.metrics[signal].matchers):
            return path + ("metrics", signal)
        return at

    def _place(self, path: FieldPath) -> Place:
        line, column = self.spec.where(path)
        return Place(path, line, column)


def _signal(c: Component, read: Read) -> str | None:
    """The component's signal whose metric ``read`` selects: same name, and the signal's matchers among the
    selector's (the most specific wins: ``result="hit"`` is hits, not lookups)."""
    if c.kind.key == "custom":
        return "expr"
    equal = read.equal()
    best, most = None, -1
    for signal in dict.fromkeys([*c.kind.defaults(c.service.profile), *c.spec.metrics]):
        ref = c.metric(signal)
        if ref is None or ref.name != read.metric or any(equal.get(k) != v for k, v in ref.matchers):
            continue
        if len(ref.matchers) > most:
            best, most = signal, len(ref.matchers)
    return best


def _dashboard_read(read: Read, jobs: tuple[str, ...]) -> Read:
    """A panel's selector as Grafana runs it with every variable on All: ``$job`` is any of the dashboard's
    jobs, ``$instance`` and ``$cluster`` anything."""
    from obsgen.promql import regex_quote

    matchers = []
    for m in read.matchers:
        if m.value not in _VARIABLES:
            matchers.append(m)
        elif m.value == "$job" and jobs:
            matchers.append(Matcher("job", "=", jobs[0]) if len(jobs) == 1 else
                            Matcher("job", "=~", "|".join(regex_quote(j) for j in jobs)))
    return Read(read.metric, tuple(matchers), read.function, read.range, read.grafana_range, read.quantile_above,
                read.compared)


def _alert_label(alert: Alert) -> str:
    """The alert's name, with the labels that tell it from others of that name: ``CacheHitRateLow{tier="L1"}``."""
    from obsgen.promql import matchers

    extra = {k: v for k, v in alert.labels.items() if k not in _COMMON_ALERT_LABELS}
    return alert.name + (matchers(extra) if extra else "")
