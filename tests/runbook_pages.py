"""Rendered runbook pages taken apart, and a real Prometheus to run their queries on.

A kind's tests (``tests/components/test_<kind>.py``) render a small spec, read each page's sections,
numbered steps and fenced blocks, and evaluate every PromQL block on a Prometheus server holding a
world the test wrote itself (OpenMetrics samples backfilled with ``promtool tsdb create-blocks-from
openmetrics``): a query that returns nothing, or reads another component's series, is a wrong page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser

from conftest import promtool, tool
from e2e.harness import Failure, Proc, Prometheus, free_port, wait_until
from obsgen import pipeline
from obsgen.components import service
from obsgen.spec import parse

READY_TIMEOUT_S = 30.0
STEP_S = 15
HISTORY_S = 30 * 60
"""Samples every 15 s for half an hour before the query time: every 5m (or 10m) window is full."""


def render_pages(text: str) -> dict[str, str]:
    """The runbook pages of a spec's components (its YAML ``text``), by alert name; the index and the pages of
    the service's own alerts (components/service.py, tested on their own) are left out."""
    spec = parse(text, "test.yaml")
    own = {d.name for d in service.KIND.alerts}
    out = {}
    for o in pipeline.render(spec):
        path = Path(o.path)
        if path.parent.name == "runbooks" and path.name != "README.md" and path.stem not in own:
            out[path.stem] = o.content
    return out


LAYOUT = ["What it means", "First checks", "Impact", "Diagnosis", "Mitigation", "Escalation", "Alert behaviour",
          "Reference"]


def check_layout(alert: str, page: str) -> None:
    """Every section in order, one to three first checks, and a way to confirm each mitigation step."""
    assert re.findall(r"^## (.+)$", page, re.M) == LAYOUT, alert
    assert 1 <= len(steps(section(page, "First checks"))) <= 3, alert
    for step in steps(section(page, "Mitigation")):
        assert "Confirm" in step, (alert, step)


def check_queries(alert: str, page: str, server: Server, labels: Mapping[str, set[str]], minimum: int) -> None:
    """At least ``minimum`` diagnostic queries, each pinning ``labels`` to exactly the values given (the
    service's job, the names of the components on the page) in every selector, and each returning series of
    exactly those components on ``server``."""
    queries = blocks(section(page, "Diagnosis"), "promql")
    assert len(queries) >= minimum, (alert, queries)
    name = next(k for k in labels if k != "job")
    for query in queries:
        for s in selectors(query):
            assert all(matcher_values(s, k) == v for k, v in labels.items()), (alert, query)
        found = list(results(server.query(query)))
        assert found, f"{alert}: no series for\n{query}"
        assert {m[name] for m, _ in found} == labels[name], (alert, query, found)


def section(page: str, title: str) -> str:
    """The text under ``## title`` up to the next heading or generated-block marker."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |^<!-- END GENERATED)", page, re.S | re.M)
    assert match, f"no section {title!r} in the page:\n{page}"
    return match.group(1).strip()


def steps(text: str) -> list[str]:
    """The top-level numbered items of a section, each with everything indented under it."""
    return [m.group(0) for m in re.finditer(r"^\d+\. .*?(?=^\d+\. |\Z)", text, re.S | re.M)]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced ``lang`` blocks of ``text``, without their fences and indentation."""
    out = []
    for m in re.finditer(rf"^( *)(`{{3,}}){lang}\n(.*?)^\1\2$", text, re.S | re.M):
        pad = len(m.group(1))
        out.append("\n".join(line[pad:] for line in m.group(3).splitlines()))
    return out


def selectors(query: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(promql_parser.parse(query), visit)
    return found


def matcher_values(selector: promql_parser.VectorSelector, label: str) -> set[str] | None:
    """The values ``label`` may take under ``selector``'s matchers (``a``, or ``a|b`` as a regex), or
    ``None`` when the selector does not pin the label."""
    for m in selector.matchers.matchers:
        if m.name == label:
            if m.op == promql_parser.MatchOp.Equal:
                return {m.value}
            if m.op == promql_parser.MatchOp.Re and re.fullmatch(r"[\w|]+", m.value):
                return set(m.value.split("|"))
    return None


# ---------------------------------------------------------------------------------------------
# A known world


@dataclass(frozen=True)
class Series:
    """One series of the world: a gauge's value, or a counter's rate per second (it starts at 1000)."""

    metric: str
    labels: Mapping[str, str]
    value: float
    counter: bool = False

    def text(self, at: int, start: int) -> str:
        value = 1000 + self.value * (at - start) if self.counter else self.value
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}} {value!r} {at}"


@dataclass
class World:
    """Series held constant for :data:`HISTORY_S` up to ``end`` (a Unix time a few hours back)."""

    series: list[Series] = field(default_factory=list)
    end: int = field(default_factory=lambda: (int(time.time()) // 3600 - 2) * 3600)

    def gauge(self, metric: str, value: float, **labels: str) -> None:
        self.series.append(Series(metric, labels, value))

    def counter(self, metric: str, per_second: float, **labels: str) -> None:
        self.series.append(Series(metric, labels, per_second, counter=True))

    def openmetrics(self) -> str:
        """Every series as an ``unknown`` family (a name of any suffix is then valid), in time order."""
        start = self.end - HISTORY_S
        lines = []
        for metric in sorted({s.metric for s in self.series}):
            lines.append(f"# TYPE {metric} unknown")
            for s in (s for s in self.series if s.metric == metric):
                lines += [s.text(at, start) for at in range(start, self.end + 1, STEP_S)]
        return "\n".join(lines) + "\n# EOF\n"


class Server:
    """``prometheus`` on 127.0.0.1 and a free port, over the blocks of one :class:`World`."""

    def __init__(self, world: World, root: Path) -> None:
        self.world = world
        data = root / "data"
        source = root / "world.om"
        source.write_text(world.openmetrics())
        done = promtool("tsdb", "create-blocks-from", "openmetrics", str(source), str(data), cwd=root)
        if done.returncode != 0:
            raise Failure(f"promtool could not backfill the world:\n{done.stdout}\n{done.stderr}")
        config = root / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n")
        port = free_port()
        self.client = Prometheus(f"http://127.0.0.1:{port}")
        self.proc = Proc("prometheus", [
            tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y", "--log.level=warn"],
            root)

    def __enter__(self) -> Server:
        self.proc.start()
        wait_until(lambda: self.client.api("/api/v1/status/buildinfo"), READY_TIMEOUT_S, "Prometheus to answer",
                   self.proc)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stop()

    def query(self, expr: str) -> list[dict]:
        """``expr`` evaluated at the world's end."""
        return self.client.query(expr, at=self.world.end)


def results(found: list[dict]) -> Iterator[tuple[dict[str, str], float]]:
    for r in found:
        yield r["metric"], float(r["value"][1])
