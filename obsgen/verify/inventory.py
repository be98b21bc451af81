"""What a server (or a saved scrape) has for the metrics a spec reads: series, types, scrape intervals.

An :class:`Inventory` is filled once, in a few batched requests, by
:mod:`obsgen.verify.prometheus` or from exposition texts by
:mod:`obsgen.verify.exposition`; the checks then only read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Labels = dict[str, str]

# Sample-name suffixes and the family types whose samples they are, with the sample's own nature.
_SUFFIXES = (("_total", ("counter",), "counter"),
             ("_bucket", ("histogram",), "counter"), ("_count", ("histogram", "summary"), "counter"),
             ("_sum", ("histogram", "summary"), "counter"),
             ("_bucket", ("gaugehistogram",), "gauge"), ("_gcount", ("gaugehistogram",), "gauge"),
             ("_gsum", ("gaugehistogram",), "gauge"), ("_created", ("counter", "histogram", "summary"), "gauge"))


def without_created(names: list[str]) -> list[str]:
    """``names`` without prometheus_client's ``x_created`` timestamps (of a counter ``x_total``, a histogram's or
    summary's ``x_count``): no metric to suggest in their place."""
    given = set(names)
    return [n for n in names if not (n.endswith("_created") and any(
        n.removesuffix("_created") + part in given for part in ("_total", "_count", "_bucket")))]


@dataclass
class Inventory:
    """Series and metadata for the metric names asked for.

    ``series`` holds every label set (without ``__name__``) seen within the lookback;
    ``present`` those with a sample at the time checked, with its value (``None``: the
    same, as for a scrape). ``intervals`` maps a job to its scrape interval in seconds (``None`` when
    the server cannot tell, with ``intervals_unknown`` saying why). ``scraped`` is false
    for exposition texts, whose series lack the labels a scrape adds.
    """

    source: str
    series: dict[str, list[Labels]] = field(default_factory=dict)
    present: dict[str, dict[frozenset, float]] | None = None
    types: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, float] | None = None
    intervals_unknown: str = ""
    scraped: bool = True
    all_names: Callable[[], list[str]] = list
    names_now: Callable[[str], list[str]] = lambda job: []  # the metric names of a job at the time checked

    def has_series(self, metric: str) -> bool:
        return bool(self.series.get(metric))

    def is_present(self, metric: str, labels: Labels) -> bool:
        if self.present is None:
            return True
        return frozenset(labels.items()) in self.present.get(metric, {})

    def targets(self, job: str) -> int:
        """How many scrape targets of ``job`` had an `up` within the lookback."""
        return sum(1 for up in self.series.get("up", []) if up.get("job") == job)

    def target_state(self, labels: Labels) -> str | None:
        """``host:port (up = 0)`` when the scrape target a series came from is down at the time checked, or
        ``host:port (no longer scraped)`` when its `up` was seen within the lookback but not then; None when
        it is up, or unknown (no `up` of it: a federated series, an exposition text).

        A target's `up` carries exactly the target's labels, and every series scraped from it carries them too."""
        if self.present is None:
            return None
        items = labels.items()
        for up in self.series.get("up", []):
            if up.items() <= items:
                value = self.present.get("up", {}).get(frozenset(up.items()))
                where = up.get("instance", ", ".join(f"{k}={v}" for k, v in sorted(up.items())))
                if value is None:
                    return f"{where} (no longer scraped)"
                return f"{where} (up = 0)" if value == 0 else None
        return None

    def known(self, metric: str) -> bool:
        """Whether the server knows the metric at all: series, or a declared type (``# TYPE``, metadata)."""
        return self.has_series(metric) or self._family(metric) is not None

    def sample_type(self, metric: str) -> str | None:
        """``counter`` or ``gauge`` for a sample of ``metric`` (a histogram's ``_bucket`` counts), else None."""
        family = self._family(metric)
        return family[1] if family and family[1] in ("counter", "gauge") else None

    def _family(self, metric: str) -> tuple[str, str] | None:
        """The family ``metric`` is a sample of, and the sample's nature: ``x_bucket`` of histogram ``x``."""
        if metric in self.types:
            return metric, self.types[metric]
        for suffix, families, nature in _SUFFIXES:
            base = metric.removesuffix(suffix)
            if base != metric and self.types.get(base) in families:
                return base, nature
        return None
