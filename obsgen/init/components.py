"""Components named by a label (caches, breakers, executors, pools, …): found by their kind's fingerprint, with
the settings their series tell read from them.

Most settings cannot be read from metrics (a breaker's failure-rate threshold lives in its config, not in a
gauge); the few that can are read by the kind's reader below, which cites the series it read. The metric
names a reader reads beyond the kind's own signals are the library's (see /work/shared/reference/metrics.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from obsgen.components.base import Kind
from obsgen.init.draft import Draft, Entry, Field, Skipped, Waiting
from obsgen.init.fingerprints import Fingerprint, defaults
from obsgen.init.scrape import Sample, Scrape

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}")
_TIERS = ("layer", "tier")  # the label a tiered cache (Caffeine L1 + Redis L2) counts each layer's lookups by
_THRESHOLD = re.compile(r"(_max|_min|_threshold)$")


class Skip(Exception):
    """A reader's reason to leave a component out: a setting the spec needs that the data does not tell."""


@dataclass
class Found:
    """One component value of a fingerprint's label and the samples that show it."""

    fingerprint: Fingerprint
    value: str
    samples: list[Sample]
    scrape: Scrape
    draft: Draft

    @property
    def label(self) -> str:
        return self.fingerprint.label

    def gauge(self, name: str) -> Sample | None:
        """The sample of ``name`` for this component (the first, if several instances report it)."""
        return next((s for s in self.scrape.named(name) if s.labels.get(self.label) == self.value), None)

    def cite(self, sample: Sample) -> str:
        self.draft.recognise(self.scrape.family_of.get(sample.name, sample.name), self.what)
        return f"{sample.text((self.label,))} = {sample.value:g}"

    @property
    def what(self) -> str:
        return f"{self.fingerprint.kind.key} {self.value}"


def component_name(value: str) -> list[Field]:
    """``name`` (and ``value`` when the label's value is not a valid component name: a route)."""
    if _NAME.fullmatch(value):
        return [Field("name", value)]
    name = re.sub(r"[^A-Za-z0-9_.:-]+", "-", value).strip("-_.:")[:63] or "component"
    return [Field("name", name), Field("value", value, "the label's exact value")]


def thresholds(kind: Kind, profile: str) -> list[Field]:
    """The kind's alert thresholds at their documented defaults: what the data cannot tell."""
    out = []
    for key, value in defaults(kind, profile).items():
        if _THRESHOLD.search(key) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out.append(Field(key, value, "default threshold: the data cannot tell"))
    return out


def recognise(fp: Fingerprint, scrape: Scrape, draft: Draft) -> None:
    """Add an entry per component of ``fp``'s kind in ``scrape`` (or a skip saying why not)."""
    found: dict[str, list[Sample]] = {}
    for ref in fp.metrics.values():
        for sample in scrape.named(ref.name):
            if fp.label in sample.labels:
                found.setdefault(sample.labels[fp.label], []).append(sample)
    _declared(fp, scrape, draft, bool(found))
    renamed = _renamed(fp, scrape, sorted(found))
    for value in sorted(found):
        item = Found(fp, value, found[value], scrape, draft)
        names = sorted({s.name for s in item.samples})
        if not fp.evidence & set(names):
            whose = "the library's" if fp.library else f"the {fp.profile} profile's own"
            draft.skipped.append(Skipped(fp.kind.key, value, (
                f"only app-defined {', '.join(names)}; none of {whose} {', '.join(sorted(fp.evidence))}")))
            continue
        try:
            told = READERS.get(fp.kind.key, lambda _: [])(item)
        except Skip as why:
            draft.skipped.append(Skipped(fp.kind.key, value, str(why)))
            for name in names:
                draft.recognise(scrape.family_of.get(name, name), f"{item.what} (skipped)")
            continue
        draft.entries.append(_entry(item, names, told, renamed.get(value, {})))


