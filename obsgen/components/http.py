"""HTTP endpoints: request rate, 5xx error ratio and latency per route, with per-route thresholds.

Metric names per profile:

* ``micrometer``: Spring Boot's ``http.server.requests`` timer,
  ``http_server_requests_seconds_{count,sum,bucket}{uri, status, outcome, method}``;
  5xx are ``outcome="SERVER_ERROR"``. The ``_bucket`` series exist only with
  ``management.metrics.distribution.percentiles-histogram.http.server.requests=true``;
  Micrometer's timer buckets then span 1 ms to 30 s.
* ``python``: prometheus-fastapi-instrumentator 8.0 defaults,
  ``http_requests_total{handler, status, method}`` with status grouped to
  ``2xx``..``5xx`` and ``http_request_duration_seconds_{bucket,sum}{handler, method}``
  with buckets 0.1, 0.5 and 1 s only (add buckets for thresholds at or above 1 s).

Routes are judged across instances (users see the service, not one process):
recordings sum ``by (<route label>)`` and carry ``service`` and ``component``
so SLO rules (issue 10) can build on them: ``route:http_requests:rate5m``,
``route:http_request_errors:rate5m``, ``route:http_request_errors:ratio_rate5m``,
``route:http_request_duration_seconds:quantile_rate5m{quantile="0.99"}``,
``route:http_request_duration_seconds:mean_rate5m`` and the histogram's own
request rate ``route:http_request_duration_seconds_count:rate5m`` (from the
``+Inf`` bucket). The raw good/total counters stay addressable as the
``requests`` and ``errors`` signals.

Latency is one alert name per statistic: ``HttpLatencyHigh`` with the
percentile in the ``quantile`` label (one rule per percentile and route group),
``HttpLatencyAverageHigh`` for the mean. Every route listed under ``routes``
gets its own rules and thresholds; the component's thresholds cover every
other route.

Two failures no 5xx shows (OMS's integration report, seed 001): a route that
answers redirects instead of doing its work (document CRUD answering 307), and
clients that give up before the answer (500 of 500 requests timed out). Both
are opt-in, for the routes the spec names: ``HttpRedirectRatioHigh`` judges the
3xx share (``redirect_ratio_max``; 304 Not Modified is a 3xx too, in both
libraries' grouping, so a route that answers conditional requests sets
``expect_redirects``), and ``HttpClientTimeoutsHigh`` the share of requests
slower than the clients' timeout (``client_timeout``), read from the histogram
bucket at exactly that bound: the spec check requires the bucket. The server
records a request when it ends, so a request that never ends is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from obsgen.components.base import (OBSGEN_LABELS, AlertDef, Built, Component, Concern, Finding, Given, Inhibition,
                                    Kind, RatioSignals, Recording, Rule, Scenario, breaker_reference)
from obsgen.components.shapes import FIVE_MIN, filled, kept, per_total, ratio_traffic, verdict
from obsgen.components.timeline import MIN, STEP, counter
from obsgen.components.viz import ComponentPanels, Panel, Query, above, jobs, num, pct, rate, sel
from obsgen.model.promql import Call, Expr, Num, Paren, Selector, agg, and_, binop, number, ratio, regex_quote, selector
from obsgen.model.promql import rate as rate_over
from obsgen.model.records import record
from obsgen.model.types import AlertTuning, ComponentSpec, Duration, Labels, MetricRef

SPRING = "Spring Boot Actuator (Micrometer's http.server.requests timer)"
INSTRUMENTATOR = "prometheus-fastapi-instrumentator"

QUANTILES = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
AVG = "avg"
ERRORS = RatioSignals(part="errors", total="requests", rest="ok")
REDIRECTS = RatioSignals(part="redirects", total="requests", rest="ok")

REQUESTS = "route:http_requests:rate5m"
ERROR_RATE = "route:http_request_errors:rate5m"
ERROR_RATIO = "route:http_request_errors:ratio_rate5m"
LATENCY_COUNT = "route:http_request_duration_seconds_count:rate5m"
LATENCY_QUANTILE = "route:http_request_duration_seconds:quantile_rate5m"
LATENCY_MEAN = "route:http_request_duration_seconds:mean_rate5m"
REDIRECT_RATE = "route:http_request_redirects:rate5m"
REDIRECT_RATIO = "route:http_request_redirects:ratio_rate5m"
SLOWER_RATIO = "route:http_request_duration_seconds:slower_ratio_rate5m"
SCRAPE_ROUTES = {"python": "/metrics", "micrometer": "/actuator/prometheus"}
"""The route Prometheus scrapes, which the profile's HTTP instrumentation counts like any request
(prometheus-fastapi-instrumentator unless the app passes ``excluded_handlers``; Spring times every Actuator endpoint).
Three pods scraped every 15s are 0.2 req/s that no user makes: the rest-of-the-routes group leaves it out."""
PROFILE_BUCKETS = {"python": (0.1, 0.5, 1.0)}
"""The finite buckets a profile's request histogram has by default (prometheus-fastapi-instrumentator 8); Micrometer's
percentile histogram has no bound a spec can rely on (Spring: ``management.metrics.distribution.slo``)."""

ERROR_RATE_HIGH = AlertDef(
    "HttpErrorRateHigh", "critical", "5m", "An HTTP route answers too many requests with a server error (5xx).",
    related=("HttpLatencyHigh", "CircuitBreakerOpen", "CircuitBreakerNotOpening", "ExecutorRejectingTasks",
             "TimeLimiterTimeoutsHigh"))
LATENCY_HIGH = AlertDef(
    "HttpLatencyHigh", "warning", "10m", "An HTTP route's latency percentile is above its threshold.",
    related=("HttpLatencyAverageHigh", "HttpErrorRateHigh", "ExecutorSaturated", "CacheHitRateLow",
             "TimeLimiterTimeoutsHigh"))
LATENCY_AVERAGE_HIGH = AlertDef(
    "HttpLatencyAverageHigh", "warning", "10m", "An HTTP route's average latency is above its threshold.",
    related=("HttpLatencyHigh", "HttpErrorRateHigh", "ExecutorSaturated", "CacheHitRateLow"))
REDIRECT_RATIO_HIGH = AlertDef(
    "HttpRedirectRatioHigh", "warning", "5m",
    "An HTTP route that should not redirect answers too many requests with a redirect (3xx).",
    related=("HttpErrorRateHigh", "HttpClientTimeoutsHigh"))
CLIENT_TIMEOUTS_HIGH = AlertDef(
    "HttpClientTimeoutsHigh", "critical", "5m",
    "Too many requests of an HTTP route take longer than its clients wait: they time out without an answer.",
    related=("HttpLatencyHigh", "HttpErrorRateHigh", "BackpressureSaturated", "BackpressureSheddingLoad"))


@record(kw_only=True)
class Route:
    """One route listed under ``routes:``, with its own thresholds."""

    route: str
    error_ratio_max: float | None
    latency: dict[str, Duration] | None
    min_request_rate: float | None
    breaker: str | None
    redirect_ratio_max: float | None
    expect_redirects: bool
    client_timeout: Duration | None
    client_timeout_ratio_max: float | None


@record(kw_only=True)
class Histogram:
    """The request duration histogram's bounds as the spec states them (``histogram:``)."""

    smallest_bucket: Duration
    largest_bucket: Duration
    buckets: tuple[Duration, ...] | None


