"""The pipeline: a loaded spec → the service model → rendered files, for one service.

:func:`build` computes the :class:`~obsgen.model.service.ServiceModel` once: each
component's rules and panels come from its kind, exactly one call each; the
dashboards are laid out and every alert is linked to its own panel.
:func:`render` hands that model to the renderers, which know nothing of kinds.
Everything here is pure: it returns file contents keyed by path relative to the
output directory, and the writer decides how they reach the disk.
"""

from __future__ import annotations

from itertools import groupby

from obsgen.components import service
from obsgen.components.base import Built, Component, OwnMatcher
from obsgen.errors import SpecError
from obsgen.model.dashboards import assemble, link_alerts
from obsgen.model.rules import Alert
from obsgen.model.service import ComponentModel, ServiceModel, pack
from obsgen.spec import Spec
from obsgen.spec.checks import model_problems, own_matcher_problem
from obsgen.writer import Output


def origins(c: Component) -> dict[str, str | None]:
    """Who publishes each metric the component reads: the profile's library, or the application (``None``)."""
    out: dict[str, str | None] = {}
    defaults = c.kind.defaults(c.service.profile)
    for signal in sorted(set(defaults) | set(c.spec.metrics)):
        if not c.has_metric(signal):
            continue
        ref, default = c.metric(signal), defaults.get(signal)
        out.setdefault(ref.name, default.origin if default is not None and default.name == ref.name else None)
    return out


def component_model(c: Component) -> tuple[ComponentModel, tuple[Alert, ...]]:
    """One component's rules and panels, each computed once (panels read the alerts as built), and every alert
    it offers, those the spec disabled included (to check the spec's tuning against)."""
    offered = tuple(c.kind.rules(c))
    presence = c.kind.presence_signal(c.service.profile)
    # Only the library names a profile gives are known to exist from start-up: a spec that names its own
    # metrics leaves the check to `obsgen verify`.
    if presence and not c.spec.metrics and c.has_metric(presence):
        blinds = tuple(dict.fromkeys(r.name for r in offered if isinstance(r, Alert) and r.enabled))
        offered += tuple(service.metrics_missing(c, presence, blinds))
    rules = tuple(r for r in offered if not isinstance(r, Alert) or r.enabled)
    built = Built(tuple(r for r in rules if isinstance(r, Alert)))
    model = ComponentModel(
        name=c.name, kind=c.kind.key, kind_title=c.kind.title, spec=c.spec, concern=c.kind.concern, rules=rules,
        panels=c.kind.panels(c, built), inhibitions=c.kind.inhibitions, rules_file=c.kind.rules_file,
        test_step=c.kind.test_step, origins=origins(c))
    return model, tuple(r for r in offered if isinstance(r, Alert))


def _components(spec: Spec) -> tuple[ComponentModel, ...]:
    """Every component built once; problems only the build reveals are raised located in the spec."""
    built, problems, checked = [], [], []
    for c, path in zip(spec.components, spec.paths or ((c.kind.key, 0) for c in spec.components)):
        try:
            model, offered = component_model(c)
        except OwnMatcher as exc:
            if spec.source is None:
                raise
            problems.append(own_matcher_problem(spec.source, path, c.kind, exc.key, exc.matcher, exc.where))
            continue
        built.append(model)
        checked.append((path, {n: {"for": t.for_} if t.for_ is not None else {} for n, t in c.spec.alerts.items()},
                        offered))
    if spec.source is not None:
        problems += model_problems(spec.source, checked)
    if problems:
        raise SpecError(problems)
    return tuple(built)


def build(spec: Spec) -> ServiceModel:
    """The service model of ``spec``: every component built once, dashboards laid out, alerts linked.

    Raises :class:`~obsgen.errors.SpecError` for what only the build reveals (tuning for an alert a
    component does not have, a derived ``for`` beyond a day, a selector on a label the kind matches itself).
    """
    service = spec.service
    components = _components(spec)
    laid = assemble(service, components)
    components = tuple(link_alerts(service, c, laid) for c in components)
    groups = []
    for kind, members in groupby(components, key=lambda c: c.kind):
        members = list(members)
        groups += pack(service.name, kind, [c.rules for c in members], file=members[0].rules_file,
                       test_step=members[0].test_step)
    return ServiceModel(spec.file, service, components, tuple(groups), laid.dashboards)


def render(spec: Spec | ServiceModel, time_scale: float | None = None) -> list[Output]:
    """All files of one service, with paths relative to the output directory.

    With a ``time_scale`` above 1 the rules run that many times faster (every
    window and ``for`` divided by it, see :mod:`obsgen.render.rules`) and the
    promtool tests, written for the real durations, are not emitted.
    """
    from obsgen.render import (alertmanager, dashboards, grafana_provisioning, prometheusrule, promtool_tests,
                               runbooks)
    from obsgen.render import rules as rules_renderer

    model = spec if isinstance(spec, ServiceModel) else build(spec)
    base = model.service.name
    scale = time_scale if time_scale and time_scale != 1 else None
    outputs = []
    for file in model.files():
        mine = [g for g in model.groups if g.file == file]
        outputs.append(Output(f"{base}/prometheus/{file}.yaml", rules_renderer.render(mine, scale)))
        if scale:
            continue
        step = mine[0].test_step
        alerts = [a for g in mine for a in g.alerts]
        tests = promtool_tests.render(alerts, f"{file}.yaml", step, model.service.cluster_label)
        outputs += [Output(f"{base}/prometheus/{file}{'' if clock == step else f'.{clock}'}.test.yaml", text)
                    for clock, text in tests.items()]
    boards = dashboards.render(model)
    outputs += [Output(path, text) for path, text in boards.items()]
    if not scale:  # what the platforms consume: prometheus-operator, Grafana provisioning, Alertmanager
        outputs += [Output(path, text) for path, text in prometheusrule.render(model).items()]
        outputs += [Output(path, text) for path, text in grafana_provisioning.render(model.service, boards).items()]
        outputs.append(Output(f"{base}/{alertmanager.FILE}", alertmanager.render(model)))
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(model).items()]
    return outputs