def _declared(fp: Fingerprint, scrape: Scrape, draft: Draft, found: bool) -> None:
    """The kind's families declared without a sample: read by the components found (their series come with the
    first event), or, when they are all the kind shows, a kind waiting for traffic to name its components."""
    families = sorted({f for name in fp.names if (f := scrape.declared_family(name))})
    if not families or not (found or any(scrape.declared_family(name) for name in fp.evidence)):
        return
    for family in families:
        draft.recognise(family, f"{fp.kind.key} (declared, no sample yet)")
    if not found:
        draft.waiting.append(Waiting(fp.kind.key, fp.label, tuple(families)))


def _entry(item: Found, names: list[str], told: list[Field], renamed: dict[str, tuple[dict, str]]) -> Entry:
    """The entry of one component: its name, its metrics (named by another label, or counted apart), what its
    series told, the default thresholds of the alerts it has; its comment cites each metric it was seen in,
    with the library that publishes it."""
    fp, cites = item.fingerprint, []
    left_out = {f.key for f in told if f.value is None}
    told = [f for f in told if f.value is not None]
    metrics = [f for f in told if f.key == "metrics"]
    told = [f for f in told if f.key != "metrics"]
    for name in names:
        item.draft.recognise(item.scrape.family_of.get(name, name), item.what)
        origin = next((r.origin for r in fp.metrics.values() if r.name == name), None)
        cites.append(f'{name}{{{fp.label}="{item.value}"}} ({origin or "app-defined"})')
    fields = component_name(item.value)
    if renamed:
        metrics.append(Field("metrics", {signal: ref for signal, (ref, _) in renamed.items()},
                             "; ".join(sorted({why for _, why in renamed.values()}))))
        for ref, _ in renamed.values():
            item.draft.recognise(item.scrape.family_of.get(ref["name"], ref["name"]), item.what)
    if metrics:
        merged = {k: v for f in metrics if isinstance(f.value, dict) for k, v in f.value.items()}
        fields.append(Field("metrics", merged, "; ".join(f.note for f in metrics)))
    defaults = [f for f in thresholds(fp.kind, fp.profile) if f.key not in left_out]
    return Entry(fp.kind.key, fields[0].value, [*fields, *told, *defaults], cites)


def _renamed(fp: Fingerprint, scrape: Scrape, values: list[str]) -> dict[str, dict[str, tuple[dict, str]]]:
    """App-defined metrics of the profile that name the component by a label of their own.

    A team's own counter may say ``executor_rejected_total{executor="expectation"}`` where Micrometer's gauges
    say ``name="expectationComputeExecutor"``: when one label of the counter has, for each component, exactly
    one value its name begins with, that is the component's (``metrics: {rejected: {label, value}}``), marked
    as a guess to check. Per component value: signal → (the metric as the spec writes it, why).
    """
    out: dict[str, dict[str, tuple[dict, str]]] = {}
    for signal, ref in fp.metrics.items():
        samples = scrape.named(ref.name)
        if ref.origin or not samples or any(fp.label in s.labels for s in samples):
            continue
        for label in sorted({k for s in samples for k in s.labels} - {k for k, _ in ref.matchers}):
            seen = sorted({s.labels[label] for s in samples if label in s.labels})
            match = {v: [x for x in seen if v.lower().startswith(x.lower())] for v in values}
            match = {v: xs[0] for v, xs in match.items() if len(xs) == 1}
            if match and len(set(match.values())) == len(match):
                for value, own in match.items():
                    spec = {"name": ref.name, "label": label, "value": own}
                    if ref.matchers:
                        spec["matchers"] = dict(ref.matchers)
                    why = (f"guessed, check: {ref.name} names it {label}=\"{own}\", the only value "
                           f"{value} begins with")
                    out.setdefault(value, {})[signal] = (spec, why)
                break
    return out


# --------------------------------------------------------------------------- what each kind's series tell

