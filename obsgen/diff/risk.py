"""Risk flags: the changes a reviewer must not miss, read from the typed changes.

* a critical alert removed, or downgraded to warning/info;
* a threshold loosened by 2x or more (the alert fires on half as much trouble, or less; for a share between 0
  and 1, the share on the other side of it counts too: a hit-ratio floor 0.9 → 0.5 lets 5x the misses by),
  unless another threshold of the same alert, or the objective of the SLO it watches, got stricter: a tighter
  SLO halves its error budget (the divisor of its burn rates) and doubles its traffic floor, which is not a
  loosening;
* a ``for`` lengthened by 2x or more (it fires twice as late, or later);
* an alert that now falls to the platform's default receiver (no route of the service takes it);
* a recording rule removed or renamed while a selector on the new side still reads it, and now reads nothing;
* a component renamed: its alerts now select its metrics by a name the app must export.
"""

from __future__ import annotations

from obsgen.diff.model import (SEVERITY_RANK, AlertDiff, Duration, Receiver, Report, Risk, Severity, Threshold)

FACTOR = 2.0


def subject(alert: AlertDiff) -> str:
    """``CacheHitRateLow (equipment, tier=L1)``."""
    where = ", ".join([alert.component] * bool(alert.component) + alert.where)
    return f"{alert.name} ({where})" if where else alert.name


def number(x: float) -> str:
    return format(x, ".15g")


def times(factor: float | None) -> str:
    return "from 0" if factor == float("inf") else f"{factor:.3g}×"


def assess(report: Report) -> list[Risk]:
    out: list[Risk] = []
    for service in report.services:
        tighter = {s.name for s in service.slos if s.old and s.new and s.old.objective is not None
                   and s.new.objective is not None and s.new.objective > s.old.objective}
        for alert in service.alerts:
            out += [Risk(service.name, kind, subject(alert), message)
                    for kind, message in _alert_risks(alert, alert.component in tighter)]
        out += _component_renames(service.name, service.alerts)
        for rec in service.recordings:
            if rec.readers:
                what = f"renamed to `{rec.renamed_to}`" if rec.renamed_to else "removed"
                labels = ", ".join(f"{k}={v}" for k, v in rec.labels)
                out.append(Risk(service.name, "recording-still-read", f"{rec.name}{{{labels}}}",
                                f"recording {what} but still read by {', '.join(rec.readers)}, which now read "
                                "nothing"))
    return out


def _alert_risks(alert: AlertDiff, slo_tightened: bool = False) -> list[tuple[str, str]]:
    out = []
    if alert.status == "removed" and alert.severity == "critical":
        out.append(("critical-alert-removed", "critical alert removed: nothing pages for this any more"))
    tightened = slo_tightened or any(isinstance(c, Threshold) and c.direction == "stricter" for c in alert.changes)
    for c in alert.changes:
        if isinstance(c, Severity) and c.old == "critical" and SEVERITY_RANK.get(c.new, 0) < SEVERITY_RANK["critical"]:
            out.append(("critical-alert-downgraded", f"critical alert downgraded to {c.new or 'no severity'}"))
        elif (isinstance(c, Threshold) and c.direction == "looser" and c.factor is not None and c.factor >= FACTOR
              and not tightened):
            rest = (f" (the share beyond it: {number(1 - c.old)} → {number(1 - c.new)})" if c.complement else "")
            out.append(("threshold-loosened", f"threshold on `{c.signal}` loosened {times(c.factor)}: "
                                              f"`{c.op} {number(c.old)}` → `{c.op} {number(c.new)}`{rest}"))
        elif isinstance(c, Duration) and c.field == "for" and c.factor is not None and c.factor >= FACTOR:
            out.append(("for-lengthened", f"`for` lengthened {times(c.factor)}: {c.old} → {c.new}"))
    moved = next((c for c in alert.changes if isinstance(c, Receiver)), None)
    newly_default = alert.status == "added" or (moved is not None and None not in moved.old)
    if alert.status != "removed" and None in alert.receivers and newly_default:
        out.append(("default-receiver", "now falls to the default receiver: no route of the service takes it"))
    return out


def _component_renames(service: str, alerts: list[AlertDiff]) -> list[Risk]:
    """One flag per renamed component: its alerts now select its metrics by the new name, which the app must
    export (seed 001's alerts that could never fire began as a name the app did not use)."""
    renamed: dict[tuple[str, str], list[str]] = {}
    for alert in alerts:
        if alert.component_renamed_from:
            renamed.setdefault((alert.component_renamed_from, alert.component), []).append(alert.name)
    return [Risk(service, "component-renamed", f"{new} (was {old})",
                 f"component renamed: {', '.join(dict.fromkeys(names))} now select its metrics by `{new}` instead "
                 f"of `{old}`; unless the app exports `{new}` they can never fire (check with `obsgen verify`)")
            for (old, new), names in renamed.items()]
