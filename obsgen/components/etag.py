"""E-Tag conditional caching: how many conditional requests end in 304 Not Modified.

What an app can export: HTTP metrics alone cannot tell a conditional request
(one carrying ``If-None-Match``) from any other, and prometheus-fastapi-instrumentator
groups 304 into ``3xx`` with every redirect. So the E-Tag middleware counts the
conditional requests itself, once each, with the outcome:
``etag_requests_total{route, result}``, result ``hit`` (the tag matched, 304
sent) or ``miss`` (the tag was stale, 200 with a new body and a new tag).
That is prometheus_client's ``Counter("etag_requests", ..., ["route", "result"])``
in the python profile and a Micrometer ``Counter("etag.requests")`` with the
same tags in the micrometer profile (Spring's ShallowEtagHeaderFilter exports
nothing), so both profiles share the names. A ratio gauge (``etag_cache_effectiveness_ratio``)
is a ratio and cannot be aggregated or guarded by traffic; the counters
replace it (the gauge is ``rate(hit) / rate(all)``).

ETagNeverNotModified catches a tag that changes on every response: conditional
requests then all answer 200. A ``result="hit"`` series that was never incremented does not exist in
prometheus_client, so the rule fires on conditional traffic *unless* any 304
was counted, rather than on a hit rate equal to zero.
"""

from __future__ import annotations


from obsgen.components import cache
from obsgen.components.base import AlertDef, Built, Component, Inhibition, Kind, RatioSignals, Rule, Scenario
from obsgen.components.shapes import grouping, ratio_of_rates, ratio_traffic, share, total_rate, verdict
from obsgen.components.timeline import MIN
from obsgen.components.viz import RATE, ComponentPanels, Panel, Query, below, jobs, num, pct, rate, sel
from obsgen.model.promql import agg, binop, increase, number
from obsgen.model.records import record
from obsgen.model.types import ComponentSpec, Duration, MetricRef

NOT_MODIFIED = RatioSignals(part="not_modified", total="conditional", rest="modified")
FIVE_MIN = Duration.parse("5m")

NEVER_NOT_MODIFIED = AlertDef(
    "ETagNeverNotModified", "warning", "5m",
    "Clients send conditional requests but E-Tags never produce a 304 Not Modified.",
    related=("ETagEffectivenessLow", "CacheHitRateLow", "CacheL2Unavailable"))
EFFECTIVENESS_LOW = AlertDef(
    "ETagEffectivenessLow", "warning", "15m",
    "Few conditional requests end in 304 Not Modified: E-Tag caching saves little.",
    related=("ETagNeverNotModified", "CacheHitRateLow", "CacheL2Unavailable"))


@record(kw_only=True)
class ETagSpec(ComponentSpec):
    """One item of a spec's ``etags:`` list (e-tag), as the schema defaulted it."""

    label: str
    not_modified_ratio_min: float
    min_request_rate: float
    never_window: Duration
    min_conditional_requests: int


def _never_rule(c: Component, spec: ETagSpec) -> list[Rule]:
    by, window, need = grouping(c), spec.never_window, spec.min_conditional_requests
    # the conditional requests: their own counter, or 304s + 200s where the spec names those two apart
    answered = total_rate(c, NOT_MODIFIED, by, window, over=increase)
    expr = binop("unless", binop(">=", answered, need),
                 binop(">", agg("sum", increase(c.select("not_modified"), window), by), 0), on=by)
    busy = 2 * need / window.total_seconds

    def scenarios(f: Duration) -> list[Scenario]:
        end = window + f + MIN * 2

        def unanswered(rate: float) -> tuple:
            """Conditional requests none of which got a 304, and no 304 series: prometheus_client creates none
            until it counts one (the 200s, or all conditional requests when they have a counter of their own)."""
            return ratio_traffic(c, NOT_MODIFIED, 0, rate, end)[1:]

        return [
            Scenario("never", f"{2 * need} conditional requests per {window}, every one answered 200 (no 304 ever "
                     "counted, so no hit series)", unanswered(busy), verdict(f, end, True), labels=dict(c.identity),
                     value=2 * need),
            # A 304 ratio of 0 at this traffic would fire ETagEffectivenessLow too, in a shared entry.
            Scenario("hits-zero", "the same, with a hit series that stays at 0",
                     ratio_traffic(c, NOT_MODIFIED, 0, busy, end), verdict(f, end, True),
                     labels=dict(c.identity), value=2 * need, alone=busy >= spec.min_request_rate),
            Scenario("some-hits", "the same traffic, one in ten answered 304",
                     ratio_traffic(c, NOT_MODIFIED, 0.1, busy, end), verdict(f, end, False)),
            Scenario("few", f"every conditional request answered 200, but only {need // 2} per {window}",
                     unanswered(need / 2 / window.total_seconds), verdict(f, end, False)),
        ]

    return c.alert(
        NEVER_NOT_MODIFIED, expr=expr, scenarios=scenarios,
        queries={"answers": answered,
                 "not_modified": agg("sum", increase(c.select("not_modified"), window), by)},
        condition=(f"at least {need} conditional requests in {window} and not a single 304 among them"),
        description=(f"E-Tag route {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} received "
                     f"{{{{ $value | humanize }}}} conditional requests in the last {window} and answered none of "
                     "them with 304 for {for}: the tags change on every request, so conditional caching does nothing."),
    )


