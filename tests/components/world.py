"""A known world told to promtool: input series, and the values queries must return at given times.

The rules under test are the real build output of a spec (every plain rule file of
the service); promtool evaluates them exactly as Prometheus would. Expected values
are written by the test from the world it describes, never read from the generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import build_into, promtool


@dataclass(frozen=True)
class Expect:
    """At ``at``, ``expr`` returns exactly the samples ``{labels: value}`` (an empty dict: no series at all)."""

    at: str
    expr: str
    samples: dict[str, float] = field(default_factory=dict)


def build(tmp_path: Path, spec) -> Path:
    """The spec built into ``tmp_path``; returns the service's output directory."""
    build_into(tmp_path, spec)
    return tmp_path / spec.service.name


def panel_queries(service_dir: Path, board: str) -> dict[str, list[str]]:
    """Panel title → its query expressions, from a generated dashboard."""
    doc = json.loads((service_dir / "dashboards" / f"{board}.json").read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in doc["panels"] if p["type"] != "row"}


def grafana(expr: str, **variables: str) -> str:
    """A panel query as Grafana sends it: ``$__rate_interval`` and each ``$variable`` (``.*`` by default) filled in."""
    expr = expr.replace("$__rate_interval", variables.pop("__rate_interval", "5m"))
    for name in ("cluster", "job", "instance"):
        expr = expr.replace(f"${name}", variables.get(name, ".*"))
    return expr


def promql_test(directory: Path, series: dict[str, str], tests: list[dict], interval: str = "1m",
                rule_files: list[str] | tuple[str, ...] = ()):
    """``promtool test rules`` of one test over ``series`` (selector → expanding notation) with the
    ``promql_expr_test`` entries ``tests``, written to ``directory/world.test.yaml`` next to ``rule_files``."""
    doc = {"rule_files": list(rule_files), "evaluation_interval": interval,
           "tests": [{"interval": interval, "input_series": [{"series": s, "values": v} for s, v in series.items()],
                      "promql_expr_test": tests}]}
    (directory / "world.test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return promtool("test", "rules", "world.test.yaml", cwd=directory, timeout=300)


def run(service_dir: Path, series: dict[str, str], expects: list[Expect], interval: str = "1m"):
    """promtool test rules over every rule file of the service, with ``series`` (selector → expanding notation)."""
    prom = service_dir / "prometheus"
    rule_files = sorted(p.name for p in prom.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    tests = [{"expr": e.expr, "eval_time": e.at, "exp_samples": [{"labels": k, "value": v}
                                                                 for k, v in e.samples.items()]} for e in expects]
    return promql_test(prom, series, tests, interval, rule_files)


def passes(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
