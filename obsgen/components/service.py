"""The service itself: its processes are scraped at all, and each component's metrics exist.

Every alert of the other kinds is built from component metrics, so when the
application dies, its targets vanish from service discovery, or a metric is
renamed, their series disappear and those alerts go quiet: the worst moment to
be silent. Every spec gets this kind's component (named after the service):

* ``ServiceDown`` (critical): no target of the service's selector is up, every
  ``up`` is 0 or there is no ``up`` series at all (targets gone from discovery);
* ``InstanceDown`` (warning): one instance is down while others are up;
* ``ComponentMetricsMissing`` (warning, one per component of a kind that has a
  signal present from start-up, see ``Kind.presence``): the service is up but
  the component's primary signal has no series, so its alerts cannot fire.
"""

from __future__ import annotations

from dataclasses import field, replace

from obsgen.components.base import AlertDef, Built, Component, Concern, Inhibition, Kind, Rule, Scenario, Series
from obsgen.components.shapes import kept, verdict
from obsgen.components.timeline import MIN, gauge, whole_steps
from obsgen.components.viz import ComponentPanels, Mapping, Panel, Query, below, jobs, sel
from obsgen.model.promql import Call, Expr, Matcher, Paren, Selector, agg, binop, or_, over_time, selector
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

DOWN = AlertDef(
    "ServiceDown", "critical", "2m", "No instance of the service is up: every scrape fails or no target is left.",
    related=("InstanceDown", "ComponentMetricsMissing"))
INSTANCE_DOWN = AlertDef(
    "InstanceDown", "warning", "5m", "An instance of the service is down while others still serve.",
    related=("ServiceDown",))
PRESENCE_CLOCK = MIN
"""The evaluation clock of ``ComponentMetricsMissing``'s promtool stories (their own test file)."""
METRICS_MISSING = AlertDef(
    "ComponentMetricsMissing", "warning", "30m",
    "The service is up but a component's metrics are missing: its alerts cannot fire.",
    related=("ServiceDown", "InstanceDown"), template="service")
MEMORY = Duration.parse("1d")
"""How long a cluster that stops reporting ``up`` altogether is remembered (with ``service.cluster_label``)."""


@record(kw_only=True)
class ServiceSpec(ComponentSpec):
    """The service as a component: its selector is the service's, its alert tuning ``service.alerts``; it reads
    Prometheus' own ``up``, so it has no metrics to name and no label of its own."""

    description: str = ""
    label: str = "name"
    value: str | None = None
    selector: Labels = field(default_factory=dict)
    metrics: dict[str, MetricRef] = field(default_factory=dict)
    history: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()


def _up(c: Component) -> Expr:
    return selector("up", dict(c.service.selector), signal="up")


def _down(c: Component) -> list[Rule]:
    """Every instance down (``up`` is 0 everywhere), or no ``up`` series at all."""
    up, cluster = _up(c), c.service.cluster_label
    by = kept(c, *sorted(c.service.selector))  # both branches carry the selector's labels (absent() does)
    all_down = binop("==", agg("max", up, by), 0)
    gone: Expr
    if cluster:  # absent() cannot say which cluster lost its targets: remember each cluster for a day
        gone = binop("unless", agg("group", over_time("last", up, MEMORY), by), agg("group", up, by))
    else:
        gone = Call("absent", (up,))
    expr = or_(all_down, binop("*", Paren(gone), 0))  # $value: the instances up, 0 either way

    def scenarios(f: Duration) -> list[Scenario]:
        end = whole_steps(f) + MIN * 2
        series = lambda *values: tuple(Series("up", {**c.service.selector, "instance": f"app-{i}"}, v)  # noqa: E731
                                       for i, v in enumerate(values))
        return [
            Scenario("all-down", "every instance's scrape fails", series(gauge((end, 0)), gauge((end, 0))),
                     verdict(f, end, True), labels=dict(c.service.selector), value=0, per_instance=False,
                     alone=True),
            Scenario("gone", "every target disappears from discovery after a minute",
                     series(gauge((MIN, 1), (end - MIN, None))), verdict(MIN + f, end, True),
                     labels=dict(c.service.selector), value=0, per_instance=False, alone=True),
            Scenario("one-left", "one instance of two down, the other serving",
                     series(gauge((end, 0)), gauge((end, 1))), verdict(f, end, False), per_instance=False,
                     alone=True),
            Scenario("blip", "every scrape fails for 30s, then all up again",
                     series(gauge((MIN, 1), (Duration.parse("30s"), 0), (end - MIN - Duration.parse("30s"), 1))),
                     verdict(f, end, False), per_instance=False, alone=True),
        ]

    return c.alert(DOWN, expr=expr, scenarios=scenarios, queries={"up": up},
                   condition="no target of the service is up: every up series is 0, or there is no up series at all",
                   description=(f"{{{{ $value }}}} instances of service {c.service.name} up for {{for}}: its "
                                "processes are down, or service discovery lost its targets. The alerts built on its own "
                                "scrapes are blind while this fires (rate-based ones may still show the last 5m of "
                                "data); alerts read from other scrape targets still work."))


