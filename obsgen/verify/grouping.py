"""One cause, one finding: what the findings of many signals share is said once, with every signal, alert and
panel it blinds.

The checks judge one selector at a time (:mod:`.checks`), so one mistake in the
spec is seen by every selector that depends on it: a misnamed cache by each of
its metrics, a wrong service selector by every signal of the service, a target
that is down by every series it exported. Here:

1. a rare-event signal that lacks a value another signal of its component must
   have is a finding, not a "no event yet" note (the failure counters of a
   misnamed cache, or of a misspelled route);
2. a component none of whose metrics exist is one ``no-metrics`` finding (an
   exporter not scraped, a profile that is not the app's);
3. findings at one spec field with one cause (the same matcher selecting nothing,
   the same unknown metric, the same targets down) are one finding that lists its
   signals; those of the service selector are one for the whole service;
4. the rest are merged per signal and problem (one signal read by several
   selectors);
5. a Prometheus with no `up` at all scrapes no targets: every metric missing from
   it is one ``no-targets`` finding per spec (:func:`no_targets`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from obsgen.verify import advice
from obsgen.verify.finding import (Finding, Missing, Signal, counted, listed, missing_label, missing_value,
                                   targets_down, unknown_metric)
from obsgen.verify.uses import UP, VARIABLES_SIGNAL, Use

# problems that several signals can share: what selected nothing is in the finding's `missing`
GROUPED = ("unknown-metric", "value-missing", "no-series-yet", "label-missing", "targets-down")


def grouped(results: list[tuple[Use, list[Finding]]], lookback: str | None) -> list[Finding]:
    """Every finding and note of ``results`` (each use with its own), each cause once.

    ``lookback`` is the window series were looked for in (None: exposition texts, one moment)."""
    buckets: dict[tuple, list[Finding]] = {}
    for f in _collapsed(_promoted(results, lookback is not None)):
        buckets.setdefault(_cause(f), []).append(f)
    return _ordered([_merged(members, lookback) for members in buckets.values()])


def _ordered(findings: list[Finding]) -> list[Finding]:
    """In the spec's order, so the report reads top to bottom."""
    return sorted(findings, key=lambda f: (f.file, f.line, f.column, f.component, f.signal, f.problem, f.message))


def _cause(f: Finding) -> tuple:
    """What makes findings one: the field and the problem, and what selected nothing there (else the signal and
    the message: a type or a window is one signal's own)."""
    # not the component: one field shared through a YAML anchor (`metrics: &tiered {…}`) is one edit, one finding
    where = (f.file, f.line, f.column, f.problem, f.note)
    if f.problem in GROUPED and f.missing is not None:
        m = f.missing.matcher
        return where + ((m.name, m.op, m.value) if m else f.missing.metrics,)
    return where + (f.signal, f.message)


def _merged(members: list[Finding], lookback: str | None) -> Finding:
    first = members[0]
    signals = tuple(sorted({s for f in members for s in f.signals}, key=lambda s: (s.kind, s.component, s.signal)))
    alerts = tuple(sorted({a for f in members for a in f.alerts}))
    panels = tuple(sorted({p for f in members for p in f.panels}))
    merged = replace(first, alerts=alerts, panels=panels, signals=signals,
                     selector=min(f.selector for f in members), uses=tuple(u for f in members for u in f.uses),
                     kind=", ".join(sorted({f.kind for f in members})),
                     component=", ".join(sorted({f.component for f in members})))
    if first.problem == "disappeared" and first.missing is not None:  # renamed: set the new name, where all read it
        return replace(merged, hint=advice.unknown_metric(list(merged.uses), True))
    if len(members) == 1 or first.missing is None:
        return merged
    missing = Missing(first.missing.matcher, tuple(dict.fromkeys(v for f in members for v in f.missing.values)),
                      tuple(sorted({x for f in members for x in f.missing.metrics})), first.missing.noun,
                      max(f.missing.of for f in members))
    merged = replace(merged, missing=missing, signal=_signal(first, signals))
    if first.problem == "unknown-metric":
        return replace(merged, message=unknown_metric(missing.metrics[0], missing.values, signals),
                       hint=advice.unknown_metric(list(merged.uses), lookback is not None))
    if first.problem == "targets-down":
        return replace(merged, message=targets_down(missing, signals), hint=advice.targets_down(len(missing.values)))
    if first.problem == "label-missing":
        return replace(merged, message=missing_label(missing.matcher, missing))
    message = missing_value(missing.matcher, missing, signals, lookback)
    hint = first.hint if first.note else advice.value(missing, first.uses[0], first.place, lookback is not None)
    return replace(merged, message=message, hint=hint)


def _signal(first: Finding, signals: tuple[Signal, ...]) -> str:
    """A finding's ``signal``: the one it is about, the service selector's field, or ``*`` for several."""
    if first.kind == "service" or len({s.signal for s in signals}) == 1:
        return first.signal
    return "*"


