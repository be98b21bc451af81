"""The report: one line per finding then a summary (text), or one JSON document (a public contract, docs/verify.md).

Text lines read ``spec.yaml:line:col: component (kind) signal: problem; what to do``
followed by what the problem blinds; notes (expected absences) come after the
findings with ``note:`` before the problem. Everything quoted from the server or
the spec goes through :func:`~obsgen.errors.printable`: one finding, one line.
"""

from __future__ import annotations

import json

from obsgen.errors import printable
from obsgen.verify.finding import Finding

ALERTS_LISTED = 5  # a finding that blinds more (a whole service's) names these and counts the rest
PANELS_LISTED = 3


def line(f: Finding) -> str:
    blinds = _blinds(f)
    text = (f"{f.file}:{f.line}:{f.column}: {f.component} ({f.kind}) {f.signal}: {'note: ' if f.note else ''}"
            f"{f.message}; {f.hint}" + (f" [{'empty until then' if f.note else 'blinds'}: {blinds}]" if blinds else ""))
    return printable(text)


def _blinds(f: Finding) -> str:
    parts = []
    if f.alerts:
        more = len(f.alerts) - ALERTS_LISTED
        parts.append("alerts " + ", ".join(f.alerts[:ALERTS_LISTED]) + (f" and {more} more" if more > 0 else ""))
    if f.panels:
        parts.append("panels " + ", ".join(f.panels) if len(f.panels) <= PANELS_LISTED else f"{len(f.panels)} panels")
    if f.fires and not f.note:
        parts.append("fires at once: " + ", ".join(f.fires))
    return "; ".join(parts)


def text(findings: list[Finding], checked: dict) -> str:
    problems = [f for f in findings if not f.note]
    notes = [f for f in findings if f.note]
    out = [line(f) for f in problems] + [line(f) for f in notes]
    alerts, panels = blind(findings).values()
    what = (f"{checked['specs']} spec{_s(checked['specs'])}, {checked['components']} components, "
            f"{checked['signals']} signals, {checked['selectors']} selectors")
    source = printable(checked["source"]) + (f" at {checked['at']}" if checked.get("at") else "")
    if problems:
        summary = (f"obsgen verify: {len(problems)} finding{_s(len(problems))} ({alerts} alert{_s(alerts)} "
                   f"and {panels} panel{_s(panels)} blind)")
    else:
        summary = "obsgen verify: clean"
    summary += f", {len(notes)} note{_s(len(notes))}; {what} checked against {source}"
    out.append(summary)
    out += [f"obsgen verify: skipped: {printable(why)}" for why in checked.get("skipped", [])]
    return "\n".join(out) + "\n"


def blind(findings: list[Finding]) -> dict[str, int]:
    """How many alert rules and panels the findings blind, each once however many findings blind it: an alert
    rule per component (four caches' ``CacheHitRateLow{tier="L1"}`` are four), a panel per dashboard."""
    problems = [f for f in findings if not f.note]
    alerts = {(u.file, rule) for f in problems for u in f.uses for rule in u.rules}
    panels = {(f.file, p) for f in problems for p in f.panels}
    return {"alerts": len(alerts), "panels": len(panels)}


def as_json(findings: list[Finding], checked: dict) -> str:
    doc = {"findings": [f.as_json() for f in findings if not f.note],
           "notes": [f.as_json() for f in findings if f.note],
           "checked": checked, "blind": blind(findings)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