def _executor(item: Found) -> list[Field]:
    """Micrometer's ExecutorServiceMetrics: capacity = queued + remaining (``queue.remainingCapacity()``)."""
    queued = item.gauge(item.fingerprint.metrics["queued"].name)
    remaining = item.gauge("executor_queue_remaining_tasks")
    if queued is None or remaining is None:
        raise Skip("queue_capacity is required and the data does not tell it: no executor_queued_tasks + "
                   "executor_queue_remaining_tasks (Micrometer 1.2+) for it")
    capacity = round(queued.value + remaining.value)
    if capacity < 1:
        raise Skip(f"a queue of capacity {capacity} (a SynchronousQueue hands tasks over): nothing to fill")
    if capacity > _largest():
        raise Skip(f"an unbounded queue ({item.cite(queued)} + {item.cite(remaining)}): it never fills, so "
                   "nothing would alert before memory runs out; bound it (Spring: "
                   "spring.task.execution.pool.queue-capacity) and run init again")
    out = [Field("queue_capacity", capacity, f"{item.cite(queued)} + {item.cite(remaining)}")]
    for key, metric in (("core_threads", "executor_pool_core_threads"), ("max_threads", "executor_pool_max_threads")):
        sample = item.gauge(metric)
        if sample is not None and 1 <= sample.value <= _largest():
            out.append(Field(key, round(sample.value), item.cite(sample)))
    return out


def _largest() -> int:
    """The largest count a spec takes (``positive_int``): Java's Integer.MAX_VALUE means unbounded."""
    from obsgen.spec.schema import schema

    return schema()["$defs"]["positive_int"]["maximum"]


def _db_pool(item: Found) -> list[Field]:
    """HikariCP's ``hikaricp_connections_max`` / ``_min`` gauges (Micrometer tracker, label ``pool``)."""
    most, least = item.gauge("hikaricp_connections_max"), item.gauge("hikaricp_connections_min")
    if most is None:
        raise Skip("pool_size is required and the data does not tell it (HikariCP's hikaricp_connections_max; "
                   "the python profile has no pool-size metric): add it by hand")
    note = item.cite(most) + (f"; minimum idle {item.cite(least)}" if least is not None else "")
    return [Field("pool_size", round(most.value), note)]


def _backpressure(item: Found) -> list[Field]:
    """Resilience4j bulkheads: the semaphore's maximum, or the thread pool's size and queue capacity."""
    most = (item.gauge("resilience4j_bulkhead_max_allowed_concurrent_calls")
            or item.gauge("resilience4j_bulkhead_max_thread_pool_size"))
    if most is None:
        raise Skip("max_concurrent is required and the data does not tell it (Resilience4j's "
                   "resilience4j_bulkhead_max_allowed_concurrent_calls or _max_thread_pool_size; the python profile "
                   "has no limit metric): add it by hand")
    out = [Field("max_concurrent", round(most.value), item.cite(most))]
    capacity = item.gauge("resilience4j_bulkhead_queue_capacity")
    if capacity is not None and capacity.value >= 1:
        out.append(Field("queue_capacity", round(capacity.value), item.cite(capacity)))
    return out


def _cache(item: Found) -> list[Field]:
    """Tiers, how lookups are counted, and the alerts the data can feed (see the helpers)."""
    tiers = _tiers(item)
    out = tiers + _misses(item) + _stampede(item)
    if not any("l2" in f.value for f in tiers):
        out.append(Field("l2_failure_rate_max", None))  # CacheL2Unavailable exists only for an L2 tier
    return out


def _tiers(item: Found) -> list[Field]:
    """A cache whose lookups carry a layer label with L1/L2 values is tiered: each tier gets its own alert."""
    for label in _TIERS:
        values = sorted({s.labels[label] for s in item.samples if label in s.labels})
        tiers = {v.lower(): v for v in values if v.lower() in ("l1", "l2")}
        if tiers:
            shown = ", ".join(f'{label}="{v}"' for v in values)
            return [Field("tiers", {t: {"labels": {label: v}} for t, v in sorted(tiers.items())},
                          f"its series carry {shown}")]
    return []