@record(kw_only=True)
class HttpSpec(ComponentSpec):
    """One item of a spec's ``http:`` list (http server), as the schema defaulted it."""

    label: str = ""  # route series carry no component label: the component is the whole server
    route_label: str
    breaker: str | None
    min_request_rate: float
    error_ratio_max: float
    latency: dict[str, Duration]
    histogram: Histogram
    routes: tuple[Route, ...]
    redirect_ratio_max: float | None
    client_timeout: Duration | None
    client_timeout_ratio_max: float


@record
class Target:
    """One group of routes judged with one set of thresholds: a listed route, or every other route."""

    route: str | None
    error_ratio_max: float
    latency: dict[str, Duration]
    min_rate: float
    breaker: str | None
    redirect_ratio_max: float | None = None  # None: redirects are not judged here
    client_timeout: Duration | None = None  # None: no client timeout to judge
    client_timeout_ratio_max: float = 0.01
    alone: bool = False  # the only group: no route has thresholds of its own

    def words(self) -> str:
        if self.route is not None:
            return f"route {self.route}"
        return "every route" if self.alone else "every other route"


def targets(spec: HttpSpec) -> list[Target]:
    def own(value, default):
        return default if value is None else value

    listed = [Target(r.route, own(r.error_ratio_max, spec.error_ratio_max), own(r.latency, spec.latency),
                     own(r.min_request_rate, spec.min_request_rate), r.breaker or spec.breaker,
                     None if r.expect_redirects else own(r.redirect_ratio_max, spec.redirect_ratio_max),
                     own(r.client_timeout, spec.client_timeout),
                     own(r.client_timeout_ratio_max, spec.client_timeout_ratio_max)) for r in spec.routes]
    return listed + [Target(None, spec.error_ratio_max, spec.latency, spec.min_request_rate, spec.breaker,
                            spec.redirect_ratio_max, spec.client_timeout, spec.client_timeout_ratio_max,
                            alone=not listed)]


def client_timeouts(spec: HttpSpec) -> list[Duration]:
    """Every client timeout some route is judged on, shortest first."""
    return sorted({t.client_timeout for t in targets(spec) if t.client_timeout is not None})


def le_values(bound: Duration) -> str:
    """A regex of the ``le`` label's spellings of a bucket bound: prometheus_client and Micrometer write ``1.0``,
    Prometheus 3 normalises classic histograms' ``le`` to ``1`` on ingestion."""
    seconds = bound.total_seconds
    return "|".join(regex_quote(v) for v in dict.fromkeys((number(seconds), repr(float(seconds)))))


def _unjudged(c: Component) -> list[str]:
    """Routes the rest-of-the-routes group leaves out: those listed with thresholds of their own, then the service's
    health-probe routes (``service.probe_routes``) and the profile's metrics scrape (:data:`SCRAPE_ROUTES`): probes
    and scrapes are not users, and their steady rate would meet ``min_request_rate`` on a night without a single
    guest."""
    listed = [r.route for r in c.spec.routes]  # type: ignore[attr-defined]
    machines = [*c.service.probe_routes, SCRAPE_ROUTES.get(c.service.profile)]
    return listed + [p for p in dict.fromkeys(machines) if p and p not in listed]


def _route_matchers(c: Component, t: Target) -> tuple[Labels, Labels]:
    """Exact matcher for a listed route; for the rest, a negated regex of the listed ones and the probes'."""
    label = c.spec.route_label  # type: ignore[attr-defined]
    if t.route is not None:
        return {label: t.route}, {}
    left_out = _unjudged(c)
    return {}, ({label: "|".join(regex_quote(r) for r in left_out)} if left_out else {})


def _test_route(c: Component, t: Target) -> str:
    """The route value test series use: the listed route itself, or one the rest-of-the-routes group judges."""
    if t.route is not None:
        return t.route
    left_out = set(_unjudged(c))
    return next(f"/other{i or ''}" for i in range(len(left_out) + 1) if f"/other{i or ''}" not in left_out)


def _static(c: Component) -> Labels:
    return {"service": c.service.name, "component": c.name}


def _pick(c: Component, record: str, t: Target, extra: Labels | None = None) -> Selector:
    exact, negated = _route_matchers(c, t)
    return selector(record, {**_static(c), **(extra or {}), **exact}, None, negated)


def _seconds(d: Duration) -> float:
    return d.total_seconds


