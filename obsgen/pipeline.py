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

from obsgen.components.compute import component_model, watched
from obsgen.model.dashboards import assemble, link_alerts
from obsgen.model.service import ComponentModel, ServiceModel, pack
from obsgen.spec import Spec
from obsgen.writer import Output


def _components(spec: Spec) -> tuple[ComponentModel, ...]:
    placed = [c for c, _ in spec.placed()]
    siblings = watched(placed)
    return tuple(component_model(c, siblings)[0] for c in placed)


def build(spec: Spec) -> ServiceModel:
    """The service model of ``spec``: every component built once, dashboards laid out, alerts linked.

    A spec loaded from text comes with its components computed (:func:`obsgen.spec.parse` checks what
    only the computed rules reveal); a spec made in code has them computed here.
    """
    service = spec.service
    components = spec.built if spec.built else _components(spec)
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
        if not scale:
            tests = promtool_tests.render_file(mine, [c for c in model.components if c.rules_file == file],
                                               model.service.cluster_label)
            outputs += [Output(f"{base}/prometheus/{path}", text) for path, text in tests.items()]
    boards = dashboards.render(model)
    outputs += [Output(path, text) for path, text in boards.items()]
    if not scale:  # what the platforms consume: prometheus-operator, Grafana provisioning, Alertmanager
        outputs += [Output(path, text) for path, text in prometheusrule.render(model).items()]
        outputs += [Output(path, text) for path, text in grafana_provisioning.render(model.service, boards).items()]
        outputs.append(Output(f"{base}/{alertmanager.FILE}", alertmanager.render(model)))
    outputs += [Output(path, text, merge=runbooks.merge) for path, text in runbooks.render(model).items()]
    return outputs


def render_all(spec: Spec, **options) -> list[Output]:
    """Every file of one spec (``options`` are :func:`render`'s): :func:`render` of the spec itself, or, when it has ``environments:``, of each
    environment's spec into ``<service>/<environment>/`` (the layout of docs/outputs.md, "Environments").

    Each environment's set is complete on its own, so a GitOps tool points one cluster at one folder; the
    spec itself, values no environment runs with, writes nothing then.
    """
    if not spec.environments:
        return render(spec, **options)
    base = f"{spec.service.name}/"
    return [Output(f"{base}{env}/{out.path.removeprefix(base)}", out.content, out.merge)
            for env, merged in spec.environments for out in render(merged, **options)]
