"""Every PromQL query of every runbook page of every committed spec returns series on the known world.

The on-call engineer pastes these queries into Prometheus at 3 a.m.; one that returns nothing (a label the raw
series do not carry, a recording that does not exist, a matcher on the wrong value) sends them the wrong way.
Each fenced ``promql`` block of ``generated/<service>/runbooks/*.md`` is parsed by promql-parser and evaluated
on a real Prometheus holding the spec's known world (tests/knownworld: every component busy on three
instances, recordings backfilled). The world spans 40 minutes, so a query's ``offset 7d`` (the "a week ago"
comparison) is evaluated without its offset: the same series, now.
"""

from __future__ import annotations

import re

import promql_parser
import pytest

from conftest import SPECS, output_sets
from knownworld import session_world
from obsgen.spec import load

pytestmark = pytest.mark.slow

# Each spec's output set under generated/; for a spec with environments, its last environment's only: the known
# world holds one window per spec file, and one job's SLO over 30 days would read every environment's window.
SETS = [output_sets(load(p))[-1] for p in SPECS]
COMMITTED = [spec for spec, _ in SETS]
OFFSET = re.compile(r"\s+offset\s+-?[0-9]+[a-z]+(?:[0-9]+[a-z]+)*")
FENCE = re.compile(r"^([ ]*)(`{3,})promql\n(.*?)^\1\2[ ]*$", re.S | re.M)


def _queries(folder) -> list[tuple[str, str]]:
    """(page, query) of every promql block of one output set's runbook pages, without the list indentation."""
    out = []
    for page in sorted((folder / "runbooks").glob("*.md")):
        for indent, _, body in FENCE.findall(page.read_text()):
            out.append((page.name, "\n".join(line[len(indent):] for line in body.splitlines())))
    return out


CASES = [(spec, page, query) for spec, folder in SETS for page, query in _queries(folder)]


def test_the_pages_hold_queries_to_check():
    assert len(CASES) > 200 and {s.service.name for s, _, _ in CASES} == {s.service.name for s in COMMITTED}


@pytest.mark.parametrize(("spec", "page", "query"), CASES,
                         ids=[f"{s.service.name}/{p}:{i}" for i, (s, p, _) in enumerate(CASES)])
def test_every_runbook_query_returns_series_on_the_known_world(request, spec, page, query):
    promql_parser.parse(query)  # what a person pastes must be PromQL
    world = session_world(request, COMMITTED)
    found = world.query(spec, OFFSET.sub("", query))
    assert found, f"{spec.service.name} {page}: no series for\n{query}"
