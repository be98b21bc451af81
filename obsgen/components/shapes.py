"""Alert shapes that several kinds share, each with the scenarios that prove it.

A kind picks a shape and fills in its metrics and words; the PromQL and the
promtool stories (fires, near miss, idle, restart, short spike) are written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from obsgen.components.base import AlertDef, Component, RatioSignals, Recording, Rule, Scenario, Series
from obsgen.components.timeline import MIN, RESTART, STEP, counter, gauge
from obsgen.model.promql import Call, Expr, Num, Paren, agg, and_, binop, number, or_, rate, ratio, selector
from obsgen.model.rules import Check
from obsgen.model.types import Duration, Labels

FIVE_MIN = Duration.parse("5m")


def kept(c: Component, *labels: str) -> tuple[str, ...]:
    """The labels an aggregation or a vector match keeps, the cluster label first when the service has one.

    Fleets behind Thanos or Mimir evaluate one rule over many clusters: an
    aggregation that dropped the cluster would merge them into one alert.
    """
    cluster = (c.service.cluster_label,) if c.service.cluster_label else ()
    return cluster + labels


def grouping(c: Component, per_instance: bool = True) -> tuple[str, ...]:
    """What an alert of the component aggregates by: (cluster,) instance (unless across instances) and identity."""
    return kept(c, *(("instance",) if per_instance else ()), *c.identity)


def verdict(for_: Duration, end: Duration, fires: bool, step: Duration = STEP) -> tuple[Check, ...]:
    """The checks every scenario of an alert makes, so scenarios can share a promtool group.

    Just before ``for`` has passed nothing may fire, whatever the data; at the
    end of the story the alert fires or it does not. Both hold on a clock slower
    than the samples' (see :func:`paced`).
    """
    clock = paced(for_) if step == STEP else None
    early = (Check(for_ - step, False, clock),) if for_ > step else ()
    return early + (Check(end - step, fires, clock),)


PACES = (MIN, STEP * 2)


def paced(for_: Duration) -> Duration | None:
    """The slowest clock a verdict on an alert waiting ``for_`` is checked on: at most a quarter of ``for_``.

    promtool's cost is evaluations times rules, and a story must outlast ``for``:
    evaluating a 15-minute ``for`` every 15 s pays 60 evaluations to prove what
    15 prove. Evaluated every ``c``, an alert turns pending up to ``c`` after its
    condition and the "nothing yet" check is compared with the evaluation up to
    ``c`` before it, so the check still fails for a rule whose ``for`` was
    shortened to half, or dropped (a spike paging at once). Never slower than a
    minute: stories end a couple of minutes after ``for`` has passed, and the
    alert may turn pending a step late. ``None``: the samples' own clock (a
    ``for`` under 2m).
    """
    return next((c for c in PACES if c * 4 <= for_), None)


def isolated(c: Component, scenarios: list[Scenario]) -> list[Scenario]:
    """``scenarios`` in test entries of their own, each naming its instance as the renderer would.

    For stories whose series would make another alert of the component fire in a
    shared entry (a failing check in a degraded-mode story, a crowd of connections
    in a reconnect story).
    """
    out = []
    for s in scenarios:
        instance = {"instance": f"{c.name}/{s.slug}"}
        out.append(replace(s, alone=True, labels={**s.labels, **instance} if s.labels else {},
                           series=tuple(replace(x, labels={**x.labels, **instance}) for x in s.series)))
    return out


def rate_above(c: Component, definition: AlertDef, *, signal: str, threshold: float, window: Duration,
               description: str, condition: str, per_instance: bool = True,
               queries: dict[str, Expr] | None = None) -> list[Rule]:
    """``sum(rate(counter)) > threshold``: lock failures, L2 failures, rejections."""
    expr = binop(">", agg("sum", rate(c.select(signal), window), grouping(c, per_instance)), threshold)
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

    return c.alert(definition, expr=expr, description=description, condition=condition, scenarios=scenarios,
                   queries=queries)


def gauge_compare(c: Component, definition: AlertDef, *, signal: str, op: str, threshold: float, bad: float,
                  good: tuple[float, ...], description: str, condition: str, aggregate: bool = True,
                  extra: Labels | None = None, base: Labels | None = None, spike: Duration = Duration.parse("30s"),
                  by: Labels | None = None, series_labels: Labels | None = None, for_: Duration | None = None,
                  queries: dict[str, Expr] | None = None) -> list[Rule]:
    """A gauge against a threshold for ``for``: a full queue, a Redis that is down.

    With ``aggregate`` the worst instance of the component is judged; otherwise
    each raw series (one Redis server) is. The proof includes a short ``spike`` to
    the bad value, which must not fire: a 30 s blip is not an incident. Each ``good``
    value is a healthy scenario (a near miss, or a trap such as Resilience4j's -1).
    ``by`` replaces the component's identity as the labels the worst value is
    taken per (besides ``instance``), with the values the test series carry
    (a per-store connection limit judges each store).
    ``extra`` labels narrow the selector; ``series_labels`` only decorate the test
    series (labels a real series carries, such as a replica's ``master_host``).
    """
    picked = c.select(signal, extra, base=base)
    worst = "max" if op.startswith(">") else "min"
    keep = dict(c.identity) if by is None else dict(by)
    judged: Expr = agg(worst, picked, kept(c, "instance", *keep)) if aggregate else picked
    expr = binop(op, judged, threshold)
    decorated = {**(extra or {}), **(series_labels or {})}
    fired = keep if aggregate else c.labels(signal, decorated, base)

    def series(values: str):
        s = c.series(signal, values, decorated, base=base)
        return (s,) if by is None else (replace(s, labels={**s.labels, **by}),)

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
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

    return c.alert(definition, expr=expr, description=description, condition=condition, scenarios=scenarios,
                   for_=for_, queries=queries)


def fill_mark(capacity: int, ratio: float) -> int:
    """The level that counts as full: 90% of 200 queue slots is 180."""
    return math.ceil(capacity * ratio)


def filling_up(c: Component, definition: AlertDef, *, signal: str, capacity: int, ratio: float, description: str,
               slots: str = "queue slots", queries: dict[str, Expr] | None = None) -> list[Rule]:
    """A gauge at ``ratio`` of a fixed ``capacity`` or above (a bounded queue): :func:`gauge_compare` with
    the mark, a fill between it and the capacity, and one below the mark. ``{mark}`` in ``description``
    becomes the mark."""
    mark = fill_mark(capacity, ratio)
    return gauge_compare(
        c, definition, signal=signal, op=">=", threshold=mark, bad=mark + math.ceil((capacity - mark) * 0.75),
        good=(max(mark - 1, 0),), condition=f"at least {mark:,} of {capacity:,} {slots} used",
        description=description.replace("{mark}", str(mark)), queries=queries)


def ratio_traffic(c: Component, signals: RatioSignals, ratio: float, rate: float, span: Duration,
                  extra: Labels | None = None, base: Labels | None = None) -> tuple[Series, ...]:
    """Test series for ``rate``/s of traffic of which ``ratio`` is ``part``, for ``span``.

    One family told apart by a label (``cache_gets_total{result}``) gets ``part`` and
    ``rest`` series; separate counters get ``part`` and ``total`` (``cache_hits_total``
    and ``cache_requests_total``), or ``part`` and ``rest`` where the kind counts its
    total as their sum (``cache_hit_total`` and ``cache_miss_total``).
    """
    part = c.series(signals.part, counter((span, rate * ratio)), extra, base=base)
    if summed(c, signals) or c.metric(signals.part).name == c.metric(signals.total).name:
        return part, c.series(signals.rest, counter((span, rate * (1 - ratio))), extra, base=base)
    return part, c.series(signals.total, counter((span, rate)), extra, base=base)


def summed(c: Component, signals: RatioSignals) -> bool:
    """Whether the total is counted as part + rest: the spec names the part and the rest as counters of their
    own (``cache_hit_total`` and ``cache_miss_total``) and no total, or the profile has no total."""
    given = c.spec.metrics
    if signals.total in given or signals.rest == signals.total:
        return False
    if signals.part in given and signals.rest in given:
        return given[signals.part].name != given[signals.rest].name
    return not c.has_metric(signals.total) and c.has(signals.rest) and c.has_metric(signals.rest)


def total_rate(c: Component, signals: RatioSignals, by: tuple[str, ...] | None, window, extra: Labels | None = None,
               select=None, over: Callable[[Expr, Duration], Expr] = rate) -> Expr:
    """``sum by (…) (rate(total[window]))``, or ``part + rest`` where the spec counts them apart.

    ``select(signal, extra)`` makes each selector (default the rules' :meth:`Component.select`; panels pass
    theirs, with the dashboard variables); ``over`` is ``rate``, or ``increase`` for a count over the window.
    """
    select = select or c.select
    if summed(c, signals):  # either counter may not exist yet (a 304, a miss never counted): it adds 0, not nothing
        part = agg("sum", over(select(signals.part, extra), window), by)
        rest = agg("sum", over(select(signals.rest, extra), window), by)
        return binop("+", Paren(filled(part, rest)), Paren(filled(rest, part)))
    return agg("sum", over(select(signals.total, extra), window), by)


def filled(part: Expr, total: Expr) -> Expr:
    """``part``, or 0 wherever ``total`` has series and ``part`` has none: client libraries create a counter's
    label child (the 5xx, the failures, the hits) on first use, so "none yet" has no series at all."""
    return or_(part, binop("*", 0, total))


def per_total(part: Expr, total: Expr) -> Expr:
    """``part / total`` for a share of failures: 0 where ``part`` has no series yet, and 0 where ``total`` is 0
    (no events, no failures) instead of NaN."""
    return or_(ratio(part, Paren(binop(">", total, 0))), binop("*", 0, total))


def share(c: Component, signals: RatioSignals, by: tuple[str, ...] | None, window, extra: Labels | None = None,
          select=None) -> Expr:
    """``part / total`` summed ``by`` the labels given (``None``: over everything, one number); a part that has
    no series yet counts 0 (:func:`filled`). Without traffic the share is NaN: no data, not a number to judge."""
    select = select or c.select
    total = total_rate(c, signals, by, window, extra, select)
    return ratio(filled(agg("sum", rate(select(signals.part, extra), window), by), total), total)


NEAR_ROOM = 0.01
"""The least distance a ratio story keeps from its threshold; closer to an end of [0, 1] (an error ratio of 1%,
a hit ratio of 99%) the stories sit at twice and half the share beyond the threshold instead."""


def near_threshold(threshold: float, below: bool) -> tuple[float, float]:
    """The (bad, good) ratios a ratio alert's stories hold: a quarter of the room to the nearer end of [0, 1] on
    either side of ``threshold``, so a rule whose threshold moved by more than that fails its own test (85% is
    told as 81.25% and 88.75%, not 42.5% and 92.5%, which a threshold of 50% would also pass)."""
    room = min(threshold, 1 - threshold) / 4
    if room < NEAR_ROOM:  # within 4% of an end: a story that close would drown in a rate's rounding
        if below:
            return threshold / 2, (1 + threshold) / 2
        return min(1.0, max(threshold * 2, threshold + (1 - threshold) / 2)), threshold / 2
    return (threshold - room, threshold + room) if below else (threshold + room, threshold - room)


def ratio_of_rates(c: Component, definition: AlertDef, *, signals: RatioSignals, record: str, threshold: float,
                   below: bool, min_rate: float, description: str, condition: str, extra: Labels | None = None,
                   tag: Labels | None = None, window: Duration = FIVE_MIN, for_: Duration | None = None,
                   queries: dict[str, Expr] | None = None) -> list[Rule]:
    """A ratio of two rates against a threshold, judged only while traffic is at least ``min_rate``.

    Records ``<record>:ratio_rate5m`` (the part's share) and ``<level>:<total signal>:rate5m``
    (all traffic, ``instance_cache:requests:rate5m``) per instance; ``tag`` labels
    (a cache tier) go on the recordings so alerts can tell them apart.
    Without traffic the ratio is NaN and with little traffic it is noise: the
    ``and`` on the request rate keeps idle components quiet.
    """
    extra = extra or {}
    by = grouping(c)
    static = dict(c.identity, service=c.service.name, **(tag or {}))
    total = total_rate(c, signals, by, window, extra)
    suffix = f"rate{window}"
    level = record.split(":", 1)[0]
    ratio_name, total_name = f"{record}:ratio_{suffix}", f"{level}:{signals.total}:{suffix}"
    recordings: list[Rule] = [Recording(total_name, total, static), Recording(ratio_name, share(c, signals, by, window, extra), static)]
    op = "<" if below else ">"
    expr = and_(binop(op, selector(ratio_name, static), threshold),
                binop(">=", selector(total_name, static), min_rate))
    bad, good = near_threshold(threshold, below)
    busy = max(min_rate * 5, 1.0)

    def traffic(ratio: float, rate: float, span: Duration) -> tuple:
        return ratio_traffic(c, signals, ratio, rate, span, extra)

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

    return recordings + c.alert(definition, expr=expr, description=description, condition=condition,
                                scenarios=scenarios, labels=tag, for_=for_, queries=queries)


def saturated(c: Component, definition: AlertDef, *, used: str, capacity: str | float, waiting: str | None,
              size: int, description: str, condition: str, queries: dict[str, Expr] | None = None) -> list[Rule]:
    """Every unit of a pool in use, with callers waiting: threads, concurrency slots, connections.

    ``capacity`` is a gauge signal (an executor's current pool size) or a fixed
    number from the spec (a connection pool's maximum); ``waiting`` is the gauge
    of callers waiting for a unit, or ``None`` where the library cannot tell
    (SQLAlchemy has no waiter count), and then being at capacity for ``for`` is
    the condition. ``size`` is the capacity the test stories use. ``$value`` is
    the number of units in use.
    """
    by = grouping(c)
    limit = agg("max", c.select(capacity), by) if isinstance(capacity, str) else Num(float(capacity))
    expr: Expr = binop(">=", agg("max", c.select(used), by), limit)
    if waiting:
        expr = and_(expr, binop(">", agg("max", c.select(waiting), by), 0))

    def story(*segments: tuple[Duration, float, float]) -> tuple:
        """Series for ``(span, units in use, callers waiting)`` segments."""
        out = [c.series(used, gauge(*[(span, busy) for span, busy, _ in segments]))]
        if isinstance(capacity, str):
            out.append(c.series(capacity, gauge(*[(span, size) for span, _, _ in segments])))
        if waiting:
            out.append(c.series(waiting, gauge(*[(span, queued) for span, _, queued in segments])))
        return tuple(out)

    def scenarios(f: Duration) -> list[Scenario]:
        end = f + MIN * 2
        spike = Duration.parse("30s")
        out = [
            Scenario("busy-backlog", f"all {size} in use" + (" and 50 waiting" if waiting else ""),
                     story((end, size, 50)), verdict(f, end, True), labels=dict(c.identity), value=size),
            Scenario("one-spare", f"{size - 1} of {size} in use" + (", 50 waiting" if waiting else ""),
                     story((end, size - 1, 50)), verdict(f, end, False)),
        ]
        if waiting:
            out.append(Scenario("keeping-up", f"all {size} in use, nobody waiting", story((end, size, 0)),
                                verdict(f, end, False)))
        if f > spike:
            out.append(Scenario("spike", f"{spike} at capacity, then one spare",
                                story((MIN, size - 1, 0), (spike, size, 50), (end - MIN - spike, size - 1, 0)),
                                verdict(f, end, False)))
        return out

    return c.alert(definition, expr=expr, description=description, condition=condition, scenarios=scenarios,
                   queries=queries)


def _tie(value: float) -> bool:
    """Whether ``value`` sits where a last-bit difference changes its ``%.4g`` (with or without an SI prefix)."""
    scaled = value / 1000 ** math.floor(math.log10(abs(value)) / 3) if value else 0.0
    return any("%.4g" % (x * (1 - 1e-9)) != "%.4g" % (x * (1 + 1e-9)) for x in (value, scaled))


def quantile_above(c: Component, definition: AlertDef, *, signal: str, quantile: float, threshold: float,
                   min_rate: float, description: str, condition: str, window: Duration = FIVE_MIN,
                   per_instance: bool = True, extra: Labels | None = None, tag: Labels | None = None,
                   queries: dict[str, Expr] | None = None) -> list[Rule]:
    """A latency percentile from a histogram above ``threshold`` seconds, judged only with traffic.

    ``signal`` is the histogram's ``_bucket`` series. The quantile is taken over
    ``sum by (le, …) (rate(…_bucket[window]))`` (per instance or across them);
    with no observations it is NaN and with a handful it is noise, so the alert
    also needs at least ``min_rate`` observations/s, counted by the ``le="+Inf"``
    bucket (which every histogram has, so no ``_count`` signal is needed).
    ``extra`` narrows the series (one route) and ``tag`` labels tell several such
    alerts of one component apart. ``$value`` is the quantile in seconds.
    """
    extra = extra or {}
    by = grouping(c, per_instance)
    buckets = agg("sum", rate(c.select(signal, extra), window), ("le",) + by)
    seen = agg("sum", rate(c.select(signal, {**extra, "le": "+Inf"}), window), by)
    expr = and_(binop(">", Call("histogram_quantile", (Num(quantile), buckets)), threshold),
                binop(">=", seen, min_rate))
    bounds = (threshold / 2, threshold, threshold * 2)
    busy = max(min_rate * 5, 1.0)
    tail = 1 - quantile  # the share of observations a quantile may leave above it

    def histogram(slow: float, *segments: tuple[Duration, float] | str) -> tuple:
        """Bucket counters for ``(span, observations/s)`` segments (and ``RESTART``): a ``slow`` share of the
        observations in (T, 2T], the rest in (T/2, T]. Every bucket starts high, as in a long-running process."""
        cumulative = ((number(bounds[0]), 0.0), (number(bounds[1]), 1 - slow), (number(bounds[2]), 1.0), ("+Inf", 1.0))
        return tuple(c.series(signal, counter(*[s if s == RESTART else (s[0], s[1] * share) for s in segments],
                                              start=1_000_000), {**extra, "le": le})
                     for le, share in cumulative)

    def scenarios(f: Duration) -> list[Scenario]:
        end = window + f + MIN * 2
        half = Duration(end.millis // 2 // STEP.millis * STEP.millis)
        # the quantile falls in (T, 2T], interpolated: T + T * (q - (1 - slow)) / slow; a share whose quantile
        # is no tie at 4 significant digits (Prometheus's %.4g may round the computed float the other way)
        for share in (2, 1.9, 1.8):
            slow = min(1.0, share * tail)
            value = threshold + threshold * (quantile - (1 - slow)) / slow
            if not _tie(value):
                break
        out = [
            Scenario("slow-busy", f"{number(slow * 100)}% of {number(busy)}/s slower than {number(threshold)}s; the "
                     "process restarts halfway", histogram(slow, (half, busy), RESTART, (end - half, busy)),
                     verdict(f, end, True), labels=dict(c.identity, **(tag or {})), value=value,
                     per_instance=per_instance),
            Scenario("tail-within", f"{number(tail / 2 * 100)}% slow, within the {number(tail * 100)}% the quantile "
                     "leaves out; the process restarts halfway", histogram(tail / 2, (half, busy), RESTART,
                                                                         (end - half, busy)),
                     verdict(f, end, False), per_instance=per_instance),
            Scenario("slow-idle", "no observations (NaN) for a minute, then all slow but only "
                     f"{number(min_rate / 2)}/s", histogram(1.0, (MIN, 0), (end - MIN, min_rate / 2)),
                     verdict(f, end, False), per_instance=per_instance),
        ]
        return out

    return c.alert(definition, expr=expr, description=description, condition=condition, scenarios=scenarios,
                   labels=tag, queries=queries)
