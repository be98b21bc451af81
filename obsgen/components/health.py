"""Health checks and the degraded modes they switch: failing checks, silent checks, stuck degraded modes.

No library exports a health check as a Prometheus metric. Spring Boot Actuator's
``/actuator/health`` is HTTP/JSON only (its how-to "Map Health Indicators to
Micrometer Metrics" registers an app-side ``health`` gauge, UP=3, OUT_OF_SERVICE=2,
DOWN=1, UNKNOWN=0, for the overall status), and Python services report their
checks as JSON (Table Order's ``/health/ready``, AniVault's ``get_resilience_status()``).
obsgen therefore defines what the app exports, the same name in both profiles
(Micrometer's ``health.check.status`` gauge renders as ``health_check_status``):

* ``health_check_status{check="<name>"}``: the result of the check's latest run,
  1 when it passed, 0 when it failed (a MeterBinder over Spring's
  HealthContributorRegistry, or a prometheus_client Gauge set after each run);
  ``healthy_value`` adapts other encodings (3 for the Spring how-to's gauge);
* ``degraded_mode_active{mode="<name>"}``: 1 while the app runs in a degraded mode
  it switched to because the check failed (AniVault's cache-only mode), else 0.

A check served over HTTP can instead be watched from outside, the way production
watches health endpoints: the blackbox exporter probes it and exports
``probe_success`` (1 when the module's expectations hold: a 2xx answer for
``http_2xx``) and ``probe_http_status_code``. A check with ``probe`` reads those;
it then needs no gauge from the app, and a handler that crashes (a 500 the app
never counts) still fires HealthCheckFailing.

The ``for`` of every alert is derived from the check's own timing (interval,
failure and recovery thresholds), so a single failed probe, or a degradation
the app recovers from by itself, never fires.
"""

from __future__ import annotations


from obsgen.components.base import (OBSGEN_LABELS, AlertDef, Built, Component, Concern, Finding, Given, Inhibition,
                                    Kind, Rule, Scenario, breaker_reference)
from obsgen.components.shapes import gauge_compare, isolated, kept, verdict
from obsgen.components.timeline import MAX_FOR, MIN, gauge, whole_steps
from obsgen.components.viz import VARS, ComponentPanels, Mapping, Panel, Query, above, below, jobs, sel
from obsgen.model.promql import (Call, Expr, Num, Offset, Paren, Range, Selector, Variable, agg, and_, binop, number,
                                 or_, over_time, selector)
from obsgen.model.build import build
from obsgen.model.records import record
from obsgen.model.rules import Check, Series
from obsgen.model.types import ComponentSpec, Duration, Labels, MetricRef

FLOOR = MIN  # no `for` below a minute: four 15 s scrapes
PROBE_SUCCESS, PROBE_STATUS = "probe_success", "probe_http_status_code"  # the blackbox exporter's probe results
BLACKBOX = "the Prometheus blackbox exporter, one series per probe it runs"
HOUR = Duration.parse("1h")

# The `for` of each alert derives from the check's timing (see failing_for and friends); "1m" is the floor.
FAILING = AlertDef(
    "HealthCheckFailing", "critical", "1m", "A health check keeps failing: its dependency is unreachable or broken.",
    related=("HealthCheckSilent", "DegradedModeActive", "DegradedModeNotRecovering", "CircuitBreakerOpen",
             "RetryExhaustionHigh"))
SILENT = AlertDef(
    "HealthCheckSilent", "critical", "2m",
    "Nothing reports a health check whose silence is its failure: the processes, or the probe watching it, are gone.",
    related=("HealthCheckFailing",))
DEGRADED = AlertDef(
    "DegradedModeActive", "warning", "1m",
    "The service runs in a degraded mode: a dependency failed and it serves what it can without it.",
    related=("HealthCheckFailing", "DegradedModeNotRecovering", "CircuitBreakerOpen"))
NOT_RECOVERING = AlertDef(
    "DegradedModeNotRecovering", "critical", "1m",
    "A degraded mode does not end although it should have: automatic recovery is not happening.",
    related=("HealthCheckFailing", "DegradedModeActive", "CircuitBreakerOpen"))


