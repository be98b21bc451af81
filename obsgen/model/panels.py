"""Dashboards in obsgen's own terms: panels, rows and dashboards.

Kinds describe their panels with these types; :mod:`obsgen.render.grafana` turns
them into Grafana JSON (the only module that knows grafanalib).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import field

from obsgen.model.promql import Expr
from obsgen.model.records import record
from obsgen.model.rules import AlertDef
from obsgen.model.types import Labels

UID_MAX = 40


@record
class Query:
    """One PromQL query of a panel; ``thresholds`` override the panel's for this query's series only."""

    expr: Expr
    legend: str = ""
    instant: bool = False
    thresholds: tuple[Step, ...] = ()


@record
class Step:
    """A threshold step: from ``value`` upwards the colour is ``color`` (``None`` is the base step)."""

    color: str
    value: float | None = None


@record
class Mapping:
    """A value mapping: the number ``value`` is shown as ``text`` in ``color``."""

    value: float
    text: str
    color: str


@record
class Panel:
    """A panel as obsgen sees it.

    ``alerts`` are the alerts the panel shows (its links open their runbooks); a
    panel is the deep-link target of each alert of its component it names first,
    for the alerts whose labels include its ``tag`` (a cache tier's panels carry
    ``tier``). ``kind`` is one of timeseries, stat, state-timeline, table.
    """

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    thresholds: tuple[Step, ...] = ()
    kind: str = "timeseries"
    alerts: tuple[AlertDef, ...] = ()
    tag: Labels = field(default_factory=dict)
    mappings: tuple[Mapping, ...] = ()
    min: float | None = None
    max: float | None = None
    soft_max: float | None = None
    width: int = 12
    height: int = 8
    links: tuple[tuple[str, str], ...] = ()

    @property
    def runbooks(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.alerts)


@record
class ComponentPanels:
    """What a kind contributes for one component: its overview health panel and its detail panels.

    ``jobs`` are the Prometheus jobs its series come from (the ``job`` variable's choices).
    """

    health: Panel
    detail: tuple[Panel, ...]
    jobs: tuple[str, ...] = ()


@record
class Concern:
    """A dashboard: the kinds that share it (breakers, retries and time limiters) say which."""

    slug: str
    name: str
    description: str


@record
class Row:
    """A row header that groups the panels after it."""

    title: str


@record
class Link:
    """A link on a dashboard or panel: its title and URL."""

    title: str
    url: str


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-")


def uid(service: str, slug: str) -> str:
    """``<service>-<slug>`` when it fits Grafana's 40 characters, else a prefix plus a sha1 of both."""
    readable = slugify(f"{service}-{slug}")
    if len(readable) <= UID_MAX:
        return readable
    digest = hashlib.sha1(f"{service}\0{slug}".encode()).hexdigest()[:12]
    return readable[: UID_MAX - 13].rstrip("-") + "-" + digest


@record
class Dashboard:
    """A dashboard: identity, variables' job choices, annotation query, panels and rows, links."""

    service: str
    name: str
    slug: str
    description: str
    items: tuple[Panel | Row, ...]
    jobs: tuple[str, ...]
    alerts_expr: Expr
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
