"""Runbook pages of small specs, read the way the on-call engineer reads them, and their PromQL run for real.

A page is checked for what issue 14 asks of it (sections in order, at most three first checks, every query
selecting the components that fired by the raw labels their series carry, confirmed and marked mitigation
steps, no other service's story), and each of its PromQL blocks is evaluated by promtool, the Prometheus
engine, over a known world the test writes: the values a query must return are the test's, never read from
the generator.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import yaml

from conftest import rendered, tool
from knownworld import prometheus
from obsgen import pipeline
from obsgen.components import service
from obsgen.spec import parse
from outputs import re2_alternatives, selectors

from .world import promql_test

STEP_S = 15
HISTORY_S = 30 * 60
"""Samples every 15 s for half an hour before the query time: every 5m (or 10m) window is full."""

SECTIONS = ("What it means", "First checks", "Impact", "Diagnosis", "Mitigation", "Escalation", "Alert behaviour",
            "Reference")
# Words of the seed systems' own histories (Maple, OMS, the integration report): a page of another service
# must not tell them.
FOREIGN = ("Maple", "ADR-310", "OMS", "seed 0", "integration report", "Nexon", "LockAspect")
# Steps that lose data, capacity or requests: the page must mark them.
RISKY = re.compile(r"\b(DEL|KILL|pg_terminate_backend|pg_cancel_backend|Restart an instance|Turn off|FLUSH\w*)\b")


def pages(spec, kind) -> dict[str, str]:
    """Alert name → its runbook page, as ``obsgen build`` writes it, for the alerts of ``kind`` (a ``Kind``; the
    service's own alerts, such as ServiceDown, have pages of their own)."""
    base = f"{spec.service.name}/runbooks/"
    names = {a.name for a in kind.alerts}
    return {path[len(base):-3]: text for path, text in rendered(spec).items()
            if path.startswith(base) and path[len(base):-3] in names}


def section(page: str, title: str) -> str:
    """The text under ``## title`` up to the next heading of that level."""
    return page.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def steps(text: str) -> list[str]:
    """The top-level numbered steps of a section."""
    return [s for s in re.split(r"\n(?=\d+\. )", "\n" + text) if re.match(r"\d+\. ", s)]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced ``lang`` blocks of ``text``, without their fences and the indentation of the list item they
    sit in."""
    found = re.findall(rf"^([ ]*)(`{{3,}}){lang}\n(.*?)^\1\2[ ]*$", text, flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, _, body in found]


def prose(text: str) -> str:
    """``text`` without its fenced blocks."""
    return re.sub(r"^[ ]*(`{3,})[^\n]*\n.*?^[ ]*\1[ ]*$", "", text, flags=re.S | re.M)


def group_labels(expr: str) -> set[str]:
    """Every label a query groups or matches by (``by (…)``, ``on (…)``)."""
    return {label.strip() for group in re.findall(r"\b(?:by|on) \(([^)]*)\)", expr) for label in group.split(",")
            if label.strip()}


def check_page(alert: str, page: str, *, job: str | None, identity: str | None, names: set[str],
               raw_labels: set[str], others: dict[str, tuple[str, set[str]] | None] | None = None,
               foreign: tuple[str, ...] = FOREIGN) -> None:
    """What every page of these kinds must be (issue 14 §4).

    ``identity`` is the label naming the components (``lock``), ``names`` the components that emit the alert;
    ``raw_labels`` the labels their series carry that a query may group by. ``others`` names the metrics of
    other families a page reads, with the label and values that pick them (a health check's degraded mode by
    its ``mode``), or ``None`` for a series nothing names (Prometheus' ``up``). ``job`` and ``identity`` are
    ``None`` where the queries are the team's own (custom signals). ``foreign``: the seed systems' words.
    """
    others = others or {}
    assert [page.index(f"\n## {s}\n") for s in SECTIONS] == sorted(page.index(f"\n## {s}\n") for s in SECTIONS), alert
    first = steps(section(page, "First checks"))
    assert 1 <= len(first) <= 3, (alert, first)
    queries = blocks(section(page, "Diagnosis"), "promql")
    assert queries, f"{alert}: no diagnostic query"
    for q in queries:
        promql_parser.parse(q)
        for metric, matchers in selectors(q):
            found = {label: (op, value) for label, op, value in matchers}
            if metric in others and others[metric] is None and "job" not in found:
                continue  # another scrape's series (the Redis exporter's), not the service's
            if job is not None:
                assert found.get("job") == ("Equal", job), (alert, q)
            if metric in others:
                label, allowed = others[metric] or (None, set())
            else:
                label, allowed = identity, names
            if label is None:
                continue
            op, value = found[label]
            picked = {value} if op == "Equal" else set(re2_alternatives(value))
            assert op in ("Equal", "Re") and picked <= allowed and picked, (alert, q)
        assert group_labels(q) <= raw_labels | {"le", "instance", identity}, (alert, q)
    mitigation = steps(section(page, "Mitigation"))
    assert mitigation and all("Confirm:" in s for s in mitigation), alert
    for s in mitigation:
        assert not RISKY.search(s) or "**(destructive)**" in s, (alert, s)
        assert "destructive" not in s or s.split(" ", 1)[1].startswith("**(destructive)**"), (alert, s)  # up front
    text = prose(page)
    for word in foreign:
        assert word not in text, (alert, word)
    assert not re.search(r"\$\{?INSTANCE\b", page), alert
    # every placeholder a command uses is explained in the prose around it
    for placeholder in set(re.findall(r"<[a-z]+>", "\n".join(blocks(page, "bash") + blocks(page, "sql")))):
        assert placeholder in text, (alert, placeholder)


def check_cluster_kept(spec_text: str, kind) -> None:
    """With ``cluster_label`` set (a fleet behind Thanos or Mimir), every diagnostic query keeps the cluster in
    its grouping, as the rules do: a query that dropped it would add up the same component of every cluster."""
    from obsgen.spec import parse

    fleet = parse(spec_text.replace("service: {", "service: {cluster_label: k8s_cluster, ", 1), "fleet.yaml")
    for alert, page in pages(fleet, kind).items():
        for q in blocks(section(page, "Diagnosis"), "promql"):
            grouped = re.findall(r"\bby \(([^)]*)\)", q)
            assert grouped and all("k8s_cluster" in g for g in grouped), (alert, q)


def reference_metrics(page: str) -> dict[str, bool]:
    """The Reference section's metrics list: metric → whether the page calls it app-defined."""
    lines = re.findall(r"^- `([a-zA-Z_:][a-zA-Z0-9_:]*)`: (.*)$", section(page, "Reference"), flags=re.M)
    return {metric: "**app-defined**" in what for metric, what in lines}


# ------------------------------------------------------------------------------------------------ known worlds


def evaluate(tmp_path: Path, series: dict[str, str], checks: list[tuple[str, dict[str, float]]], at: str,
             interval: str = "1m"):
    """promtool over ``series`` (selector → expanding notation): at ``at``, each query of ``checks`` returns
    exactly the series given, with those values (to 1e-9; each distinct value is one exact 0/1 comparison,
    as promtool compares samples exactly). An empty dict: the query returns no series at all."""
    tests = []
    for expr, expected in checks:
        if not expected:
            tests.append({"expr": expr, "eval_time": at, "exp_samples": []})
        for value in sorted(set(expected.values())):
            tests.append({"expr": f"abs(({expr}) - {value!r}) < bool 1e-9", "eval_time": at,
                          "exp_samples": [{"labels": labels, "value": int(v == value)}
                                          for labels, v in expected.items()]})
    result = promql_test(tmp_path, series, tests, interval)
    if result.returncode != 0:  # show what the queries do return: the 0/1 comparisons hide it
        shown = promql_test(tmp_path, series, [{"expr": e, "eval_time": at, "exp_samples": []} for e, _ in checks],
                            interval)
        raise AssertionError(f"{result.stdout}{result.stderr}\nWhat the queries return:\n{shown.stdout}{shown.stderr}")


def docs_rows(kind: str) -> dict[str, dict[str, str]]:
    """The signal table of ``kind``'s section of docs/components.md: signal → {column header: cell}."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "components.md").read_text()
    part = text.split(f"\n## {kind} (", 1)[1].split("\n## ", 1)[0]
    table = re.search(r"^\| signal \|.*?(?=\n\n)", part, flags=re.S | re.M).group(0).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header, cells))
            for cells in ([c.strip() for c in row.strip("|").split("|")] for row in table[2:])}


def check_docs(kind) -> None:
    """docs/components.md lists every signal of ``kind`` (a ``Kind``) with its default metric in each profile
    ("—" where the profile has none) and says which are published by a library (``lib``) and which the app
    defines."""
    rows = docs_rows(kind.key)
    signals = {s for profile in kind.default_metrics.values() for s in profile}
    assert set(rows) == signals, (kind.key, set(rows) ^ signals)
    for profile, metrics in kind.default_metrics.items():
        for signal, ref in metrics.items():
            row = rows[signal]
            cell = next(v for k, v in row.items() if k.startswith(("metric (micrometer and python)", profile)))
            if ref is None:
                assert cell.startswith("—"), (kind.key, profile, signal, cell)
                continue
            assert f"`{ref.name}`" in cell, (kind.key, profile, signal, cell)
            assert ("(lib" in cell) == (ref.origin is not None), (kind.key, profile, signal, cell)


@contextmanager
def exposed(registry) -> Iterator[str]:
    """``registry`` served over HTTP by prometheus_client itself, as a Python service exposes it; yields the
    ``host:port`` Prometheus would scrape (an alert's ``instance`` label)."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run_scrape_command(page: str, instance: str) -> list[str]:
    """The output lines of the page's command that reads an instance's series, run with ``<instance>`` filled in."""
    (command,) = [b for b in blocks(section(page, "Diagnosis"), "bash") if "<instance>" in b]
    tool("curl")
    out = subprocess.run(["bash", "-c", command.replace("<instance>", instance)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def only_kinds(path: Path, *kinds: str):
    """The spec at ``path`` with only the component kinds ``kinds`` (keys) and its service block as written: a
    seed system's components of these kinds, rendered without the others."""
    from obsgen.spec import parse

    data = yaml.safe_load(path.read_text())
    return parse(yaml.safe_dump({k: v for k, v in data.items() if k in ("apiVersion", "service", *kinds)},
                                sort_keys=False), path.name)


# ---------------------------------------------------------------------------------------------
# Pages of a spec's own components, checked section by section


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


def check_layout(alert: str, page: str) -> None:
    """Every section in order, one to three first checks, and a way to confirm each mitigation step."""
    assert re.findall(r"^## (.+)$", page, re.M) == list(SECTIONS), alert
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
        for s in parsed_selectors(query):
            assert all(matcher_values(s, k) == v for k, v in labels.items()), (alert, query)
        found = list(results(server.query(query)))
        assert found, f"{alert}: no series for\n{query}"
        assert {m[name] for m, _ in found} == labels[name], (alert, query, found)


def parsed_selectors(query: str) -> list[promql_parser.VectorSelector]:
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
# A known world, on a real Prometheus


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
    """A real Prometheus (tests/knownworld/prometheus.py) over the blocks of one :class:`World`, queried at the
    world's end."""

    def __init__(self, world: World, root: Path) -> None:
        self.world = world
        self.server = prometheus.Server(root)
        self.server.add_blocks(prometheus.backfill_samples(world.openmetrics(), root))

    def __enter__(self) -> Server:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def query(self, expr: str) -> list[dict]:
        """``expr`` evaluated at the world's end."""
        return self.server.client.query(expr, at=self.world.end)


def results(found: list[dict]) -> Iterator[tuple[dict[str, str], float]]:
    for r in found:
        yield r["metric"], float(r["value"][1])