@record(kw_only=True)
class DegradedMode:
    """The degraded mode a failing check switches on (``degraded_mode:``): how it shows and how it ends."""

    name: str
    label: str
    auto_recovery: bool
    recovery_check_interval: Duration | None
    max_duration: Duration
    status: str | None
    force_recovery: str | None
    switch_off: str | None


@record(kw_only=True)
class Probe:
    """The blackbox exporter's probe of the check's endpoint: the labels of its series, the probed URL (their
    ``instance``), the module it runs."""
    selector: Labels
    target: str | None
    module: str

    @property
    def labels(self) -> Labels:
        return {**self.selector, **({"instance": self.target} if self.target else {})}


@record(kw_only=True)
class HealthCheckSpec(ComponentSpec):
    """One item of a spec's ``health_checks:`` list (health check), as the schema defaulted it."""

    label: str
    dependency: str
    endpoint: str | None
    command: str | None
    engine: str | None
    port: int | None
    database_name: str | None
    error_status: bool | None
    breaker: str | None
    probe: Probe | None
    interval: Duration
    timeout: Duration | None
    failure_threshold: int
    recovery_threshold: int
    healthy_value: float
    silence_is_failure: bool
    degraded_mode: DegradedMode | None


# --------------------------------------------------------------------------- timing


def detection_time(spec: HealthCheckSpec) -> Duration:
    """How long the check must fail before the app (or Kubernetes) calls it down: failure_threshold runs."""
    return spec.interval * spec.failure_threshold


def recovery_time(spec: HealthCheckSpec) -> Duration:
    """The longest a degraded mode may stay on once the check passes again.

    recovery_threshold passing runs confirm the dependency, then the app's next
    recovery check (every ``recovery_check_interval``) switches back; without
    automatic recovery nothing switches back, and the confirmation alone counts.
    """
    mode = spec.degraded_mode
    confirm = spec.interval * spec.recovery_threshold
    if mode is None or not mode.auto_recovery:
        return confirm
    return confirm + (mode.recovery_check_interval or spec.interval)


def failing_for(spec: HealthCheckSpec) -> Duration:
    return max(whole_steps(detection_time(spec)), FLOOR)


def silent_for(spec: HealthCheckSpec) -> Duration:
    """A restart takes one detection time to trigger and about as long to answer again; at least 2 minutes."""
    return max(whole_steps(detection_time(spec) * 2), MIN * 2)


def degraded_for(spec: HealthCheckSpec) -> Duration:
    return max(whole_steps(recovery_time(spec)), FLOOR)


def stuck_for(spec: HealthCheckSpec) -> Duration:
    """Recovery time plus a minute for the scrape delay of the two series the alert joins."""
    return whole_steps(recovery_time(spec)) + MIN


def check(given: Given) -> list[Finding]:
    item = given.item
    if found := breaker_reference(given):
        return found
    detection = Duration.parse(item["interval"]) * item["failure_threshold"]
    if detection > MAX_FOR:
        return [Finding(("failure_threshold",), (
            f"the app would call the dependency down only after {detection} (failure_threshold × interval): "
            f"expected at most {MAX_FOR}; every alert of the check waits for that, so lower failure_threshold "
            "or interval"))]
    mode = item.get("degraded_mode")
    if item.get("probe") and (ignored := [p for p in (("metrics", "status"), ("healthy_value",)) if p in given.paths]):
        return [Finding(path, (
            f"a probed check reads the blackbox exporter's probe_success (1 when the probe passes), not the app's "
            f"status gauge, so `{'.'.join(path)}` would be ignored: drop it, or drop `probe` to read the gauge"))
            for path in ignored]
    if mode and item.get("probe"):
        return [Finding(("probe",), (
            "a check with a degraded mode is joined with the mode's gauge per instance of the app, and a probe's "
            "series are the blackbox exporter's (its `instance` is the probed URL): report this check from the app "
            "(drop `probe`), or declare the probe as a check of its own without `degraded_mode`"))]
    if not mode:
        return []
    spec = build(HealthCheckSpec, item)  # the item as checked by the schema, its defaults filled in
    if spec.degraded_mode.label in OBSGEN_LABELS:
        return [Finding(("degraded_mode", "label"), (
            f"expected the label that holds the mode's name, found `{spec.degraded_mode.label}`, a label obsgen "
            f"sets on alerts itself ({', '.join(OBSGEN_LABELS)}): the alert would show obsgen's value instead of the "
            "mode; name the label the app's degraded-mode gauge really has"))]
    longest, least = Duration.parse(mode["max_duration"]), stuck_for(spec) + MIN * 5
    if longest < least:
        return [Finding(("degraded_mode", "max_duration"),
                        f"max_duration ({longest}) must be at least {least}: 5m more than the recovery the mode is "
                        f"allowed ({stuck_for(spec)} = recovery_threshold × interval + recovery_check_interval + 1m), "
                        "so that a stuck mode and a long outage can be told apart")]
    return []