def _instance_down(c: Component) -> list[Rule]:
    up = _up(c)
    by = kept(c)
    others_up = binop(">", agg("max", up, by or None), 0)
    expr = binop("and", binop("==", up, 0), others_up, on=by)

    def scenarios(f: Duration) -> list[Scenario]:
        end = whole_steps(f) + MIN * 2
        series = lambda a, b: (Series("up", {**c.service.selector, "instance": "app-a"}, a),  # noqa: E731
                               Series("up", {**c.service.selector, "instance": "app-b"}, b))
        return [
            Scenario("one-down", "app-a down, app-b up", series(gauge((end, 0)), gauge((end, 1))),
                     verdict(f, end, True), labels={**c.service.selector, "instance": "app-a"}, value=0,
                     per_instance=False, alone=True),
            Scenario("all-up", "both up", series(gauge((end, 1)), gauge((end, 1))), verdict(f, end, False),
                     per_instance=False, alone=True),
            Scenario("all-down", "both down: ServiceDown's news, not this one's",
                     series(gauge((end, 0)), gauge((end, 0))), verdict(f, end, False), per_instance=False,
                     alone=True),
        ]

    return c.alert(INSTANCE_DOWN, expr=expr, scenarios=scenarios, queries={"up": up},
                   condition="one instance's `up` is 0 while another instance of the service is up",
                   description=(f"Instance {{{{ $labels.instance }}}} of service {c.service.name} has been down "
                                "for {for} while other instances serve: they carry its share of the load."))


def rules(c: Component) -> list[Rule]:
    return _down(c) + _instance_down(c)


def metrics_missing(c: Component, signal: str, blinds: tuple[str, ...],
                    others: tuple[tuple[Component, str], ...] = ()) -> list[Rule]:
    """``ComponentMetricsMissing`` for ``c``: the service is up, yet ``signal`` of the component has no series.

    ``signal`` exists from start-up (a gauge, a Micrometer function counter), so a missing series means a wrong
    name or label in the spec, or an app that no longer registers the metric, never a quiet component. The
    proof's stories show ``others`` (the service's other watched components) present: each story is about this
    component alone.
    """
    up = selector("up", dict(c.service.selector))
    primary = c.select(signal)
    by = kept(c)
    # $value: how many instances are up (and not reporting the component's metric)
    expr = binop("unless", agg("count", binop("==", up, 1), by), agg("group", primary, by), on=by)
    metric = c.metric(signal)
    shown = primary.metric + "{" + ", ".join(m.text() for m in primary.matchers) + "}"

    def scenarios(f: Duration) -> list[Scenario]:
        # Half an hour (up to a day) of `for` at a 15 s clock was most of promtool's work for a whole spec: these
        # stories run on Prometheus' default evaluation clock, checked one evaluation before it fires and at it.
        fires = whole_steps(f, PRESENCE_CLOCK)
        end = fires + PRESENCE_CLOCK
        instance = {"instance": f"{c.name}/presence"}
        up_series = Series("up", {**c.service.selector, **instance}, gauge((end, 1)))
        present = Series(metric.name, {**c.labels(signal), **instance}, gauge((end, 1)))
        rest = tuple(Series(o.metric(s).name, {**o.labels(s), **instance}, gauge((end, 1))) for o, s in others)
        down = Series("up", {**c.service.selector, **instance}, gauge((end, 0)))
        return [
            Scenario("missing", f"the service is up, {metric.name} has no series (the others report theirs)",
                     (up_series, *rest), verdict(fires, end, True, PRESENCE_CLOCK), value=1, per_instance=False,
                     clock=PRESENCE_CLOCK, alone=True),
            Scenario("present", f"the service is up and reports {metric.name}", (up_series, present, *rest),
                     verdict(fires, end, False, PRESENCE_CLOCK), per_instance=False, clock=PRESENCE_CLOCK,
                     alone=True),
            Scenario("service-down", "the service is down (ServiceDown's news)", (down,),
                     verdict(fires, end, False, PRESENCE_CLOCK), per_instance=False, clock=PRESENCE_CLOCK,
                     alone=True),
        ]

    return c.alert(
        METRICS_MISSING, expr=expr, scenarios=scenarios, queries={"primary": primary, "up": up},
        labels={"component_kind": c.kind.key},  # a breaker, its retry and its time limiter may share a name
        condition=f"the service is up and {shown} has no series",
        description=(f"Service {c.service.name} has {{{{ $value }}}} instance(s) up, but {c.kind.title.lower()} "
                     f"{c.name} reports no {shown} for {{for}}: the metric is misnamed in the spec, the selector or "
                     "label is wrong, or the app stopped registering it. Blind while this lasts: "
                     f"{', '.join(blinds) or 'its panels'}."))


