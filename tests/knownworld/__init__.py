"""The known world: services' series with known truth, on a real Prometheus, for tests that check output
against reality (dashboards, runbook queries, ``obsgen verify``).

    world = KnownWorld.start(specs, tmp_dir)     # one Prometheus for every spec given
    world.url                                    # http://127.0.0.1:<port>
    world.at(spec)                               # the evaluation time of that spec's world (unix seconds)
    world.truths(spec)                           # panel title → what the panel must show
    world.query(spec, "up")                      # an instant query at that time
    world.services[spec.file].world              # the declared series (rates, levels) behind the truths
    world.stop()

In tests, :func:`session_world` gives one started world per pytest session
(every committed spec), stopped when the session ends.

Each spec's world lives in a 40-minute window of its own, two hours apart (one
TSDB block each), so specs whose selectors overlap (two services scraping Redis
as ``job="redis"``) never see each other's series. Series are 15 s apart; every
component has three instances, all up, and the service a fourth target that is
down (``up`` 0, nothing else). :mod:`knownworld.kinds` says what each kind's
instances do; :mod:`knownworld.world` how they become samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .kinds import KIND_WORLDS, Between, Ctx, ExprTruth, Truth, Truths, slo_bounds
from .prometheus import Server, backfill_recordings, backfill_samples
from .world import SPAN_S, World, openmetrics

__all__ = ["CLUSTER", "Between", "KnownWorld", "ExprTruth", "Truth", "build", "session_world"]

EPOCH = 1_699_999_200   # a multiple of 2h: each spec's window starts a TSDB block
WINDOW_GAP_S = 2 * 3600
CLUSTER = "eu-1"        # the cluster of services with a cluster label (the $cluster a dashboard shows)


@dataclass
class ServiceWorld:
    """One spec's world: its series, its truths and where in time it lives."""

    world: World
    truths: Truths
    start: int

    @property
    def end(self) -> int:
        return self.start + SPAN_S


def build(spec, start: int) -> ServiceWorld:
    """The world of ``spec`` (an :class:`obsgen.spec.Spec`) starting at ``start``."""
    cluster = {spec.service.cluster_label: CLUSTER} if spec.service.cluster_label else {}
    bounds = tuple(b for c in spec.components if c.kind.key == "slos" for b in slo_bounds(c))
    ctx = Ctx(World(), cluster, bounds)
    truths: Truths = {}
    for c, _ in spec.placed():  # the service's own component first: its ``up`` is every target's
        for title, truth in KIND_WORLDS[c.kind.key](ctx, c).items():
            if title in truths and truths[title] != truth:
                raise ValueError(f"{spec.service.name}: two components claim panel title {title!r}")
            truths[title] = truth
    return ServiceWorld(ctx.world, truths, start)


@dataclass
class KnownWorld:
    server: Server
    services: dict[str, ServiceWorld] = field(default_factory=dict)  # by spec file

    @classmethod
    def start(cls, specs, root: Path) -> KnownWorld:
        from obsgen import pipeline
        import yaml

        services = {s.file: build(s, EPOCH + k * WINDOW_GAP_S) for k, s in enumerate(specs)}
        server = Server(root / "prometheus")
        blocks = backfill_samples(openmetrics((w.world, w.start) for w in services.values()), root)
        server.add_blocks(blocks)
        server.start()
        windows = []
        for s in specs:
            groups = [g for o in pipeline.render(s) if o.path.split("/")[-2] == "prometheus"
                      and not o.path.endswith(".test.yaml") for g in yaml.safe_load(o.content)["groups"]]
            w = services[s.file]
            windows.append((groups, w.start, w.end))
        try:
            backfill_recordings(server, windows, root)
        except BaseException:
            server.stop()
            raise
        return cls(server, services)

    @property
    def url(self) -> str:
        return self.server.url

    def at(self, spec) -> int:
        return self.services[spec.file].end

    def truths(self, spec) -> Truths:
        return self.services[spec.file].truths

    def query(self, spec, expr: str) -> list[dict]:
        """``expr`` evaluated at ``spec``'s evaluation time: Prometheus' instant-vector result."""
        return self.server.client.query(expr, self.at(spec))

    def stop(self) -> None:
        self.server.stop()


def session_world(request, specs) -> KnownWorld:
    """One world per pytest session (on the config, stopped at its end); ``specs`` must be the same each call."""
    cached = getattr(request.config, "_known_world", None)
    if cached is None:
        root = request.getfixturevalue("tmp_path_factory").mktemp("known-world")
        cached = KnownWorld.start(specs, root)
        request.config._known_world = cached
        request.config.add_cleanup(cached.stop)
    return cached
