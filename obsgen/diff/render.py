"""The three faces of a :class:`~obsgen.diff.model.Report`: a pull-request comment (Markdown), a terminal
report (text) and the JSON contract. Markdown and text say the same things in the same order: a summary
line, the risk flags, then one table (or block) per service; only :class:`Style` differs.

The Markdown starts with :data:`MARKER`, so CI can find and update its previous comment instead of adding
one per push. Everything taken from the outputs (names, titles, PromQL, annotations) is escaped: a spec's
text cannot break the table or inject Markdown.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from obsgen.diff.model import (AlertDiff, Annotation, Backtest, Change, Condition, Duration, Firing, InhibitionDiff,
                               Label, PanelDiff, Receiver, Receivers, RecordingDiff, Report, ServiceDiff, Severity,
                               Side, Slo, SloDiff, Threshold)
from obsgen.diff.risk import number, times

MARKER = "<!-- obsgen-diff -->"
_NOUNS = {"alerts": "alert", "recordings": "recording", "panels": "panel", "slos": "SLO", "inhibitions": "inhibition"}


@dataclass(frozen=True)
class Style:
    code: Callable[[str], str]  # PromQL, names, values
    text: Callable[[str], str]  # prose taken from the outputs (titles, messages)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _md_code(text: str) -> str:
    """An inline code span that survives a table cell: one line, pipes escaped, a fence longer than any run."""
    flat = _flat(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]#|~!])", r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")


def _md_text(text: str) -> str:
    return _escape(_flat(text))


def _md_message(text: str) -> str:
    """obsgen's own wording (a risk's message), whose backticks mark code: those spans as code, the rest escaped."""
    parts = re.split(r"`([^`]*)`", _flat(text))
    return "".join(_md_code(p) if i % 2 else _escape(p) for i, p in enumerate(parts))


MARKDOWN = Style(_md_code, _md_text)
PLAIN = Style(_flat, _flat)


def render(report: Report, fmt: str) -> str:
    return {"markdown": markdown, "text": text, "json": as_json}[fmt](report)


def as_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- words

def summary(report: Report) -> str:
    if not report.changed:
        return "No changes to alerts, recordings, dashboards, SLOs or routing."
    parts = []
    for kind, statuses in report.counts().items():
        for status, n in sorted(statuses.items()):
            noun = "dashboard" if status.startswith("dashboard-") else _NOUNS[kind]
            parts.append(f"{n} {noun}{'s' if n != 1 else ''} {status.removeprefix('dashboard-')}")
    risks = len(report.risks)
    flags = f"{risks} risk flag{'s' if risks != 1 else ''}" if risks else "no risk flags"
    by_status = Counter(s.status for s in report.services)
    services = ", ".join(f"{n} service{'s' if n != 1 else ''} {status}" for status, n in sorted(by_status.items()))
    return f"{flags}; {services}: {', '.join(parts)}."


def _side(name: str, s: Side, st: Style) -> str:
    return f"{name}: {st.code(s.label)}" + (f", built by {st.text(s.built_by)}" if s.built_by else "")


def receivers(rs: Receivers) -> str:
    return ", ".join(r if r is not None else "default receiver" for r in rs)


def pct(objective: float | None) -> str:
    return "unknown" if objective is None else format(objective * 100, ".10g") + "%"


def minutes(m: float | None) -> str:
    return "unknown" if m is None else format(round(m, 1), "g") + " min"


def excerpt(old: str, new: str, context: int = 3) -> tuple[str, str]:
    """The words where two long texts differ, each with ``context`` words around it (``…`` where cut)."""
    from difflib import SequenceMatcher

    a, b = old.split(), new.split()
    if max(len(a), len(b)) <= 4 * context:
        return " ".join(a), " ".join(b)
    spans: list[list[int]] = []  # [a_lo, a_hi, b_lo, b_hi] of each differing stretch, context included
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        span = [max(0, i1 - context), min(len(a), i2 + context), max(0, j1 - context), min(len(b), j2 + context)]
        if spans and (span[0] <= spans[-1][1] or span[2] <= spans[-1][3]):
            spans[-1][1], spans[-1][3] = span[1], span[3]
        else:
            spans.append(span)

    def cut(words: list[str], lo: int, hi: int) -> str:
        head = "" if spans[0][lo] == 0 else "… "
        tail = "" if spans[-1][hi] == len(words) else " …"
        return head + " … ".join(" ".join(words[s[lo]:s[hi]]) for s in spans) + tail

    return cut(a, 0, 1), cut(b, 2, 3)


def _before_after(old: str | None, new: str | None, st: Style) -> str:
    if old is not None and new is not None:
        old, new = excerpt(old, new)
    return f"{_value(old, st)} → {_value(new, st)}"


def _value(v: str | None, st: Style) -> str:
    return "(none)" if v is None else st.code(v)


def change(c: Change, st: Style) -> str:
    """One typed change in the reviewer's words."""
    if isinstance(c, Threshold):
        how = ", ".join(filter(None, [c.direction, times(c.factor) if c.direction and c.factor else ""]))
        return (f"threshold on {st.code(c.signal)}: {st.code(f'{c.op} {number(c.old)}')} → "
                f"{st.code(f'{c.op} {number(c.new)}')}" + (f" ({how})" if how else ""))
    if isinstance(c, Duration):
        how = f" ({times(c.factor)})" if c.factor is not None else ""
        return f"{st.code(c.field)} {st.code(c.old)} → {st.code(c.new)}{how}"
    if isinstance(c, Severity):
        return f"severity {c.old or 'none'} → {c.new or 'none'}" + (f" ({c.direction})" if c.direction else "")
    if isinstance(c, Label):
        return f"label {st.code(c.name)}: {_value(c.old, st)} → {_value(c.new, st)}"
    if isinstance(c, Annotation):
        return f"{st.text(c.name.replace('_', ' '))}: {_before_after(c.old, c.new, st)}"
    if isinstance(c, Condition):
        return f"condition: {_before_after(c.old, c.new, st)}"
    if isinstance(c, Receiver):
        return f"receiver: {st.text(receivers(c.old))} → {st.text(receivers(c.new))}"
    raise TypeError(c)