# --------------------------------------------------------------------------- rules


def _mode_base(c: Component) -> Labels:
    """Selector labels of the degraded-mode gauge: the service's and component's selectors, the mode, no check."""
    mode = c.spec.degraded_mode
    base = dict(c.service.selector)
    base.update(c.spec.selector)
    base[mode.label] = mode.name
    return base


def _reported(c: Component) -> Selector:
    """The series that report the check: the app's status gauge, or the blackbox exporter's ``probe_success``
    (its own job's labels, not the service's: the exporter is the scrape target)."""
    probe = c.spec.probe
    return c.select("status") if probe is None else selector(PROBE_SUCCESS, probe.labels)


def _reported_series(c: Component, values: str) -> Series:
    """A test input series of the check's result, labelled as :func:`_reported` selects it."""
    probe = c.spec.probe
    return c.series("status", values) if probe is None else Series(PROBE_SUCCESS, probe.labels, values)


def _healthy(spec: HealthCheckSpec) -> float:
    """The value of a passing check: ``healthy_value`` of the app's gauge, 1 for a probe."""
    return spec.healthy_value if spec.probe is None else 1


def _named(c: Component) -> Labels:
    """Labels the rules set on the alerts: the check's name for a probe, whose series do not carry it."""
    return {} if c.spec.probe is None else {c.spec.label: c.name}


def _check_name(c: Component) -> str:
    """The check's name in an alert's description: its label from the series, or, for a probe's series, which do
    not carry it (a rule's own labels are not in ``$labels``), the name itself."""
    return c.name if c.spec.probe is not None else f"{{{{ $labels.{c.spec.label} }}}}"


def _status(c: Component) -> Expr:
    """The check's latest result per instance (the worst of its series), as the rules judge it."""
    return agg("min", _reported(c), kept(c, "instance", c.spec.label))


def _mode(c: Component) -> Expr:
    """Whether each instance runs in the check's degraded mode."""
    return agg("max", c.select("degraded", base=_mode_base(c)), kept(c, "instance", c.spec.degraded_mode.label))


def _queries(c: Component) -> dict[str, Expr]:
    """The runbook's diagnostic queries every alert of a check shares: the status per instance, how often it
    flipped in the last hour (a steady failure flips once, a flapping check many times), the degraded mode."""
    out = {"status": _status(c),
           "flips": agg("sum", Call("changes", (Range(_reported(c), HOUR),)), kept(c, "instance", c.spec.label))}
    if c.spec.probe is not None:  # what the endpoint answered: 500 is a crashing handler, 503 a check that fails
        out["answer"] = agg("max", selector(PROBE_STATUS, c.spec.probe.labels), kept(c, "instance"))
    if c.spec.degraded_mode is not None:
        out["mode"] = _mode(c)
    return out


