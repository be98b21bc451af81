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
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import promql_parser
import yaml

from conftest import promtool, rendered, tool
from outputs import re2_alternatives, selectors

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
    """The fenced ``lang`` blocks of ``text``, without their indentation."""
    found = re.findall(rf"^([ ]*)(`{{3,}}){lang}\n(.*?)^\1\2[ ]*$", text, flags=re.S | re.M)
    return [textwrap.dedent(indent + body).strip("\n") for indent, _, body in found]


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
    assert "$INSTANCE" not in page, alert
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
    result = _promtool(tmp_path, series, tests, interval)
    if result.returncode != 0:  # show what the queries do return: the 0/1 comparisons hide it
        shown = _promtool(tmp_path, series, [{"expr": e, "eval_time": at, "exp_samples": []} for e, _ in checks],
                          interval)
        raise AssertionError(f"{result.stdout}{result.stderr}\nWhat the queries return:\n{shown.stdout}{shown.stderr}")


def _promtool(tmp_path: Path, series: dict[str, str], tests: list[dict], interval: str):
    doc = {"rule_files": [], "evaluation_interval": interval,
           "tests": [{"interval": interval, "input_series": [{"series": s, "values": v} for s, v in series.items()],
                      "promql_expr_test": tests}]}
    (tmp_path / "world.test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return promtool("test", "rules", "world.test.yaml", cwd=tmp_path, timeout=300)


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