def latency_keys(spec: HttpSpec) -> list[str]:
    """Every statistic some route is judged on, percentiles in order then the mean."""
    used = {k for t in targets(spec) for k in t.latency}
    return [k for k in (*QUANTILES, AVG) if k in used]


def _recordings(c: Component) -> list[Rule]:
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    by, win, static = kept(c, spec.route_label), FIVE_MIN, _static(c)
    per_route = lambda signal, extra=None: agg("sum", rate_over(c.select(signal, extra), win), by)  # noqa: E731
    # The 5xx child of a route's request counter (status="5xx", outcome="SERVER_ERROR") has no series until its
    # first server error: routes that served requests without one have 0 errors/s, and a route without requests
    # in the window an error ratio of 0, not NaN.
    out: list[Rule] = [
        Recording(REQUESTS, per_route("requests"), static),
        Recording(ERROR_RATE, filled(per_route("errors"), agg("sum", selector(REQUESTS, static), by)), static),
        Recording(ERROR_RATIO, per_total(selector(ERROR_RATE, static), selector(REQUESTS, static)), static),
    ]
    if any(t.redirect_ratio_max is not None for t in targets(spec)):
        total = agg("sum", selector(REQUESTS, static), by)
        out.append(Recording(REDIRECT_RATE, filled(per_route("redirects"), total), static))
        out.append(Recording(REDIRECT_RATIO, per_total(selector(REDIRECT_RATE, static), selector(REQUESTS, static)),
                             static))
    keys, timeouts = latency_keys(spec), client_timeouts(spec)
    if keys or timeouts:
        out.append(Recording(LATENCY_COUNT, per_route("buckets", {"le": "+Inf"}), static))
    for bound in timeouts:
        # The share of requests slower than the bound: those not in its bucket. NaN without requests.
        faster = agg("sum", rate_over(c.select("buckets", regex={"le": le_values(bound)}), win), by)
        slower = binop("-", 1, ratio(faster, per_route("buckets", {"le": "+Inf"})))
        out.append(Recording(SLOWER_RATIO, slower, {**static, "le": number(bound.total_seconds)}))
    for key in keys:
        if key == AVG:
            out.append(Recording(LATENCY_MEAN, ratio(per_route("duration_sum"), per_route("buckets", {"le": "+Inf"})),
                                 static))
        else:
            q = QUANTILES[key]
            buckets = agg("sum", rate_over(c.select("buckets"), win), kept(c, spec.route_label, "le"))
            out.append(Recording(LATENCY_QUANTILE, Call("histogram_quantile", (Num(q), buckets)),
                                 {**static, "quantile": number(q)}))
    return out


def _group_labels(spec: HttpSpec, t: Target) -> Labels:
    """Static labels that keep the rules of one alert name apart: the listed route (and the breaker)."""
    out = {spec.route_label: t.route} if t.route is not None else {}
    return {**out, **({"breaker": t.breaker} if t.breaker else {})}


def _tuned_for(c: Component, name: str, default: str) -> Duration:
    tuning = c.spec.alerts.get(name, AlertTuning())
    return tuning.for_ if tuning.for_ is not None else Duration.parse(default)


def _error_rule(c: Component, t: Target) -> list[Rule]:
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    threshold, route = t.error_ratio_max, _test_route(c, t)
    expr = and_(binop(">", _pick(c, ERROR_RATIO, t), threshold), binop(">=", _pick(c, REQUESTS, t), t.min_rate))
    bad = _bad_share(threshold)
    busy = max(t.min_rate * 5, 1.0)
    at = {spec.route_label: route}

    def scenarios(f: Duration) -> list[Scenario]:
        end = FIVE_MIN + f + MIN * 2

        def story(ratio: float, per_second: float) -> tuple:
            return ratio_traffic(c, ERRORS, ratio, per_second, end, at)

        return [
            Scenario("errors", f"{pct(bad)} of {number(busy)} req/s answered 5xx", story(bad, busy),
                     verdict(f, end, True), labels=at, value=bad, per_instance=False),
            Scenario("under", f"{pct(threshold / 2)} 5xx, half the threshold", story(threshold / 2, busy),
                     verdict(f, end, False), per_instance=False),
            Scenario("few-errors", f"half the requests fail, but only {number(t.min_rate / 10)} req/s of traffic",
                     story(0.5, t.min_rate / 10), verdict(f, end, False), per_instance=False),
            Scenario("no-traffic", "no requests at all (the ratio is NaN)", story(0.5, 0), verdict(f, end, False),
                     per_instance=False),
        ]

    return c.alert(
        ERROR_RATE_HIGH, expr=expr, scenarios=scenarios, labels=_group_labels(spec, t),
        queries={"by_route": _error_share(c, kept(c, spec.route_label)), "by_instance": _error_share(c, kept(c, "instance")),
                 "latency_by_route": _quantile(c, 0.99, kept(c, spec.route_label))},
        condition=(f"{t.words()}: more than {pct(threshold)} of requests answered 5xx (5m rate) while serving at "
                   f"least {num(t.min_rate)} req/s"),
        description=(f"Route {{{{ $labels.{spec.route_label} }}}} answers {{{{ $value | humanizePercentage }}}} of "
                     f"requests with 5xx (threshold {pct(threshold)}) for {{for}}."),
    )


def _bad_share(threshold: float) -> float:
    """A share well above ``threshold`` (twice it, or halfway to 1), for the stories that must fire."""
    return min(1.0, max(threshold * 2, threshold + (1 - threshold) / 2))