def _alert(a: AlertDiff, st: Style) -> tuple[str, list[str]]:
    quals = ", ".join(a.where)
    item = f"alert {st.code(a.name)}" + (f" ({st.text(quals)})" if quals else "") + \
        (f", renamed from {st.code(a.renamed_from)}" if a.renamed_from else "") + \
        (f", component renamed from {st.code(a.component_renamed_from)}" if a.component_renamed_from else "")
    if a.status == "added":
        return item, [f"added ({a.severity or 'no severity'})"]
    if a.status == "removed":
        return item, [f"removed (was {a.severity or 'without severity'})"]
    # receivers last: they follow from the rest
    ordered = sorted(a.changes, key=lambda c: isinstance(c, Receiver))
    return item, [change(c, st) for c in ordered] + ([_backtest(a.backtest, st)] if a.backtest else [])


def _backtest(b: Backtest, st: Style) -> str:
    def fired(f: Firing | None) -> str:
        return "?" if f is None else f"fired {f.firings}× ({format(f.minutes, 'g')} min firing)"

    if b.error:
        return f"over the last {b.lookback}: Prometheus refused the query ({st.text(b.error)})"
    steps = f" at {format(b.step_seconds / 60, 'g')}-minute steps" if b.step_seconds > 60 else ""
    said = (f"over the last {b.lookback} of {st.text(b.prometheus)}{steps}: old {fired(b.old)}, "
            f"new {fired(b.new)}")
    if b.missing:
        # recordings are named level:metric:operations; anything else is the app's (or an exporter's) own metric
        fix = ("load the service's recording rules into that Prometheus, or point --prometheus at the one that runs "
               "them" if any(":" in s.split("{")[0] for s in b.missing) else
               "point --prometheus at the Prometheus that scrapes the service")
        said += (f"; but {', '.join(st.code(s) for s in b.missing)} held no series there, so these counts say "
                 f"nothing: {fix}")
    return said


def _recording(r: RecordingDiff, st: Style) -> tuple[str, list[str]]:
    labels = ", ".join(f'{k}="{v}"' for k, v in r.labels)
    item = f"recording {st.code(r.name + '{' + labels + '}')}"
    if r.status == "changed":
        return item, [change(c, st) for c in r.changes]
    what = f"renamed to {st.code(r.renamed_to)}" if r.renamed_to else "removed"
    read = f"; still read by {st.text(', '.join(r.readers))}, which now read nothing" if r.readers else ""
    return item, [what + read]


def _panel(p: PanelDiff, st: Style) -> tuple[str, list[str]]:
    if p.status.startswith("dashboard-"):
        return f"dashboard “{st.text(p.dashboard)}”", [f"{p.status.removeprefix('dashboard-')} ({p.title})"]
    item = f"panel “{st.text(p.title)}” ({st.text(p.dashboard)})"
    if p.status != "changed":
        return item, [p.status]
    from obsgen.diff.exprs import same

    out = [f"title was “{st.text(p.renamed_from)}”"] if p.renamed_from else []
    out += [f"query: {_before_after(o, n, st)}" for o, n in zip(p.old, p.new) if not same(o, n)]
    out += [f"query added: {st.code(q)}" for q in p.new[len(p.old):]]
    out += [f"query removed: {st.code(q)}" for q in p.old[len(p.new):]]
    return item, out