def _failing(c: Component, spec: HealthCheckSpec) -> list[Rule]:
    """The check below its passing value for the detection time, per instance (per probed endpoint)."""
    healthy, f_failing = _healthy(spec), failing_for(spec)
    brief = whole_steps(spec.interval * max(spec.failure_threshold - 1, 1))
    what = f" ({spec.dependency})" if spec.dependency else ""
    # A probe's series are named by the exporter's scrape (its `instance` is the probed URL): their stories
    # keep them as written, each in a test entry of its own.
    probed = spec.probe is not None
    fired = dict(c.identity) if not probed else {k: v for k, v in spec.probe.labels.items() if k == "instance"}
    source = ("" if spec.probe is None else
              f", probed by the blackbox exporter's {spec.probe.module} module: probe_success 0")

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        # fires at the detection time itself, not some time after it (a minute early it is silent)
        on_time = tuple(sorted((*verdict(f, end, True), Check(f, True)), key=lambda check: check.at))
        out = [Scenario("sustained", f"failing ({number(0)}) for {end}", (_reported_series(c, gauge((end, 0))),),
                        on_time, labels=fired, value=0, alone=probed),
               Scenario("healthy-1", f"passing ({number(healthy)})", (_reported_series(c, gauge((end, healthy))),),
                        verdict(f, end, False), alone=probed)]
        if f > brief:
            out.append(Scenario("spike", f"{brief} failing, then passing again", (_reported_series(
                c, gauge((MIN, healthy), (brief, 0), (end - MIN - brief, healthy))),), verdict(f, end, False),
                alone=probed))
        return out

    return c.alert(
        FAILING, expr=binop("<", _status(c), healthy), for_=f_failing, scenarios=scenarios, labels=_named(c),
        queries=_queries(c),
        condition=(f"the check reports below {number(healthy)} (failing{source}) for {f_failing}: "
                   + (f"{spec.failure_threshold} probes {spec.interval} apart (the blackbox job's scrape interval, "
                      "not the app's)" if probed else
                      f"{spec.failure_threshold} runs every {spec.interval}, the time the app needs to call it down")),
        description=(f"Health check {_check_name(c)}{what} on {{{{ $labels.instance }}}} has "
                     f"failed for {{for}} (checked every {spec.interval}, down after {spec.failure_threshold} "
                     "failures)."),
    )


def _silent(c: Component, spec: HealthCheckSpec) -> list[Rule]:
    """No instance reports the check at all. absent() sees the whole fleet, so with ``service.cluster_label``
    each cluster is judged on its own: the check reported there within ``for`` + 1d and not now."""
    reported = _reported(c)
    cluster = c.service.cluster_label
    restart = whole_steps(detection_time(spec))
    ok = _healthy(spec)
    f_silent = silent_for(spec)
    memory = f_silent + MAX_FOR
    expr: Expr
    if cluster:
        expr = binop("unless", agg("group", over_time("last", reported, memory), kept(c)),
                     agg("group", reported, kept(c)))
        labels: Labels = {}
        how = f"per cluster: reported within the last {memory}, absent now"
        who = f"No instance in cluster {{{{ $labels.{cluster} }}}} has reported health check {c.name}"
    else:  # absent() keeps the selector's equality matchers, the check's name among them
        expr, labels, how = Call("absent", (reported,)), reported.labels, "absent()"
        who = f"No instance has reported health check {_check_name(c)}"
    if spec.probe is not None:  # the series are the exporter's: name what absent() keeps of its selector
        key = "instance" if spec.probe.target else next(iter(spec.probe.selector))
        who = f"No probe of health check {c.name} ({{{{ $labels.{key} }}}}) has been reported"
    why = ("the blackbox exporter or its scrape is gone, or the target left its configuration" if spec.probe
           else "every process is dead, hung or no longer scraped")

    def scenarios(f: Duration) -> list[Scenario]:
        end = MIN + f + MIN * 2
        story = [
            Scenario("went-silent", "reported for 1m, then no instance reports the check",
                     (_reported_series(c, gauge((MIN, ok), (end - MIN, None))),),
                     verdict(MIN + f, end, True), labels=labels, per_instance=False, alone=True),
            Scenario("reporting", "every instance keeps reporting", (_reported_series(c, gauge((end, ok))),),
                     verdict(MIN + f, end, False), per_instance=False, alone=True),
        ]
        if restart < f:
            story.append(Scenario(
                "restart", f"silent for {restart} (one restart), then reporting again",
                (_reported_series(c, gauge((MIN, ok), (restart, None), (end - MIN - restart, ok))),),
                verdict(MIN + f, end, False), per_instance=False, alone=True))
        return story

    return c.alert(
        SILENT, expr=expr, for_=f_silent, scenarios=scenarios, labels=_named(c),
        # Each scrape target that reported the check lately, with `up`: 0 = Prometheus cannot scrape it,
        # 1 = scraped but the check is gone, no row = the target left service discovery. A probe's target is the
        # exporter's scrape of the probed URL (its job's `up`).
        queries={"targets": binop("and", selector("up", spec.probe.labels if spec.probe else c.service.selector),
                                  over_time("last", reported, memory), on=kept(c, "instance"))},
        condition=(f"no series of the check at all for {f_silent} ({how}: "
                   + ("the blackbox exporter's probe of it is gone, so nothing watches the check)" if spec.probe else
                      "every instance dead, hung or no longer scraped; silence is the failure of a liveness check)")),
        description=f"{who} for {{for}}: {why}.",
    )