def _promoted(results: list[tuple[Use, list[Finding]]], scraped: bool) -> list[tuple[Use, list[Finding]]]:
    """A value that a signal of the component must have and lacks is a mistake (a misnamed cache, a misspelled
    route): the component's rare-event signals lacking the same value are findings too, not notes."""
    wrong = {_owner(f) for _, fs in results for f in fs if not f.note and f.problem == "value-missing"}

    def promote(f: Finding) -> Finding:
        if not (f.note and f.missing and f.missing.matcher and _owner(f) in wrong):
            return f
        return replace(f, note=False, problem="value-missing", hint=advice.value(f.missing, f.uses[0], f.place, scraped))

    return [(u, [promote(f) for f in fs]) for u, fs in results]


def _owner(f: Finding) -> tuple:
    m = f.missing.matcher if f.missing else None
    return f.file, f.kind, f.component, (m.name, m.op, m.value) if m else None


def _collapsed(results: list[tuple[Use, list[Finding]]]) -> Iterator[Finding]:
    """The findings; a component none of whose metrics exist is one finding, not one per signal. Prometheus' own
    `up` (Redis reads its exporter targets') is no metric of the component: it stays out of that judgement."""
    by_component: dict[tuple, list[tuple[Use, list[Finding]]]] = {}
    for use, findings in results:
        if not _apart(use):
            by_component.setdefault((use.file, use.path), []).append((use, findings))
    gone = {key for key, members in by_component.items()
            if len({u.read.metric for u, _ in members}) > 1
            and all(len(fs) == 1 and fs[0].problem == "unknown-metric" for _, fs in members)}
    # the `up` of a gone exporter's job (a variable's, RedisExporterDown's): the same cause (the exporter is not
    # scraped), said in the same finding
    unscraped: dict[tuple, list[tuple[Use, list[Finding]]]] = {}
    for u, fs in results:
        if _apart(u) and (u.file, u.path) in gone and fs:
            unscraped.setdefault((u.file, u.path), []).append((u, fs))
    for key in sorted(gone):
        members = by_component[key]
        use = members[0][0]
        metrics = sorted({u.read.metric for u, _ in members})
        message = f"none of the {len(metrics)} metrics of {use.noun} `{use.component}` exist: {listed(metrics)}"
        if key in unscraped:
            members = members + unscraped[key]
            message += f"; and {unscraped[key][0][1][0].message}"
        yield Finding(use.file, use.place.line, use.place.column, use.service, use.component, use.kind, "*",
                      use.read.selector, "no-metrics", message, advice.no_metrics(use),
                      tuple(sorted({a for u, _ in members for a in u.alerts})),
                      tuple(sorted({p for u, _ in members for p in u.panels})),
                      signals=tuple(Signal(u.kind, u.component, u.signal) for u, _ in members), place=use.place,
                      uses=tuple(u for u, _ in members))
    for use, findings in results:
        key = (use.file, use.path)
        if key not in gone or _apart(use) and key not in unscraped:
            yield from findings


def _apart(use: Use) -> bool:
    """A read judged on its own, never counted among its component's metrics: a dashboard variable's, and
    Prometheus' own `up` (Redis reads its exporter targets')."""
    return use.signal == VARIABLES_SIGNAL or use.read.metric == UP


def no_targets(findings: list[Finding], source: str) -> list[Finding]:
    """A server without a single `up` series scrapes nothing (a wrong URL, a Prometheus that only evaluates
    rules): each spec's missing metrics are one finding at its service selector, not one per component."""
    absent = ("unknown-metric", "no-metrics")
    out = [f for f in findings if f.note or f.problem not in absent]
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        if not f.note and f.problem in absent:
            by_file.setdefault(f.file, []).append(f)
    for members in by_file.values():
        uses = tuple(u for f in members for u in f.uses)
        service = next((u for u in uses if u.kind == "service"), uses[0])
        where = service.places.get("job", service.place) if service.kind == "service" else service.place
        signals = tuple(sorted({s for f in members for s in f.signals}, key=lambda s: (s.kind, s.component, s.signal)))
        metrics = sorted({u.read.metric for u in uses})
        message = (f"{source} has no `up` series: it scrapes no targets, so none of the {len(metrics)} metrics the "
                   f"spec reads is there ({counted(signals)})")
        hint = ("point --prometheus at the Prometheus that scrapes the service (this may be another server, or one "
                "that only evaluates rules)")
        out.append(Finding(service.file, where.line, where.column, service.service, service.service, "service",
                           UP, service.read.selector, "no-targets", message, hint,
                           tuple(sorted({a for f in members for a in f.alerts})),
                           tuple(sorted({p for f in members for p in f.panels})),
                           signals=signals, place=where, uses=uses))
    return _ordered(out)