def _slo(s: SloDiff, st: Style) -> tuple[str, list[str]]:
    def facts(x: Slo) -> str:
        return f"{pct(x.objective)} over {x.window} (error budget {minutes(x.budget_minutes)} per {x.window})"

    item = f"SLO {st.code(s.name)}"
    if s.old is None or s.new is None:
        return item, [f"{s.status}: {facts(s.new or s.old)}"]  # type: ignore[arg-type]
    out = []
    if s.old.objective != s.new.objective:
        out.append(f"objective {pct(s.old.objective)} → {pct(s.new.objective)}")
    if s.old.window != s.new.window:
        out.append(f"window {s.old.window} → {s.new.window}")
    out.append(f"error budget {minutes(s.old.budget_minutes)} per {s.old.window} → "
               f"{minutes(s.new.budget_minutes)} per {s.new.window}")
    return item, out


def _inhibition(i: InhibitionDiff, st: Style) -> tuple[str, list[str]]:
    equal = f" (equal: {st.text(', '.join(i.equal))})" if i.equal else ""
    return "inhibition", [f"{i.status}: {st.code(i.source)} silences {st.code(i.target)}{equal}"]


def rows(s: ServiceDiff, st: Style) -> list[tuple[str, str, list[str], str]]:
    """(component, item, changes, receiver) for every item of a service: alerts, recordings, panels, SLOs,
    inhibitions."""
    moved: dict[Receiver, list[AlertDiff]] = {}  # alerts whose only change is their receiver, per move
    for a in s.alerts:
        if a.status == "changed" and len(a.changes) == 1 and isinstance(a.changes[0], Receiver):
            moved.setdefault(a.changes[0], []).append(a)
    grouped = {id(a) for alerts in moved.values() for a in alerts}
    out = [(a.component, *_alert(a, st), ("was " if a.status == "removed" else "") + receivers(a.receivers))
           for a in s.alerts if id(a) not in grouped]
    for move, alerts in moved.items():  # a routing change: one row, not one per alert it moves
        names = ", ".join(st.code(n) for n in sorted({a.name for a in alerts}))
        out.append(("", f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} ({names})",
                    [change(move, st)], receivers(move.new)))
    out += [("", *_recording(r, st), "") for r in s.recordings]
    out += [("", *_panel(p, st), "") for p in s.panels]
    out += [(x.name, *_slo(x, st), "") for x in s.slos]
    out += [("", *_inhibition(i, st), "") for i in s.inhibitions]
    return out


# --------------------------------------------------------------------------- the two reports

def markdown(report: Report) -> str:
    st = MARKDOWN
    lines = [MARKER, "### obsgen diff", "", f"**{summary(report)}**", "",
             _side("Old", report.old, st) + "  ", _side("New", report.new, st), ""]
    if report.risks:
        lines += [f"#### Risks ({len(report.risks)})", ""]
        lines += [f"- :warning: **{st.text(r.service)}** · {st.code(r.subject)}: {_md_message(r.message)}"
                  for r in report.risks]
        lines.append("")
    for s in report.services:
        status = "" if s.status == "changed" else f" (service {s.status})"
        lines += [f"#### {st.text(s.name)}{status}", "", "| Component | What | Change | Receiver |", "|---|---|---|---|"]
        for component, item, changes, receiver in rows(s, st):
            lines.append(f"| {st.text(component)} | {item} | {'<br>'.join(changes)} | {st.text(receiver)} |")
        lines.append("")
    return "\n".join(lines)


def text(report: Report) -> str:
    st = PLAIN
    lines = [f"obsgen diff: {summary(report)}", _side("old", report.old, st), _side("new", report.new, st)]
    if report.risks:
        lines += ["", f"Risks ({len(report.risks)}):"]
        lines += [f"  ! {r.service}: {r.subject}: {r.message}" for r in report.risks]
    for s in report.services:
        status = "" if s.status == "changed" else f" (service {s.status})"
        lines += ["", f"{s.name}{status}:"]
        for component, item, changes, receiver in rows(s, st):
            lines.append(f"  {component + ': ' if component else ''}{item}" + (f"  → {receiver}" if receiver else ""))
            lines += [f"      {c}" for c in changes]
    return "\n".join(lines) + "\n"
