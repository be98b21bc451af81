"""SLO recordings against known worlds in promtool: a healthy service whose error counter has no series yet, a
service that never served anything, and idle windows (a quiet night) that must neither turn the budget into NaN
nor poison it for the length of the SLO window (Sloth issues 133, 231, 657)."""

from __future__ import annotations

import pytest

from obsgen.spec import parse

from conftest import promtool

from .world import Expect, build, grafana, panel_queries, passes, run

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
SLO = '{service="shop", slo="api"}'


def spec(profile: str, extra: str = "", objective: float = 0.99):
    return parse(f"apiVersion: obsgen/v1\nservice: {{name: shop, team: web, profile: {profile}}}\n"
                 f"slos:\n  - name: api\n    objective: {objective}\n{extra}", "t.yaml")


def ratio(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}{SLO}"


def near(expr: str, value: float, tolerance: float = 1e-6) -> Expect:
    """``expr`` within ``tolerance`` of ``value`` (NaN and no series both fail)."""
    return f"abs(({expr}) - {value}) < bool {tolerance}"


def every_ratio(at: str, value: float) -> list[Expect]:
    return [Expect(at, near(ratio(w), value), {SLO: 1}) for w in WINDOWS]


# Two instances at 5 req/s each, for 3h, every request served without a server error (4xx are not errors). The
# error child of the request family (status="5xx", outcome="SERVER_ERROR") was never created.
HEALTHY = {
    "python": {
        f'http_requests_total{{job="shop", handler="/orders", method="GET", status="{status}", instance="{i}"}}':
            f"0+{per_minute}x180"
        for i in ("a:8000", "b:8000") for status, per_minute in (("2xx", 294), ("4xx", 6))},
    "micrometer": {
        f'http_server_requests_seconds_count{{job="shop", uri="/orders", method="GET", status="{status}", '
        f'outcome="{outcome}", exception="None", instance="{i}"}}': f"0+{per_minute}x180"
        for i in ("a:8080", "b:8080") for status, outcome, per_minute in (("200", "SUCCESS", 294),
                                                                       ("404", "CLIENT_ERROR", 6))},
}


@pytest.mark.promtool
@pytest.mark.parametrize("profile", ["python", "micrometer"])
def test_a_healthy_service_whose_error_counter_has_no_series_records_an_error_ratio_of_zero(tmp_path, profile):
    out = build(tmp_path, spec(profile))
    passes(run(out, HEALTHY[profile], every_ratio("3h", 0)))


@pytest.mark.parametrize("profile", ["python", "micrometer"])
def test_the_slo_dashboard_shows_a_full_budget_and_no_burn_on_a_healthy_service(tmp_path, profile):
    out = build(tmp_path, spec(profile))
    panels = panel_queries(out, "slo")
    expects = [Expect("3h", near(e, 1), {SLO: 1}) for e in panels["api: SLI against the objective"]]
    expects += [Expect("3h", near(e, 1), {SLO: 1}) for e in panels["api: error budget remaining"]]
    expects += [Expect("3h", near(e, 0), {SLO: 1}) for e in panels["api: burn rate per window"]]
    overview = panel_queries(out, "service-overview")
    expects += [Expect("3h", near(grafana(e), 1), {SLO: 1}) for e in overview["SLO api: budget left"]]
    passes(run(out, HEALTHY[profile], expects))


def test_a_healthy_latency_slo_records_zero_and_a_missing_bucket_records_nothing(tmp_path):
    """Every request faster than the bound: 0 over every window. A bucket bound the histogram lacks is not a
    perfect score: its SLO has no series (the dashboard shows no data, not 100%)."""
    out = build(tmp_path, spec("python", "    sli: latency\n    latency_threshold: 500ms\n"))
    base = 'http_request_duration_seconds{kind}{{job="shop", handler="/orders", method="GET", instance="a:8000"{le}}}'
    world = {base.format(kind="_count", le=""): "0+600x180",
             **{base.format(kind="_bucket", le=f', le="{le}"'): "0+600x180" for le in ("0.1", "0.5", "1.0", "+Inf")}}
    passes(run(out, world, every_ratio("3h", 0)))
    del world[base.format(kind="_bucket", le=', le="0.5"')]
    passes(run(out, world, [Expect("3h", ratio(w)) for w in WINDOWS]))


