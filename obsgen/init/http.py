"""The service's HTTP server, and a latency SLO on one of its histogram's buckets.

The http kind's declared metrics (Spring's ``http_server_requests_seconds_*``, the instrumentator's
``http_requests_total`` and ``http_request_duration_seconds_*``) show the server; their ``le`` labels show
which latencies can be judged at all: a percentile between the smallest and largest bucket, an SLO threshold
only on a bucket.
"""

from __future__ import annotations

import math

from obsgen.components import http, slo
from obsgen.init.components import thresholds
from obsgen.init.draft import Draft, Entry, Field
from obsgen.init.fingerprints import defaults
from obsgen.init.scrape import Scrape
from obsgen.model.types import Duration

ROUTE_LABELS = ("uri", "handler", "path", "route")  # Spring, the instrumentator, starlette_exporter, others
SLO_THRESHOLD = Duration.parse("500ms")  # the SLO drafted: the bucket nearest to this (Maple's p99 target)
SLO_OBJECTIVE = 0.99


def recognise(profile: str, scrape: Scrape, draft: Draft) -> None:
    metrics = http.KIND.defaults(profile)
    requests = scrape.named(metrics["requests"].name)
    if not requests:
        if scrape.declared_family(metrics["requests"].name):
            _declared(profile, metrics, scrape, draft)
        return
    what = "http server"
    fields: list[Field] = [Field("name", "server")]
    for name in {metrics["requests"].name, metrics["buckets"].name, metrics["duration_sum"].name}:
        if scrape.has(name):
            draft.recognise(scrape.family_of[name], what)
    kind_defaults = defaults(http.KIND, profile)
    route = next((label for label in ROUTE_LABELS if any(label in s.labels for s in requests)), None)
    if route and route != kind_defaults["route_label"]:
        fields.append(Field("route_label", route, f"the route label of {metrics['requests'].name}"))
    buckets = _buckets(scrape, metrics["buckets"].name)
    cites = [f"{metrics['requests'].name} ({len(requests)} series)"]
    if not buckets:
        fields.append(Field("latency", {}, f"no {metrics['buckets'].name}: latency cannot be judged (Spring: "
                                           "management.metrics.distribution.percentiles-histogram.http.server."
                                           "requests=true)"))
    else:
        smallest, largest = Duration.seconds(buckets[0][0]), Duration.seconds(buckets[-1][0])
        cites.append(f"{metrics['buckets'].name} (le {', '.join(le for _, le in buckets)})")
        fields.append(Field("histogram", {"smallest_bucket": str(max(smallest, Duration(1))),
                                          "largest_bucket": str(max(largest, Duration(1)))},
                            f"the finite `le` of {metrics['buckets'].name}"))
        p99 = Duration.parse(kind_defaults["latency"]["p99"])
        if not smallest <= p99 <= largest:
            fields.append(Field("latency", {"p99": str(largest)}, f"default p99 {p99} is outside the buckets: "
                                                                  "the largest; set your target"))
        _slo(profile, buckets, draft)
    fields += thresholds(http.KIND, profile)
    draft.entries.append(Entry("http", "server", fields, cites))


def _declared(profile: str, metrics: dict, scrape: Scrape, draft: Draft) -> None:
    """A server declared before its first request (the instrumentator's families, no sample yet): the server is
    drafted, its latency at the defaults, with no SLO until a bucket has been seen."""
    families = sorted({f for ref in metrics.values() if (f := scrape.declared_family(ref.name))})
    for family in families:
        draft.recognise(family, "http server (declared, no sample yet)")
    draft.entries.append(Entry("http", "server", [Field("name", "server"), *thresholds(http.KIND, profile)], [
        f"{', '.join(families)} (declared, no sample yet: the route label and the histogram's buckets are seen "
        "from the first request; run init again after traffic to draft a latency SLO)"]))


def _buckets(scrape: Scrape, name: str) -> list[tuple[float, str]]:
    """The finite bucket bounds of ``name``, sorted, with each ``le`` as printed."""
    seen = {}
    for sample in scrape.named(name):
        le = sample.labels.get("le", "")
        try:
            bound = float(le)
        except ValueError:
            continue
        if math.isfinite(bound) and bound > 0:
            seen.setdefault(bound, le)
    return sorted(seen.items())


def _slo(profile: str, buckets: list[tuple[float, str]], draft: Draft) -> None:
    """A latency SLO on the bucket nearest to 500ms: a threshold an SLO can count exactly."""
    bound, le = min(buckets, key=lambda b: (abs(b[0] - SLO_THRESHOLD.total_seconds), b[0]))
    threshold = Duration.seconds(bound)
    if threshold.total_seconds != bound:  # finer than a millisecond: no Prometheus duration says it
        return
    fields = [Field("name", "latency"), Field("sli", "latency"),
              Field("objective", SLO_OBJECTIVE, "no default exists: a placeholder, set your objective"),
              Field("latency_threshold", str(threshold), f"the bucket le=\"{le}\" nearest to {SLO_THRESHOLD}")]
    if le != repr(bound):  # the schema's default spelling is Java's and Python's (0.5, 1.0); Go prints 1
        fields.append(Field("le", le, "the bucket's `le` exactly as printed"))
    fields += thresholds(slo.KIND, profile)
    draft.entries.append(Entry("slos", "latency", fields, ["the buckets of the HTTP server's histogram"]))
