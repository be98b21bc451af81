"""Every alert's ``dashboard_url`` opens a panel of the alert's own component (and tier).

For each alert of each committed spec (``generated/<service>/prometheus``), the
``viewPanel`` of its ``dashboard_url`` must be a panel of a dashboard in
``generated/<service>/dashboards`` whose queries select the series of the
component that fired: a selector of one of its metrics carrying its identifying
label (``cache="equipment"``) and, for a cache tier's alert, the tier's labels
(``layer="L2"``). An SLO's panels read its recordings, picked by ``slo``.
Kinds whose series carry no identifying label (HTTP servers, Redis) are held to
a selector of one of their metrics.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from conftest import ROOT, SPECS, output_sets
from knownworld import CLUSTER
from knownworld.grafana import substitute, variables
from obsgen.pipeline import build
from obsgen.spec import load

pytestmark = pytest.mark.slow

# Each output set under generated/ ("table-order/production" for a spec with environments) and its spec.
LOADED = {folder.relative_to(ROOT / "generated").as_posix(): spec
          for path in SPECS for spec, folder in output_sets(load(path))}


def _alerts(service: str) -> list[dict]:
    out = []
    for path in sorted((ROOT / "generated" / service / "prometheus").glob("*.yaml")):
        if path.name.endswith(".test.yaml"):
            continue
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [r for r in group["rules"] if "alert" in r]
    return out


def _component(spec, alert: dict):
    """The component whose rules produce this alert (components of several kinds may share a name)."""
    name, kind = alert["labels"].get("component"), alert["labels"].get("component_kind")
    found = [c for (c, _), built in zip(spec.placed(), build(spec).components)
             if c.name == name and (kind is None or c.kind.key == kind)
             and alert["alert"] in {a.name for a in built.alerts}]
    assert len(found) == 1, f"{alert['alert']} of component {name!r}: {len(found)} components produce it"
    return found[0]


def _expected(c, alert: dict) -> tuple[set[str] | None, dict[str, str]]:
    """(metric names one of which the panel must select, or None for any; labels the selector must pin)."""
    if c.kind.key == "slos":
        return None, {"slo": c.name}
    if c.kind.key == "custom":
        import promql_parser as p
        names: set[str] = set()
        p.walk(p.parse(c.spec.expr), lambda n: names.add(n.name) if isinstance(n, p.VectorSelector) else True)
        return names, {}
    probe = getattr(c.spec, "probe", None)
    if probe is not None:  # a probed health check reads the blackbox exporter's series of its URL
        return {"probe_success", "probe_http_status_code"}, dict(probe.labels)
    signals = set(c.kind.defaults(c.service.profile)) | set(c.spec.metrics)
    names = {c.metric(s).name for s in signals if c.has_metric(s)}
    labels = dict(c.identity)
    mode = getattr(c.spec, "degraded_mode", None)
    if mode is not None and alert["alert"].startswith("DegradedMode"):  # the mode's gauge names no check
        labels = {mode.label: mode.name}
    tier = alert["labels"].get("tier")
    if tier is not None:
        (labels_of_tier,) = [dict(t.labels) for n, t in c.spec.tiers.items() if n.upper() == tier]
        labels.update(labels_of_tier)
    return names, labels


def _selectors(exprs: list[str]) -> list[tuple[str, dict[str, str]]]:
    import promql_parser as p

    out: list[tuple[str, dict[str, str]]] = []

    def visit(node) -> bool:
        if isinstance(node, p.VectorSelector):
            pinned = {m.name: m.value for m in node.matchers.matchers if m.op == p.MatchOp.Equal}
            out.append((node.name or pinned.get("__name__", ""), pinned))
        return True

    for expr in exprs:
        p.walk(p.parse(expr), visit)
    return out


def _wrong_links(service: str) -> list[str]:
    spec = LOADED[service]
    boards = {d["uid"]: d for d in (json.loads(p.read_text())
                                    for p in (ROOT / "generated" / service / "dashboards").glob("*.json"))}
    wrong = []
    for alert in _alerts(service):
        url = alert.get("annotations", {}).get("dashboard_url")
        who = f"{alert['alert']} of {alert['labels'].get('component')}" + (
            f" ({alert['labels']['tier']})" if "tier" in alert["labels"] else "")
        if not url:
            wrong.append(f"{who}: no dashboard_url")
            continue
        link = urlparse(url)
        uid = re.fullmatch(r"/d/([^/]+)/[^/]*", link.path)
        dashboard = boards.get(uid.group(1)) if uid else None
        panel_id = parse_qs(link.query).get("viewPanel", [""])[0]
        panel = next((p for p in (dashboard or {}).get("panels", []) if str(p["id"]) == panel_id), None)
        if panel is None:
            wrong.append(f"{who}: {url} opens no panel of the service's dashboards")
            continue
        values = variables(dashboard, {"cluster": CLUSTER})
        picked = _selectors([substitute(t["expr"], values) for t in panel.get("targets", [])])
        names, labels = _expected(_component(spec, alert), alert)
        if not any((names is None or name in names) and labels.items() <= pinned.items() for name, pinned in picked):
            wrong.append(f"{who}: {url} opens {panel['title']!r}, which selects "
                         f"{sorted({n for n, _ in picked})} with {[p for _, p in picked]}, not "
                         f"{sorted(names) if names else 'its series'} with {labels}")
    return wrong


@pytest.mark.parametrize("service", [
    s for s in sorted(LOADED)])
def test_every_alert_links_a_panel_of_its_own_component(service):
    wrong = _wrong_links(service)
    assert not wrong, f"{len(wrong)} alert(s) of {service} link another component's panel:\n" + "\n".join(wrong)
