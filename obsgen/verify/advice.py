"""What to do about each finding: which spec field to change, or which library setting publishes a bucket.

Bucket settings are those of the libraries the profiles name: Spring Boot's
``management.metrics.distribution.*`` properties for Micrometer timers, and
prometheus-fastapi-instrumentator's ``latency_lowr_buckets`` (its
``http_request_duration_seconds``) or prometheus_client's ``buckets=`` for Python.
"""

from __future__ import annotations

from obsgen.errors import format_path
from obsgen.model.promql import Matcher
from obsgen.verify.finding import Missing
from obsgen.verify.uses import UP, Place, Use

INSTRUMENTATOR_HISTOGRAM = "http_request_duration_seconds"


def _field(place: Place) -> str:
    return f"`{format_path(place.path)}`"


def _seconds(value: float) -> str:
    return f"{value:g}"


def _meter(family: str) -> str:
    """The Micrometer meter a Prometheus family comes from: http_server_requests_seconds → http.server.requests."""
    return family.removesuffix("_seconds").replace("_", ".")


def bucket(use: Use, bound: float | None, *, above: bool = False) -> str:
    """How to publish a bucket at ``bound`` seconds (or, ``above``, one above it) for this use's histogram."""
    family = use.read.metric.removesuffix("_bucket")
    wanted = "a bucket above " if above else "the bucket "
    value = _seconds(bound) if bound is not None else "that bound"
    if use.profile == "micrometer":
        if above and bound is not None:
            return (f"publish buckets above {value}s: `management.metrics.distribution.maximum-expected-value."
                    f"{_meter(family)}={round(bound * 2000)}ms` (Spring Boot, with the percentiles histogram on)")
        millis = f"{round(bound * 1000)}ms" if bound is not None else "<bound>"
        return (f"publish the bucket {value}s: `management.metrics.distribution.slo.{_meter(family)}={millis}` "
                "(Spring Boot; Micrometer: `Timer.builder(…).serviceLevelObjectives(…)`)")
    shown = _seconds(2 * bound) if above and bound is not None else value
    if family == INSTRUMENTATOR_HISTOGRAM:
        return (f"publish {wanted}{value}s: `Instrumentator().instrument(app, latency_lowr_buckets=(…, {shown}))` "
                "(prometheus-fastapi-instrumentator; its default is 0.1, 0.5, 1)")
    return f"publish {wanted}{value}: add {shown} to the histogram's `buckets=(…)` (prometheus_client `Histogram`)"


def histogram(use: Use, family: str) -> str:
    if use.profile == "micrometer":
        return (f"turn the histogram on: `management.metrics.distribution.percentiles-histogram.{_meter(family)}=true` "
                "(Spring Boot)")
    return f"export `{family}` as a prometheus_client `Histogram` (a `Summary` has no buckets)"


def le_spelling(use: Use, written: str) -> str:
    if use.kind == "slos":
        return f"set the SLO's `le: \"{written}\"` so obsgen selects the bucket as the server writes it"
    return f"select le=\"{written}\" as the server writes it"


def events(use: Use) -> str:
    """Why a rare-event signal may have no series yet (a note, not a finding)."""
    return ("expected until the first event: client libraries create a labelled counter's series when it is first "
            "incremented; its alerts and panels read nothing until then")


def unknown_metric(uses: list[Use], scraped: bool) -> str:
    """How to name a metric that does not exist, for the signals that read it (of one component, or of several
    that share it through a YAML anchor): only fields the spec schema accepts."""
    use = uses[0]
    if use.read.metric == UP:
        return up_missing(use)
    fields = list(dict.fromkeys(format_path(u.path + ("metrics", u.signal)) for u in uses
                                if accepts(u.path + ("metrics", u.signal))))
    if len(fields) > 1 and len({u.path for u in uses}) > 1:
        field = "`" + "`, `".join(fields) + "` (one value, shared through a YAML anchor)"
    elif len(fields) > 1:
        field = f"each of `{format_path(use.path + ('metrics',))}.<signal>`"
    else:
        field = f"`{fields[0]}`" if fields else ""
    if use.exporter:
        source = "is the exporter scraped?" if scraped else "pass the exporter's /metrics with another --metrics"
        return f"{source}; or set {field} to the name it exports" if field else source
    if use.kind == "custom":
        return "fix the metric name in `expr`"
    if not field:
        return f"check the service's `profile` (`{use.profile}`): it names this metric"
    extra = ("; if the app creates it only on the first event, it appears then" if all(u.event for u in uses)
             else "")
    return f"set {field} to the metric the app exports{extra}"


