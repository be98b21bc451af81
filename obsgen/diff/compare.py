"""Comparing two builds, service by service: every difference typed (:mod:`obsgen.diff.model`).

Alerts are matched by name and ``component`` label, never by position; where one alert exists several
times per component (``CacheHitRateLow`` per ``tier``, ``HttpLatencyHigh`` per ``handler``), the static
labels whose values tell those instances apart join the key. An alert that left and another that arrived
in the same component with the same condition is a rename; a component that left and one that arrived with
the same alerts, but for its name, is a component renamed. Recordings are matched by name and static
labels; one that is gone while a selector on the new side still reads it, and now reads nothing, is
reported with its readers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from obsgen.diff import exprs, risk
from obsgen.diff.model import (AlertDiff, Annotation, Change, Condition, Duration, InhibitionDiff, Label, PanelDiff,
                               Receiver, RecordingDiff, Report, ServiceDiff, Severity, Side, Slo, SloDiff, Threshold,
                               SEVERITY_RANK, ratio)
from obsgen.diff.outputs import Alert, Inhibition, Output, Panel, Recording, Service
from obsgen.diff.routing import receivers

# Labels an alert's instances share by construction: never what tells them apart, never a "label change".
_SHARED = ("service", "component")
SLO_RATIO = "slo:sli_error:ratio_rate"
SLO_BURN = "slo:sli_error:burn_rate"

Key = tuple


def compare(old: Output, new: Output) -> Report:
    readers = _Readers(new)
    services = []
    for name in sorted(set(old.services) | set(new.services)):
        a, b = old.services.get(name), new.services.get(name)
        status = "added" if a is None else "removed" if b is None else "changed"
        a, b = a or Service(name), b or Service(name)
        renames = component_renames(a, b)
        diff = ServiceDiff(name, status, _alerts(a, b, renames), _recordings(a, b, readers, renames),
                           _panels(a, b, renames), _slos(a, b), _inhibitions(a, b))
        if not diff.empty:
            services.append(diff)
    report = Report(Side(old.label, old.built_by), Side(new.label, new.built_by), services)
    report.risks = risk.assess(report)
    return report


# --------------------------------------------------------------------------- alerts


def _keys(old: Sequence[Alert], new: Sequence[Alert]) -> tuple[dict[Key, Alert], dict[Key, Alert]]:
    """Each side's alerts by (name, component, telling labels)."""
    telling: dict[tuple[str, str], set[str]] = {}
    for side in (old, new):
        groups: dict[tuple[str, str], list[Alert]] = {}
        for alert in side:
            groups.setdefault((alert.name, alert.component), []).append(alert)
        for group, members in groups.items():
            names = {label for m in members for label, _ in m.labels} - set(_SHARED)
            telling.setdefault(group, set()).update(
                label for label in names if len({m.label_map.get(label) for m in members}) > 1)

    def keyed(side: Sequence[Alert]) -> dict[Key, Alert]:
        out: dict[Key, Alert] = {}
        for alert in side:
            labels = alert.label_map
            key = (alert.name, alert.component,
                   tuple((label, labels.get(label, "")) for label in sorted(telling[(alert.name, alert.component)])))
            n = 1
            while key in out:  # identical twins: told apart by order
                n += 1
                key = key[:3] + (n,)
            out[key] = alert
        return out

    return keyed(old), keyed(new)


def _renamed(text: str, renames: dict[str, str]) -> str:
    """``text`` with each renamed component's old name replaced by its new one, wherever the name stands alone."""
    for old, new in renames.items():
        text = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text)
    return text


def _as_named(alert: Alert, old: str, new: str) -> Alert:
    """``alert`` as it reads once its component ``old`` is called ``new``: in the expression's label values, the
    labels and the annotations."""
    swap = {old: new}
    return replace(alert, expr=_renamed(alert.expr, swap), labels=tuple((k, _renamed(v, swap)) for k, v in alert.labels),
                   annotations=tuple((k, _renamed(v, swap)) for k, v in alert.annotations))


def component_renames(a: Service, b: Service) -> dict[str, str]:
    """Components that left and arrived under another name with the very same alerts (``ocidCache`` → ``ocid``):
    old name → new name. A component whose alerts changed as well as its name stays removed and added."""
    def by_component(alerts: Sequence[Alert]) -> dict[str, list[Alert]]:
        out: dict[str, list[Alert]] = {}
        for alert in alerts:
            out.setdefault(alert.component, []).append(alert)
        return out

    before, after = by_component(a.alerts), by_component(b.alerts)
    arrived = [c for c in after if c not in before]
    out: dict[str, str] = {}
    for gone in (c for c in before if c not in after):
        matches = [c for c in arrived if _same_alerts([_as_named(x, gone, c) for x in before[gone]], after[c])]
        if len(matches) == 1:
            out[gone] = matches[0]
            arrived.remove(matches[0])
    return out


