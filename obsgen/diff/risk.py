"""Risk flags: the changes a reviewer must not miss, read from the typed changes.

* a critical alert removed, or downgraded to warning/info;
* a threshold loosened by 2x or more (the alert fires on half as much trouble, or less), unless another
  threshold of the same alert got stricter: a tighter SLO halves its error-ratio thresholds and doubles its
  traffic floor, which is not a loosening;
* a ``for`` lengthened by 2x or more (it fires twice as late, or later);
* an alert that now falls to the platform's default receiver (no route of the service takes it);
* a recording rule removed or renamed while a selector on the new side still reads it, and now reads nothing.
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
        for alert in service.alerts:
            out += [Risk(service.name, kind, subject(alert), message) for kind, message in _alert_risks(alert)]
        for rec in service.recordings:
            if rec.readers:
                what = f"renamed to `{rec.renamed_to}`" if rec.renamed_to else "removed"
                labels = ", ".join(f"{k}={v}" for k, v in rec.labels)
                out.append(Risk(service.name, "recording-still-read", f"{rec.name}{{{labels}}}",
                                f"recording {what} but still read by {', '.join(rec.readers)}, which now read "
                                "nothing"))
    return out


def _alert_risks(alert: AlertDiff) -> list[tuple[str, str]]:
    out = []
    if alert.status == "removed" and alert.severity == "critical":
        out.append(("critical-alert-removed", "critical alert removed: nothing pages for this any more"))
    tightened = any(isinstance(c, Threshold) and c.direction == "stricter" for c in alert.changes)
    for c in alert.changes:
        if isinstance(c, Severity) and c.old == "critical" and SEVERITY_RANK.get(c.new, 0) < SEVERITY_RANK["critical"]:
            out.append(("critical-alert-downgraded", f"critical alert downgraded to {c.new or 'no severity'}"))
        elif (isinstance(c, Threshold) and c.direction == "looser" and c.factor is not None and c.factor >= FACTOR
              and not tightened):
            out.append(("threshold-loosened", f"threshold on `{c.signal}` loosened {times(c.factor)}: "
                                              f"`{c.op} {number(c.old)}` → `{c.op} {number(c.new)}`"))
        elif isinstance(c, Duration) and c.field == "for" and c.factor is not None and c.factor >= FACTOR:
            out.append(("for-lengthened", f"`for` lengthened {times(c.factor)}: {c.old} → {c.new}"))
    moved = next((c for c in alert.changes if isinstance(c, Receiver)), None)
    newly_default = alert.status == "added" or (moved is not None and None not in moved.old)
    if alert.status != "removed" and None in alert.receivers and newly_default:
        out.append(("default-receiver", "now falls to the default receiver: no route of the service takes it"))
    return out