def _redirect_rule(c: Component, t: Target) -> list[Rule]:
    """The redirects of a route that should not redirect (a route moved, a trailing-slash mismatch), as a share of
    its group's requests, judged while the group serves ``min_rate``.

    A redirect is labelled with the raw path, not a route template (FastAPI answers a trailing-slash mismatch with
    307 before routing, and prometheus-fastapi-instrumentator labels it ``handler="/api/v1/documents/crud"``): one
    raw path per mistake, with only the traffic of that mistake. Guarded per raw path, a low-traffic redirect (the
    report's document creation) would never meet the group's ``min_request_rate``; judged against the group's
    traffic, it fires once its redirects are ``redirect_ratio_max`` of what the group serves, and still names its
    path. A listed route is a group of one: the share is its own 3xx share, as before."""
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    threshold, route = t.redirect_ratio_max, _test_route(c, t)
    assert threshold is not None
    group = kept(c, "service", "component")
    traffic = agg("sum", _pick(c, REQUESTS, t), group)
    of_group = binop("/", _pick(c, REDIRECT_RATE, t), traffic, on=group, group_left=())
    expr = and_(binop(">", Paren(of_group), threshold), binop(">=", traffic, t.min_rate), on=group)
    bad, near, busy = _bad_share(threshold), threshold * 0.9, max(t.min_rate * 5, 1.0)
    at = {spec.route_label: route}

    def scenarios(f: Duration) -> list[Scenario]:
        end = FIVE_MIN + f + MIN * 2

        def story(share: float, per_second: float) -> tuple:
            return ratio_traffic(c, REDIRECTS, share, per_second, end, at)

        return [
            Scenario("redirects", f"{pct(bad)} of {number(busy)} req/s answered 3xx", story(bad, busy),
                     verdict(f, end, True), labels=at, value=bad, alone=True),
            Scenario("near-miss", f"{pct(near)} answered 3xx, just under the threshold", story(near, busy),
                     verdict(f, end, False), alone=True),
            Scenario("few-redirects", f"half the requests redirected, but only {number(t.min_rate / 10)} req/s",
                     story(0.5, t.min_rate / 10), verdict(f, end, False), alone=True),
            Scenario("no-traffic", "no requests at all (the share is NaN)", story(0.5, 0), verdict(f, end, False),
                     alone=True),
        ] + (_quiet_path_scenarios(c, t, end, f) if t.route is None else [])

    return c.alert(
        REDIRECT_RATIO_HIGH, expr=expr, scenarios=scenarios, labels=_group_labels(spec, t),
        queries={"by_route": _share(c, "redirects", kept(c, spec.route_label)),
                 "by_instance": _share(c, "redirects", kept(c, "instance"))},
        condition=(f"{t.words()}: one route's (or raw path's) 3xx answers are more than {pct(threshold)} of the "
                   f"{'route' if t.route is not None else 'group'}'s requests (5m rate) while the "
                   f"{'route' if t.route is not None else 'group'} serves at least {num(t.min_rate)} req/s"),
        description=(f"Route {{{{ $labels.{spec.route_label} }}}} answers redirects (3xx) amounting to "
                     f"{{{{ $value | humanizePercentage }}}} of {t.words()}'s requests (threshold {pct(threshold)}) "
                     "for {for}."),
    )


def _quiet_path_scenarios(c: Component, t: Target, end: Duration, f: Duration) -> list[Scenario]:
    """A raw path that only redirects, too quiet for ``min_rate`` on its own, beside busy routes of the same group:
    fires once its redirects are twice the threshold's share of the group (a tenth, for a threshold of 0), not at
    half of it."""
    threshold = t.redirect_ratio_max
    assert threshold is not None
    if threshold >= 0.3:  # the quiet path could not be under min_rate and above the share at once
        return []
    label, total = c.spec.route_label, t.min_rate * 1.5  # type: ignore[attr-defined]
    served, raw = {label: _test_route(c, t)}, {label: _test_route(c, t) + "/raw-path"}
    # with a threshold of 0 any redirect is too many: twice nothing would be no redirect at all
    loud = threshold * 2 if threshold > 0 else 0.1

    def story(share: float) -> tuple:
        quiet = total * share
        return (ratio_traffic(c, REDIRECTS, 1.0, quiet, end, raw)
                + ratio_traffic(c, REDIRECTS, 0.0, total - quiet, end, served))

    return [
        Scenario("quiet-path", f"a raw path below {num(t.min_rate)} req/s answers only 3xx, "
                               f"{pct(loud)} of the group's {number(total)} req/s",
                 story(loud), verdict(f, end, True), labels=raw, value=loud, alone=True),
        Scenario("stray-redirects", f"a raw path answers 3xx for {pct(threshold / 2)} of the group's requests",
                 story(threshold / 2), verdict(f, end, False), alone=True),
    ]


def _timeout_rule(c: Component, t: Target) -> list[Rule]:
    """The share of a route's requests slower than its clients' timeout: answers nobody waits for."""
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    bound, threshold, route = t.client_timeout, t.client_timeout_ratio_max, _test_route(c, t)
    assert bound is not None
    le = number(bound.total_seconds)
    expr = binop("and", binop(">", _pick(c, SLOWER_RATIO, t, {"le": le}), threshold),
                 binop(">=", _pick(c, LATENCY_COUNT, t), t.min_rate), ignoring=("le",))
    bad, near, busy = _bad_share(threshold), threshold * 0.9, max(t.min_rate * 5, 1.0)
    at = {spec.route_label: route}

    def scenarios(f: Duration) -> list[Scenario]:
        end = FIVE_MIN + f + MIN * 2

        def story(slow: float, per_second: float) -> tuple:
            return (c.series("buckets", counter((end, per_second * (1 - slow))), {**at, "le": le}),
                    c.series("buckets", counter((end, per_second)), {**at, "le": "+Inf"}))

        return [
            Scenario("timeouts", f"{pct(bad)} of {number(busy)} req/s slower than {bound}", story(bad, busy),
                     verdict(f, end, True), labels={**at, "le": le}, value=bad, alone=True),
            Scenario("near-miss", f"{pct(near)} slower than {bound}, just under the threshold", story(near, busy),
                     verdict(f, end, False), alone=True),
            Scenario("slow-idle", f"every request slower than {bound}, but only {number(t.min_rate / 10)} req/s",
                     story(1.0, t.min_rate / 10), verdict(f, end, False), alone=True),
            Scenario("no-traffic", "no requests at all (the share is NaN)", story(1.0, 0), verdict(f, end, False),
                     alone=True),
        ]

    return c.alert(
        CLIENT_TIMEOUTS_HIGH, expr=expr, scenarios=scenarios, labels=_group_labels(spec, t),
        queries={"by_route": _slower(c, bound, kept(c, spec.route_label)),
                 "by_instance": _slower(c, bound, kept(c, "instance")),
                 "latency_by_route": _quantile(c, 0.99, kept(c, spec.route_label))},
        condition=(f"{t.words()}: more than {pct(threshold)} of requests slower than the clients' timeout of "
                   f"{bound} (5m histogram) while serving at least {num(t.min_rate)} req/s"),
        description=(f"Route {{{{ $labels.{spec.route_label} }}}}: {{{{ $value | humanizePercentage }}}} of requests "
                     f"take longer than the clients' timeout of {bound} (threshold {pct(threshold)}) for {{for}}; "
                     "those clients got no answer."),
    )


