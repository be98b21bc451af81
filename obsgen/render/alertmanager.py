"""An Alertmanager routing and inhibition snippet for one service.

A platform team owns the Alertmanager configuration; a service contributes one
route (pasted under the root route's ``routes:``) and its inhibit rules (under
the top-level ``inhibit_rules:``). The route matches the service's ``service`` and
``team`` labels, groups by alert, service and component (and cluster, for fleets),
and sends each severity to its receiver: ``critical`` pages, ``warning`` opens a
ticket, anything else falls through to the parent route's receiver.

Inhibit rules come from the components' :class:`~obsgen.model.rules.Inhibition` s
(a cause silences its symptoms): only for alerts the service really emits. An
inhibition between two emitted alerts is always written: when one of them cannot
carry a label the rule compares, obsgen has a bug (the rule would never match in
Alertmanager), and the build stops with :class:`DroppedInhibition` naming it. The
one exception is a relation the spec does not make (a retry without ``breaker``
carries no ``breaker`` label: an open breaker is no cause of its exhaustion).

A cause never silences a symptom more severe than itself (a breaker with a fallback opens as a warning; the page
of a failing check behind it must still page). Such a declared inhibition is not written, and not silently: the
routes file says so in a comment, and the runbooks, which describe inhibitions only from :func:`inhibitions`,
say the symptom still notifies.
"""

from __future__ import annotations

from collections.abc import Sequence

from obsgen.model.labels import has
from obsgen.model.promql import quote
from obsgen.model.records import record
from obsgen.model.rules import Alert, Inhibition
from obsgen.model.service import ServiceModel
from obsgen.model.types import Service
from obsgen.render.yamlout import dump

FILE = "alertmanager/routes.yaml"
SEVERITIES = ("critical", "warning", "info")
DEFAULT_RECEIVERS = {"critical": "{team}-pager", "warning": "{team}-tickets"}
RELATIONS = ("breaker",)
"""Labels :meth:`~obsgen.components.base.Component.alert` sets only when the spec relates a component to another
(``breaker: payments``): a symptom without one is unrelated to the cause, not lost."""


class DroppedInhibition(RuntimeError):
    """An inhibition a kind declares between two alerts the service emits cannot be written (a bug in obsgen)."""


def receivers(service: Service) -> dict[str, str]:
    """Receiver per severity, in severity order: the spec's, else ``<team>-pager`` / ``<team>-tickets``."""
    given = service.alertmanager.receivers
    out = {s: given.get(s) or DEFAULT_RECEIVERS.get(s, "").format(team=service.team) for s in SEVERITIES}
    return {s: r for s, r in out.items() if r}


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f"{label}{op}{quote(value)}"


def _scope(service: Service) -> list[str]:
    """The service's alerts, and only one environment's when the spec has ``environments:``."""
    environment = [_matcher("environment", service.environment)] if service.environment else []
    return [_matcher("service", service.name)] + environment


def group_by(service: Service) -> list[str]:
    return ["alertname", "service", "component"] + ([service.cluster_label] if service.cluster_label else [])


def route(service: Service) -> dict:
    return {
        "matchers": _scope(service) + [_matcher("team", service.team)],
        "group_by": group_by(service),
        "routes": [{"matchers": [_matcher("severity", severity)], "receiver": receiver}
                   for severity, receiver in receivers(service).items()],
    }


def _carries(alert: Alert, label: str) -> bool:
    """Whether ``alert`` carries ``label``: as a static label of its rule, or on every series of its result."""
    return label in alert.labels or has(alert.expr, label)


def _missing(alerts: Sequence[Alert], name: str, labels: Sequence[str]) -> list[str]:
    """The ``labels`` alert ``name`` lacks: a relation when no instance of it carries one (only some routes sit
    behind a breaker), any other label when some instance lacks it."""
    instances = [a for a in alerts if a.name == name]
    return [label for label in labels
            if not (any if label in RELATIONS else all)(_carries(a, label) for a in instances)]


def _emitted(alerts: Sequence[Alert], name: str) -> bool:
    return any(a.name == name for a in alerts)


@record
class Held:
    """One symptom a cause holds back, as the written rules do it: the single source of the runbooks' words.

    ``source_severity`` is the cause's severity the rule matches (any when empty); ``severities`` the symptom's it
    matches (any when empty); ``still`` the symptom's severities that notify all the same. Not written (the cause
    is less severe than every rule of the symptom: a breaker with a fallback opens as a warning, the page of a
    failing check behind it still pages): ``source_severity`` lists the cause's severities, ``still`` the
    symptom's."""
    source: str
    target: str
    equal: tuple[str, ...]
    written: bool
    source_severity: str = ""
    severities: tuple[str, ...] = ()
    still: tuple[str, ...] = ()


