"""Grafana dashboard JSON from :class:`obsgen.model.panels.Dashboard`.

The only module that imports grafanalib (lazily: start-up time matters), so a
move to Grafana's own SDK touches this file alone. grafanalib 0.7.1 targets very
old Grafana; :func:`_modernise` fixes its output for Grafana 11.6
(schemaVersion 41): no nulls or legacy keys, current-format thresholds, no
``intervalFactor``/``maxDataPoints``, stat panels reducing ``lastNotNull``.
"""

from __future__ import annotations

import json
from typing import Any

from obsgen.model.panels import Dashboard, Panel, Row, Step
from obsgen.model.promql import quote, regex_quote
from obsgen.model.promql import render as promql
from obsgen.render import jsonout

SCHEMA_VERSION = 41
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
JOB_VAR = 'job=~"$job"'

# Keys grafanalib writes that Grafana 11 no longer reads (or that the dashboard model does not have).
LEGACY_DASHBOARD_KEYS = ("__inputs", "hideControls", "rows", "sharedCrosshair", "style", "gnetId", "id")
LEGACY_PANEL_KEYS = ("editable", "error", "height", "span", "minSpan", "maxDataPoints", "hideTimeOverride",
                     "transparent", "repeatDirection", "thresholdType")
LEGACY_TARGET_KEYS = ("intervalFactor", "step", "metric", "query", "target", "interval", "hide")
LEGACY_VARIABLE_KEYS = ("auto", "auto_count", "auto_min", "tagValuesQuery", "tagsQuery", "useTags", "tags")


def to_json(d: Dashboard, *, runbook_base_url: str = "../runbooks/") -> str:
    """The dashboard's JSON text: sorted keys, two-space indent, trailing newline (deterministic bytes)."""
    built = _build(d, runbook_base_url)
    try:
        data = _plain(built)
    except _Unusual:
        from grafanalib._gen import DashboardEncoder

        data = _drop_nulls(json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder)))
    data = _modernise(data, d, runbook_base_url)
    return jsonout.dumps(data) + "\n"


# --------------------------------------------------------------------------- grafanalib objects