def test_a_service_that_never_served_a_request_gets_no_slo_series(tmp_path):
    out = build(tmp_path, spec("python"))
    world = {'up{job="shop", instance="a:8000"}': "1x180"}
    expects = [Expect("3h", f'{{__name__=~"slo:.*", service="shop"}}')]
    passes(run(out, world, expects))


@pytest.mark.promtool
def test_an_idle_night_neither_spends_nor_poisons_the_budget(tmp_path):
    """2h at 10 req/s with 0.5% errors (half the 1% budget), 26h without a single request, then 2h clean.

    Idle windows count no events and no errors: the short windows read 0 (not NaN) during the night, the 1d
    window too once the night is a day long, and the 30d budget stays exactly half spent through it; the clean
    traffic afterwards dilutes the ratio by events (0.5% of 2h of requests over 4h of requests = 0.25%).
    """
    out = build(tmp_path, spec("python"))
    base = 'http_requests_total{{job="shop", handler="/orders", method="GET", status="{}", instance="a:8000"}}'
    world = {base.format("5xx"): "0+3x120 360+0x1560 360+0x120",
             base.format("2xx"): "0+597x120 71640+0x1560 71640+600x120"}
    budget_left = "1 - slo:sli_error:ratio_rate30d{service=\"shop\", slo=\"api\"} / 0.01"
    expects = [Expect("2h", near(ratio(w), 0.005), {SLO: 1}) for w in ("5m", "30m", "1h")]
    expects += [Expect("9h", near(ratio(w), 0), {SLO: 1}) for w in ("5m", "30m", "1h", "2h", "6h")]
    expects += [Expect("9h", near(ratio(w), 0.005), {SLO: 1}) for w in ("1d", "3d", "30d")]
    expects += [Expect("28h", near(ratio("1d"), 0), {SLO: 1}), Expect("28h", near(ratio("30d"), 0.005), {SLO: 1}),
                Expect("28h", near(budget_left, 0.5), {SLO: 1})]
    expects += [Expect("30h", near(ratio("30d"), 0.0025, 1e-4), {SLO: 1}),
                Expect("30h", near(budget_left, 0.75, 1e-2), {SLO: 1})]
    passes(run(out, world, expects))


# ------------------------------------------------------------------ detection times (issue 17)

import random  # noqa: E402

from obsgen.components import slo  # noqa: E402
from obsgen.errors import SpecError  # noqa: E402
from obsgen.model.types import Duration  # noqa: E402

MINUTE, HOUR = Duration.parse("1m"), Duration.parse("1h")
OBJECTIVES = (0.9307, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.999999)
SLO_WINDOWS = ("3d", "5d6h", "6d", "7d", "10d", "28d", "30d", "90d")


def slo_spec(objective: float, window: str, min_events: int | None = None) -> slo.SloSpec | None:
    """The SLO, or None where obsgen refuses the objective for the window (no page could ever fire)."""
    extra = f"    window: {window}\n" + (f"    min_events: {min_events}\n" if min_events else "")
    try:
        return spec("micrometer", extra, objective).components[0].spec  # type: ignore[return-value]
    except SpecError:
        return None


# Burn factors around the thresholds of the windows above (1×, 1.44×, 2×, 3×, 4.8×, 5.6×, 6×, 13.44×, 14.4×, 18×,
# 43.2×) but never on one: where a window's exact error ratio equals its threshold, float rounding decides `>`
# (here as in Prometheus), and no story obsgen writes puts a check there.
BURNS = (0.0, 0.5, 0.99, 1.01, 1.43, 2.05, 2.9, 4.7, 5.9, 6.1, 10.0, 14.3, 14.5, 21.6, 50.0, 100.0, 1000.0)


