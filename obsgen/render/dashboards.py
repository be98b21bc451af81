"""Grafana dashboards, described in obsgen's own terms.

One dashboard per concern its components' kinds name (caches; breakers,
retries and time limiters; executors; Redis; …) plus a Service Overview with
every component's health on one screen. Each kind draws its own panels
(``Kind.panels``, in the vocabulary of :mod:`obsgen.components.viz`); turning
a :class:`Dashboard` into Grafana JSON is the job of :mod:`obsgen.render.grafana`, the only module that knows grafanalib.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from obsgen.components.base import Alert, Component, Concern
from obsgen.components.viz import ComponentPanels, Panel, Query
from obsgen.promql import quote, regex_quote

OUT_DIR = "dashboards"
UID_MAX = 40


@dataclass(frozen=True)
class Row:
    """A row header that groups the panels after it."""

    title: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: identity, variables' job choices, annotation query, panels and rows, links."""

    service: str
    name: str
    slug: str
    description: str
    items: tuple[Panel | Row, ...]
    jobs: tuple[str, ...]
    alerts_expr: str
    links: tuple[Link, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)
    cluster_label: str | None = None

    @property
    def title(self) -> str:
        return f"{self.service} / {self.name}"

    @property
    def uid(self) -> str:
        return uid(self.service, self.slug)

    @property
    def url_slug(self) -> str:
        """The slug Grafana puts in ``/d/<uid>/<slug>`` (from the title)."""
        return slugify(self.title)

    @property
    def url(self) -> str:
        return f"/d/{self.uid}/{self.url_slug}"

    def panel_ids(self) -> list[tuple[int, Panel | Row]]:
        """Stable ids: 1, 2, … in layout order (rows included)."""
        return list(enumerate(self.items, 1))


OVERVIEW = Concern("service-overview", "Service Overview", "Every component's health on one screen.")


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def uid(service: str, slug: str) -> str:
    """``<service>-<slug>`` when it fits Grafana's 40 characters, else a prefix plus a sha1 of both."""
    readable = slugify(f"{service}-{slug}")
    if len(readable) <= UID_MAX:
        return readable
    digest = hashlib.sha1(f"{service}\0{slug}".encode()).hexdigest()[:12]
    return readable[: UID_MAX - 13].rstrip("-") + "-" + digest


def _alert_names(c: Component) -> set[str]:
    return {r.name for r in c.kind.rules(c) if isinstance(r, Alert)}


def _keep_runbooks(panel: Panel, alerts: set[str]) -> Panel:
    """Only the runbooks of alerts this component really has (tuning can disable one)."""
    return replace(panel, runbooks=tuple(a for a in panel.runbooks if a in alerts))


def _panels(c: Component) -> ComponentPanels:
    out = c.kind.panels(c)
    alerts = _alert_names(c)
    return replace(out, health=_keep_runbooks(out.health, alerts),
                   detail=tuple(_keep_runbooks(p, alerts) for p in out.detail))


def _jobs(parts: list[ComponentPanels]) -> tuple[str, ...]:
    return tuple(sorted({j for p in parts for j in p.jobs}))


def dashboards(spec) -> list[Dashboard]:  # spec: obsgen.spec.Spec
    """The spec's dashboards: the overview first, then one per concern it has."""
    svc = spec.service
    alerts_expr = f"ALERTS{{service={quote(svc.name)}, alertstate=\"firing\"}}"
    if svc.cluster_label:
        alerts_expr = alerts_expr[:-1] + f", {svc.cluster_label}=~\"$cluster\"}}"
    per_component = [(c, _panels(c)) for c in spec.components]
    concerns = list(dict.fromkeys(c.kind.concern for c in spec.components))
    detail: list[Dashboard] = []
    for concern in concerns:
        members = [(c, p) for c, p in per_component if c.kind.concern == concern]
        if not members:
            continue
        items: list[Panel | Row] = []
        for c, p in members:
            items.append(Row(f"{c.kind.title}: {c.name}" + (f" ({c.spec.description})" if c.spec.description else "")))
            items.extend(p.detail)
        detail.append(Dashboard(svc.name, concern.name, concern.slug, concern.description, tuple(items),
                                _jobs([p for _, p in members]), alerts_expr, tags=(svc.name, "obsgen"),
                                cluster_label=svc.cluster_label))
    overview_url = Dashboard(svc.name, OVERVIEW.name, OVERVIEW.slug, "", (), (), "").url
    home = Link(f"{OVERVIEW.name}", overview_url)
    detail = [replace(d, links=(home,) + tuple(Link(o.name, o.url) for o in detail if o is not d)) for d in detail]
    by_slug = {d.slug: d for d in detail}

    items = [_overview_alerts_panel(alerts_expr)]
    for c, p in per_component:
        target = by_slug[c.kind.concern.slug]
        items.append(replace(p.health, links=p.health.links + ((f"{target.name} dashboard", target.url),)))
    description = (f"{svc.description or svc.name}: every component's health on one screen (team {svc.team}); "
                   "each panel links to the dashboard with the details.")
    overview = Dashboard(svc.name, OVERVIEW.name, OVERVIEW.slug, description, tuple(items),
                         _jobs([p for _, p in per_component]), alerts_expr,
                         links=tuple(Link(d.name, d.url) for d in detail), tags=(svc.name, "obsgen"),
                         cluster_label=svc.cluster_label)
    return [overview] + detail


def _overview_alerts_panel(alerts_expr: str) -> Panel:
    return Panel(
        title="Firing alerts",
        description="Alerts of this service firing now, from the ALERTS series; the overview's first stop.",
        unit="none", kind="table", width=24, height=6,
        queries=(Query(f"sum by (alertname, component, severity, instance) ({alerts_expr})", instant=True),),
    )


def _path(service: str, slug: str) -> str:
    return f"{service}/{OUT_DIR}/{slug}.json"


def render(spec) -> dict[str, str]:
    """``{"<service>/dashboards/<slug>.json": json_text}`` for every dashboard of the spec."""
    from obsgen.render import grafana
    base = spec.service.runbook_base_url
    return {_path(d.service, d.slug): grafana.to_json(d, runbook_base_url=base) for d in dashboards(spec)}


def dashboard_links(spec) -> dict[str, str]:
    """Alert name → ``/d/<uid>/<slug>?viewPanel=<id>`` of its main panel.

    The main panel is the first one that names the alert first in ``runbooks``, else the
    first one that names it at all; the overview is never the target.
    """
    primary: dict[str, str] = {}
    other: dict[str, str] = {}
    for d in dashboards(spec):
        if d.slug == OVERVIEW.slug:
            continue
        for pid, item in d.panel_ids():
            if isinstance(item, Panel):
                for i, name in enumerate(item.runbooks):
                    (other if i else primary).setdefault(name, f"{d.url}?viewPanel={pid}")
    links = dict(sorted({**other, **primary}.items()))
    cluster = spec.service.cluster_label
    if cluster:  # open the dashboard on the alert's own cluster
        links = {name: f"{url}&var-cluster={{{{ $labels.{cluster} | urlquery }}}}" for name, url in links.items()}
    return links


def job_regex(jobs: tuple[str, ...]) -> str:
    """The jobs as one quoted PromQL regex (``"a|b\\\\.c"``): escaped for RE2, then for the string literal."""
    return quote("|".join(regex_quote(j) for j in jobs))