def up_missing(use: Use) -> str:
    """`up` is Prometheus's own, one series per scrape target: no spec key names it."""
    job = use.read.equal().get("job")
    target = f"job `{job}`" if job else "the service"
    where = "`service.selector`" if use.kind == "service" else f"`{format_path(use.path + ('selector',))}`"
    return (f"`up` is written by Prometheus for each target it scrapes: check that this Prometheus scrapes "
            f"{target} (its scrape config) and that {where} has the labels it scrapes it with")


def accepts(path: tuple) -> bool:
    """Whether the spec schema has a field at ``path`` (``caches[0].metrics.misses``): a hint names no other."""
    from obsgen.spec.schema import resolve, schema

    node: dict = schema()
    for step in path:
        node = resolve(node)
        if isinstance(step, int):
            node = node.get("items", {})
        elif step in node.get("properties", {}):
            node = node["properties"][step]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def no_metrics(use: Use) -> str:
    if use.exporter:
        return "scrape the exporter (in --metrics mode, pass its /metrics too)"
    return (f"set the component's `metrics` to the names the app exports, or check the service's `profile` "
            f"(`{use.profile}`)")


def label(identity: str | None, noun: str, m: Matcher, where: Place) -> str:
    if where.path[:2] == ("service", "selector"):
        return f"set `service.selector` to labels the service's series carry (remove `{m.name}`)"
    if m.name == identity:
        return f"set the component's `label` to the label that names the {noun} in its series"
    return f"fix {_field(where)}: the series carry no `{m.name}`"


def value(missing: Missing, use: Use, where: Place, scraped: bool) -> str:
    """What to set where a matcher's value selects nothing: the field, and the value it probably means; for a
    matcher no spec field sets, what it is (the profile's default metric's, or obsgen's own query's)."""
    import difflib

    m = missing.matcher
    close = difflib.get_close_matches(m.value, list(missing.values), n=1, cutoff=0.6)
    guess = f" (`{close[0]}`?)" if close else ""
    own = use.own.get(m.name)
    if own == "profile":
        field = format_path(use.path + ("metrics", use.signal))
        return (f"`{m.text()}` is the {use.profile} profile's matcher for {use.signal}, not a value of the spec: "
                f"if the app labels it otherwise, set `{field}` with the `matchers` its series carry{guess}")
    if own == "kind":
        return kind_value(m, use, scraped)
    if where.path[:2] == ("service", "selector"):
        return f"set `service.selector` to the labels Prometheus scrapes the service with{guess}"
    if missing.noun:
        return f"name the {missing.noun} as its series do{guess}"
    if m.name == "job" or UP in missing.metrics:  # a scraped target has `up` at every scrape: never rare
        return f"fix {_field(where)}{guess}"
    later = ("look further back with --lookback" if scraped else
             "check a scrape taken after it occurred")
    return f"fix {_field(where)}{guess}; if `{m.value}` is right but rare, it has series only once it occurs: {later}"


def kind_value(m: Matcher, use: Use, scraped: bool) -> str:
    """A value obsgen's own queries select (a breaker state, a Redis role, a route left out): no spec field sets
    it, so the fix is in what is scraped or exported, never a component's name."""
    if m.op in ("!=", "!~"):
        return (f"`{m.text()}` is obsgen's own exclusion (requests it does not judge: scrapes, health checks), "
                "not set by the spec; every series the app has is excluded: send real traffic first")
    head = f"`{m.text()}` is selected by obsgen's own queries for the {use.noun}'s {use.signal}, not set by the spec"
    if use.exporter:
        how = "is the exporter of such a server scraped?" if scraped else \
            "pass the /metrics of the exporter of such a server with another --metrics"
        return f"{head}: no server scraped reports it; {how}"
    return f"{head}: the app exports no series with it; check the {use.noun}'s settings against what the app exports"


def optional_value(m: Matcher) -> str:
    """A value only panels select, among others the label has (a state a one-hot gauge does not report)."""
    return f"obsgen's panels map `{m.text()}` in case it occurs: nothing to fix unless the app should report it"


def targets_down(count: int) -> str:
    them = "them" if count > 1 else "it"
    return (f"bring {them} up (the server's /targets page says why each scrape fails), or verify a time "
            f"{'they were' if count > 1 else 'it was'} up with --at")


def type_fit(use: Use, wanted: str) -> str:
    if use.kind == "custom":
        return f"fix `expr`: read {wanted} here"
    return f"set `{format_path(use.path + ('metrics', use.signal))}` to {wanted} the app exports"


def window(use: Use, interval: float) -> str:
    smallest = _seconds(2 * interval)
    place = "`expr`" if use.kind == "custom" else "the spec's window"
    return f"widen {place} to at least {smallest}s (four scrape intervals, {_seconds(4 * interval)}s, is safer)"