def _latency_rules(c: Component, t: Target) -> list[Rule]:
    """One rule per statistic; all of them tell the same stories, so their promtool entries can be shared.

    Test buckets are synthetic: fast requests all fall under ``lo`` (half the
    smallest threshold), slow ones above ``hi`` (twice the largest), where
    histogram_quantile answers ``hi``: above every threshold, below none.
    """
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    at = {spec.route_label: _test_route(c, t)}
    limits = [_seconds(d) for d in t.latency.values()]
    lo, hi = min(limits) / 2, max(limits) * 2
    mean = _shown_alike(hi * 2)  # the slow requests' duration, and the average the average-latency alert reads
    busy = max(t.min_rate * 5, 1.0)
    # A short spike must end well within the shortest `for` of these rules, 5m rate window included.
    shortest = min(_tuned_for(c, "HttpLatencyHigh", "10m"), _tuned_for(c, "HttpLatencyAverageHigh", "10m"))
    spike = Duration(max(shortest.millis - FIVE_MIN.millis, 0) // 2 // STEP.millis * STEP.millis)

    def story(*segments: tuple[Duration, float, bool]) -> tuple:
        """Segments of (duration, req/s, slow?)."""
        def buckets(le: float | None) -> str:
            return counter(*[(d, r if le is None or not slow else 0) for d, r, slow in segments])
        return (c.series("buckets", buckets(lo), {**at, "le": number(lo)}),
                c.series("buckets", buckets(hi), {**at, "le": number(hi)}),
                c.series("buckets", buckets(None), {**at, "le": "+Inf"}),
                c.series("duration_sum", counter(*[(d, r * (mean if slow else lo / 2)) for d, r, slow in segments]),
                         at))

    def scenarios(value: float, labels: Labels):
        def make(f: Duration) -> list[Scenario]:
            end = FIVE_MIN + f + MIN * 2
            out = [
                Scenario("slow", f"every request slower than {number(hi)}s at {number(busy)} req/s",
                         story((end, busy, True)), verdict(f, end, True), labels={**at, **labels}, value=value,
                         per_instance=False),
                Scenario("fast", f"every request faster than {number(lo)}s", story((end, busy, False)),
                         verdict(f, end, False), per_instance=False),
                Scenario("slow-idle", f"every request slow, but only {number(t.min_rate / 10)} req/s",
                         story((end, t.min_rate / 10, True)), verdict(f, end, False), per_instance=False),
                Scenario("no-traffic", "no requests (the quantile is NaN)", story((end, 0, True)),
                         verdict(f, end, False), per_instance=False),
            ]
            if spike >= STEP:
                out.append(Scenario("spike", f"slow for {spike}, fast before and after", story(
                    (MIN, busy, False), (spike, busy, True), (end - MIN - spike, busy, False)),
                    verdict(f, end, False), per_instance=False))
            return out
        return make

    out: list[Rule] = []
    extra = _group_labels(spec, t)
    for key in [k for k in QUANTILES if k in t.latency]:
        limit, q = _seconds(t.latency[key]), number(QUANTILES[key])
        expr = binop("and", binop(">", _pick(c, LATENCY_QUANTILE, t, {"quantile": q}), limit),
                     binop(">=", _pick(c, LATENCY_COUNT, t), t.min_rate), ignoring=("quantile",))
        out += c.alert(
            LATENCY_HIGH, expr=expr, labels={**extra, "quantile": q}, scenarios=scenarios(hi, {"quantile": q}),
            queries={"by_route": _quantile(c, QUANTILES[key], kept(c, spec.route_label)),
                     "by_instance": _quantile(c, QUANTILES[key], kept(c, "instance")),
                     "errors_by_route": _error_share(c, kept(c, spec.route_label))},
            condition=(f"{t.words()}: {key} latency above {t.latency[key]} (5m histogram) while serving at least "
                       f"{num(t.min_rate)} req/s"),
            description=(f"Route {{{{ $labels.{spec.route_label} }}}} has a {key} latency of "
                         f"{{{{ $value | humanizeDuration }}}}, above {t.latency[key]} for {{for}}."),
        )
    if AVG in t.latency:
        limit = _seconds(t.latency[AVG])
        expr = and_(binop(">", _pick(c, LATENCY_MEAN, t), limit), binop(">=", _pick(c, LATENCY_COUNT, t), t.min_rate))
        out += c.alert(
            LATENCY_AVERAGE_HIGH, expr=expr, labels=extra, scenarios=scenarios(mean, {}),
            queries={"by_route": _mean(c, kept(c, spec.route_label)), "by_instance": _mean(c, kept(c, "instance")),
                     "errors_by_route": _error_share(c, kept(c, spec.route_label))},
            condition=(f"{t.words()}: average latency above {t.latency[AVG]} (5m rate) while serving at least "
                       f"{num(t.min_rate)} req/s"),
            description=(f"Route {{{{ $labels.{spec.route_label} }}}} answers in {{{{ $value | humanizeDuration }}}} "
                         f"on average, above {t.latency[AVG]} for {{for}}."),
        )
    return out


def _shown_alike(seconds: float) -> float:
    """``seconds``, nudged up until a hair of float error either way shows the same text in the alert
    (``$value | humanizeDuration``: whole seconds from 1m on, four digits below). Prometheus computes a mean as
    sum/count, which can land a hair under the story's value: 7h read 6h 59m 59s."""
    from obsgen.render.templates import humanize_duration

    while humanize_duration(seconds * (1 - 1e-9)) != humanize_duration(seconds * (1 + 1e-9)):
        seconds = seconds + 0.5 if seconds >= 60 else seconds * 1.0001
    return seconds


def _error_share(c: Component, by: tuple[str, ...]) -> Expr:
    """5xx answers as a share of requests, over 5m, by ``by`` (route or instance): for the runbook."""
    requests = agg("sum", rate_over(c.select("requests"), FIVE_MIN), by)
    return per_total(agg("sum", rate_over(c.select("errors"), FIVE_MIN), by), requests)


def _share(c: Component, signal: str, by: tuple[str, ...]) -> Expr:
    """Requests of ``signal`` (redirects) as a share of all requests, over 5m, by ``by``: for the runbook."""
    requests = agg("sum", rate_over(c.select("requests"), FIVE_MIN), by)
    return per_total(agg("sum", rate_over(c.select(signal), FIVE_MIN), by), requests)


def _slower(c: Component, bound: Duration, by: tuple[str, ...]) -> Expr:
    """The share of requests slower than ``bound`` (not in its bucket), over 5m, by ``by``: for the runbook."""
    faster = agg("sum", rate_over(c.select("buckets", regex={"le": le_values(bound)}), FIVE_MIN), by)
    return binop("-", 1, ratio(faster, agg("sum", rate_over(c.select("buckets", {"le": "+Inf"}), FIVE_MIN), by)))


def _quantile(c: Component, q: float, by: tuple[str, ...]) -> Expr:
    return Call("histogram_quantile", (Num(q), agg("sum", rate_over(c.select("buckets"), FIVE_MIN), by + ("le",))))


def _mean(c: Component, by: tuple[str, ...]) -> Expr:
    return ratio(agg("sum", rate_over(c.select("duration_sum"), FIVE_MIN), by),
                 agg("sum", rate_over(c.select("buckets", {"le": "+Inf"}), FIVE_MIN), by))


def rules(c: Component) -> list[Rule]:
    out = _recordings(c)
    for t in targets(c.spec):  # type: ignore[arg-type]
        out += _error_rule(c, t)
        if t.latency:
            out += _latency_rules(c, t)
        if t.redirect_ratio_max is not None:
            out += _redirect_rule(c, t)
        if t.client_timeout is not None:
            out += _timeout_rule(c, t)
    return out


def _judges_redirects(item: Mapping) -> bool:
    """Whether a component (raw spec data) reads its redirects: only where some route is judged on them."""
    routes = item.get("routes", [])
    return "redirect_ratio_max" in item or any(isinstance(r, dict) and "redirect_ratio_max" in r
                                               for r in routes if isinstance(routes, list))


def _same_requests(given: Given) -> list[Finding]:
    """Two HTTP components that can read the same requests would judge those routes twice, and each one's
    catch-all route would count the other's routes: their selectors must tell their servers apart (one label
    with different values; a selector that leaves a label out also matches the other's series). Every metric
    counts, not only the request counter: a server that renames its counters but not its duration histogram
    still has its latency read by the other's rules."""
    service = given.spec.get("service")
    profile = service.get("profile", "micrometer") if isinstance(service, dict) else "micrometer"

    def reads(item: Mapping) -> tuple[set[str], dict] | None:
        metrics, selector = item.get("metrics", {}), item.get("selector", {})
        if not isinstance(metrics, dict) or not isinstance(selector, dict):
            return None
        judged = {*KIND.defaults(profile), *metrics} - ({"redirects"} if not _judges_redirects(item) else set())
        refs = (KIND.metric_ref(profile, metrics, s) for s in judged)
        return {ref.name for ref in refs if ref is not None}, selector

    mine = reads(given.item)
    for j, other in enumerate(given.spec.get("http", [])):
        if other.get("name") == given.item["name"]:
            return []  # only the later of two components is told
        theirs = reads(other)
        shared = sorted(mine[0] & theirs[0]) if mine is not None and theirs is not None else []
        if shared and all(theirs[1][k] == v for k, v in mine[1].items() if k in theirs[1]):
            return [Finding(("selector",), f"can read the same requests as http[{j}] (`{other.get('name')}`: both "
                            f"read {', '.join(shared)}, and no label of the two selectors tells them apart); give "
                            "both a `selector` on one label with different values (`server: api`, `server: admin`)",
                            key="selector" not in given.written)]
    return []


def _timeout_buckets(given: Given, hist: Mapping) -> list[Finding]:
    """Each ``client_timeout`` must be a bucket bound of the request histogram: the share of requests slower
    than it is read from that bucket, and a bound between two buckets cannot be read at all."""
    service = given.spec.get("service")
    profile = service.get("profile", "micrometer") if isinstance(service, dict) else "micrometer"
    written = "buckets" in hist
    bounds = ([Duration.parse(b).total_seconds for b in hist["buckets"]] if written
              else list(PROFILE_BUCKETS.get(profile, ())))
    item, out = given.item, []
    places = [(("client_timeout",), item.get("client_timeout"))] + [
        (("routes", i, "client_timeout"), r.get("client_timeout")) for i, r in enumerate(item.get("routes", []))]
    for path, text in places:
        if text is None:
            continue
        bound = Duration.parse(text)
        if any(abs(b - bound.total_seconds) < 1e-9 for b in bounds):
            continue
        if bounds:
            shown = ", ".join(str(Duration(round(b * 1000))) for b in sorted(bounds))
            where = "`histogram.buckets`" if written else f"the {profile} profile's default buckets"
            out.append(Finding(path, (
                f"client_timeout {bound} is not a bucket bound of the request histogram ({shown}, from {where}): "
                "the share of requests slower than it cannot be read; add a bucket at "
                f"{number(bound.total_seconds)}s to the app's request histogram and list every bound in "
                "`histogram.buckets`, or use one of those bounds")))
        else:
            out.append(Finding(path, (
                f"client_timeout {bound} needs a bucket at exactly that bound in the request histogram, and the "
                f"{profile} profile's buckets are not known; add one to the app (Spring Boot: "
                f"management.metrics.distribution.slo.http.server.requests={number(bound.total_seconds * 1000)}ms) "
                "and list the bounds in `histogram.buckets`")))
    return out


def check(given: Given) -> list[Finding]:
    """Breaker references, duplicate routes, and latency thresholds the histogram can measure.

    histogram_quantile never answers more than the largest finite bucket, and
    answers about the smallest bucket for requests faster than it: a threshold
    outside [smallest, largest) could never fire, or would fire on a healthy route.
    """
    item = given.item
    out = breaker_reference(given)
    label = item["route_label"]  # the schema gives it per profile
    if label == "le" or label in OBSGEN_LABELS:
        why = "the bucket label of the latency histogram" if label == "le" else "a label obsgen sets itself"
        out.append(Finding(("route_label",), f"expected the label that holds the route, found `{label}`, {why}; "
                           "use the label your HTTP metrics carry the route in (`uri`, `handler`, `route`)"))
    out += _same_requests(given)
    for i, route in enumerate(item.get("routes", [])):
        out += [Finding(("routes", i) + f.path, f.message, f.key)
                for f in breaker_reference(Given(route, frozenset(route), given.spec))]
    seen: dict[str, int] = {}
    for i, route in enumerate(item.get("routes", [])):
        if route["route"] in seen:
            out.append(Finding(("routes", i, "route"), f"route `{route['route']}` is listed twice (also "
                               f"routes[{seen[route['route']]}]); merge the two entries"))
        seen.setdefault(route["route"], i)
    hist = item.get("histogram", {})
    out += _timeout_buckets(given, hist)
    smallest, largest = Duration.parse(hist["smallest_bucket"]), Duration.parse(hist["largest_bucket"])
    if smallest >= largest:
        return out + [Finding(("histogram", "smallest_bucket"), f"smallest_bucket ({smallest}) must be below "
                              f"largest_bucket ({largest})")]
    places = [(("latency",), item.get("latency", {}))] + [
        (("routes", i, "latency"), r["latency"]) for i, r in enumerate(item.get("routes", [])) if "latency" in r]
    for path, latency in places:
        for key, text in latency.items():
            limit = Duration.parse(text)
            if key == AVG:
                continue
            if limit >= largest:
                out.append(Finding(path + (key,), f"{key} threshold {limit} is not below the histogram's largest "
                                   f"bucket ({largest}): histogram_quantile never reports more, so HttpLatencyHigh "
                                   "could never fire; add larger buckets to the app's histogram and set "
                                   "`histogram.largest_bucket`"))
            elif limit < smallest:
                out.append(Finding(path + (key,), f"{key} threshold {limit} is below the histogram's smallest "
                                   f"bucket ({smallest}): fast requests read as up to {smallest}, so HttpLatencyHigh "
                                   "would fire on a healthy route; add smaller buckets and set "
                                   "`histogram.smallest_bucket`"))
    return out


def _redirect_and_timeout_panels(c: Component, built: Built, per_route) -> list[Panel]:
    """The 3xx share where redirects are judged, and per client timeout the share of requests slower than it."""
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    route, default = spec.route_label, targets(spec)[-1]
    out = []
    if any(t.redirect_ratio_max is not None for t in targets(spec)):
        limit = default.redirect_ratio_max
        line = built.fires(REDIRECT_RATIO_HIGH, f" Above {pct(limit)} for {{for}} on a route that should not "
                                                "redirect fires {alert}.") if limit is not None else ""
        out.append(Panel(
            title=f"{c.name}: 3xx share by route", unit="percentunit", min=0, max=1,
            thresholds=above(limit) if limit is not None else (), alerts=(REDIRECT_RATIO_HIGH,),
            description=("Share of requests answered with a redirect (3xx, 304 Not Modified included) per route, all "
                         f"instances.{line}"),
            queries=(Query(per_total(per_route("redirects"), per_route("requests")), f"{{{{{route}}}}}"),),
        ))
    for bound in client_timeouts(spec):
        limit = default.client_timeout_ratio_max if default.client_timeout == bound else None
        line = built.fires(CLIENT_TIMEOUTS_HIGH, f" Above {pct(limit)} for {{for}} fires {{alert}}.") if limit else ""
        faster = agg("sum", rate(sel(c, "buckets", regex={"le": le_values(bound)})), (route,))
        out.append(Panel(
            title=f"{c.name}: share slower than {bound} by route", unit="percentunit", min=0, max=1,
            thresholds=above(limit) if limit else (), alerts=(CLIENT_TIMEOUTS_HIGH,),
            description=(f"Share of requests per route, all instances, that took longer than {bound}, the clients' "
                         f"timeout: answers nobody waited for.{line}"),
            queries=(Query(binop("-", 1, ratio(faster, per_route("buckets", {"le": "+Inf"}))), f"{{{{{route}}}}}"),),
        ))
    return out


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: HttpSpec = c.spec  # type: ignore[assignment]
    route = spec.route_label
    by = (route,)
    default = targets(spec)[-1]
    listed = "; ".join(
        f"{t.route}: " + ", ".join([f"5xx {pct(t.error_ratio_max)}"] + [f"{k} {v}" for k, v in t.latency.items()])
        for t in targets(spec)[:-1])
    own = f" Routes with their own thresholds: {listed}." if listed else ""
    per_route = lambda signal, extra=None: agg("sum", rate(sel(c, signal, extra)), by)  # noqa: E731
    errors = filled(per_route("errors"), per_route("requests"))
    everywhere = agg("sum", rate(sel(c, "requests")))
    detail = [
        Panel(
            title=f"{c.name}: 5xx ratio by route", unit="percentunit", min=0, thresholds=above(default.error_ratio_max),
            alerts=(ERROR_RATE_HIGH,),
            description=("Share of requests answered 5xx per route, all instances. " + built.fires(
                ERROR_RATE_HIGH, f"Above {pct(default.error_ratio_max)} for {{for}} while a route serves at least "
                                 f"{number(default.min_rate)} req/s fires {{alert}}.") + own).strip(),
            queries=(Query(per_total(per_route("errors"), per_route("requests")), f"{{{{{route}}}}}"),),
        ),
        Panel(
            title=f"{c.name}: requests by route", unit="reqps", alerts=(ERROR_RATE_HIGH, LATENCY_HIGH),
            description=(f"Requests per second per route, all instances. Routes under "
                         f"{number(default.min_rate)} req/s are not judged (too few requests for a ratio or a "
                         "percentile to mean anything)."),
            queries=(Query(per_route("requests"), f"{{{{{route}}}}}"),),
        ),
    ]
    for key in latency_keys(spec):
        limit = default.latency.get(key)
        alert = LATENCY_AVERAGE_HIGH if key == AVG else LATENCY_HIGH
        line = built.fires(alert, f" Above {limit} for {{for}} fires {{alert}}.") if limit else ""
        expr: Expr
        if key == AVG:
            expr = ratio(per_route("duration_sum"), per_route("buckets", {"le": "+Inf"}))
            title, what = f"{c.name}: average latency by route", "Mean latency"
        else:
            expr = Call("histogram_quantile", (Num(QUANTILES[key]), agg("sum", rate(sel(c, "buckets")), (route, "le"))))
            title, what = f"{c.name}: {key} latency by route", f"{key} latency"
        detail.append(Panel(
            title=title, unit="s", min=0, thresholds=above(_seconds(limit)) if limit else (), alerts=(alert,),
            description=f"{what} per route from the request histogram, all instances.{line}{own}",
            queries=(Query(expr, f"{{{{{route}}}}}"),),
        ))
    detail += _redirect_and_timeout_panels(c, built, per_route)
    detail.append(Panel(
        title=f"{c.name}: 5xx by route", unit="reqps", alerts=(ERROR_RATE_HIGH,),
        description="Requests answered 5xx per second per route, all instances: how many users see an error.",
        queries=(Query(errors, f"{{{{{route}}}}}"),),
    ))
    health = Panel(
        title=f"HTTP {c.name}: 5xx ratio", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=above(default.error_ratio_max), alerts=(ERROR_RATE_HIGH,),
        description=f"Share of all requests to {c.name} answered 5xx, all routes and instances.",
        queries=(Query(per_total(agg("sum", rate(sel(c, "errors"))), everywhere), c.name),),
    )
    return ComponentPanels(health, tuple(detail), jobs(c.base_labels))


LATENCY_ALERTS = ("HttpLatencyHigh", "HttpLatencyAverageHigh")

KIND = Kind(
    key="http",
    ratios=(ERRORS, REDIRECTS),
    title="HTTP server",
    spec=HttpSpec,
    schema="http",
    check=check,
    alerts=(ERROR_RATE_HIGH, LATENCY_HIGH, LATENCY_AVERAGE_HIGH, REDIRECT_RATIO_HIGH, CLIENT_TIMEOUTS_HIGH),
    rules=rules,
    panels=panels,
    # Spring records its own /actuator/prometheus scrapes, so the request timer exists after the first scrape;
    # prometheus-fastapi-instrumentator's counter is labelled (and /metrics often excluded): no python signal.
    presence={"micrometer": "requests"},
    concern=Concern("http", "HTTP", "Request rate, 5xx ratio and latency percentiles per route against their thresholds."),
    # An open breaker explains the routes' latency (trial calls, fallbacks), never their 5xx: without a fallback
    # the errors are the outage as users see it, route by route; with one, errors mean the fallback fails.
    inhibitions=(Inhibition("CircuitBreakerOpen", LATENCY_ALERTS, ("service", "breaker")),),
    default_metrics={
        "micrometer": {
            "requests": MetricRef("http_server_requests_seconds_count", (), SPRING),
            "errors": MetricRef("http_server_requests_seconds_count", (("outcome", "SERVER_ERROR"),), SPRING),
            "redirects": MetricRef("http_server_requests_seconds_count", (("outcome", "REDIRECTION"),), SPRING),
            "ok": MetricRef("http_server_requests_seconds_count", (("outcome", "SUCCESS"),), SPRING),
            "buckets": MetricRef("http_server_requests_seconds_bucket", (), SPRING),
            "duration_sum": MetricRef("http_server_requests_seconds_sum", (), SPRING),
        },
        "python": {
            "requests": MetricRef("http_requests_total", (), INSTRUMENTATOR),
            "errors": MetricRef("http_requests_total", (("status", "5xx"),), INSTRUMENTATOR),
            "redirects": MetricRef("http_requests_total", (("status", "3xx"),), INSTRUMENTATOR),
            "ok": MetricRef("http_requests_total", (("status", "2xx"),), INSTRUMENTATOR),
            "buckets": MetricRef("http_request_duration_seconds_bucket", (), INSTRUMENTATOR),
            "duration_sum": MetricRef("http_request_duration_seconds_sum", (), INSTRUMENTATOR),
        },
    },
)
