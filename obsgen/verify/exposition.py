"""Exposition texts (a saved ``/metrics`` scrape, or one fetched once) as an :class:`Inventory`.

The only module of verify that knows ``prometheus_client``'s parsers: the
Prometheus text format, or OpenMetrics when the text ends with ``# EOF``. A
family declared with ``# TYPE`` but without samples (a prometheus_client
counter with labels, before its first ``.labels(...).inc()``) is kept as
known: its signal is "no series yet", not "unknown metric".
"""

from __future__ import annotations

from obsgen.errors import UsageError, printable
from obsgen.verify.inventory import Inventory


def inventory(texts: list[tuple[str, str]], names: set[str]) -> Inventory:
    """The series of ``names`` and the types of every family in ``texts`` (source name, text)."""
    inv = Inventory(source=", ".join(source for source, _ in texts), present=None, scraped=False,
                    intervals=None, intervals_unknown="exposition texts carry no scrape interval")
    everything: set[str] = set()  # sample names, and families declared without samples: for suggestions
    for source, text in texts:
        for family in families(source, text):
            if family.type not in ("unknown", "untyped"):
                inv.types.setdefault(family.name, family.type)
            if not family.samples:
                everything.add(family.name)
            for sample in family.samples:
                everything.add(sample.name)
                if sample.name in names:
                    inv.series.setdefault(sample.name, []).append(dict(sample.labels))
    found = sorted(n for n in everything if not n.endswith("_created"))
    inv.all_names = lambda: found
    return inv


def families(source: str, text: str) -> list:
    """The metric families of ``text`` (prometheus_client's own); a text that is not exposition is a UsageError."""
    if text.rstrip().endswith("# EOF"):
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    try:
        return list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise UsageError(f"{source}: not Prometheus exposition text ({_first_bad_line(text, exc)})") from None


def read(source: str, http) -> tuple[str, str]:
    """(name, text) of a saved scrape, or of one scrape of a URL (``http``: a :class:`~obsgen.verify.web.Client`)."""
    from pathlib import Path

    from obsgen.verify.web import NotFound

    if source.startswith(("http://", "https://")):
        try:
            raw = http.get(source, accept="text/plain;version=0.0.4;q=1, */*;q=0.1")
        except NotFound:
            raise UsageError(f"--metrics {source}: the server has no such page (HTTP 404, 405 or 501); check the "
                             "path: /metrics, or Spring Boot's /actuator/prometheus") from None
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"--metrics {source}: {exc.strerror or exc}{_url_hint(source)}") from None
    try:
        return source, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--metrics {source}: not UTF-8 text") from None


def _url_hint(source: str) -> str:
    """A file that is not there but looks like a URL (``host:port/metrics``, ``htp://…``): say how to write one."""
    import re

    scheme, sep, rest = source.partition("://")
    if sep:
        return f"; a URL starts with http:// or https:// (not {printable(scheme)}://)"
    if re.match(r"[A-Za-z0-9.-]+:[0-9]+(/|$)", source):
        return f"; for a URL write http://{printable(source)}"
    return ""


def _first_bad_line(text: str, exc: ValueError) -> str:
    """The parser's complaint with the line it is about (it names none): each sample line alone is valid text."""
    from prometheus_client.parser import text_string_to_metric_families

    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            try:
                list(text_string_to_metric_families(line + "\n"))
            except ValueError:
                shown = line if len(line) <= 80 else line[:77] + "..."
                return f"line {number}: `{printable(shown)}`"
    return str(exc)
