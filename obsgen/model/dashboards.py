"""Dashboards laid out from the components' panels, and every alert linked to its own panel.

One dashboard per concern its components' kinds name (caches; breakers, retries
and time limiters; executors; Redis; …) plus a Service Overview with every
component's health on one screen. Every alert's ``dashboard_url`` opens the
panel of its own component (and cache tier) that shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from obsgen.model.panels import ComponentPanels, Concern, Dashboard, Link, Panel, Query, Row
from obsgen.model.promql import Expr, Variable, agg, selector
from obsgen.model.records import record
from obsgen.model.rules import Alert
from obsgen.model.service import ComponentModel
from obsgen.model.types import Service

OVERVIEW = Concern("service-overview", "Service Overview", "Every component's health on one screen.")


def _emitted(panels: ComponentPanels, alerts: Sequence[Alert]) -> ComponentPanels:
    """The component's panels linking only the alerts it really has (tuning can disable one)."""
    names = {a.definition for a in alerts}
    keep = lambda p: replace(p, alerts=tuple(d for d in p.alerts if d in names))  # noqa: E731
    return replace(panels, health=keep(panels.health), detail=tuple(keep(p) for p in panels.detail))


def _jobs(parts: Sequence[ComponentPanels]) -> tuple[str, ...]:
    return tuple(sorted({j for p in parts for j in p.jobs}))


def alerts_query(service: Service) -> Expr:
    """The ``ALERTS`` series of this service's firing alerts (dashboard annotations, the overview's table)."""
    cluster = {service.cluster_label: Variable("$cluster")} if service.cluster_label else {}
    return selector("ALERTS", {"service": service.name, "alertstate": "firing"}, cluster)


@record
class Laid:
    """The dashboards, and where each component's detail panels landed (``/d/<uid>/<slug>?viewPanel=<id>``)."""

    dashboards: tuple[Dashboard, ...]
    panel_urls: dict[tuple[str, str], tuple[tuple[Panel, str], ...]]


def assemble(service: Service, components: Sequence[ComponentModel]) -> Laid:
    """The service's dashboards: the overview first, then one per concern its components have."""
    alerts_expr = alerts_query(service)
    per_component = [(c, _emitted(c.panels, c.alerts)) for c in components]
    concerns = list(dict.fromkeys(c.concern for c in components))
    detail: list[Dashboard] = []
    placed: dict[tuple[str, str], list[tuple[Panel, int, str]]] = {}
    for concern in concerns:
        members = [(c, p) for c, p in per_component if c.concern == concern]
        items: list[Panel | Row] = []
        for c, p in members:
            items.append(Row(f"{c.kind_title}: {c.name}" + (f" ({c.spec.description})" if c.spec.description else "")))
            for panel in p.detail:
                items.append(panel)
                placed.setdefault((c.kind, c.name), []).append((panel, len(items), concern.slug))
        detail.append(Dashboard(service.name, concern.name, concern.slug, concern.description, tuple(items),
                                _jobs([p for _, p in members]), alerts_expr, tags=(service.name, "obsgen"),
                                cluster_label=service.cluster_label))
    overview_url = Dashboard(service.name, OVERVIEW.name, OVERVIEW.slug, "", (), (), alerts_expr).url
    home = Link(f"{OVERVIEW.name}", overview_url)
    detail = [replace(d, links=(home,) + tuple(Link(o.name, o.url) for o in detail if o is not d)) for d in detail]
    by_slug = {d.slug: d for d in detail}

    items = [_overview_alerts_panel(alerts_expr)]
    for c, p in per_component:
        target = by_slug[c.concern.slug]
        items.append(replace(p.health, links=p.health.links + ((f"{target.name} dashboard", target.url),)))
    description = (f"{service.description or service.name}: every component's health on one screen (team "
                   f"{service.team}); each panel links to the dashboard with the details.")
    overview = Dashboard(service.name, OVERVIEW.name, OVERVIEW.slug, description, tuple(items),
                         _jobs([p for _, p in per_component]), alerts_expr,
                         links=tuple(Link(d.name, d.url) for d in detail), tags=(service.name, "obsgen"),
                         cluster_label=service.cluster_label)
    urls = {key: tuple((panel, f"{by_slug[slug].url}?viewPanel={pid}") for panel, pid, slug in found)
            for key, found in placed.items()}
    return Laid((overview, *detail), urls)


def _overview_alerts_panel(alerts_expr: Expr) -> Panel:
    return Panel(
        title="Firing alerts",
        description="Alerts of this service firing now, from the ALERTS series; the overview's first stop.",
        unit="none", kind="table", width=24, height=6,
        queries=(Query(agg("sum", alerts_expr, ("alertname", "component", "severity", "instance")), instant=True),),
    )


class DroppedLink(RuntimeError):
    """An alert's dashboard link cannot be written (a bug in obsgen)."""


def link_alerts(service: Service, component: ComponentModel, laid: Laid) -> ComponentModel:
    """The component with each alert's ``dashboard_url`` set to the panel of this component that shows it.

    The target is the first of its panels that names the alert first and whose ``tag`` the alert carries
    (a tier's hit-ratio panel for that tier's alert); else the first of its panels that names the alert at
    all; else its first panel. Relative (``/d/…``) unless the spec sets ``service.dashboard_base_url``; with a cluster label the
    link opens the alert's own cluster.
    """
    panels = laid.panel_urls.get((component.kind, component.name), ())
    base = service.dashboard_base_url or ""
    cluster = service.cluster_label
    suffix = f"&var-cluster={{{{ $labels.{cluster} | urlquery }}}}" if cluster else ""

    def url(alert: Alert) -> str | None:
        fits = [(p, u) for p, u in panels if all(alert.labels.get(k) == v for k, v in p.tag.items())]
        chosen = next((u for p, u in fits if p.alerts[:1] == (alert.definition,)), None) or \
            next((u for p, u in fits if alert.definition in p.alerts), None) or \
            next((u for _, u in panels), None)  # no panel shows it (a component's missing metrics): its first
        if chosen is None:  # every component draws panels: an alert left without a link is a bug, never silent
            raise DroppedLink(f"alert {alert.name} of {component.kind} component {component.name} has no panel to "
                              "link to: its component drew none on the dashboards")
        return f"{base}{chosen}{suffix}"

    return replace(component, rules=tuple(replace(r, dashboard_url=url(r)) if isinstance(r, Alert) else r
                                          for r in component.rules))
