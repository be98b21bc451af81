"""Dashboard panels in obsgen's own terms, and the helpers every kind uses to write them.

Kinds describe their panels with these types; :mod:`obsgen.render.dashboards`
lays them out and :mod:`obsgen.render.grafana` turns them into Grafana JSON.
Panel selectors keep the spec's labels except the service's ``job``, which
becomes ``job=~"$job"`` (an exporter's job stays, and is also matched against
``$job``), and gain ``instance=~"$instance"``; every counter sits inside
``rate(…[$__rate_interval])``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass

from obsgen.components.base import Component
from obsgen.model.types import Labels
from obsgen.promql import Variable


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel; ``thresholds`` override the panel's for this query's series only."""

    expr: str
    legend: str = ""
    instant: bool = False
    thresholds: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Step:
    """A threshold step: from ``value`` upwards the colour is ``color`` (``None`` is the base step)."""

    color: str
    value: float | None = None


@dataclass(frozen=True)
class Mapping:
    """A value mapping: the number ``value`` is shown as ``text`` in ``color``."""

    value: float
    text: str
    color: str


@dataclass(frozen=True)
class Panel:
    """A panel as obsgen sees it.

    ``runbooks`` names the alerts whose runbooks the panel links to; a panel is the
    main panel (deep link target) of each alert it names first among all panels.
    ``kind`` is one of timeseries, stat, state-timeline, table.
    """

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    thresholds: tuple[Step, ...] = ()
    kind: str = "timeseries"
    runbooks: tuple[str, ...] = ()
    mappings: tuple[Mapping, ...] = ()
    min: float | None = None
    max: float | None = None
    soft_max: float | None = None
    width: int = 12
    height: int = 8
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ComponentPanels:
    """What a kind contributes for one component: its overview health panel and its detail panels.

    ``jobs`` are the Prometheus jobs its series come from (the ``job`` variable's choices).
    """

    health: Panel
    detail: tuple[Panel, ...]
    jobs: tuple[str, ...] = ()



RATE = "$__rate_interval"
VARS = {"job": Variable("$job"), "instance": Variable("$instance")}


def _panel_base(c: Component, base: Labels | None = None) -> Labels:
    """The selector's labels: the service's job is left to the ``$job`` variable, but an exporter's job stays, as
    it is what tells its components apart (two Redis deployments of one service, scraped as two jobs)."""
    out = dict(c.base_labels if base is None else base)
    if c.kind.app_metrics:
        out.pop("job", None)
    return out


def sel(c: Component, signal: str, extra: MappingABC[str, str] | None = None, *, base: Labels | None = None,
        regex: MappingABC[str, str] | None = None) -> str:
    """Selector for ``signal`` filtered by the dashboard variables (and ``$cluster`` when the service has one)."""
    cluster = {c.service.cluster_label: Variable("$cluster")} if c.service.cluster_label else {}
    return c.select(signal, extra, regex={**cluster, **VARS, **(regex or {})}, base=_panel_base(c, base))


def rate(selector: str) -> str:
    return f"rate({selector}[{RATE}])"


def jobs(*selectors: Labels | None) -> tuple[str, ...]:
    return tuple(sorted({s["job"] for s in selectors if s and "job" in s}))


def above(threshold: float, warn: float | None = None) -> tuple[Step, ...]:
    """Green below, (orange from ``warn``,) red from ``threshold``."""
    return (Step("green"),) + ((Step("orange", warn),) if warn is not None else ()) + (Step("red", threshold),)


def below(threshold: float) -> tuple[Step, ...]:
    """Red below ``threshold``, green from it."""
    return (Step("red"), Step("green", threshold))


def pct(x: float) -> str:
    return f"{x * 100:g}%"


def outcome_label(c: Component, part: str) -> str:
    """The label that tells outcomes apart in one family of calls: ``kind`` (Resilience4j), ``result`` (python)."""
    return next(iter(dict(c.metric(part).matchers)), "kind")


def ratio_panels(c: Component, *, noun: str, part: str, alert: str, threshold: float, what: str
                 ) -> ComponentPanels:
    """Calls by outcome and the share of a bad outcome: retries exhausted, calls timed out."""
    # ``by`` ends in a space; none sums over every instance (both sides to one series, matched as such)
    ratio = lambda by="": f"sum {by}({rate(sel(c, part))})\n/\nsum {by}({rate(sel(c, 'calls'))})"  # noqa: E731
    outcome = outcome_label(c, part)
    detail = (
        Panel(
            title=f"{c.name}: {noun} calls by outcome", unit="reqps", runbooks=(alert,),
            description=f"Calls through {noun} {c.name} per second by outcome ({outcome}), all instances.",
            queries=(Query(f"sum by ({outcome}) ({rate(sel(c, 'calls'))})", f"{{{{{outcome}}}}}"),),
        ),
        Panel(
            title=f"{c.name}: {what}", unit="percentunit", min=0, thresholds=above(threshold), runbooks=(alert,),
            description=(f"Share of calls through {noun} {c.name} that {what.split(' ratio')[0]}, per instance. "
                         f"Above {pct(threshold)} for 5m fires {alert}."),
            queries=(Query(ratio("by (instance) "), "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"{noun.capitalize()} {c.name}: {what}", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=above(threshold), runbooks=(alert,),
        description=f"Share of calls through {noun} {c.name} over all instances that {what.split(' ratio')[0]} "
                    f"(target below {pct(threshold)}).",
        queries=(Query(ratio(), c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


def num(value: float) -> str:
    """A number for prose: ``5000`` → ``5,000``; ``0.1`` → ``0.1``."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"