def _degraded(c: Component, spec: HealthCheckSpec) -> list[Rule]:
    mode = spec.degraded_mode
    base = _mode_base(c)
    return gauge_compare(
        c, DEGRADED, signal="degraded", op=">", threshold=0, bad=1, good=(0,),
        spike=whole_steps(spec.interval * spec.recovery_threshold), base=base, by={mode.label: mode.name},
        for_=degraded_for(spec),
        queries=_queries(c),
        condition=(f"mode {mode.name} on for {degraded_for(spec)}, longer than a blip the app recovers from "
                   f"by itself ({spec.recovery_threshold} passing checks every {spec.interval}"
                   + (f" plus a recovery check every {mode.recovery_check_interval or spec.interval})"
                      if mode.auto_recovery else ")")),
        description=(f"{{{{ $labels.instance }}}} has run in degraded mode {{{{ $labels.{mode.label} }}}} for {{for}} "
                     f"because health check {spec.name} failed."),
    )


def _stuck(c: Component, spec: HealthCheckSpec) -> list[Rule]:
    """The mode on while the check passes for longer than the recovery takes, or on for ``max_duration`` while the
    check does not report a failure (silent or passing). A mode lasts for as long as its dependency is down
    (AniVault's cache-only mode: 002:258): a long outage whose check keeps failing is HealthCheckFailing's page,
    never "recovery is broken"."""
    mode = spec.degraded_mode
    base = _mode_base(c)
    by = kept(c, "instance", mode.label)
    on = c.select("degraded", base=base)
    status = c.select("status")

    def expr(f: Duration) -> Expr:
        window = max(mode.max_duration - f, MIN)
        worst = agg("min", status, kept(c, "instance"))
        passing, failing = binop(">=", worst, spec.healthy_value), binop("<", worst, spec.healthy_value)
        lasting = and_(binop("==", agg("max", over_time("min", on, window), by), 1), agg("max", Offset(on, window), by))
        return or_(Paren(and_(binop("==", agg("max", on, by), 1), passing, on=kept(c, "instance"))),
                   Paren(binop("unless", lasting, failing, on=kept(c, "instance"))))

    def story(phases: list[tuple[Duration, float | None, float]]) -> tuple:
        """(span, check passing (None: not reported), mode) phases."""
        checks = [(span, None if ok is None else spec.healthy_value if ok else 0) for span, ok, _ in phases]
        return (c.series("status", gauge(*checks)),
                c.series("degraded", gauge(*[(span, m) for span, _, m in phases]), base=base))

    def scenarios(f: Duration) -> list[Scenario]:
        return isolated(c, stories(f))  # their failing checks would fire HealthCheckFailing in a shared entry

    def stories(f: Duration) -> list[Scenario]:
        detect, confirm = whole_steps(detection_time(spec)), whole_steps(recovery_time(spec))
        outage = detect + MIN * 2
        end = outage + f + MIN * 2
        fired = {mode.label: mode.name}
        probe = whole_steps(spec.interval)
        out = [
            Scenario("stuck", f"check passes again after a {outage} outage, mode {mode.name} stays on",
                     story([(detect, 0, 0), (outage - detect, 0, 1), (end - outage, 1, 1)]),
                     verdict(f, end, True), labels=fired, value=1),
            Scenario("recovers", f"check passes again and the mode switches off after {confirm} (the recovery)",
                     story([(detect, 0, 0), (outage - detect, 0, 1), (confirm, 1, 1), (end - outage - confirm, 1, 0)]),
                     verdict(f, end, False)),
            Scenario("lucky-probe", "outage still on: one probe passes, the mode rightly stays on",
                     story([(detect, 0, 0), (MIN, 0, 1), (probe, 1, 1), (end - detect - MIN - probe, 0, 1)]),
                     verdict(f, end, False)),
        ]
        longest = mode.max_duration
        long_end = longest + MIN * 2
        outage = longest + MIN * 10
        out += [
            Scenario("long-outage", f"dependency down and mode on for {outage}, the check failing throughout: the "
                     "mode does its job, HealthCheckFailing pages", story([(outage, 0, 1)]), verdict(f, outage, False)),
            Scenario("too-long", f"mode on for more than {longest} while the check reports no failure (silent)",
                     story([(detect, 0, 1), (long_end - detect, None, 1)]), verdict(f, long_end, True),
                     labels=fired, value=1),
            Scenario("long-but-recovered", f"mode on for {longest - MIN * 2} while the dependency is down, then "
                     "both recover", story([(longest - MIN * 2, 0, 1), (MIN * 4, 1, 0)]),
                     verdict(f, long_end, False)),
            Scenario("started-degraded", "a new instance starts in the mode, its check not reported yet: its short "
                     f"history is not {longest} of it", story([(f + MIN * 4, None, 1)]),
                     verdict(f, f + MIN * 4, False)),
        ]
        return out

    f = stuck_for(spec)
    tuned = spec.alerts.get("DegradedModeNotRecovering")
    final = tuned.for_ if tuned and tuned.for_ else f
    return c.alert(
        NOT_RECOVERING, expr=expr(final), for_=f, scenarios=scenarios,
        queries=_queries(c),
        condition=(f"mode {mode.name} on while check {spec.name} passes for {f} (recovery should take at most "
                   f"{whole_steps(recovery_time(spec))}), or on for {mode.max_duration} in a row while the check "
                   "reports no failure"),
        description=(f"{{{{ $labels.instance }}}} is still in degraded mode {{{{ $labels.{mode.label} }}}} although "
                     f"health check {spec.name} has passed for {{for}}, or the mode has been on for "
                     f"{mode.max_duration} while the check reports no failure; it will not switch back by itself."),
    )