def random_story(rng: random.Random, budget: float) -> tuple[slo.Segment, ...]:
    """Clean traffic, bursts, idle spells and low traffic in random order: 1 to 5 segments, up to ~11h."""
    segments = []
    for _ in range(rng.randint(1, 5)):
        span = MINUTE * rng.randint(1, 180)
        rate = rng.choice([0.0, 0.001, 0.05, 1.0, 10.0, 37.5, 200.0])
        burn = rng.choice(BURNS)
        segments.append((span, rate, min(1.0, burn * budget)))
    return tuple(segments)


def cases(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        objective, window = rng.choice(OBJECTIVES), rng.choice(SLO_WINDOWS)
        spec_ = slo_spec(objective, window, rng.choice([None, None, 1, 250, 10_000]))
        if spec_ is None:
            continue
        yield spec_, rng.choice([slo.FAST, slo.SLOW]), random_story(rng, spec_.budget)


def generated_stories(objectives=OBJECTIVES, windows=SLO_WINDOWS, tunings=(("1m", "5m"), ("2m15s", "2h"))):
    """The stories obsgen writes into promtool tests, for each objective, window and (page, ticket) `for`, each
    with the clock it is told on."""
    for objective in objectives:
        for window in windows:
            spec_ = slo_spec(objective, window)
            for page_for, ticket_for in tunings if spec_ else ():
                for story in slo._stories(spec_, Duration.parse(page_for), Duration.parse(ticket_for)):
                    for alert in (slo.FAST, slo.SLOW):
                        yield spec_, alert, story.segments, story.clock


def brute_force(spec_: slo.SloSpec, alert: slo.BurnAlert, segments, clock: Duration = MINUTE) -> Duration | None:
    """Detection the long way: the story as cumulative counter samples, one per minute; at each evaluation (one
    every ``clock``) ``rate()`` as the last sample minus the first within the window, and each long window as the
    explicit sum of the 5m deltas recorded at every evaluation within it, re-added from scratch at every
    evaluation. The first 5m rate is recorded one evaluation in (two samples or more): each window's share after
    it is the share of the window the data covers, by which its error ratio is scaled and its average rate
    multiplied into the requests it holds."""
    requests, errors = [0.0], [0.0]
    for span, rate, share in segments:
        for _ in range(span.millis // MINUTE.millis):
            requests.append(requests[-1] + rate * 60)
            errors.append(errors[-1] + rate * share * 60)
    minutes = lambda w: w.millis // MINUTE.millis  # noqa: E731

    def delta(counter, t, w):  # the samples within (t - w, t]: their first and last
        return counter[t] - counter[max(0, t - minutes(w) + 1)]

    every = minutes(clock)

    def window(t, w):  # (error ratio times the share of the window covered, requests in the window)
        covered = min(1.0, (t - every) / minutes(w))
        if w <= Duration.parse("6h"):
            bad, total = delta(errors, t, w), delta(requests, t, w)
            return (bad / total * covered if total else 0.0), total * minutes(w) / (minutes(w) - 1)
        first = max(every, next(e for e in range(0, t + 1, every) if e > t - minutes(w)))
        evaluations = slice(first, t + 1, every)
        bad, total = sum(bad_5m[evaluations]), sum(requests_5m[evaluations])
        average = total / len(range(first, t + 1, every)) / 4  # per minute
        return (bad / total * covered if total else 0.0), average * minutes(w) * covered

    # the 5m deltas each evaluation records (a story's 3d window holds thousands: summed at C speed)
    bad_5m = [delta(errors, e, Duration.parse("5m")) for e in range(len(errors))]
    requests_5m = [delta(requests, e, Duration.parse("5m")) for e in range(len(requests))]

    for t in range(every, len(requests), every):
        for cond in alert.conditions:
            threshold = cond.burn(spec_.window) * spec_.budget
            (long_ratio, held), (short_ratio, _) = window(t, cond.long), window(t, cond.short)
            if long_ratio > threshold and short_ratio > threshold and held >= slo.min_events(spec_, cond):
                return MINUTE * t
    return None


@pytest.mark.promtool
def test_detection_times_from_running_totals_match_a_brute_force_replay():
    """On each story's own clock (1m, 5m, the 3d story's hourly one) and on random stories at 1m, 5m and 1h."""
    clocks = (MINUTE, Duration.parse("5m"), HOUR)
    stories = [*generated_stories((0.95, 0.999, 0.999999), ("3d", "30d", "90d"), (("1m", "5m"),)),
               *((*case, clocks[n % 3]) for n, case in enumerate(cases(120, seed=17)))]
    for spec_, alert, segments, clock in stories:
        assert slo._detect(spec_, alert, segments, clock) == brute_force(spec_, alert, segments, clock), (
            spec_, alert, segments, clock)
    assert len(stories) > 160


@pytest.mark.promtool
@pytest.mark.parametrize("window", ["4d", "5d6h", "6d", "7d", "10d"])
def test_slo_windows_of_days_build_and_every_generated_story_passes_promtool(tmp_path, window):
    """Between 5d and 10d the 6h and 3d tickets' thresholds (1× and under 2×) lie close together: the 3d story
    used to burn too little to ticket before it ended, and the build stopped with an internal error."""
    out = build(tmp_path, spec("micrometer", f"    window: {window}\n", 0.999))
    prom = out / "prometheus"
    result = promtool("test", "rules", *sorted(p.name for p in prom.glob("*.test.yaml")), cwd=prom)
    passes(result)
    assert ("slow-burn-3d" in (prom / "slo.5m.test.yaml").read_text()) is False
    assert (prom / "slo.1h.test.yaml").exists() == (window in ("6d", "7d", "10d"))


def test_each_cluster_of_a_fleet_reads_its_own_ratio_when_only_one_has_a_5xx_series(tmp_path):
    """``sum by (cluster) (errors) or 0 * sum by (cluster) (requests)`` fills in 0 per cluster: the cluster whose
    error series exists must not hide the other's 0, nor lend it its errors."""
    out = build(tmp_path, parse("apiVersion: obsgen/v1\nservice: {name: shop, team: web, profile: python, "
                                "cluster_label: cluster}\nslos:\n  - name: api\n    objective: 0.99\n", "t.yaml"))
    base = 'http_requests_total{{job="shop", handler="/orders", status="{}", cluster="{}", instance="a:8000"}}'
    world = {base.format("2xx", "eu"): "0+600x180", base.format("2xx", "us"): "0+570x180",
             base.format("5xx", "us"): "0+30x180"}
    eu, us = '{cluster="eu", service="shop", slo="api"}', '{cluster="us", service="shop", slo="api"}'
    expects = [Expect("3h", near(f'slo:sli_error:ratio_rate{w}{{service="shop"}}', 0), {eu: 1, us: 0})
               for w in WINDOWS]
    expects += [Expect("3h", near(f'slo:sli_error:ratio_rate{w}{{service="shop"}}', 0.05), {eu: 0, us: 1})
                for w in WINDOWS]
    passes(run(out, world, expects))


# ------------------------------------------------------------------ a young TSDB (W6)

BURST = 'http_requests_total{{job="shop", handler="/orders", method="GET", status="{}", instance="a:8000"}}'


def burst_after(idle_minutes: int) -> dict[str, str]:
    """``idle_minutes`` of scraped but idle counters, then 20m at 10 req/s with 20% server errors (20× the 1%
    budget), then 20m clean. From time 0: the TSDB holds nothing older."""
    idle = f"0+0x{idle_minutes - 1} " if idle_minutes else ""
    return {BURST.format("5xx"): f"{idle}0+120x20 2400+0x20", BURST.format("2xx"): f"{idle}0+480x20 9600+600x20"}


def alerts(name: str, state: str = "firing") -> str:
    return f'ALERTS{{alertname="{name}", alertstate="{state}"}}'


@pytest.mark.promtool
def test_twenty_minutes_of_errors_on_a_young_tsdb_fire_nothing_and_its_3d_guard_counts_the_requests_it_holds(
        tmp_path):
    """The page's 20× burn for 20 minutes on a fresh Prometheus: each window counts the time before its data as
    clean traffic, so the 6h window burns 20 × 19/360 and the 3d window 20 × 19/4320, and neither alert fires
    (the committed rules used to ticket within 6 minutes). The 3d guard holds the requests of those 20 minutes
    (12,000, the first 5m rates blurred a little low), not 3 days at the current rate (2.6M)."""
    out = build(tmp_path, spec("python"))
    guard = 'slo:sli_requests:rate3d{service="shop", slo="api"} * 259200'
    expects = [Expect(at, alerts(name, state)) for at in ("6m", "20m", "25m", "40m")
               for name in ("ErrorBudgetBurnSlow", "ErrorBudgetBurnFast") for state in ("pending", "firing")]
    expects += [Expect("20m", f"({guard} > bool 10000) * ({guard} <= bool 12000)", {SLO: 1}),
                Expect("20m", near('slo:sli_error:burn_rate6h{service="shop", slo="api"}', 20 * 19 / 360, 1e-3),
                       {SLO: 1})]
    passes(run(out, burst_after(0), expects))


@pytest.mark.promtool
def test_the_same_errors_after_6h_of_idle_data_ticket_at_the_detection_time_of_a_full_window(tmp_path):
    """The same 20 minutes after 6h of scraped idle counters: the 6h and 30m windows are full of data, their
    burn is the error ratio over the budget (20×), and the ticket is pending one evaluation into the burst and
    fires after its 5m ``for``, as it always did on an old TSDB; the page (1h and 5m at 14.4×) as well."""
    out = build(tmp_path, spec("python"))
    labels = ('ALERTS{alertname="ErrorBudgetBurnSlow", alertstate="firing", service="shop", slo="api", '
              'component="api", severity="warning", team="web"}')
    expects = [Expect("6h", alerts("ErrorBudgetBurnSlow", "pending")),
               Expect("6h1m", near('slo:sli_error:burn_rate6h{service="shop", slo="api"}', 20, 1e-6), {SLO: 1}),
               Expect("6h5m", alerts("ErrorBudgetBurnSlow")),
               Expect("6h6m", alerts("ErrorBudgetBurnSlow"), {labels: 1})]
    passes(run(out, burst_after(360), expects))


# ------------------------------------------------------------------ what the SLO counts (C7)

SCRAPED = {
    "micrometer": 'http_server_requests_seconds_count{{job="shop", uri="{}", method="GET", status="{}", '
                  'outcome="{}", exception="None", instance="a:8080"}}',
    "python": 'http_requests_total{{job="shop", handler="{}", method="GET", status="{}", instance="a:8000"}}',
}
OWN_SCRAPES = {"micrometer": "/actuator/prometheus", "python": "/metrics"}


def scraped_world(profile: str) -> dict[str, str]:
    """1 req/s to /orders with 2% server errors, and the service's own metrics endpoint scraped 4 times a
    minute, each scrape timed like a request: as Spring's Actuator and the FastAPI instrumentator do."""
    name = SCRAPED[profile]
    ok, failed = {"micrometer": (("200", "SUCCESS"), ("500", "SERVER_ERROR")), "python": (("2xx",), ("5xx",))}[profile]
    return {name.format("/orders", *ok): "0+58.8x180", name.format("/orders", *failed): "0+1.2x180",
            name.format(OWN_SCRAPES[profile], *ok): "0+4x180"}


@pytest.mark.promtool
@pytest.mark.parametrize("profile", ["python", "micrometer"])
def test_the_default_slo_leaves_out_the_services_own_metrics_scrapes_unless_told(tmp_path, profile):
    """2% of the service's requests fail: the SLO reads 2%, not the 1.88% the scrapes dilute it to, and counts
    60 requests a minute, not 64. ``exclude: {}`` counts every request."""
    out = build(tmp_path, spec(profile))
    requests = 'slo:sli_requests:rate1h{service="shop", slo="api"}'
    passes(run(out, scraped_world(profile), [Expect("3h", near(ratio("1h"), 0.02), {SLO: 1}),
                                            Expect("3h", near(requests, 1.0), {SLO: 1})]))
    out = build(tmp_path / "all", spec(profile, "    exclude: {}\n"))
    passes(run(out, scraped_world(profile), [Expect("3h", near(ratio("1h"), 1.2 / 64), {SLO: 1})]))