def _same_alerts(xs: Sequence[Alert], ys: Sequence[Alert]) -> bool:
    return Counter(x.name for x in xs) == Counter(y.name for y in ys) and all(
        any(x.name == y.name and x.labels == y.labels and _same_condition(x, y) for y in ys) for x in xs)


def _alerts(a: Service, b: Service, renames: dict[str, str]) -> list[AlertDiff]:
    # a renamed component's alerts are compared as if it had always had its new name: only real changes remain
    a = replace(a, alerts=[_as_named(x, x.component, renames[x.component]) if x.component in renames else x
                           for x in a.alerts])
    old, new = _keys(a.alerts, b.alerts)
    out: list[AlertDiff] = []
    added = [k for k in new if k not in old]
    moved = set(renames.values())
    for key in (k for k in old if k in new and k[1] in moved):
        was = next(n for n, to in renames.items() if to == key[1])
        out.append(replace(_changed(a, b, old[key], new[key], key, status="renamed"), component_renamed_from=was))
    for key in (k for k in old if k not in new):
        alert = old[key]
        twin = next((k for k in added if new[k].component == alert.component and _same_condition(alert, new[k])),
                    None)
        if twin is None:
            out.append(AlertDiff("removed", alert.name, alert.component, key[2], _severity(alert),
                                 _route(a, alert)))
            continue
        added.remove(twin)
        out.append(_changed(a, b, alert, new[twin], twin, status="renamed", renamed_from=alert.name))
    for key in added:
        alert = new[key]
        out.append(AlertDiff("added", alert.name, alert.component, key[2], _severity(alert), _route(b, alert)))
    for key in (k for k in old if k in new and k[1] not in moved):
        diff = _changed(a, b, old[key], new[key], key)
        if diff.changes:
            out.append(diff)
    return sorted(out, key=lambda d: (d.component, d.name, d.qualifiers, d.status))


def _same_condition(x: Alert, y: Alert) -> bool:
    px, py = exprs.parse(x.expr), exprs.parse(y.expr)
    return px.fingerprint == py.fingerprint if px and py else " ".join(x.expr.split()) == " ".join(y.expr.split())


def _changed(a: Service, b: Service, old: Alert, new: Alert, key: Key, *, status: str = "changed",
             renamed_from: str | None = None) -> AlertDiff:
    changes = alert_changes(old, new)
    before, after = _route(a, old), _route(b, new)
    if before != after:
        changes.append(Receiver(before, after))
    return AlertDiff(status, new.name, new.component, key[2], _severity(new), after, changes, renamed_from,
                     rules=(old, new))


def alert_changes(old: Alert, new: Alert) -> list[Change]:
    """Every typed difference between two versions of one alert, receivers aside."""
    out: list[Change] = []
    po, pn = exprs.parse(old.expr), exprs.parse(new.expr)
    if po is None or pn is None:
        if " ".join(old.expr.split()) != " ".join(new.expr.split()):
            out.append(Condition(old.expr, new.expr))
    else:
        if len(po.comparisons) == len(pn.comparisons) and all(
                x.op == y.op for x, y in zip(po.comparisons, pn.comparisons)):
            out += [_threshold(x, y.value) for x, y in zip(po.comparisons, pn.comparisons) if x.value != y.value]
        if po.fingerprint != pn.fingerprint:
            out.append(Condition(old.expr, new.expr))
    for name, x, y in (("for", old.for_, new.for_), ("keep_firing_for", old.keep_firing_for, new.keep_firing_for)):
        sx, sy = exprs.seconds(x), exprs.seconds(y)
        if sx != sy:
            out.append(Duration(name, x or "0s", y or "0s", ratio(sx, sy)))
    so, sn = _severity(old), _severity(new)
    if so != sn:
        ro, rn = SEVERITY_RANK.get(so), SEVERITY_RANK.get(sn)
        direction = None if ro is None or rn is None else "downgraded" if rn < ro else "upgraded"
        out.append(Severity(so, sn, direction))
    lo, ln = old.label_map, new.label_map
    out += [Label(n, lo.get(n), ln.get(n)) for n in _differing(lo, ln) if n not in (*_SHARED, "severity")]
    ao, an = dict(old.annotations), dict(new.annotations)
    out += [Annotation(n, ao.get(n), an.get(n)) for n in _differing(ao, an)]
    return out


