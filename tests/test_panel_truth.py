"""Every panel of every committed dashboard shows the truth of a known world, on a real Prometheus.

The world (:mod:`knownworld`) is backfilled into one Prometheus for the whole
session: every component of every spec in ``specs/`` (and of the small specs in
``tests/specs/valid``, which cover other profiles, topologies and kinds) with three instances doing
known, different things (a cache hitting 80%, 50% and 40% of 10, 20 and 30
lookups/s, so 50% overall; a breaker open on one instance of three; a queue at
195 of 200 on one instance …). Each stat, time-series, state-timeline, bar gauge
and gauge panel of ``generated/<service>/dashboards/*.json`` (the committed
files, as Grafana would load them) is evaluated as Grafana would draw it
(the small specs' as obsgen renders them; :mod:`knownworld.grafana`: variables at All, range queries, the panel's
reduction, legends, value mappings) and must show exactly the world's truth:
the same series names, and the same values within float tolerance.

Which truth a panel shows is found by its title: each kind's world names the
panels of its components by title (``"<component>: hit ratio L1"``,
``"Breaker <component>: state"``), as the kind titles them; the component's
name in every title makes them unique within a service (the world refuses two
components claiming one title). A panel whose title has no truth fails, so a
new panel cannot go unproven, and so does a panel showing no data, or other
series than the world holds. Titles are what an engineer reads on the screen,
and they are stable; when panels gain a machine-readable "what this shows" key,
the lookup should move to it. Tables (the overview's firing alerts) show the
``ALERTS`` series of a running rule evaluator, which a backfilled world has
not, and are not judged here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, VALID_SPECS, output_sets, rendered
from knownworld import CLUSTER, Between, ExprTruth, session_world
from knownworld.grafana import SHOWN_KINDS, shown, variables, evaluate
from obsgen.spec import load

pytestmark = pytest.mark.slow

# Each spec's output set under generated/; for a spec with environments, its last environment's only: the known
# world holds one window per spec file, and one job's SLO over 30 days would read every environment's window.
SETS = [output_sets(load(p))[-1] for p in SPECS]
COMMITTED = [spec for spec, _ in SETS]
SMALL = [load(p) for p in VALID_SPECS]  # other profiles and topologies, and kinds no committed spec has
LOADED = COMMITTED + SMALL
REL, ABS = 1e-6, 1e-9


def _dashboards():
    """(spec, name, JSON text): the committed files of ``generated/``, and the small specs' as obsgen renders."""
    for spec, folder in SETS:
        for path in sorted((folder / "dashboards").glob("*.json")):
            yield spec, f"{folder.relative_to(ROOT / 'generated').as_posix()}/{path.stem}", path.read_text()
    for spec in SMALL:
        for path, text in sorted(rendered(spec).items()):
            if "/dashboards/" in path:
                yield spec, f"{Path(spec.file).stem}/{Path(path).stem}", text


def _panels():
    for spec, name, text in _dashboards():
        dashboard = json.loads(text)
        for panel in dashboard["panels"]:
            if panel["type"] in SHOWN_KINDS:
                yield pytest.param(spec, dashboard, panel, id=f"{name}/{panel['id']}:{panel['title']}")


@pytest.fixture(scope="module")
def world(request):
    return session_world(request, LOADED)


def same(a: float | str, b: float | str | Between) -> bool:
    if isinstance(b, Between):
        return b.low - ABS <= a <= b.high + ABS
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


@pytest.mark.parametrize(("spec", "dashboard", "panel"), list(_panels()))
def test_panel_shows_the_worlds_truth(world, spec, dashboard, panel):
    truths = world.truths(spec)
    title = panel["title"]
    assert title in truths, (f"no truth for panel {title!r} of {spec.service.name}: teach the kind's world in "
                             "tests/knownworld/kinds.py what this panel must show")
    at = world.at(spec)
    drawn = shown(world.server.client, panel, variables(dashboard, {"cluster": CLUSTER}), at)
    truth = truths[title]
    expected = evaluate(world.server.client, truth.expr, at) if isinstance(truth, ExprTruth) else truth
    assert drawn.values, f"{title!r} shows no data, but the world has {expected}; queries: {drawn.queries}"
    wrong = {k: (drawn.values.get(k), v) for k, v in expected.items()
             if k not in drawn.values or not same(drawn.values[k], v)}
    extra = sorted(set(drawn.values) - set(expected))
    assert not wrong and not extra, (
        f"{title!r} shows the wrong values (name: (shown, true)): {wrong}"
        + (f"; series the world does not have: {extra}" if extra else "")
        + f"\nqueries: {drawn.queries}")


@pytest.mark.parametrize("spec", LOADED, ids=lambda s: Path(s.file).stem)
def test_prometheus_holds_each_world_exactly_as_declared(world, spec):
    """The harness itself: every declared counter's 5m rate (across restarts) and every gauge's level, as
    Prometheus reads them at the evaluation time, are the declared numbers, and nothing else is there."""
    series = world.services[spec.file].world.series
    declared = {(s.name, s.labels): s.value for s in series}
    found = {}
    for name, kind in sorted({(s.name, s.kind) for s in series}):
        for r in world.query(spec, f"rate({name}[5m])" if kind == "counter" else name):
            labels = {k: v for k, v in r["metric"].items() if k != "__name__"}
            found[(name, tuple(sorted(labels.items())))] = float(r["value"][1])
    assert set(found) == set(declared), (f"missing: {sorted(set(declared) - set(found))[:3]}, "
                                         f"not declared: {sorted(set(found) - set(declared))[:3]}")
    off = {k: (v, declared[k]) for k, v in found.items() if not same(v, declared[k])}
    assert not off, f"Prometheus reads other numbers than the world declares: {list(off.items())[:5]}"