def _build(d: Dashboard, runbook_base_url: str):
    from grafanalib import core as G

    panels = []
    for pid, item, pos in _layout(d):
        grid = G.GridPos(h=pos[3], w=pos[2], x=pos[0], y=pos[1])
        if isinstance(item, Row):
            panels.append(G.RowPanel(title=item.title, id=pid, gridPos=grid, collapsed=False))
            continue
        targets = [G.Target(expr=promql(q.expr), legendFormat=q.legend, refId=_ref(i), instant=q.instant,
                            datasource=DATASOURCE) for i, q in enumerate(item.queries)]
        common = dict(title=item.title, description=item.description, dataSource=DATASOURCE, targets=targets,
                      gridPos=grid, id=pid, links=_links(item, runbook_base_url))
        if item.kind == "timeseries":
            panels.append(G.TimeSeries(unit=item.unit, **common))
        elif item.kind == "stat":
            panels.append(G.Stat(format=item.unit, reduceCalc="lastNotNull", **common))
        elif item.kind == "state-timeline":
            panels.append(G.StateTimeline(**common))
        elif item.kind == "table":
            panels.append(G.Table(unit=item.unit, **common))
        else:
            raise ValueError(f"panel {item.title!r}: unsupported panel kind {item.kind!r}")

    jobs = [f"job=~{job_regex(d.jobs)}"] if d.jobs else []
    cluster = [f'{d.cluster_label}=~"$cluster"'] if d.cluster_label else []
    clusters = [G.Template(name="cluster", label="Cluster", query=f"label_values({_up(*jobs)}, {d.cluster_label})",
                           dataSource=DATASOURCE, refresh=2, sort=1)] if d.cluster_label else []
    templating = G.Templating(list=[
        G.Template(name="datasource", label="Data source", type="datasource", query="prometheus"),
        *clusters,  # one cluster at a time; the job and instance choices follow it
        # "All" means this service's jobs, not every job of a shared Prometheus (whose services share metric names)
        G.Template(name="job", label="Job", query=f"label_values({_up(*cluster, *jobs)}, job)",
                   dataSource=DATASOURCE, multi=True, includeAll=True,
                   allValue="|".join(regex_quote(j) for j in d.jobs) or ".+", refresh=2, sort=1),
        G.Template(name="instance", label="Instance", query=f"label_values({_up(*cluster, JOB_VAR)}, instance)",
                   dataSource=DATASOURCE, multi=True, includeAll=True, allValue=".+", refresh=2, sort=1),
    ])
    annotations = G.Annotations(list=[
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
         "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
         "target": {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard"}, "type": "dashboard"},
        {"datasource": DATASOURCE, "enable": True, "hide": False, "iconColor": "red", "name": "Firing alerts",
         "expr": promql(d.alerts_expr), "step": "60s", "titleFormat": "{{alertname}}",
         "textFormat": "{{severity}}: {{component}} {{instance}}", "tagKeys": "alertname,severity,component",
         "useValueForTime": False},
    ])
    return G.Dashboard(
        title=d.title, uid=d.uid, description=d.description, editable=False, panels=panels,
        templating=templating, annotations=annotations, tags=list(d.tags), timezone="browser",
        refresh="1m", graphTooltip=1, time=G.Time("now-3h", "now"),
        links=[G.DashboardLink(title=link.title, uri=link.url, keepTime=True, includeVars=True, icon="dashboard",
                               tooltip=link.title) for link in d.links],
    )


def job_regex(jobs: tuple[str, ...]) -> str:
    """The jobs as one quoted PromQL regex (``"a|b\\\\.c"``): escaped for RE2, then for the string literal."""
    return quote("|".join(regex_quote(j) for j in jobs))


def _up(*matchers: str) -> str:
    return "up{" + ", ".join(matchers) + "}" if matchers else "up"


def _ref(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"Q{i}"


def _layout(d: Dashboard) -> list[tuple[int, Panel | Row, tuple[int, int, int, int]]]:
    """Flow layout on Grafana's 24-column grid; rows take a full line of height 1."""
    out, x, y, line_h = [], 0, 0, 0
    for pid, item in d.panel_ids():
        if isinstance(item, Row):
            if x:
                x, y = 0, y + line_h
            out.append((pid, item, (0, y, GRID_WIDTH, 1)))
            y, line_h = y + 1, 0
            continue
        w = min(item.width, GRID_WIDTH)
        if x + w > GRID_WIDTH:
            x, y, line_h = 0, y + line_h, 0
        out.append((pid, item, (x, y, w, item.height)))
        x, line_h = x + w, max(line_h, item.height)
    return out


def _links(p: Panel, runbook_base_url: str) -> list[dict]:
    """Panel links (Grafana data links): runbooks of its alerts, then any extra links."""
    out = [{"title": f"Runbook: {name}", "url": f"{runbook_base_url}{name}.md", "targetBlank": True}
           for name in p.runbooks]
    out += [{"title": title, "url": url + "?${__url_time_range}&${__all_variables}", "targetBlank": False}
            for title, url in p.links]
    return out


# --------------------------------------------------------------------------- post-processing

class _Unusual(Exception):
    """grafanalib's data holds something :func:`_plain` leaves to a round trip through JSON text."""


def _plain(value: Any) -> Any:
    """grafanalib's objects as the plain data a round trip through JSON text gives, ``null`` members dropped
    (:func:`_drop_nulls`): ``json.loads(json.dumps(value, cls=DashboardEncoder))``, in one pass and without the
    text. Every container is a new one (:func:`_modernise` edits them). Raises :class:`_Unusual` for what only
    the round trip answers exactly (a key that is not a string, a subclass of a JSON type)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            item = _plain(item)
            if item is not None:
                out[key] = item
        return out
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, (str, int, float, dict, list, tuple)):
        raise _Unusual
    to_json_data = getattr(value, "to_json_data", None)
    if not to_json_data:
        raise _Unusual  # json.dumps's TypeError, from the round trip
    return _plain(to_json_data())


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _thresholds(steps: tuple[Step, ...]) -> dict:
    steps = steps or (Step("green"),)
    return {"mode": "absolute", "steps": [{"color": s.color, "value": s.value} for s in steps]}


def _mappings(p: Panel) -> list[dict]:
    if not p.mappings:
        return []
    return [{"type": "value", "options": {
        _num(m.value): {"color": m.color, "index": i, "text": m.text} for i, m in enumerate(p.mappings)}}]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _overrides(p: Panel) -> list[dict]:
    return [{"matcher": {"id": "byFrameRefID", "options": _ref(i)},
             "properties": [{"id": "thresholds", "value": _thresholds(q.thresholds)}]}
            for i, q in enumerate(p.queries) if q.thresholds]


def _modernise(data: dict, d: Dashboard, runbook_base_url: str) -> dict:
    for key in LEGACY_DASHBOARD_KEYS:
        data.pop(key, None)
    data["schemaVersion"] = SCHEMA_VERSION
    data["timepicker"] = {}
    data["fiscalYearStartMonth"] = 0
    data["liveNow"] = False
    data["weekStart"] = ""
    for link in data["links"]:
        link["type"] = "link"  # grafanalib writes "dashboards" (a tag search) even for a URL link

    items = {pid: item for pid, item in d.panel_ids()}
    for panel in data["panels"]:
        item = items[panel["id"]]
        if isinstance(item, Row):
            for key in list(panel):
                if key not in ("collapsed", "gridPos", "id", "panels", "title", "type"):
                    del panel[key]
            panel["panels"] = []
            continue
        _modernise_panel(panel, item)

    for var in data["templating"]["list"]:
        for key in LEGACY_VARIABLE_KEYS:
            var.pop(key, None)
        var.pop("current", None)  # Grafana picks the first option (or All) itself
        var["options"] = []
        if var["type"] == "datasource":
            var.update(refresh=1, hide=0, includeAll=False, multi=False, regex="")
            var.pop("allValue", None)
            var.pop("sort", None)
        else:
            var["regex"] = ""
    return data


def _modernise_panel(panel: dict, p: Panel) -> None:
    for key in LEGACY_PANEL_KEYS:
        panel.pop(key, None)
    panel["description"] = p.description
    panel["datasource"] = dict(DATASOURCE)
    for target in panel.get("targets", []):
        for key in LEGACY_TARGET_KEYS:
            target.pop(key, None)
        target["datasource"] = dict(DATASOURCE)
        target["editorMode"] = "code"
        target["range"] = not target["instant"]
        if panel["type"] == "table":
            target["format"] = "table"
    fc = panel.setdefault("fieldConfig", {})
    defaults = fc.setdefault("defaults", {})
    custom = defaults.setdefault("custom", {})
    defaults["unit"] = p.unit
    defaults["thresholds"] = _thresholds(p.thresholds)
    defaults["mappings"] = _mappings(p)
    defaults.pop("noValue", None)
    for key, value in (("min", p.min), ("max", p.max)):
        defaults.pop(key, None)
        if value is not None:
            defaults[key] = value
    fc["overrides"] = _overrides(p)
    options = panel.setdefault("options", {})

    if panel["type"] == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        custom["thresholdsStyle"] = {"mode": "dashed" if p.thresholds else "off"}
        custom.pop("axisSoftMin", None)
        custom.pop("axisSoftMax", None)
        if p.soft_max is not None:
            custom["axisSoftMax"] = p.soft_max
        custom["stacking"] = {"group": "A", "mode": "none"}
        custom["fillOpacity"] = 10
        options["legend"] = {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "bottom",
                             "showLegend": True}
        options["tooltip"] = {"mode": "multi", "sort": "desc"}
    elif panel["type"] == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options.update(colorMode="background", graphMode="area", justifyMode="auto", orientation="auto",
                       textMode="value_and_name", wideLayout=True, showPercentChange=False)
        options["reduceOptions"] = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    elif panel["type"] == "state-timeline":
        defaults["color"] = {"mode": "thresholds"}
        options["legend"] = {"displayMode": "list", "placement": "bottom", "showLegend": True}
        options["tooltip"] = {"mode": "single", "sort": "none"}
    elif panel["type"] == "table":
        defaults["color"] = {"mode": "thresholds"}
        for key in ("color", "columns", "fontSize", "mappings", "scroll", "sort", "styles", "transform"):
            panel.pop(key, None)  # the Angular table's keys
        defaults["custom"] = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
        panel["options"] = {"cellHeight": "sm", "showHeader": True, "footer": {"show": False}}
        panel["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
