"""Each kind's metric fingerprint in a profile, derived from what the kind declares (one source of truth).

A kind's ``default_metrics`` name the metric behind every signal it reads, and its schema's ``label`` default
names the label that tells its components apart (``cache``, ``name``, ``pool``). So a component of that kind
is a value of that label on one of those metrics: ``cache_gets_total{cache="equipment"}`` is the cache
``equipment``. Metrics a library publishes (their ``MetricRef.origin`` names it) prove a component exists;
the app-defined ones of the profile (``cache_lock_failure_total{cache}``) only attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsgen.components import KINDS
from obsgen.components.base import Kind
from obsgen.model.types import MetricRef

PROFILES = ("micrometer", "python")


@dataclass(frozen=True)
class Fingerprint:
    kind: Kind
    profile: str
    label: str
    metrics: dict[str, MetricRef]
    """Signal → metric, for the signals the profile has a metric for."""

    @property
    def names(self) -> set[str]:
        return {ref.name for ref in self.metrics.values()}

    evidence: frozenset[str] = frozenset()
    """The metrics that prove a component of the kind in this profile (see :func:`fingerprints`)."""

    @property
    def library(self) -> set[str]:
        """The metrics a library publishes; empty when the profile's names are all the app's own (python)."""
        return {ref.name for ref in self.metrics.values() if ref.origin}


def defaults(kind: Kind, profile: str) -> dict:
    """Every schema default of one component of ``kind`` in ``profile`` (``label``, the thresholds, …)."""
    from obsgen.spec.schema import apply_defaults, schema

    return apply_defaults(schema()["$defs"][kind.schema], {}, profile)


def fingerprints(profile: str) -> list[Fingerprint]:
    """The kinds whose components a label names on app metrics, in kind order (HTTP, SLOs and Redis have
    readers of their own: a service has one HTTP server, an SLO is chosen, Redis is an exporter's)."""
    out = []
    for kind in KINDS:
        label = defaults(kind, profile).get("label")
        metrics = {s: r for s, r in kind.defaults(profile).items() if r is not None}
        if kind.app_metrics and kind.identified and label and metrics:
            out.append(Fingerprint(kind, profile, label, metrics, _evidence(kind, profile, metrics)))
    return out


def _evidence(kind: Kind, profile: str, metrics: dict[str, MetricRef]) -> frozenset[str]:
    """The metrics a component must show to be one of ``kind`` in ``profile``: the ones a library publishes;
    else (the python profile names only an app's own) the ones no other profile names for the kind, so that
    ``cache_lock_failure_total``, which both profiles read, proves no cache in either; else (a kind named alike
    in every profile: health checks, streams) any of them."""
    names = {ref.name for ref in metrics.values()}
    library = {ref.name for ref in metrics.values() if ref.origin}
    if library:
        return frozenset(library)
    shared = {ref.name for p in PROFILES if p != profile for ref in kind.defaults(p).values() if ref is not None}
    return frozenset(names - shared or names)


def profile_names(profile: str) -> set[str]:
    """Every metric name the kinds read in ``profile``: how much of a scrape each profile explains."""
    return {ref.name for kind in KINDS for ref in kind.defaults(profile).values() if ref is not None}
