"""A Prometheus-compatible query API (Prometheus, Thanos Query, Mimir's ``/prometheus``) as an :class:`Inventory`.

A handful of requests whatever the number of specs: for the metric names every
selector reads, in batches of :data:`BATCH` names per ``{__name__=~"a|b|…"}``,

* ``POST /api/v1/series`` over the lookback: every label set seen;
* ``POST /api/v1/query`` at ``--at``: the label sets still there, with their values
  (a series that disappeared is in the first answer and not in this one; an ``up``
  of 0 says its target is down);

and once each ``/api/v1/metadata`` (metric types), ``/api/v1/targets`` (scrape
interval per job; Mimir and Thanos have none, and the window check says so) and,
only when a metric is unknown, ``/api/v1/label/__name__/values`` for the closest names
(when one disappeared, ``group by (__name__)`` of its job at ``--at``: what replaced it).
"""

from __future__ import annotations

import math
from functools import cache

from obsgen.errors import UsageError
from obsgen.model.promql import Matcher
from obsgen.model.types import Duration
from obsgen.verify.inventory import Inventory, Labels, without_created
from obsgen.verify.web import Client, NotFound

BATCH = 60


class API:
    def __init__(self, url: str, client: Client):
        self.base = url.rstrip("/")
        self.client = client

    def call(self, path: str, params: dict | None = None, *, post: bool = False) -> object:
        url = f"{self.base}{path}"
        body = self.client.json(url, params, post=post)
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise UsageError(f"{url}: the server answered with an error: {error or str(body)[:200]}")
        return body.get("data")


def inventory(url: str, client: Client, names: set[str], at: float, lookback: float) -> Inventory:
    api = API(url, client)
    try:
        series, present = _series(api, sorted(names), at, lookback)
    except NotFound:
        raise UsageError(f"{api.base}/api/v1/series: not found; is {url} a Prometheus query API? (Mimir serves it "
                         "under /prometheus, Thanos Query at its root)") from None
    intervals, why = _intervals(api)

    @cache
    def all_names() -> list[str]:
        try:
            return without_created(sorted(api.call("/api/v1/label/__name__/values",
                                                   {"start": f"{at - lookback:.3f}", "end": f"{at:.3f}"}) or []))
        except NotFound:
            return []

    @cache
    def names_now(job: str) -> list[str]:
        """What a job exports at ``at``: where a metric that disappeared went (one instant query per job)."""
        query = f"group by (__name__) ({{{Matcher('job', job).text()}}})"
        result = api.call("/api/v1/query", {"query": query, "time": f"{at:.3f}"}, post=True) or {}
        return sorted({item.get("metric", {}).get("__name__", "") for item in result.get("result", [])} - {""})

    return Inventory(source=url, series=series, present=present, types=types(api), intervals=intervals,
                     intervals_unknown=why, scraped=True, all_names=all_names, names_now=names_now)


def _series(api: API, names: list[str], at: float, lookback: float
            ) -> tuple[dict[str, list[Labels]], dict[str, dict[frozenset, float]]]:
    series: dict[str, list[Labels]] = {}
    present: dict[str, dict[frozenset, float]] = {}
    for i in range(0, len(names), BATCH):
        match = '{__name__=~"' + "|".join(names[i:i + BATCH]) + '"}'  # metric names need no regex escaping
        for labels in api.call("/api/v1/series", {"match[]": match, "start": f"{at - lookback:.3f}",
                                                  "end": f"{at:.3f}"}, post=True) or []:
            name = labels.pop("__name__", "")
            series.setdefault(name, []).append(labels)
        result = api.call("/api/v1/query", {"query": match, "time": f"{at:.3f}"}, post=True) or {}
        for item in result.get("result", []):
            labels = dict(item.get("metric", {}))
            name = labels.pop("__name__", "")
            present.setdefault(name, {})[frozenset(labels.items())] = _value(item)
    return series, present


def _value(item: dict) -> float:
    """The sample value of an instant-vector result (``"value": [time, "0"]``); NaN if the server wrote none."""
    try:
        return float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan


def types(api: API) -> dict[str, str]:
    """Metric types by family name; an empty map where the server keeps no metadata."""
    try:
        data = api.call("/api/v1/metadata") or {}
    except NotFound:
        return {}
    return {name: entries[0].get("type", "unknown") for name, entries in data.items() if entries}


def _intervals(api: API) -> tuple[dict[str, float] | None, str]:
    """The longest scrape interval of each job's active targets, or None and why it cannot be read."""
    try:
        data = api.call("/api/v1/targets", {"state": "active"}) or {}
    except NotFound:
        return None, f"{api.base} has no /api/v1/targets (as Mimir and Thanos)"
    out: dict[str, float] = {}
    for target in data.get("activeTargets", []):
        job, interval = target.get("labels", {}).get("job"), target.get("scrapeInterval")
        if job and interval:
            out[job] = max(out.get(job, 0.0), Duration.parse(interval).total_seconds)
    if not out:
        return None, f"{api.base}/api/v1/targets lists no scrape targets with an interval"
    return out, ""