def rules(c: Component) -> list[Rule]:
    spec: HealthCheckSpec = c.spec  # type: ignore[assignment]
    # A check the app reports whose silence is its failure (liveness) only ever reports success: a rule on its
    # value could never fire, so HealthCheckSilent alone watches it. A probed check fails with probe_success 0.
    out = [] if spec.silence_is_failure and spec.probe is None else _failing(c, spec)
    if spec.silence_is_failure:
        out += _silent(c, spec)
    if spec.degraded_mode is not None:
        out += _degraded(c, spec) + _stuck(c, spec)
    return out


# --------------------------------------------------------------------------- panels


def _status_mappings(spec: HealthCheckSpec) -> tuple[Mapping, ...]:
    healthy = _healthy(spec)
    failing = range(int(healthy)) if float(healthy).is_integer() and 0 < healthy <= 10 else (0,)
    return (Mapping(healthy, "passing", "green"),) + tuple(Mapping(v, "failing", "red") for v in failing)


def _shown(c: Component) -> Expr:
    """The check's series on the dashboard, under the dashboard's variables: the app's gauge, or the probe's (its
    exporter job stays, as a Redis exporter's does, and joins the ``$job`` variable's values)."""
    if c.spec.probe is None:
        return sel(c, "status")
    cluster = {c.service.cluster_label: Variable("$cluster")} if c.service.cluster_label else {}
    return selector(PROBE_SUCCESS, c.spec.probe.labels, {**cluster, **VARS})


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: HealthCheckSpec = c.spec  # type: ignore[assignment]
    healthy = number(_healthy(spec))
    what = f" ({spec.dependency})" if spec.dependency else ""
    status = agg("min", _shown(c), ("instance",))
    detail = [Panel(
        title=f"{c.name}: check status", kind="state-timeline", unit="none", width=24,
        mappings=_status_mappings(spec), alerts=(FAILING,),
        description=(f"Result of the latest run of health check {c.name}{what} per instance, run every "
                     f"{spec.interval}" + (f" with a {spec.timeout} timeout" if spec.timeout else "") + ". "
                     + built.fires(FAILING, f"Failing for {{for}} ({spec.failure_threshold} runs) fires {{alert}}.")
                     ).strip(),
        queries=(Query(status, "{{instance}}"),),
    )]
    if spec.silence_is_failure:
        detail.append(Panel(
            title=f"{c.name}: instances reporting", unit="short", min=0, thresholds=below(1), alerts=(SILENT,),
            description=(f"Instances that report health check {c.name}. " + built.fires(
                SILENT, "None for {for} fires {alert}: for a liveness check silence is the failure.")).strip(),
            queries=(Query(binop("or", agg("count", _shown(c)), Call("vector", (Num(0),))), "reporting"),),
        ))
    mode = spec.degraded_mode
    if mode is not None:
        degraded = agg("max", sel(c, "degraded", base=_mode_base(c)), ("instance",))
        detail += [
            Panel(
                title=f"{c.name}: degraded mode {mode.name}", kind="state-timeline", unit="none", width=24,
                mappings=(Mapping(0, "normal", "green"), Mapping(1, mode.name, "orange")),
                alerts=(DEGRADED, NOT_RECOVERING),
                description=(f"Whether each instance runs in degraded mode {mode.name}, switched on when health check "
                             f"{c.name} fails. " + built.fires(DEGRADED, "On for {for} fires {alert}.")).strip(),
                queries=(Query(degraded, "{{instance}}"),),
            ),
            Panel(
                title=f"{c.name}: degraded mode vs check status", unit="none", min=0, alerts=(NOT_RECOVERING,),
                description=(f"Degraded mode {mode.name} (1 = on) next to check {c.name} (passing at {healthy}). "
                             + built.fires(NOT_RECOVERING, "The mode still on while the check passes for {for}, or "
                                                           f"on for {mode.max_duration}, fires {{alert}}.")).strip(),
                queries=(Query(degraded, "mode {{instance}}"), Query(status, "check {{instance}}")),
            ),
        ]
    failing = binop("or", agg("count", binop("<", status, _healthy(spec))), Call("vector", (Num(0),)))
    health = Panel(
        title=f"Health check {c.name}: failing instances", kind="stat", unit="short", width=6, height=5,
        thresholds=above(1), alerts=(FAILING,),
        description=f"Instances whose latest run of health check {c.name}{what} failed.",
        queries=(Query(failing, c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels, spec.probe.selector if spec.probe else None))


KIND = Kind(
    key="health_checks",
    title="Health check",
    spec=HealthCheckSpec,
    schema="health_check",
    check=check,
    alerts=(FAILING, SILENT, DEGRADED, NOT_RECOVERING),
    rules=rules,
    panels=panels,
    presence={"*": "status"},  # set by the first run of the check
    exported=lambda spec: spec.probe is None,  # a probed check is the blackbox exporter's series
    published={PROBE_SUCCESS: BLACKBOX, PROBE_STATUS: BLACKBOX},
    concern=Concern("health", "Health & Degraded Modes",
                    "Health check results per instance, instances reporting, degraded modes and their recovery."),
    # Degraded mode while the check fails is the app doing its job: the failing check is the news. A check tied to
    # the breaker around the same dependency (`breaker:`) is one outage with it: the breaker opens first under
    # traffic and pages; the check, and the mode it switched on, are the same news (without traffic the breaker
    # never opens and the check pages). DegradedModeNotRecovering is never held back: it is another failure.
    # A service down fails and silences its checks too (a probe of it answers nothing): one outage, one page.
    inhibitions=(Inhibition("HealthCheckFailing", ("DegradedModeActive",), ("service", "component", "instance")),
                 Inhibition("CircuitBreakerOpen", ("HealthCheckFailing", "DegradedModeActive"), ("service", "breaker")),
                 Inhibition("ServiceDown", ("HealthCheckFailing", "HealthCheckSilent"))),
    default_metrics={
        profile: {
            "status": MetricRef("health_check_status"),
            "degraded": MetricRef("degraded_mode_active"),
        } for profile in ("micrometer", "python")
    },
)
