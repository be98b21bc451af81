"""What a Grafana panel shows, computed as Grafana does it: variables, queries, reduction, legends, mappings.

Variables are replaced as Grafana replaces them before a query reaches
Prometheus: a multi-value variable at "All" becomes its ``allValue`` (``.+``),
``$__rate_interval`` becomes 1m (four 15 s scrapes), a single-valued variable
its value. Each target runs as a range query over the last ten minutes before
the evaluation time (what a dashboard asks for), and each series is reduced by
the panel's calculation (a stat's ``reduceOptions.calcs``; ``lastNotNull`` for
graphs, whose legend shows it). A series' name is its ``legendFormat`` with
``{{label}}`` filled in, or ``metric{labels}`` without one; a value mapping
turns the number into its text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

RANGE_S = 600
STEP_S = 60
RATE_INTERVAL = "1m"
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
LEGEND = re.compile(r"\{\{\s*(.+?)\s*\}\}")
SHOWN_KINDS = ("stat", "timeseries", "state-timeline", "bargauge", "gauge")


class PanelError(AssertionError):
    """A panel Grafana could not draw as intended (a variable it does not know, two series of one name)."""


def variables(dashboard: dict, single: dict[str, str]) -> dict[str, str]:
    """Each templating variable's text in a query: All's ``allValue`` for multi-value variables with All,
    ``single[name]`` for the others (the cluster picked), plus Grafana's built-in ``__rate_interval``."""
    out = {"__rate_interval": RATE_INTERVAL, "__interval": RATE_INTERVAL, "__range": f"{RANGE_S}s"}
    for var in dashboard.get("templating", {}).get("list", []):
        name = var["name"]
        if var.get("type") == "datasource":
            out[name] = "prometheus"
        elif var.get("includeAll"):
            out[name] = var.get("allValue") or single.get(name, ".+")
        elif name in single:
            out[name] = single[name]
    return out


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise PanelError(f"query uses ${name}, which the dashboard does not define: {expr}")
        return values[name]
    return VARIABLE.sub(one, expr)


def display_name(legend: str, labels: dict[str, str]) -> str:
    if legend and legend != "__auto":
        return LEGEND.sub(lambda m: labels.get(m.group(1), ""), legend)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def reduce(values: list[float], calc: str) -> float | None:
    present = [v for v in values if not math.isnan(v)]
    if calc == "lastNotNull":
        return present[-1] if present else None
    if calc == "last":
        return values[-1] if values else None
    if not present:
        return None
    if calc == "max":
        return max(present)
    if calc == "min":
        return min(present)
    if calc == "mean":
        return sum(present) / len(present)
    raise PanelError(f"reduction {calc!r} not known to the test (add it)")


def mapped(panel: dict, value: float) -> float | str:
    for mapping in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
        if mapping.get("type") != "value":
            raise PanelError(f"mapping type {mapping.get('type')!r} not known to the test (add it)")
        for key, result in mapping["options"].items():
            if float(key) == value and "text" in result:
                return result["text"]
    return value


def calc(panel: dict) -> str:
    if panel["type"] in ("stat", "bargauge", "gauge"):
        calcs = panel.get("options", {}).get("reduceOptions", {}).get("calcs", ["lastNotNull"])
        if len(calcs) != 1:
            raise PanelError(f"{len(calcs)} reductions; a stat shows one")
        return calcs[0]
    return "lastNotNull"


@dataclass(frozen=True)
class Shown:
    """What one panel shows: display name → value (or mapped text), and the queries as sent."""

    values: dict[str, float | str]
    queries: tuple[str, ...]


def series_values(prom, expr: str, at: int) -> list[tuple[dict[str, str], list[float]]]:
    result = prom.query_range(expr, at - RANGE_S, at, STEP_S)
    return [(s["metric"], [float(v) for _, v in s["values"]]) for s in result]


def shown(prom, panel: dict, values: dict[str, str], at: int) -> Shown:
    """Every series the panel draws, reduced and mapped, keyed by its display name."""
    out: dict[str, float | str] = {}
    queries = []
    how = calc(panel)
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], values)
        queries.append(expr)
        for labels, points in series_values(prom, expr, at):
            name = display_name(target.get("legendFormat", ""), labels)
            value = reduce(points, how)
            if value is None:
                continue
            if name in out:
                raise PanelError(f"two series are both shown as {name!r} (query {expr})")
            out[name] = mapped(panel, value)
    return Shown(out, tuple(queries))


def evaluate(prom, expr: str, at: int) -> dict[str, float]:
    """An expression's series at ``at``, reduced as a graph does, keyed by their default display names."""
    out = {}
    for labels, points in series_values(prom, expr, at):
        value = reduce(points, "lastNotNull")
        if value is not None:
            out[display_name("", labels)] = value
    return out