def rules(c: Component) -> list[Rule]:
    spec: ETagSpec = c.spec  # type: ignore[assignment]
    return _never_rule(c, spec) + ratio_of_rates(
        c, EFFECTIVENESS_LOW, signals=NOT_MODIFIED, record="instance_etag:not_modified",
        threshold=spec.not_modified_ratio_min, below=True, min_rate=spec.min_request_rate,
        queries={"ratio": share(c, NOT_MODIFIED, grouping(c), FIVE_MIN),
                 "conditional": total_rate(c, NOT_MODIFIED, grouping(c), FIVE_MIN)},
        condition=(f"less than {pct(spec.not_modified_ratio_min)} of conditional requests answered 304 while at "
                   f"least {num(spec.min_request_rate)} conditional requests/s"),
        description=(f"E-Tag route {{{{ $labels.{spec.label} }}}} on {{{{ $labels.instance }}}} answers "
                     f"{{{{ $value | humanizePercentage }}}} of conditional requests with 304, below "
                     f"{pct(spec.not_modified_ratio_min)} for {{for}}."),
    )


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: ETagSpec = c.spec  # type: ignore[assignment]
    ratio = lambda by: share(c, NOT_MODIFIED, by, RATE, select=lambda s, e: sel(c, s, e))  # noqa: E731
    per_instance = lambda signal: agg("sum", rate(sel(c, signal)), ("instance",))  # noqa: E731
    detail = (
        Panel(
            title=f"{c.name}: conditional requests and 304s", unit="reqps",
            alerts=(NEVER_NOT_MODIFIED, EFFECTIVENESS_LOW),
            description=(f"Conditional requests (If-None-Match) to E-Tag route {c.name} per second and the 304 Not "
                         "Modified answers among them, per instance. " + built.fires(
                             NEVER_NOT_MODIFIED, f"{spec.min_conditional_requests} or more conditional requests in "
                                                 f"{spec.never_window} without a single 304 fires {{alert}}.")).strip(),
            queries=(Query(per_instance("conditional"), "conditional {{instance}}"),
                     Query(per_instance("not_modified"), "304 {{instance}}")),
        ),
        Panel(
            title=f"{c.name}: 304 ratio", unit="percentunit", min=0, max=1,
            thresholds=below(spec.not_modified_ratio_min), alerts=(EFFECTIVENESS_LOW,),
            description=(f"Share of conditional requests to {c.name} answered 304, per instance. " + built.fires(
                EFFECTIVENESS_LOW, f"Below {pct(spec.not_modified_ratio_min)} for {{for}} with at least "
                                   f"{number(spec.min_request_rate)} conditional requests/s fires {{alert}}.")).strip(),
            queries=(Query(ratio(("instance",)), "{{instance}}"),),
        ),
    )
    health = Panel(
        title=f"E-Tag {c.name}: 304 ratio", kind="stat", unit="percentunit", width=6, height=5,
        thresholds=below(spec.not_modified_ratio_min), alerts=(EFFECTIVENESS_LOW, NEVER_NOT_MODIFIED),
        description=f"Share of conditional requests to {c.name} answered 304 over all instances "
                    f"(target at least {pct(spec.not_modified_ratio_min)}).",
        queries=(Query(ratio(None), c.name),),
    )
    return ComponentPanels(health, detail, jobs(c.base_labels))


COUNTERS = {
    "conditional": MetricRef("etag_requests_total"),
    "not_modified": MetricRef("etag_requests_total", (("result", "hit"),)),
    "modified": MetricRef("etag_requests_total", (("result", "miss"),)),
}

KIND = Kind(
    key="etags",
    ratios=(NOT_MODIFIED,),
    title="E-Tag",
    spec=ETagSpec,
    schema="etag",
    alerts=(NEVER_NOT_MODIFIED, EFFECTIVENESS_LOW),
    rules=rules,
    panels=panels,
    concern=cache.KIND.concern,
    # A route that never answers 304 has a low 304 ratio too: one page is enough.
    inhibitions=(Inhibition("ETagNeverNotModified", ("ETagEffectivenessLow",), ("service", "component")),),
    default_metrics={"micrometer": COUNTERS, "python": COUNTERS},
)
