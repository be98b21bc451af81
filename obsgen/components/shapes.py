"""Alert shapes that several kinds share, each with the scenarios that prove it.

A kind picks a shape and fills in its metrics and words; the PromQL and the
promtool stories (fires, near miss, idle, restart, short spike) are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components.base import Check, Component, Recording, Rule, Scenario
from obsgen.components.timeline import MIN, RESTART, STEP, counter, gauge
from obsgen.model.types import Duration, Labels
from obsgen.promql import matchers, number

FIVE_MIN = Duration.parse("5m")


def by_clause(c: Component, per_instance: bool = True) -> str:
    labels = (["instance"] if per_instance else []) + list(c.identity)
    return f"by ({', '.join(labels)})"


def verdict(for_: Duration, end: Duration, fires: bool) -> tuple[Check, ...]:
    """The checks every scenario of an alert makes, so scenarios can share a promtool group.

    Just before ``for`` has passed nothing may fire, whatever the data; at the
    end of the story the alert fires or it does not.
    """
    early = (Check(for_ - STEP, False),) if for_ > STEP else ()
    return early + (Check(end - STEP, fires),)


def rate_above(c: Component, name: str, *, signal: str, threshold: float, window: Duration, for_: str,
               severity: str, summary: str, description: str, per_instance: bool = True) -> list[Rule]:
    """``sum(rate(counter)) > threshold``: lock failures, L2 failures, rejections."""
    by = by_clause(c, per_instance)
    expr = f"sum {by} (rate({c.select(signal)}[{window}])) > {number(threshold)}"
    high = threshold * 2 if threshold else 1.0

    def scenarios(f: Duration) -> list[Scenario]:
        end = window + f + MIN * 2
        half = Duration(end.millis // 2 // STEP.millis * STEP.millis)
        return [
            Scenario("above", f"{number(high)}/s, twice the threshold, sustained", (
                c.series(signal, counter((end, high))),), verdict(f, end, True),
                labels=dict(c.identity), value=high, per_instance=per_instance),
            Scenario("below", f"{number(threshold / 2)}/s, half the threshold", (
                c.series(signal, counter((end, threshold / 2))),), verdict(f, end, False),
                per_instance=per_instance),
            Scenario("restart", "a process restart resets the counter from a large value", (
                c.series(signal, counter((half, threshold / 2), RESTART, (end - half, threshold / 2),
                                          start=1_000_000)),), verdict(f, end, False),
                per_instance=per_instance),
        ]

    return c.alert(name, expr=expr, for_=for_, severity=severity, summary=summary, description=description,
                   scenarios=scenarios)


def gauge_compare(c: Component, name: str, *, signal: str, op: str, threshold: float, bad: float, good: tuple[float, ...],
                  for_: str, severity: str, summary: str, description: str, aggregate: bool = True,
                  extra: Labels | None = None, base: Labels | None = None,
                  series_labels: Labels | None = None) -> list[Rule]:
    """A gauge against a threshold for ``for``: a full queue, a Redis that is down.

    With ``aggregate`` the worst instance of the component is judged; otherwise
    each raw series (one Redis server) is. The proof includes a short spike to the
    bad value, which must not fire: a 30 s blip is not an incident. Each ``good``
    value is a healthy scenario (a near miss, or a trap such as Resilience4j's -1).
    ``extra`` labels narrow the selector; ``series_labels`` only decorate the test
    series (labels a real series carries, such as a replica's ``master_host``).
    """
    selector = c.select(signal, extra, base=base)
    worst = "max" if op.startswith(">") else "min"
    expr = f"{worst} {by_clause(c)} ({selector}) {op} {number(threshold)}" if aggregate else \
        f"{selector} {op} {number(threshold)}"
    decorated = {**(extra or {}), **(series_labels or {})}
    fired = dict(c.identity) if aggregate else c.labels(signal, decorated, base)

    def series(values: str):
        return (c.series(signal, values, decorated, base=base),)

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        spike = Duration.parse("30s")
        out = [
            Scenario("sustained", f"held at {number(bad)} (threshold {op} {number(threshold)})",
                     series(gauge((end, bad))), verdict(f, end, True), labels=fired, value=bad),
        ]
        out += [Scenario(f"healthy-{i}", f"held at {number(g)}", series(gauge((end, g))), verdict(f, end, False))
                for i, g in enumerate(good, 1)]
        if f > spike:
            out.append(Scenario("spike", f"{spike} at {number(bad)}, then back to {number(good[0])}",
                                series(gauge((MIN, good[0]), (spike, bad), (end - MIN - spike, good[0]))),
                                verdict(f, end, False)))
        return out

    return c.alert(name, expr=expr, for_=for_, severity=severity, summary=summary, description=description,
                   scenarios=scenarios)


@dataclass(frozen=True)
class RatioSignals:
    """The counters of a ratio: ``part / total``, where ``rest`` is total minus part.

    When part and total are one metric family told apart by a label
    (``cache_gets_total{result="hit"}`` within ``cache_gets_total``), test data
    writes ``part`` and ``rest`` series; otherwise ``part`` and ``total``.
    """

    part: str
    total: str
    rest: str


def ratio_of_rates(c: Component, name: str, *, signals: RatioSignals, record: str, threshold: float,
                   below: bool, min_rate: float, for_: str, severity: str, summary: str, description: str,
                   extra: Labels | None = None, tag: Labels | None = None, window: Duration = FIVE_MIN) -> list[Rule]:
    """A ratio of two rates against a threshold, judged only while traffic is at least ``min_rate``.

    Records ``<record>:ratio_rate5m`` and ``<record>:total:rate5m`` per instance;
    ``tag`` labels (a cache tier) go on the recordings so alerts can tell them apart.
    Without traffic the ratio is NaN and with little traffic it is noise: the
    ``and`` on the request rate keeps idle components quiet.
    """
    extra = extra or {}
    by = by_clause(c)
    static = dict(c.identity, service=c.service.name, **(tag or {}))
    part = f"sum {by} (rate({c.select(signals.part, extra)}[{window}]))"
    total = f"sum {by} (rate({c.select(signals.total, extra)}[{window}]))"
    suffix = f"rate{window}"
    ratio_name, total_name = f"{record}:ratio_{suffix}", f"{record}_total:{suffix}"
    recordings: list[Rule] = [Recording(total_name, total, static), Recording(ratio_name, f"{part}\n/\n{total}", static)]
    pick = matchers(static)
    op = "<" if below else ">"
    expr = f"{ratio_name}{pick} {op} {number(threshold)}\nand\n{total_name}{pick} >= {number(min_rate)}"
    bad = threshold / 2 if below else min(1.0, max(threshold * 2, threshold + (1 - threshold) / 2))
    good = (1 + threshold) / 2 if below else threshold / 2
    busy = max(min_rate * 5, 1.0)
    same_family = c.metric(signals.part).name == c.metric(signals.total).name

    def traffic(ratio: float, rate: float, span: Duration) -> tuple:
        part_series = c.series(signals.part, counter((span, rate * ratio)), extra)
        if same_family:
            return part_series, c.series(signals.rest, counter((span, rate * (1 - ratio))), extra)
        return part_series, c.series(signals.total, counter((span, rate)), extra)

    def scenarios(f: Duration) -> list[Scenario]:
        end = window + f + MIN * 2
        out = [
            Scenario("bad-busy", f"ratio {number(bad)} at {number(busy)}/s", traffic(bad, busy, end),
                     verdict(f, end, True), labels=dict(c.identity, **(tag or {})), value=bad),
            Scenario("good-busy", f"ratio {number(good)}, on the good side of {number(threshold)}",
                     traffic(good, busy, end), verdict(f, end, False)),
        ]
        if min_rate > 0:
            out.append(Scenario("bad-idle", f"ratio {number(bad)} but only {number(min_rate / 2)}/s of traffic",
                                traffic(bad, min_rate / 2, end), verdict(f, end, False)))
        return out

    return recordings + c.alert(name, expr=expr, for_=for_, severity=severity, summary=summary,
                                description=description, scenarios=scenarios, labels=tag)