def _threshold(old: exprs.Comparison, new: float) -> Threshold:
    looser = old.looser(new)
    direction = None if looser is None else "looser" if looser else "stricter"
    lo, hi = sorted((old.value, new))
    factor = ratio(lo, hi) if lo >= 0 else None
    rest = ratio(1 - hi, 1 - lo) if 0 <= lo and hi <= 1 else None  # shares: the other side of the threshold
    rest = round(rest, 12) if rest is not None and math.isfinite(rest) else rest  # 0.6 / 0.2 is 3, not 2.9999…
    if factor is not None and rest is not None and rest > factor:
        return Threshold(old.signal, old.op, old.value, new, direction, rest, complement=True)
    return Threshold(old.signal, old.op, old.value, new, direction, factor)


def _differing(x: dict, y: dict) -> list[str]:
    return sorted(n for n in set(x) | set(y) if x.get(n) != y.get(n))


def _severity(alert: Alert) -> str:
    return alert.label_map.get("severity", "")


def _route(service: Service, alert: Alert) -> tuple[str | None, ...]:
    return receivers(service.routes, {**alert.label_map, "alertname": alert.name})


# --------------------------------------------------------------------------- recordings


class _Readers:
    """Every selector of the new side (alerts, recordings, panels of all services: rules are global)."""

    def __init__(self, new: Output):
        self.recordings: dict[str, list[Recording]] = {}
        self.readers: list[tuple[str, str, exprs.Selector]] = []  # (service, description, selector)
        for service in new.services.values():
            for r in service.recordings:
                self.recordings.setdefault(r.name, []).append(r)
                self._add(service.name, f"recording {r.name}", r.expr)
            for alert in service.alerts:
                self._add(service.name, f"alert {alert.name} ({alert.component})", alert.expr)
            for panels in service.panels.values():
                for panel in panels:
                    for query in panel.queries:
                        self._add(service.name, f"panel “{panel.title}” ({panel.dashboard})", query)

    def _add(self, service: str, what: str, expr: str) -> None:
        parsed = exprs.parse(expr)
        for selector in parsed.selectors if parsed else ():
            self.readers.append((service, what, selector))

    def left_reading_nothing(self, gone: Recording, service: str) -> list[str]:
        """Readers that selected ``gone`` and now match no recording of that name."""
        labels = dict(gone.labels)
        remaining = self.recordings.get(gone.name, [])
        out = []
        for where, what, sel in self.readers:
            if sel.name == gone.name and sel.admits(labels) and not any(sel.admits(dict(r.labels)) for r in remaining):
                out.append(what if where == service else f"{what} in {where}")
        return list(dict.fromkeys(out))


def _recordings(a: Service, b: Service, readers: _Readers, renames: dict[str, str]) -> list[RecordingDiff]:
    """A renamed component's recordings are compared under its new name (:func:`component_renames`)."""
    old = {(r.name, r.labels): r for r in (replace(r, expr=_renamed(r.expr, renames),
                                                      labels=tuple((k, _renamed(v, renames)) for k, v in r.labels))
                                            for r in a.recordings)}
    new = {(r.name, r.labels): r for r in b.recordings}
    added = [new[k] for k in new if k not in old]
    out = []
    for key in (k for k in old if k not in new):
        gone = old[key]
        twin = next((r for r in added if r.labels == gone.labels and exprs.same(r.expr, gone.expr)), None)
        if twin is not None:
            added.remove(twin)
        out.append(RecordingDiff("renamed" if twin else "removed", gone.name, gone.labels,
                                 twin.name if twin else None, readers.left_reading_nothing(gone, a.name)))
    for key in (k for k in old if k in new):
        if not exprs.same(old[key].expr, new[key].expr):
            out.append(RecordingDiff("changed", key[0], key[1], changes=[Condition(old[key].expr, new[key].expr)]))
    return sorted(out, key=lambda d: (d.name, d.labels))


# --------------------------------------------------------------------------- dashboards


def _keyed_panels(panels: Iterable[Panel]) -> dict[tuple[str, int], tuple[int, Panel]]:
    """Panels by (title, occurrence of that title), with their position among the dashboard's panels."""
    seen: Counter = Counter()
    out = {}
    for position, panel in enumerate(panels):
        seen[panel.title] += 1
        out[(panel.title, seen[panel.title])] = (position, panel)
    return out