def _own_up(c: Component) -> Selector:
    """``up`` of the service's own targets, narrowed by the dashboard variables. ``up`` is every scrape target's
    (a Redis exporter's too, whose job the overview's ``$job`` also lists), so the service's selector stays."""
    picked = sel(c, "up")
    kept_labels = {m.name for m in picked.matchers if m.op == "="}
    own = tuple(Matcher(k, v) for k, v in sorted(c.service.selector.items()) if k not in kept_labels)
    return replace(picked, matchers=own + picked.matchers)


def panels(c: Component, built: Built) -> ComponentPanels:
    up = _own_up(c)
    detail = (
        Panel(
            title=f"{c.service.name}: instances up", unit="short", min=0, thresholds=below(1), alerts=(DOWN,),
            description=("Instances Prometheus scrapes successfully, of the targets it has. "
                         + built.fires(DOWN, "None up (or no target left) for {for} fires {alert}.")).strip(),
            queries=(Query(agg("sum", up), "up"), Query(agg("count", up), "targets")),
        ),
        Panel(
            title=f"{c.service.name}: each instance", kind="state-timeline", unit="none", width=24,
            mappings=(Mapping(0, "down", "red"), Mapping(1, "up", "green")), alerts=(INSTANCE_DOWN, DOWN),
            description=("Whether Prometheus scrapes each instance of the service (`up`). "
                         + built.fires(INSTANCE_DOWN, "One down for {for} while others are up fires {alert}.")
                         ).strip(),
            queries=(Query(up, "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"Service {c.service.name}: instances up", kind="stat", unit="short", width=6, height=5,
        thresholds=below(1), alerts=(DOWN,),
        description="Instances of the service Prometheus scrapes successfully (sum of `up`).",
        queries=(Query(agg("sum", up), "up"),),
    )
    return ComponentPanels(health, detail, jobs(c.service.selector))


KIND = Kind(
    key="service",
    title="Service",
    spec=ServiceSpec,
    schema="",
    alerts=(DOWN, INSTANCE_DOWN, METRICS_MISSING),
    rules=rules,
    panels=panels,
    concern=Concern("availability", "Availability", "Whether the service's instances are scraped, and up."),
    default_metrics={"*": {"up": MetricRef("up", (), "Prometheus itself (one series per scrape target)")}},
    # Every instance down: the one-instance alert adds nothing; the components' metrics are gone with them.
    inhibitions=(Inhibition("ServiceDown", ("InstanceDown", "ComponentMetricsMissing")),),
    identified=False,
)


def component(service) -> Component:
    """The service's own component, tuned by ``service.alerts``."""
    from obsgen.model.build import build

    own = {"name": service.name, "alerts": service.alerts, "assumptions": service.assumptions}
    return Component(KIND, build(ServiceSpec, own), service)
