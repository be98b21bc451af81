"""The service model: everything obsgen generates for one spec, computed once.

:func:`obsgen.pipeline.build` turns a loaded spec into a :class:`ServiceModel`:
per component its final alerts (tuned, linked to their own panel), recordings,
test scenarios, panels and inhibitions; for the service its rule groups and
dashboards. Every renderer, and every check that needs rules, reads only this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from obsgen.model.panels import ComponentPanels, Concern, Dashboard
from obsgen.model.records import record
from obsgen.model.rules import Alert, Inhibition, Recording, Rule
from obsgen.model.types import ComponentSpec, Duration, Service

GROUP_NAME_MAX = 40
GROUP_RULES_MAX = 20


@record
class ComponentModel:
    """One component of the service with its rules and panels.

    ``kind`` is the kind's key (``caches``; also the name of its runbook
    template), ``spec`` the component's typed settings (runbooks quote them).
    """

    name: str
    kind: str
    kind_title: str
    spec: ComponentSpec
    concern: Concern
    rules: tuple[Rule, ...]
    panels: ComponentPanels
    inhibitions: tuple[Inhibition, ...] = ()
    rules_file: str = "rules"
    test_step: Duration = Duration(15_000)
    origins: Mapping[str, str | None] = field(default_factory=dict)
    """Metric name → the library or exporter that publishes it (``None``: the application defines it)."""

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(r for r in self.rules if isinstance(r, Alert))

    @property
    def recordings(self) -> tuple[Recording, ...]:
        return tuple(r for r in self.rules if isinstance(r, Recording))


@record
class RuleGroup:
    """A rule group, the file it goes to (``prometheus/<file>.yaml``) and the clock its tests run on."""

    name: str
    rules: tuple[Rule, ...]
    file: str = "rules"
    test_step: Duration = Duration(15_000)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(r for r in self.rules if isinstance(r, Alert))


def pack(service: str, kind: str, per_component: list[tuple[Rule, ...]], *, file: str = "rules",
         test_step: Duration = Duration(15_000)) -> list[RuleGroup]:
    """Pack whole components into groups of at most 20 rules, named ``<service>.<kind>[.n]``.

    A component's recordings stay in the same group as the alerts that read them,
    so an evaluation never sees a recording from the previous cycle.
    """
    chunks: list[list[Rule]] = []
    for rules in per_component:
        if not rules:
            continue
        if not chunks or len(chunks[-1]) + len(rules) > GROUP_RULES_MAX:
            chunks.append([])
        chunks[-1].extend(rules)
    out = []
    for i, chunk in enumerate(chunks, 1):
        suffix = f".{kind}" + (f".{i}" if len(chunks) > 1 else "")
        out.append(RuleGroup(service[: GROUP_NAME_MAX - len(suffix)] + suffix, tuple(chunk), file, test_step))
    return out


@record
class ServiceModel:
    """One service: its spec file, settings, components (kind order, then spec order), groups and dashboards."""

    file: str
    service: Service
    components: tuple[ComponentModel, ...]
    groups: tuple[RuleGroup, ...]
    dashboards: tuple[Dashboard, ...]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(a for g in self.groups for a in g.alerts)

    def files(self) -> list[str]:
        """The rule files, in order of first appearance (``rules``, ``slo``)."""
        return list(dict.fromkeys(g.file for g in self.groups))
