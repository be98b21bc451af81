"""The known world of every component kind: which series each instance writes, and what each panel must show.

One function per kind (``KIND_WORLDS[kind.key]``) writes a component's series
into the service's :class:`World` and returns its truths: panel title → what
that panel must show, as ``{display name: value}`` (a number, or the text of a
value mapping such as ``"open"``). The names and labels of the series are the
spec's (``Component.metric`` / ``Component.labels``); the numbers are this
module's, chosen so that a wrong aggregation shows: three instances with
different values (a cache whose hit ratio is 80%, 50% and 40% per instance and
50% overall; a breaker open on one instance of three; a queue at 195 of 200 on
one instance), counters that restart, gauges at -1 where libraries say "no data
yet". Each truth is computed from the world's own declarations
(:meth:`World.rate`, :func:`quantile`), never from obsgen's rules or panels.

Only the panel titles, and which series a panel draws, follow obsgen's dashboards: they say which truth a
panel claims to show (see ``tests/test_panel_truth.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from obsgen.components.base import Component

from .world import INSTANCES, SPAN_S, World, le_text, quantile

Truth = dict[str, "float | str | Between"]
Truths = dict[str, "Truth | ExprTruth"]
A, B, C = INSTANCES


@dataclass(frozen=True)
class ExprTruth:
    """A panel that shows a PromQL expression the spec's author wrote (a custom signal): its truth is that
    expression, evaluated on the world, as the author defined the signal."""

    expr: str


@dataclass(frozen=True)
class Between:
    """A truth known to lie within ``[low, high]``: what depends on where the rule evaluations fall in time
    (each rule group evaluates on a grid of its own, offset within the minute by Prometheus)."""

    low: float
    high: float


@dataclass
class Ctx:
    """One service's world being built: its series, its cluster labels, and bucket bounds other kinds need."""

    world: World
    cluster: dict[str, str] = field(default_factory=dict)
    bounds: tuple[float, ...] = ()

    def at(self, c: Component, signal: str, extra: Mapping[str, str] | None = None, instance: str | None = None,
           base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The labels of ``signal``'s series of ``c`` (on ``instance``), as the spec names them."""
        labels = c.labels(signal, dict(extra or {}), dict(base) if base is not None else None)
        return {**labels, **self.cluster, **({"instance": instance} if instance else {})}

    def counter(self, c: Component, signal: str, rate: float, extra=None, instance=None, reset=False, base=None):
        self.world.counter(c.metric(signal).name, self.at(c, signal, extra, instance, base), rate, reset)

    def gauge(self, c: Component, signal: str, level: float, extra=None, instance=None, base=None):
        self.world.gauge(c.metric(signal).name, self.at(c, signal, extra, instance, base), level)

    def rate(self, c: Component, signal: str, extra=None, instance=None, base=None) -> float:
        return self.world.rate(c.metric(signal).name, self.at(c, signal, extra, instance, base))

    def outcomes(self, c: Component, signal: str, by: str, extra=None) -> dict[str, float]:
        """Events/s of ``signal`` over all instances, per value of label ``by``."""
        out: dict[str, float] = {}
        for s in self.world.picked(c.metric(signal).name, self.at(c, signal, extra)):
            key = s.label_map.get(by, "")
            out[key] = out.get(key, 0.0) + s.value
        return out


def counted_apart(c: Component, part: str, rest: str, total: str) -> bool:
    """Whether the app counts ``part`` and ``rest`` with counters of their own and has no ``total``: the spec
    names both as two counters and names no total (the Maple guide's ``cache_hit_total`` and ``cache_miss_total``;
    lookups are hits + misses). The profile's default total then belongs to a library the app does not use."""
    given = c.spec.metrics
    return (part in given and rest in given and total not in given
            and given[part].name != given[rest].name)


def ratio_counters(ctx: Ctx, c: Component, part: str, rest: str, total: str, part_rate: float, rest_rate: float,
                   extra=None, instance=None, reset=False) -> None:
    """A ratio's counters as the app writes them: one family told apart by a label (``part`` and ``rest``
    series), two counters for the part and the rest (:func:`counted_apart`), or two for the part and the total."""
    ctx.counter(c, part, part_rate, extra, instance, reset)
    if c.metric(part).name == c.metric(total).name or counted_apart(c, part, rest, total):
        ctx.counter(c, rest, rest_rate, extra, instance, reset)  # a restarted process counts every series anew
    else:
        ctx.counter(c, total, part_rate + rest_rate, extra, instance, reset)


def ratio_total(ctx: Ctx, c: Component, part: str, rest: str, total: str, extra=None, instance=None) -> float:
    """Events/s of a ratio's total, as :func:`ratio_counters` wrote it: part + rest where counted apart."""
    if counted_apart(c, part, rest, total):
        return ctx.rate(c, part, extra, instance) + ctx.rate(c, rest, extra, instance)
    return ctx.rate(c, total, extra, instance)


def per_instance(values: Mapping[str, float]) -> Truth:
    return dict(values)


# ----------------------------------------------------------------------------------------------- caches

HIT_RATIOS = {A: 0.8, B: 0.5, C: 0.4}          # lookups 10, 20, 30/s: 50% over all instances
TIER_HIT_RATIOS = {A: 0.9, B: 0.75, C: 0.7}    # a second tier: 75% over all instances
LOOKUPS = {A: 10.0, B: 20.0, C: 30.0}


def cache(ctx: Ctx, c: Component) -> Truths:
    spec = c.spec
    tiers = [(name.upper(), dict(t.labels)) for name, t in sorted(spec.tiers.items()) if t.labels] or [("", {})]
    apart = counted_apart(c, "hits", "misses", "requests")
    lookups = lambda labels, i: ratio_total(ctx, c, "hits", "misses", "requests", labels, i)  # noqa: E731
    truths: Truths = {}
    overall: Truth = {}
    lock_failures, l2_failures = {A: 1.0, B: 2.0, C: 3.0}, {A: 0.1, B: 0.2, C: 0.3}
    for n, (tier, labels) in enumerate(tiers):
        ratios = HIT_RATIOS if n % 2 == 0 else TIER_HIT_RATIOS
        for i in INSTANCES:
            ratio_counters(ctx, c, "hits", "misses", "requests", LOOKUPS[i] * ratios[i],
                           LOOKUPS[i] * (1 - ratios[i]), labels, i, reset=i == C)
        hits = sum(ctx.rate(c, "hits", labels, i) for i in INSTANCES)
        overall[tier or "hit ratio"] = hits / sum(lookups(labels, i) for i in INSTANCES)
        truths[f"{c.name}: hit ratio" + (f" {tier}" if tier else "")] = {
            i: ctx.rate(c, "hits", labels, i) / lookups(labels, i) for i in INSTANCES}
    for i in INSTANCES:
        ctx.counter(c, "lock_failures", lock_failures[i], instance=i, reset=i == B)
        if "l2" in spec.tiers:
            ctx.counter(c, "l2_failures", l2_failures[i], instance=i)
    truths[f"Cache {c.name}: hit ratio"] = overall

    keys = sorted({k for _, labels in tiers for k in labels})
    requests: Truth = {}
    misses: Truth = {}
    for tier, labels in tiers:
        shown = " ".join(labels[k] for k in keys)
        if c.metric("hits").name == c.metric("requests").name:
            for result, rate in ctx.outcomes(c, "requests", "result", labels).items():
                requests[f"{shown} {result}".strip()] = rate
        else:  # two counters: hits and lookups, or hits and misses
            hits = sum(ctx.rate(c, "hits", labels, i) for i in INSTANCES)
            total = sum(lookups(labels, i) for i in INSTANCES)
            requests[f"{shown} hits".strip()] = hits
            requests[f"{shown} {'misses' if apart else 'lookups'}".strip()] = total - hits if apart else total
        for i in INSTANCES:
            misses[f"{i} {shown}".strip()] = lookups(labels, i) - ctx.rate(c, "hits", labels, i)
    truths[f"{c.name}: request rate"] = requests
    truths[f"{c.name}: misses"] = misses
    truths[f"{c.name}: lock failures (stampede)"] = {"all instances": sum(lock_failures.values())}
    if "l2" in spec.tiers:
        truths[f"{c.name}: L2 failures"] = per_instance(l2_failures)
    return truths


# ----------------------------------------------------------------------------------------------- breakers

ONE_HOT_STATES = ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only")  # Resilience4j's
BREAKER_STATE = {A: "open", B: "closed", C: "closed"}
ENUM_OFFSET = {"closed": 0, "half_open": 1, "open": 2}  # the spec's enum encoding: closed, closed+1, closed+2


def breaker(ctx: Ctx, c: Component) -> Truths:
    enc = c.spec.state_encoding
    for i in INSTANCES:
        if enc.type == "one_hot":
            for state in ONE_HOT_STATES:
                ctx.gauge(c, "state", 1 if state == BREAKER_STATE[i] else 0, {enc.label: state}, i)
        else:
            ctx.gauge(c, "state", enc.closed + ENUM_OFFSET[BREAKER_STATE[i]], instance=i)
    successful, failed, rejected = {A: 40.0, B: 90.0, C: 60.0}, {A: 60.0, B: 10.0, C: 20.0}, {A: 5.0, B: 0.0, C: 0.0}
    for i in INSTANCES:
        ctx.counter(c, "failed_calls", failed[i], instance=i, reset=i == C)
        ctx.counter(c, "successful_calls", successful[i], instance=i)
        ctx.counter(c, "not_permitted", rejected[i], instance=i)
        if c.metric("calls").name != c.metric("failed_calls").name:
            ctx.counter(c, "calls", failed[i] + successful[i], instance=i)
    truths: Truths = {
        f"Breaker {c.name}: state": {c.name: "open"},
        f"{c.name}: state": dict(BREAKER_STATE),
        f"{c.name}: failed share of calls": {i: ctx.rate(c, "failed_calls", instance=i) / ctx.rate(c, "calls", instance=i)
                                            for i in INSTANCES},
        f"{c.name}: calls by outcome": {"all calls": ctx.rate(c, "calls"), "successful": ctx.rate(c, "successful_calls"),
                                        "failed": ctx.rate(c, "failed_calls")},
        f"{c.name}: not permitted calls": {i: ctx.rate(c, "not_permitted", instance=i) for i in INSTANCES},
    }
    # Resilience4j's sliding-window gauges: -1 until the window holds minimumNumberOfCalls calls (not shown)
    for signal, title, values in (("failure_rate", "failure rate", {A: 60.0, B: 10.0, C: -1.0}),
                                  ("slow_call_rate", "slow call rate", {A: 5.0, B: 0.0, C: -1.0})):
        if c.has(signal) and c.has_metric(signal):
            for i in INSTANCES:
                ctx.gauge(c, signal, values[i], instance=i)
            truths[f"{c.name}: {title}"] = {i: v for i, v in values.items() if v >= 0}
    return truths


def call_ratio(ctx: Ctx, c: Component, *, noun: str, part: str, rest: str, what: str,
               part_rates: Mapping[str, float], rest_rates: Mapping[str, float]) -> Truths:
    """Retries and time limiters: calls by outcome and the share of one bad outcome."""
    for i in INSTANCES:
        ratio_counters(ctx, c, part, rest, "calls", part_rates[i], rest_rates[i], instance=i, reset=i == A)
    outcome = next(iter(dict(c.metric(part).matchers)), "kind")
    return {
        f"{c.name}: {noun} calls by outcome": ctx.outcomes(c, "calls", outcome),
        f"{c.name}: {what}": {i: ctx.rate(c, part, instance=i) / ctx.rate(c, "calls", instance=i) for i in INSTANCES},
        f"{noun.capitalize()} {c.name}: {what}": {c.name: ctx.rate(c, part) / ctx.rate(c, "calls")},
    }


def retry(ctx: Ctx, c: Component) -> Truths:
    # a third of retried calls exhausted over all instances (a quarter, a third and 37.5% per instance)
    return call_ratio(ctx, c, noun="retry", part="exhausted", rest="succeeded", what="exhausted ratio",
                      part_rates={A: 5.0, B: 10.0, C: 15.0}, rest_rates={A: 15.0, B: 20.0, C: 25.0})


def time_limiter(ctx: Ctx, c: Component) -> Truths:
    timeouts = {A: 2.0, B: 4.0, C: 6.0}  # 10%, 20%, 30% of 20 calls/s: 20% over all instances
    out = call_ratio(ctx, c, noun="time limiter", part="timeouts", rest="successful", what="timed out ratio",
                     part_rates=timeouts, rest_rates={A: 18.0, B: 16.0, C: 14.0})
    out[f"{c.name}: timeouts"] = {i: ctx.rate(c, "timeouts", instance=i) for i in INSTANCES}
    return out


# ----------------------------------------------------------------------------------------------- pools and queues

def executor(ctx: Ctx, c: Component) -> Truths:
    capacity = c.spec.queue_capacity
    queued = {A: float(capacity - 5 if capacity > 5 else 195), B: 20.0, C: 0.0}  # 195 of 200 on one instance
    active, pool = {A: 8.0, B: 4.0, C: 2.0}, {A: 8.0, B: 8.0, C: 4.0}
    rejected, completed = {A: 0.5, B: 0.0, C: 0.0}, {A: 10.0, B: 20.0, C: 30.0}
    for i in INSTANCES:
        ctx.gauge(c, "queued", queued[i], instance=i)
        ctx.gauge(c, "active", active[i], instance=i)
        ctx.gauge(c, "pool_size", pool[i], instance=i)
        ctx.counter(c, "rejected", rejected[i], instance=i, reset=i == A)
        ctx.counter(c, "completed", completed[i], instance=i, reset=i == C)
    truths: Truths = {
        f"{c.name}: active threads vs pool size": {**{f"active {i}": v for i, v in active.items()},
                                                   **{f"pool size {i}": v for i, v in pool.items()}},
        f"{c.name}: queue depth": per_instance(queued),
        f"{c.name}: rejected tasks": per_instance(rejected),
        f"{c.name}: completed tasks": per_instance(completed),
    }
    if capacity > 0:
        truths[f"Executor {c.name}: queue fill"] = {c.name: max(queued.values()) / capacity}
    else:
        truths[f"Executor {c.name}: queued tasks"] = {c.name: max(queued.values())}
    return truths


def backpressure(ctx: Ctx, c: Component) -> Truths:
    spec = c.spec
    limit = spec.max_concurrent
    in_use = {A: float(limit), B: float(limit // 2), C: 0.0}
    rejected = {A: 2.0, B: 0.0, C: 0.5}
    queue = spec.queue_capacity
    queued = {A: float(queue - 1), B: 1.0, C: 0.0} if queue else {}
    for i in INSTANCES:
        ctx.gauge(c, "in_use", in_use[i], instance=i)
        if c.has_metric("available"):
            ctx.gauge(c, "available", limit - in_use[i], instance=i)
        if queue and c.has_metric("queued"):
            ctx.gauge(c, "queued", queued[i], instance=i)
        ctx.counter(c, "rejected", rejected[i], instance=i, reset=i == C)
    truths: Truths = {
        f"{c.name}: calls in progress": per_instance(in_use),
        f"{c.name}: free permits": {i: limit - v for i, v in in_use.items()},
        f"{c.name}: shed calls": per_instance(rejected),
        f"Bulkhead {c.name}: concurrency": {c.name: max(in_use.values())},
    }
    if queue:
        truths[f"{c.name}: queue depth"] = per_instance(queued)
    return truths


def rate_limiter(ctx: Ctx, c: Component) -> Truths:
    available = {A: 10.0, B: 0.0, C: -2.0}  # below 0: waiting callers hold reservations
    waiting, rejected = {A: 0.0, B: 3.0, C: 5.0}, {A: 0.0, B: 4.0, C: 8.0}
    for i in INSTANCES:
        ctx.gauge(c, "available", available[i], instance=i)
        if c.has_metric("waiting"):
            ctx.gauge(c, "waiting", waiting[i], instance=i)
        ctx.counter(c, "rejected", rejected[i], instance=i, reset=i == B)
    return {
        f"{c.name}: available permits": per_instance(available),
        f"{c.name}: rejected calls": per_instance(rejected),
        f"{c.name}: waiting callers": per_instance(waiting),
        f"Rate limiter {c.name}: permits left": {c.name: min(available.values())},
    }


def db_pool(ctx: Ctx, c: Component) -> Truths:
    spec = c.spec
    top = spec.pool_size + spec.max_overflow
    in_use, idle = {A: float(top), B: 3.0, C: 1.0}, {A: 0.0, B: 2.0, C: 4.0}
    pending, timeouts = {A: 5.0, B: 0.0, C: 0.0}, {A: 0.5, B: 0.0, C: 0.0}
    acquires, mean_wait = {A: 10.0, B: 20.0, C: 30.0}, {A: 0.25, B: 0.0125, C: 0.00625}
    truths: Truths = {
        f"{c.name}: connections in use": {**{f"in use {i}": v for i, v in in_use.items()},
                                          **{f"idle {i}": v for i, v in idle.items()}},
        f"{c.name}: checkout timeouts": per_instance(timeouts),
        f"DB pool {c.name}: in use": {c.name: max(in_use.values())},
    }
    for i in INSTANCES:
        ctx.gauge(c, "in_use", in_use[i], instance=i)
        ctx.gauge(c, "idle", idle[i], instance=i)
        ctx.counter(c, "timeouts", timeouts[i], instance=i, reset=i == A)
        if c.has_metric("pending"):
            ctx.gauge(c, "pending", pending[i], instance=i)
        if c.has_metric("acquire_time") and c.has_metric("acquires"):
            ctx.counter(c, "acquires", acquires[i], instance=i)
            ctx.counter(c, "acquire_time", acquires[i] * mean_wait[i], instance=i)
    if c.has_metric("pending"):
        truths[f"{c.name}: waiting callers"] = per_instance(pending)
    if c.has_metric("acquire_time") and c.has_metric("acquires"):
        truths[f"{c.name}: average acquire time"] = per_instance(mean_wait)
    return truths


# ----------------------------------------------------------------------------------------------- histograms

# Observations/s per bucket (upper bound → share of the instance's observations), spread evenly in each bucket.
LOCK_SHAPES = {
    A: {0.005: 0.5, 0.01: 0.3, 0.025: 0.15, 0.05: 0.05},
    B: {0.005: 0.2, 0.01: 0.3, 0.025: 0.3, 0.05: 0.1, 0.1: 0.1},
    C: {0.01: 0.2, 0.05: 0.3, 0.1: 0.3, 0.25: 0.2},
}
LOCK_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def histogram(ctx: Ctx, c: Component, signal: str, bounds: tuple[float, ...], shape: Mapping[float, float],
              rate: float, extra=None, instance=None, reset=False) -> list[tuple[float, float]]:
    """Cumulative ``le`` bucket counters of ``rate`` observations/s shaped by ``shape``; returns the
    (bound, observations/s in that bucket alone) pairs the world's quantiles are computed from."""
    cumulative = 0.0
    for bound in (*bounds, float("inf")):
        cumulative += rate * shape.get(bound, 0.0)
        ctx.counter(c, signal, cumulative, {**(extra or {}), "le": le_text(bound)}, instance, reset)
    return [(b, rate * shape.get(b, 0.0)) for b in bounds]


def mean(buckets: list[tuple[float, float]], bounds: tuple[float, ...]) -> float:
    """Mean of observations spread evenly in each bucket: each bucket's midpoint, weighted."""
    lower = dict(zip(bounds, (0.0, *bounds[:-1])))
    total = sum(n for _, n in buckets)
    return sum(n * (b + lower[b]) / 2 for b, n in buckets) / total


def lock(ctx: Ctx, c: Component) -> Truths:
    from obsgen.components.lock import quantile_name

    q, p = c.spec.quantile, quantile_name(c.spec.quantile)
    attempts, failures = {A: 10.0, B: 20.0, C: 30.0}, {A: 1.0, B: 4.0, C: 3.0}
    acquired: dict[str, list] = {}
    held: list = []
    for i in INSTANCES:
        acquired[i] = histogram(ctx, c, "acquire", LOCK_BOUNDS, LOCK_SHAPES[i], attempts[i], instance=i,
                                reset=i == C)
        if c.metric("attempts").name != c.metric("acquire").name:
            ctx.counter(c, "attempts", attempts[i], instance=i, reset=i == C)
        ctx.counter(c, "failures", failures[i], instance=i)
        held += histogram(ctx, c, "held", LOCK_BOUNDS, LOCK_SHAPES[INSTANCES[-1 - INSTANCES.index(i)]],
                          attempts[i] - failures[i], instance=i)
    pooled = [x for i in INSTANCES for x in acquired[i]]
    return {
        f"{c.name}: acquire latency {p}": {f"{p} all instances": quantile(q, pooled),
                                          **{f"{p} {i}": quantile(q, acquired[i]) for i in INSTANCES}},
        f"{c.name}: acquire attempts and failures": {"attempts": sum(attempts.values()),
                                                     "failures": sum(failures.values())},
        f"{c.name}: failed share": {i: failures[i] / attempts[i] for i in INSTANCES},
        f"{c.name}: hold time {p}": {p: quantile(q, held)},
        f"Lock {c.name}: acquire {p}": {c.name: quantile(q, pooled)},
    }


HTTP_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROUTE_SHAPES = (  # nothing in the first or the open-ended bucket: every percentile is interpolated
    {0.1: 0.5, 0.25: 0.3, 0.5: 0.15, 1.0: 0.04, 2.5: 0.01},
    {0.1: 0.2, 0.25: 0.3, 0.5: 0.3, 1.0: 0.1, 2.5: 0.07, 5.0: 0.03},
    {0.25: 0.1, 0.5: 0.4, 1.0: 0.3, 2.5: 0.15, 5.0: 0.05},
)
ROUTE_ERRORS = (0.001, 0.02, 0.05)
ROUTE_REDIRECTS = (0.0, 0.1, 0.03)  # the 3xx share of each route shape, where the spec judges redirects


def _ok_value(value: str) -> str:
    """The good outcome beside a bad one in one family: 2xx beside 5xx, SUCCESS beside SERVER_ERROR."""
    return {"5xx": "2xx", "SERVER_ERROR": "SUCCESS"}.get(value, f"not_{value}")


def http(ctx: Ctx, c: Component) -> Truths:
    from obsgen.components.http import QUANTILES, client_timeouts, latency_keys, targets

    spec = c.spec
    label = spec.route_label
    routes = [r.route for r in spec.routes] + ["/api/world/a", "/api/world/b"]
    timeouts = client_timeouts(spec)
    judges_redirects = any(t.redirect_ratio_max is not None for t in targets(spec))
    bounds = tuple(sorted(set(HTTP_BOUNDS) | set(ctx.bounds) | {t.total_seconds for t in timeouts}))
    count = c.metric("buckets").name.removesuffix("_bucket") + "_count"
    per_route: dict[str, list] = {}
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    sums: dict[str, float] = {}
    for k, route in enumerate(routes):
        shape, error_share = ROUTE_SHAPES[k % 3], ROUTE_ERRORS[k % 3]
        extra = {label: route}
        per_route[route] = []
        for n, i in enumerate(INSTANCES):
            rate = 10.0 * (k + 1) + 5 * n
            redirect_share = ROUTE_REDIRECTS[k % 3] if judges_redirects else 0.0
            ratio_counters(ctx, c, "errors", "ok", "requests", rate * error_share,
                           rate * (1 - error_share - redirect_share), extra, i, reset=i == B)
            if judges_redirects:
                ctx.counter(c, "redirects", rate * redirect_share, extra, i, reset=i == B)
            buckets = histogram(ctx, c, "buckets", bounds, shape, rate, extra, i, reset=i == B)
            ctx.counter(c, "duration_sum", rate * mean(buckets, bounds), extra, i, reset=i == B)
            if count != c.metric("requests").name:
                ctx.world.counter(count, {**ctx.at(c, "buckets", extra, i)}, rate, reset=i == B)
            per_route[route] += buckets
        requests[route] = sum(ctx.rate(c, "requests", extra, i) for i in INSTANCES)
        errors[route] = sum(ctx.rate(c, "errors", extra, i) for i in INSTANCES)
        sums[route] = sum(ctx.rate(c, "duration_sum", extra, i) for i in INSTANCES)
    truths: Truths = {
        f"{c.name}: 5xx ratio by route": {r: errors[r] / requests[r] for r in routes},
        f"{c.name}: requests by route": dict(requests),
        f"{c.name}: 5xx by route": dict(errors),
        f"HTTP {c.name}: 5xx ratio": {c.name: sum(errors.values()) / sum(requests.values())},
    }
    if judges_redirects:
        redirects = {r: sum(ctx.rate(c, "redirects", {label: r}, i) for i in INSTANCES) for r in routes}
        truths[f"{c.name}: 3xx share by route"] = {r: redirects[r] / requests[r] for r in routes}
    for bound in timeouts:
        truths[f"{c.name}: share slower than {bound} by route"] = {
            r: 1 - sum(n for b, n in per_route[r] if b <= bound.total_seconds) / sum(n for _, n in per_route[r])
            for r in routes}
    for key in latency_keys(spec):
        if key == "avg":
            truths[f"{c.name}: average latency by route"] = {
                r: sums[r] / sum(n for _, n in per_route[r]) for r in routes}
        else:
            truths[f"{c.name}: {key} latency by route"] = {r: quantile(QUANTILES[key], per_route[r]) for r in routes}
    return truths


# ----------------------------------------------------------------------------------------------- exporters

def redis(ctx: Ctx, c: Component) -> Truths:
    """A master and its replicas (or three cluster masters), each scraped by redis_exporter; with Sentinel,
    three sentinels of which one is down, the other two scraped as well: redis_exporter reports a sentinel
    target's ``redis_up``, ``redis_instance_info{redis_mode="sentinel", role=""}`` and
    ``redis_connected_clients`` (checked against prometheus-redis-exporter and redis-sentinel 7), which are not
    servers, and the ``redis_sentinel_master_*`` gauges with ``master_name`` and ``master_address``."""
    spec = c.spec
    cluster = spec.topology == "cluster"
    sentinel = spec.topology == "sentinel"
    masters = 3 if cluster else 1
    replicas = 3 if cluster else spec.replicas  # a cluster: three masters with a replica each
    servers = [f"{c.name}-redis-{k}:{spec.port}" for k in range(masters + replicas)]
    role = {s: "master" if k < masters else "slave" for k, s in enumerate(servers)}
    mode = "cluster" if cluster else "standalone"
    gib = 1024.0 ** 3
    used = {s: (0.8 if k == 0 else 0.3) * gib for k, s in enumerate(servers)}
    maxmem = {s: (gib if k == 0 else 0.0) for k, s in enumerate(servers)}  # the replicas have no maxmemory
    clients = {s: 10.0 + k for k, s in enumerate(servers)}
    blocked = {s: float(k % 2) for k, s in enumerate(servers)}
    rejected = {s: (0.5 if k == 0 else 0.0) for k, s in enumerate(servers)}
    evicted = {s: (2.0 if k == 0 else 0.0) for k, s in enumerate(servers)}
    link: Truth = {}
    for k, s in enumerate(servers):
        ctx.gauge(c, "up", 1, instance=s)
        ctx.gauge(c, "scrape_up", 1, instance=s)
        ctx.gauge(c, "instance_info", 1, {"role": role[s], "redis_mode": mode, "redis_version": "7.0.15"}, s)
        ctx.gauge(c, "connected_clients", clients[s], instance=s)
        ctx.gauge(c, "blocked_clients", blocked[s], instance=s)
        ctx.gauge(c, "memory_used", used[s], instance=s)
        ctx.gauge(c, "memory_max", maxmem[s], instance=s)
        ctx.counter(c, "rejected_connections", rejected[s], instance=s)
        ctx.counter(c, "evicted_keys", evicted[s], instance=s, reset=k == 1)
        if role[s] == "master":
            ctx.gauge(c, "connected_replicas", spec.replicas if not cluster else 1, instance=s)
        else:
            host, port = servers[(k - masters) % masters].rsplit(":", 1)
            ctx.gauge(c, "master_link_up", 1, {"master_host": host, "master_port": port}, s)
            link[f"{s} → {host}:{port}"] = "up"
        if cluster:
            ctx.gauge(c, "cluster_state", 1, instance=s)
            ctx.gauge(c, "cluster_slots_fail", 0, instance=s)
    truths: Truths = {
        f"{c.name}: up": {s: "up" for s in servers},
        f"{c.name}: exporter scrapes": {s: "up" for s in servers},
        f"{c.name}: role": {s: "master" if role[s] == "master" else "replica" for s in servers},
        f"{c.name}: memory vs maxmemory": {s: used[s] / maxmem[s] for s in servers if maxmem[s] > 0},
        f"{c.name}: memory used": {**{f"used {s}": used[s] for s in servers},
                                   **{f"maxmemory {s}": maxmem[s] for s in servers if maxmem[s] > 0}},
        f"{c.name}: clients": {**{f"connected {s}": clients[s] for s in servers},
                               **{f"blocked {s}": blocked[s] for s in servers}},
        f"{c.name}: rejected connections": rejected,
        f"{c.name}: evicted keys": evicted,
    }
    up: Truth = {"servers up": float(len(servers))}
    if link:
        truths[f"{c.name}: replication link"] = link
    if cluster:
        truths[f"{c.name}: cluster state"] = {s: "ok" for s in servers}
        truths[f"{c.name}: failed slots"] = {s: 0.0 for s in servers}
    if sentinel:
        base = {**(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector),
                "master_name": spec.master_name or ""}
        live = (spec.sentinel_count or 1) - 1
        master = servers[0]
        plain = {**(spec.sentinel_selector if spec.sentinel_selector is not None else spec.selector)}
        for k in range(live):
            s = f"{c.name}-sentinel-{k}:{spec.sentinel_port}"
            address = {"master_address": master}
            ctx.gauge(c, "sentinel_ok_sentinels", live, address, s, base=base)
            ctx.gauge(c, "sentinel_ok_replicas", spec.replicas, address, s, base=base)
            ctx.gauge(c, "sentinel_status", 1, {**address, "master_status": "ok"}, s, base=base)
            ctx.gauge(c, "up", 1, instance=s, base=plain)  # as redis_exporter 1.x reports a sentinel target
            ctx.gauge(c, "scrape_up", 1, instance=s, base=plain)
            ctx.gauge(c, "instance_info", 1, {"role": "", "redis_mode": "sentinel", "redis_version": "7.0.15"}, s,
                      base=plain)
            ctx.gauge(c, "connected_clients", 3, instance=s, base=plain)
        truths[f"{c.name}: master address (sentinel view)"] = {master: "master"}
        truths[f"{c.name}: healthy sentinels vs quorum"] = {"healthy sentinels": float(live)}
        truths[f"{c.name}: sentinels up"] = {f"{c.name}-sentinel-{k}:{spec.sentinel_port}": "up" for k in range(live)}
        if plain == dict(spec.selector):  # the sentinels are targets of the servers' selector too
            truths[f"{c.name}: exporter scrapes"].update(truths[f"{c.name}: sentinels up"])
        up["healthy sentinels"] = float(live)
    if spec.replicas and not cluster:
        truths[f"{c.name}: healthy replicas"] = {"connected to the master": float(spec.replicas)}
        if sentinel:
            truths[f"{c.name}: healthy replicas"]["promotable (sentinel view)"] = float(spec.replicas)
    truths[f"Redis {c.name}"] = up
    return truths


# ----------------------------------------------------------------------------------------------- app signals

def health_check(ctx: Ctx, c: Component) -> Truths:
    spec = c.spec
    if spec.probe is not None:
        return probed_check(ctx, c)
    healthy = spec.healthy_value
    failing = 0.0 if healthy > 0 else healthy - 1
    status = {A: healthy, B: healthy, C: failing}
    for i in INSTANCES:
        ctx.gauge(c, "status", status[i], instance=i)
    word = {i: "passing" if v == healthy else "failing" for i, v in status.items()}
    truths: Truths = {
        f"{c.name}: check status": word,
        f"{c.name}: instances reporting": {"reporting": float(len(INSTANCES))},
        f"Health check {c.name}: failing instances": {c.name: float(sum(v < healthy for v in status.values()))},
    }
    mode = spec.degraded_mode
    if mode is not None:
        base = {**c.service.selector, **c.spec.selector, mode.label: mode.name}
        degraded = {A: 0.0, B: 0.0, C: 1.0}  # the instance whose check fails runs degraded
        for i in INSTANCES:
            labels = {**base, **ctx.cluster, "instance": i}
            if not ctx.world.has(c.metric("degraded").name, labels):  # checks may share one mode
                ctx.world.gauge(c.metric("degraded").name, labels, degraded[i])
        shown = {i: ctx.world.levels(c.metric("degraded").name, {**base, **ctx.cluster, "instance": i})[0]
                 for i in INSTANCES}
        truths[f"{c.name}: degraded mode {mode.name}"] = {i: mode.name if v else "normal" for i, v in shown.items()}
        truths[f"{c.name}: degraded mode vs check status"] = {**{f"mode {i}": v for i, v in shown.items()},
                                                              **{f"check {i}": v for i, v in status.items()}}
    return truths


def probed_check(ctx: Ctx, c: Component) -> Truths:
    """A check the blackbox exporter probes: one series per probed URL (its `instance`), here a handler answering 500."""
    probe = c.spec.probe
    labels = {**probe.selector, **ctx.cluster, "instance": probe.target or "http://app-1:8080/health"}
    ctx.world.gauge("probe_success", labels, 0.0)
    ctx.world.gauge("probe_http_status_code", labels, 500.0)
    ctx.world.gauge("up", labels, 1.0)  # the exporter's scrape of this target works: the endpoint is what fails
    return {
        f"{c.name}: check status": {labels["instance"]: "failing"},
        f"{c.name}: instances reporting": {"reporting": 1.0},
        f"Health check {c.name}: failing instances": {c.name: 1.0},
    }


def stream(ctx: Ctx, c: Component) -> Truths:
    spec = c.spec
    limit = spec.max_connections or 100
    extra = {label: "store-1" for label in spec.limit_labels}
    shown_extra = " ".join(extra[k] for k in spec.limit_labels)
    connections = {A: float(limit - 10), B: 50.0, C: 10.0}
    opened, sent, failed = {A: 1.0, B: 0.5, C: 0.25}, {A: 100.0, B: 50.0, C: 20.0}, {A: 1.0, B: 0.0, C: 0.2}
    for i in INSTANCES:
        ctx.gauge(c, "connections", connections[i], extra, i)
        ctx.counter(c, "opened", opened[i], instance=i, reset=i == C)
        ctx.counter(c, "sent", sent[i], instance=i)
        ctx.counter(c, "send_failures", failed[i], instance=i)
    lifetime = spec.min_connection_lifetime.total_seconds
    return {
        f"{c.name}: open connections": {f"{i} {shown_extra}".strip(): v for i, v in connections.items()},
        f"{c.name}: send failure ratio": {i: failed[i] / sent[i] for i in INSTANCES},
        f"{c.name}: messages sent and failed": {"sent": sum(sent.values()), "failed": sum(failed.values())},
        f"{c.name}: new connections vs storm line": {**{f"new {i}": v for i, v in opened.items()},
                                                     **{f"storm line {i}": connections[i] / lifetime
                                                        for i in INSTANCES}},
        f"Stream {c.name}: open connections": {c.name: sum(connections.values())},
    }


def etag(ctx: Ctx, c: Component) -> Truths:
    not_modified, modified = {A: 6.0, B: 10.0, C: 2.0}, {A: 4.0, B: 30.0, C: 18.0}  # 60%, 25%, 10%
    for i in INSTANCES:
        ratio_counters(ctx, c, "not_modified", "modified", "conditional", not_modified[i], modified[i],
                       instance=i, reset=i == A)
    conditional = {i: ctx.rate(c, "conditional", instance=i) for i in INSTANCES}
    return {
        f"{c.name}: conditional requests and 304s": {**{f"conditional {i}": v for i, v in conditional.items()},
                                                      **{f"304 {i}": not_modified[i] for i in INSTANCES}},
        f"{c.name}: 304 ratio": {i: not_modified[i] / conditional[i] for i in INSTANCES},
        f"E-Tag {c.name}: 304 ratio": {c.name: sum(not_modified.values()) / sum(conditional.values())},
    }


SLO_ERROR_SHARE = 0.002  # of requests the SLO world writes itself (no HTTP component declares them)
SLO_SLOW_SHARE = 0.03


def slo(ctx: Ctx, c: Component) -> Truths:
    """An SLO counts requests other components may already write (the HTTP server's): it adds series only
    where the world has none it selects, and its truth is over every series it selects."""
    from obsgen.components.slo import BURN_WINDOWS

    spec = c.spec
    base = {**c.service.selector, **c.spec.selector}
    pick = lambda signal, extra=None: {**ctx.at(c, signal, extra, base=base)}  # noqa: E731
    latency = spec.sli == "latency"
    total_signal = "latency_count" if latency else "requests"
    if not ctx.world.has(c.metric(total_signal).name, pick(total_signal)):
        for n, i in enumerate(INSTANCES):
            rate = 10.0 + 10 * n
            if latency:
                ctx.world.counter(c.metric("latency_count").name, {**pick("latency_count"), "instance": i}, rate)
                for le, share in ((spec.bucket_bound, 1 - SLO_SLOW_SHARE), ("+Inf", 1.0)):
                    ctx.world.counter(c.metric("latency_bucket").name,
                                      {**pick("latency_bucket", {"le": le}), "instance": i}, rate * share)
            else:
                errors = pick("errors")
                ctx.world.counter(c.metric("errors").name, {**errors, "instance": i}, rate * SLO_ERROR_SHARE,
                                  reset=i == B)
                if c.metric("errors").name == c.metric("requests").name:
                    good = {k: _ok_value(v) for k, v in c.metric("errors").matchers}
                    ctx.world.counter(c.metric("requests").name, {**pick("requests", good), "instance": i},
                                      rate * (1 - SLO_ERROR_SHARE))
                else:
                    ctx.world.counter(c.metric("requests").name, {**pick("requests"), "instance": i}, rate)
    if latency:
        total = ctx.world.rate(c.metric("latency_count").name, pick("latency_count"))
        good = ctx.world.rate(c.metric("latency_bucket").name, pick("latency_bucket", {"le": spec.bucket_bound}))
        ratio = (total - good) / total
    else:
        ratio = (ctx.world.rate(c.metric("errors").name, pick("errors"))
                 / ctx.world.rate(c.metric("requests").name, pick("requests")))
    # The world is all the TSDB holds: a window longer than its data counts the time before it as clean. The
    # backfill evaluates the rules every 1m, each group at an offset of its own within the minute: the data
    # begins with the first 5m rate (the first evaluation after the second sample, 15s in) and the panels read
    # the last evaluation before the end, so the data is between 38 and 39 minutes old.
    budget = spec.budget

    def burn(window) -> Between:
        low, high = ((ratio / budget * min(1.0, age / window.total_seconds)) for age in (SPAN_S - 120, SPAN_S - 60))
        return Between(low, high)

    def left(window) -> Between:
        return Between(1 - burn(window).high, 1 - burn(window).low)

    return {
        f"{c.name}: SLI against the objective": {"5m": 1 - ratio, "1h": 1 - ratio},
        f"{c.name}: error budget remaining": {"remaining": left(spec.window)},
        f"{c.name}: burn rate per window": {str(w): burn(w) for w in BURN_WINDOWS},
        f"SLO {c.name}: budget left": {c.name: left(spec.window)},
    }


def slo_bounds(c: Component) -> tuple[float, ...]:
    """The bucket bound a latency SLO reads: the world's histograms must have it."""
    if c.spec.sli != "latency":
        return ()
    return (float(c.spec.bucket_bound),)


def custom(ctx: Ctx, c: Component) -> Truths:
    """Every series the author's expression selects gets written (where no other component writes one): a
    counter for names a counter has, a gauge otherwise; the truth is the expression itself."""
    import promql_parser as p

    selectors: list[tuple[str, dict[str, str]]] = []

    def visit(node) -> bool:
        if isinstance(node, p.VectorSelector):
            labels = {m.name: m.value for m in node.matchers.matchers if m.op == p.MatchOp.Equal}
            name = node.name or labels.pop("__name__", "")
            selectors.append((name, labels))
        return True

    p.walk(p.parse(c.spec.expr), visit)
    for name, labels in selectors:
        if ctx.world.has(name, labels):
            continue
        counter = name.endswith(("_total", "_count", "_sum", "_bucket"))
        for n, i in enumerate(INSTANCES):
            full = {**labels, **ctx.cluster, "instance": i}
            if counter:
                ctx.world.counter(name, full, 1.0 + n)
            else:
                ctx.world.gauge(name, full, 10.0 * (n + 1))
    return {c.name: ExprTruth(c.spec.expr.strip())}


# ----------------------------------------------------------------------------------------------- the service

DOWN_TARGET = "app-4:8080"
"""A fourth target of the service whose scrapes fail (a crashed process still in service discovery): its
``up`` is 0 and it reports nothing else, so the three instances every kind's world describes are the ones up."""


def service(ctx: Ctx, c: Component) -> Truths:
    """``up`` of every target of the service (its selector, and its cluster): three up, one down. Three of four
    up tells the panels' aggregation apart: a max or a mean of ``up`` shows 1 or 0.75, a count shows 4."""
    up = {**{i: 1.0 for i in INSTANCES}, DOWN_TARGET: 0.0}
    for i, value in up.items():
        ctx.gauge(c, "up", value, instance=i)
    name = c.service.name
    return {
        f"{name}: instances up": {"up": sum(up.values()), "targets": float(len(up))},
        f"{name}: each instance": {i: "up" if value else "down" for i, value in up.items()},
        f"Service {name}: instances up": {"up": sum(up.values())},
    }


KIND_WORLDS: dict[str, Callable[[Ctx, Component], Truths]] = {
    "caches": cache, "breakers": breaker, "retries": retry, "time_limiters": time_limiter,
    "executors": executor, "backpressure": backpressure, "rate_limiters": rate_limiter, "db_pools": db_pool,
    "locks": lock, "http": http, "redis": redis, "health_checks": health_check, "streams": stream,
    "etags": etag, "slos": slo, "custom": custom, "service": service,
}
