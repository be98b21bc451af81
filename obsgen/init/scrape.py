"""What a service exposes, as plain samples: exposition texts, or a Prometheus' series picked by a selector.

Texts go through :mod:`obsgen.verify.exposition` (prometheus_client's own parser), servers through
:mod:`obsgen.verify.prometheus` (one instant query for the samples, the metadata for the types), so ``init``
reads exactly what ``verify`` will later check the spec against. A sample keeps its value: the data tells some
settings (an executor's queue capacity, a pool's size, a sentinel count).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from obsgen.errors import UsageError, printable

# The sample suffixes of histograms and summaries (prometheus_client writes `_created` too; nothing reads it).
_PARTS = ("_bucket", "_count", "_sum", "_created")
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
SELECTOR = re.compile(rf"{_MATCHER}(?:,{_MATCHER})*,?\s*")
# The series Prometheus writes for each scrape: its own, not the service's.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped",
                           "scrape_samples_post_metric_relabeling", "scrape_series_added"})


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float

    def text(self, keep: tuple[str, ...] | None = None) -> str:
        """``name{a="b"}``, with only the labels in ``keep`` when given (a comment cites what matters)."""
        shown = {k: v for k, v in sorted(self.labels.items()) if keep is None or k in keep}
        inner = ",".join(f'{k}="{v}"' for k, v in shown.items())
        return f"{self.name}{{{inner}}}" if inner else self.name


@dataclass
class Scrape:
    """Every sample of the sources, with each sample name's family (``x_bucket`` → ``x``) and the families' types.

    ``scraped`` is true for a server's series, which carry the labels a scrape adds (``job``, ``instance``).
    ``declared`` holds the families a text declares (``# TYPE``) without a sample, by name as people write it:
    prometheus_client writes a labelled metric so until its first ``.labels(...)`` call.
    """

    source: str
    samples: list[Sample]
    family_of: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    scraped: bool = False
    declared: dict[str, str] = field(default_factory=dict)

    def named(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.samples)

    @property
    def families(self) -> list[str]:
        return sorted(set(self.family_of.values()) | set(self.declared))

    @property
    def declared_names(self) -> set[str]:
        """The sample names the declared families will have (``x_bucket``, ``x_count``, ``x_sum`` of a histogram)."""
        return {family + part if self.declared[family] in ("histogram", "summary") else family
                for family in self.declared for part in _PARTS[:3]}

    def declared_family(self, name: str) -> str | None:
        """The declared family a sample name would belong to, if it is declared without samples (``x_bucket``:
        ``x``, when ``x`` is a histogram)."""
        if name in self.declared:
            return name
        bases = (name.removesuffix(part) for part in _PARTS[:3] if name.endswith(part))
        return next((b for b in bases if self.declared.get(b) in ("histogram", "summary")), None)


def from_texts(texts: list[tuple[str, str]]) -> Scrape:
    """The samples of exposition texts (source name, text); a text that does not parse is a UsageError."""
    from obsgen.verify.exposition import families

    scrape = Scrape(source=", ".join(source for source, _ in texts), samples=[])
    for source, text in texts:
        for family in families(source, text):
            if not family.samples:
                # the parsers drop a counter's _total from its family name; its samples will carry it
                scrape.declared[family.name + ("_total" if family.type == "counter" else "")] = family.type
            for sample in family.samples:
                if sample.name.endswith("_created") and family.type in ("counter", "histogram", "summary"):
                    continue
                name = _display(family.name, family.type, sample.name)
                scrape.family_of[sample.name] = name
                scrape.types[name] = family.type
                scrape.samples.append(Sample(sample.name, dict(sample.labels), sample.value))
    for name in set(scrape.declared) & set(scrape.family_of.values()):  # declared in one text, sampled in another
        del scrape.declared[name]
    return _without_created(scrape)


def _display(family: str, type_: str, sample: str) -> str:
    """The family as people write it: a counter by its sample name (``cache_gets_total``), a histogram by its base."""
    return sample if type_ not in ("histogram", "summary", "gaugehistogram") else family


def _without_created(scrape: Scrape) -> Scrape:
    """prometheus_client's ``x_created`` timestamps, which the text format parses as gauge families of their own."""
    names = set(scrape.family_of)
    created = {n for n in names if n.endswith("_created") and
               any(n.removesuffix("_created") + suffix in names for suffix in ("_total", "_count", "_bucket"))}
    scrape.samples = [s for s in scrape.samples if s.name not in created]
    for name in created:
        scrape.types.pop(scrape.family_of.pop(name), None)
    return scrape


def from_prometheus(url: str, client, selector: str, at: float) -> Scrape:
    """The series ``{selector}`` has at ``at`` on a Prometheus query API, with their values."""
    from obsgen.verify.prometheus import API, types
    from obsgen.verify.web import NotFound

    if not SELECTOR.fullmatch(selector):
        raise UsageError(f"--selector {printable(selector)!r}: expected label matchers such as 'job=\"checkout\"' "
                         "(several separated by commas)")
    api = API(url, client)
    try:
        result = api.call("/api/v1/query", {"query": "{" + selector + "}", "time": f"{at:.3f}"}, post=True) or {}
    except NotFound:
        raise UsageError(f"{api.base}/api/v1/query: not found; is {url} a Prometheus query API?") from None
    scrape = Scrape(source=f"{url} {{{selector}}}", samples=[], scraped=True)
    names = set()
    for item in result.get("result", []):
        labels = dict(item.get("metric", {}))
        name = labels.pop("__name__", "")
        if name in SCRAPE_SERIES:
            continue
        try:
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        names.add(name)
        scrape.samples.append(Sample(name, labels, value))
    known = types(api)
    for name in names:
        base = _base(name, names, known)
        scrape.family_of[name] = base
        scrape.types[base] = known.get(base) or known.get(name.removesuffix("_total"), "unknown")
    scrape.samples.sort(key=lambda s: (s.name, sorted(s.labels.items())))
    return _without_created(scrape)


def _base(name: str, names: set[str], known: dict[str, str]) -> str:
    """The family a sample name of a server belongs to: ``x`` for ``x_bucket`` / ``x_count`` / ``x_sum`` when the
    metadata says ``x`` is a histogram or summary, or (no metadata: Mimir, Thanos) when ``x_bucket`` exists."""
    for part in _PARTS:
        base = name.removesuffix(part)
        if base != name and (known.get(base) in ("histogram", "summary") or base + "_bucket" in names):
            return base
    return name