def _misses(item: Found) -> list[Field]:
    """Hits and misses counted apart (``cache_hits_total`` + ``cache_misses_total``, no lookups counter):
    the spec names both, and obsgen counts lookups as their sum."""
    metrics = item.fingerprint.metrics
    hits, requests = metrics.get("hits"), metrics.get("requests")
    if hits is None or requests is None or hits.name == requests.name or item.gauge(requests.name):
        return []
    name = hits.name.replace("_hits", "_misses").replace("_hit_", "_miss_")
    misses = item.gauge(name)
    if name == hits.name or misses is None:
        return []
    return [Field("metrics", {"hits": hits.name, "misses": name},
                  f"{item.cite(misses)}: hits and misses counted apart, so lookups are their sum")]


def _stampede(item: Found) -> list[Field]:
    """CacheStampede and its panel read the single-flight lock's failures: with no such family in the data, the
    cache takes no lock (or does not count its failures), so it is drafted without one, and said."""
    ref = item.fingerprint.metrics.get("lock_failures")
    if ref is None or item.scrape.has(ref.name) or item.scrape.declared_family(ref.name):
        return []
    return [Field("single_flight", False, f"no {ref.name} in the data: no single-flight lock whose failures are "
                  "counted, so no CacheStampede; with one, count its failures and remove this"),
            Field("stampede_rate_max", None)]


def _breaker(item: Found) -> list[Field]:
    """How the state gauge encodes the state, and the defaults that decide the breaker's alerts most, said."""
    fp = item.fingerprint
    kind_defaults = defaults(fp.kind, fp.profile)
    return _encoding(item, kind_defaults["state_encoding"]) + [
        Field("minimum_calls", kind_defaults["minimum_calls"], "default: the data cannot tell; the calls the breaker "
              "needs before it judges (Resilience4j minimumNumberOfCalls, pybreaker fail_max): set yours"),
        Field("fallback", kind_defaults["fallback"], "default: none, so CircuitBreakerOpen is critical; say what "
              "callers get while it is open, if anything, and it is a warning"),
    ]


def _encoding(item: Found, default: dict) -> list[Field]:
    """Resilience4j's state gauge is one-hot (a series per ``state``); one gauge without it is an enum."""
    state = item.fingerprint.metrics.get("state")
    samples = [s for s in item.samples if state and s.name == state.name]
    if not samples:
        return []
    if "state" in samples[0].labels:
        return [] if default["type"] == "one_hot" else [
            Field("state_encoding", {"type": "one_hot"}, f"{samples[0].name} has a `state` label")]
    closed = default["closed"]
    return [Field("state_encoding", {"type": "enum", "closed": closed}, (
        f"{samples[0].name} has no `state` label: one gauge, assumed closed {closed}, half-open {closed + 1}, "
        f"open {closed + 2}; check the app's numbers"))]


def _guarded(item: Found) -> list[Field]:
    """A call's retry, time limiter and breaker are often named alike (Resilience4j's instances of one call):
    a breaker of the same label value guards it; ``breaker`` names that entry, by its spec name."""
    for entry in item.draft.entries:
        value = next((f.value for f in entry.fields if f.key == "value"), entry.name)
        if entry.kind == "breakers" and value == item.value:
            why = ("Resilience4j names a call's decorators alike" if item.fingerprint.profile == "micrometer"
                   else "a call's breaker and retry are often named alike")
            return [Field("breaker", entry.name, f"a breaker of the same name exists ({why}): check")]
    return []


# What each kind's series tell: fields to write; a field whose value is None leaves out that default threshold
# (the alert it tunes does not exist for this component).
READERS: dict[str, Callable[[Found], list[Field]]] = {
    "executors": _executor, "db_pools": _db_pool, "backpressure": _backpressure, "caches": _cache,
    "breakers": _breaker, "retries": _guarded, "time_limiters": _guarded,
}