def inhibitions(model: ServiceModel) -> list[Held]:
    """Every inhibition the kinds declare between alerts the service emits, written or withheld by severity, one
    entry per (cause, symptom, cause severity); kinds in spec order."""
    alerts = model.alerts
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    seen: list[str] = []
    for c in model.components:
        if c.kind in seen:
            continue
        seen.append(c.kind)
        for inh in c.inhibitions:
            _add(merged, inh, alerts)
    out = []
    for (source, equal), targets in merged.items():
        held: set[str] = set()
        for source_severity, names, target_severities in _by_severity(alerts, source, targets):
            held.update(names)
            out += [Held(source, t, equal, True, source_severity, target_severities,
                         tuple(s for s in _severities(alerts, t) if target_severities and s not in target_severities))
                    for t in names]
        out += [Held(source, t, equal, False, ", ".join(_severities(alerts, source)), still=tuple(_severities(alerts, t)))
                for t in targets if t not in held]
    return out


def inhibit_rules(model: ServiceModel) -> list[dict]:
    """One rule per cause (and set of compared labels, and cause severity), its symptoms merged."""
    service = model.service
    cluster = (service.cluster_label,) if service.cluster_label else ()
    rules: dict[tuple[str, tuple[str, ...], str, tuple[str, ...]], list[str]] = {}
    for h in inhibitions(model):
        if h.written:
            rules.setdefault((h.source, h.equal, h.source_severity, h.severities), []).append(h.target)
    return [{
        "source_matchers": [_matcher("alertname", source)] + ([_matcher("severity", level)] if level else [])
        + _scope(service),
        "target_matchers": [_matcher("alertname", "|".join(sorted(names)), "=~")]
        + ([_matcher("severity", "|".join(levels), "=~")] if levels else []) + _scope(service),
        "equal": list(equal) + [label for label in cluster if label not in equal],
    } for (source, equal, level, levels), names in rules.items()]


def _severities(alerts: Sequence[Alert], name: str) -> list[str]:
    """The severities alert ``name`` is emitted with, most severe first."""
    found = {a.severity for a in alerts if a.name == name}
    return sorted(found, key=lambda s: SEVERITIES.index(s) if s in SEVERITIES else len(SEVERITIES))


def _by_severity(alerts: Sequence[Alert], source: str, targets: Sequence[str]
                 ) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(source severity, targets, target severities) of one cause: a cause never silences a symptom more severe
    than itself. A breaker with a fallback opens as a warning (a ticket): the 5xx page of the routes behind it must
    still page. One unlimited rule (empty severities) when every source is at least as severe as every target."""
    rank = lambda s: SEVERITIES.index(s) if s in SEVERITIES else len(SEVERITIES)  # noqa: E731
    sources = _severities(alerts, source)
    symptoms = {t: _severities(alerts, t) for t in targets}
    if rank(sources[-1]) <= min(rank(s) for levels in symptoms.values() for s in levels):
        return [("", list(targets), ())]
    out = []
    for level in sources:
        allowed = tuple(s for s in SEVERITIES if rank(s) >= rank(level))
        names = [t for t, levels in symptoms.items() if set(levels) & set(allowed)]
        if names:
            out.append((level, names, allowed))
    return out


def _add(merged: dict[tuple[str, tuple[str, ...]], list[str]], inh: Inhibition, alerts: Sequence[Alert]) -> None:
    if not _emitted(alerts, inh.source):
        return
    targets = []
    for target in inh.targets:
        if target == inh.source or not _emitted(alerts, target):
            continue
        lost = {name: _missing(alerts, name, inh.equal) for name in (inh.source, target)}
        unrelated = lost[target] and all(label in RELATIONS for label in lost[target])
        if unrelated and not lost[inh.source]:
            continue
        if lost[inh.source] or lost[target]:
            raise DroppedInhibition(
                f"inhibition {inh.source} -> {target} (equal: {', '.join(inh.equal)}) cannot be written: "
                + "; ".join(f"{name} lacks {', '.join(labels)}" for name, labels in lost.items() if labels))
        targets.append(target)
    if targets:
        bucket = merged.setdefault((inh.source, tuple(inh.equal)), [])
        bucket.extend(t for t in targets if t not in bucket)


HEADER = """\
# Alertmanager routing and inhibition for service {name} (team {team}), generated by obsgen.
# Paste the entry under `routes:` into the `routes:` of your root route, and the entries under
# `inhibit_rules:` into the top-level `inhibit_rules:`. Receivers it names: {receivers}.
"""
WITHHELD = """\
# Not written: a cause never silences a symptom more severe than itself, so {source} ({levels}) does not
# hold back {target} ({target_levels}); both notify.
"""


def render(model: ServiceModel) -> str:
    service = model.service
    body = {"routes": [route(service)], "inhibit_rules": inhibit_rules(model)}
    names = ", ".join(dict.fromkeys(receivers(service).values()))
    withheld = "".join(WITHHELD.format(source=h.source, target=h.target, levels=h.source_severity,
                                       target_levels=", ".join(h.still))
                       for h in inhibitions(model) if not h.written)
    return HEADER.format(name=service.name, team=service.team, receivers=names) + withheld + dump(body)
