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

from obsgen.components.base import AlertDef, Built, Component, RatioSignals
from obsgen.components.shapes import share
from obsgen.model.panels import ComponentPanels, Mapping, Panel, Query, Step
from obsgen.model.promql import Call, Expr, Selector, Variable, agg
from obsgen.model.promql import rate as rate_over
from obsgen.model.types import Labels

__all__ = ["ComponentPanels", "Mapping", "Panel", "Query", "Step", "above", "below", "jobs", "num", "pct", "rate",
           "sel"]

RATE = Variable("$__rate_interval")
VARS = {"job": Variable("$job"), "instance": Variable("$instance")}


def _panel_base(c: Component, base: Labels | None = None) -> Labels:
    """The selector's labels: the service's job is left to the ``$job`` variable, but an exporter's job stays, as
    it is what tells its components apart (two Redis deployments of one service, scraped as two jobs)."""
    out = dict(c.base_labels if base is None else base)
    if c.kind.app_metrics:
        out.pop("job", None)
    return out


def sel(c: Component, signal: str, extra: MappingABC[str, str] | None = None, *, base: Labels | None = None,
        regex: MappingABC[str, str] | None = None) -> Selector:
    """Selector for ``signal`` filtered by the dashboard variables (and ``$cluster`` when the service has one)."""
    cluster = {c.service.cluster_label: Variable("$cluster")} if c.service.cluster_label else {}
    return c.select(signal, extra, regex={**cluster, **VARS, **(regex or {})}, base=_panel_base(c, base))


def rate(selector: Expr) -> Call:
    """``rate(selector[$__rate_interval])``: Grafana picks the window from the scrape interval and the zoom."""
    return rate_over(selector, RATE)


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


def ratio_panels(c: Component, built: Built, *, noun: str, signals: RatioSignals, alert: AlertDef, threshold: float,
                 what: str) -> ComponentPanels:
    """Calls by outcome and the share of a bad outcome: retries exhausted, calls timed out."""
    def bad_share(by: tuple[str, ...] | None) -> Expr:
        return share(c, signals, by, RATE, select=lambda signal, extra: sel(c, signal, extra))

    outcome = outcome_label(c, signals.part)
    doing = what.split(" ratio")[0]
    detail = (
        Panel(
            title=f"{c.name}: {noun} calls by outcome", unit="reqps", alerts=(alert,),
            description=f"Calls through {noun} {c.name} per second by outcome ({outcome}), all instances.",
            queries=(Query(agg("sum", rate(sel(c, signals.total)), (outcome,)), f"{{{{{outcome}}}}}"),),
        ),
        Panel(
            title=f"{c.name}: {what}", unit="percentunit", min=0, thresholds=above(threshold), alerts=(alert,),
            description=(f"Share of calls through {noun} {c.name} that {doing}, per instance. "
                         + built.fires(alert, f"Above {pct(threshold)} for {{for}} fires {{alert}}.")).strip(),
            queries=(Query(bad_share(("instance",)), "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"{noun.capitalize()} {c.name}: {what}", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=above(threshold), alerts=(alert,),
        description=f"Share of calls through {noun} {c.name} over all instances that {doing} "
                    f"(target below {pct(threshold)}).",
        queries=(Query(bad_share(None), c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


def num(value: float) -> str:
    """A number for prose: ``5000`` → ``5,000``; ``0.1`` → ``0.1``."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"