def _panels(a: Service, b: Service, renames: dict[str, str]) -> list[PanelDiff]:
    """Panels matched by title; a panel left and one arrived at the same place is one panel retitled. A renamed
    component's queries are compared under its new name: its panels say only that their titles changed."""
    out: list[PanelDiff] = []
    for uid in sorted(set(a.dashboards) | set(b.dashboards)):
        if uid not in b.dashboards:
            out.append(PanelDiff("dashboard-removed", a.dashboards[uid], f"{len(a.panels[uid])} panels"))
            continue
        if uid not in a.dashboards:
            out.append(PanelDiff("dashboard-added", b.dashboards[uid], f"{len(b.panels[uid])} panels"))
            continue
        old, new = _keyed_panels(a.panels[uid]), _keyed_panels(b.panels[uid])
        title = b.dashboards[uid]
        gone = {old[k][0]: old[k][1] for k in old if k not in new}
        for key, (position, panel) in new.items():
            before = old[key][1] if key in old else gone.pop(position, None)
            if before is None:
                out.append(PanelDiff("added", title, panel.title, new=panel.queries))
            elif before.title != panel.title or not _same_queries(before.queries, panel.queries):
                retitled = before.title if before.title != panel.title else None
                if _same_queries(tuple(_renamed(q, renames) for q in before.queries), panel.queries):
                    if retitled:  # the component's new name is all that changed: no queries to read through
                        out.append(PanelDiff("changed", title, panel.title, renamed_from=retitled))
                    continue
                out.append(PanelDiff("changed", title, panel.title, before.queries, panel.queries, retitled))
        out += [PanelDiff("removed", title, p.title, old=p.queries) for p in gone.values()]
    return out


def _same_queries(x: Sequence[str], y: Sequence[str]) -> bool:
    return len(x) == len(y) and all(exprs.same(a, b) for a, b in zip(x, y))


# --------------------------------------------------------------------------- SLOs


def slo_facts(service: Service) -> dict[str, Slo]:
    """Each SLO's objective and window, from the rules.

    The window is the longest ``slo:sli_error:ratio_rate<W>`` recording of the SLO (the error ratio over the
    SLO window). The error budget (1 - objective) is what a ``slo:sli_error:burn_rate<W>`` recording divides
    by (``ratio * coverage / budget``), or in outputs of obsgen before those recordings the factor below 1 of a
    burn-rate threshold, ``ratio > burn * budget``: burn rates are never below 1.
    """
    windows: dict[str, tuple[float, str]] = {}
    budgets: dict[str, float] = {}
    for r in service.recordings:
        name = dict(r.labels).get("slo")
        if name and r.name.startswith(SLO_RATIO):
            window = r.name[len(SLO_RATIO):]
            windows[name] = max(windows.get(name, (0.0, "")), (exprs.seconds(window), window))
        elif name and r.name.startswith(SLO_BURN) and 0 < (exprs.divisor(r.expr) or 0) < 1:
            budgets.setdefault(name, exprs.divisor(r.expr) or 0)
    for alert in service.alerts:
        parsed = exprs.parse(alert.expr)
        if parsed is None:
            continue
        names = {value for sel in parsed.selectors if sel.name.startswith(SLO_RATIO)
                 for label, op, value in sel.matchers if label == "slo" and op == "="}
        if len(names) != 1:
            continue
        for c in parsed.comparisons:
            below = [f for f in c.factors if 0 < f < 1]
            if c.signal.startswith(SLO_RATIO) and len(c.factors) >= 2 and len(below) == 1:
                budgets.setdefault(next(iter(names)), below[0])
                break
    return {name: Slo(round(1 - budgets[name], 10) if name in budgets else None, window, seconds / 60)
            for name, (seconds, window) in windows.items()}


def _slos(a: Service, b: Service) -> list[SloDiff]:
    old, new = slo_facts(a), slo_facts(b)
    out = []
    for name in sorted(set(old) | set(new)):
        x, y = old.get(name), new.get(name)
        if x != y:
            out.append(SloDiff("added" if x is None else "removed" if y is None else "changed", name, x, y))
    return out


# --------------------------------------------------------------------------- inhibitions


def _describe(matchers) -> str:
    names = [m.value for m in matchers if m.label == "alertname"]
    rest = [str(m) for m in matchers if m.label not in ("alertname", "service")]
    return " ".join(names + (["{" + ", ".join(rest) + "}"] if rest else [])) or "any alert"


def _inhibitions(a: Service, b: Service) -> list[InhibitionDiff]:
    def keyed(rules: Sequence[Inhibition]) -> dict:
        return {(tuple(map(str, r.source)), tuple(map(str, r.target)), r.equal): r for r in rules}

    old, new = keyed(a.inhibitions), keyed(b.inhibitions)
    out = [InhibitionDiff(status, _describe(r.source), _describe(r.target), r.equal)
           for status, here, there in (("removed", old, new), ("added", new, old))
           for key, r in here.items() if key not in there]
    return out
