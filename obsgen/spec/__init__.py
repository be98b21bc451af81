"""Reading specs: safe YAML with positions → schema and semantic checks → the typed model."""

from __future__ import annotations

from dataclasses import field, replace
from pathlib import Path

from obsgen.components import KINDS
from obsgen.components import service as service_kind
from obsgen.components.base import Component, OwnMatcher
from obsgen.components.compute import component_model, watched
from obsgen.errors import Problem, SpecError
from obsgen.model.build import build
from obsgen.model.records import value
from obsgen.model.service import ComponentModel
from obsgen.model.types import Service
from obsgen.spec import environments
from obsgen.spec import source as yaml_source
from obsgen.spec.checks import model_problems, own_matcher_problem, schema_problems, semantic_problems
from obsgen.spec.schema import apply_defaults, schema


@value
class Spec:
    """One service and its components, in kind order then spec order.

    ``paths`` are the components' places in the document (``("caches", 0)``) and ``source`` its positions,
    for the problems only the built model reveals (:func:`obsgen.pipeline.build`).
    """

    file: str
    service: Service
    components: tuple[Component, ...]
    name_at: tuple[int, int] = (1, 1)  # line and column of service.name, for problems across specs
    paths: tuple[tuple[str | int, ...], ...] = ()
    source: yaml_source.Source | None = field(default=None, compare=False, repr=False)
    warnings: tuple[Problem, ...] = ()
    """What builds, but will not work where it is used (links that only open inside the repository)."""
    built: tuple[ComponentModel, ...] = field(default=(), compare=False, repr=False)
    """Every component computed once while loading (the service's own first), for the pipeline to reuse."""
    environments: tuple[tuple[str, Spec], ...] = ()
    """``environments:`` of the document: each environment's name and its merged spec, in the spec's order
    (:mod:`obsgen.spec.environments`). Empty: the spec is one output set."""

    def environment(self, name: str) -> Spec:
        """The spec as it is in environment ``name``; raises ``KeyError`` when it has no such environment."""
        return dict(self.environments)[name]

    def where(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """Line and column of ``path`` (``("caches", 0, "metrics", "hits")``), else of the nearest enclosing value
        the author wrote: for tools that point back into the spec (``obsgen verify``)."""
        return self.source.where(path) if self.source is not None else (1, 1)

    def path_of(self, component: Component) -> tuple[str | int, ...]:
        """Where ``component`` is in the spec: ``("caches", 2)``; the service's own component is ``("service",)``."""
        index = next((i for i, c in enumerate(self.components) if c is component), None)
        return ("service",) if index is None else self.paths[index]

    def placed(self) -> list[tuple[Component, tuple[str | int, ...]]]:
        """Every component with its place in the document, the service's own (``components/service.py``) first."""
        own = service_kind.component(self.service)
        return [(own, ("service",))] + list(zip(self.components, self.paths or [(c.kind.key, 0)
                                                                                 for c in self.components]))


def _profile(data: dict) -> str:
    """The service's metric profile, for the schema's per-profile defaults (even when the service is malformed)."""
    service = data.get("service")
    profile = service.get("profile") if isinstance(service, dict) else None
    return profile if isinstance(profile, str) else "micrometer"


def parse(text: str, file: str) -> Spec:
    """Check and model one spec's text; raises :class:`SpecError` with every problem found.

    Loading, schema and semantic problems are reported together: semantic checks
    run on every part of the document the schema accepts.
    """
    source = yaml_source.load(text, file)
    if not isinstance(source.data, dict):
        if () not in source.broken:
            found = "a list" if isinstance(source.data, list) else f"`{source.data}`"
            source.problems.append(source.problem((), "expected a mapping that starts with `apiVersion: obsgen/v1`, "
                                                      f"found {found}"))
        raise SpecError(source.problems)
    overlays, problems = environments.split(source, tuple(kind.key for kind in KINDS))
    spec = _checked(source, problems)
    merged, problems = [], []
    for overlay in overlays:
        try:
            merged.append((overlay.name, _checked(overlay.source, [], overlay.name)))
        except SpecError as exc:
            problems += [overlay.relocate(p) for p in exc.problems]
    if problems:
        raise SpecError(problems)
    return replace(spec, environments=tuple(merged))


def _checked(source: yaml_source.Source, found: list[Problem], environment: str | None = None) -> Spec:
    """The spec of a loaded document (``environments:`` taken out; or one environment's merged document), or
    :class:`SpecError` with every problem, ``found`` included."""
    file = source.file
    problems = found + source.problems + schema_problems(source)
    located = {p.path for p in problems}
    problems += [source.problem(path, message) for path, message in source.ambiguous.items() if path not in located]
    data = apply_defaults(schema(), source.data, _profile(source.data))
    problems += semantic_problems(source, data, problems)  # type: ignore[arg-type]
    troubled = [p.path for p in problems] + list(source.broken)

    def sound(path: tuple) -> bool:
        """No problem at, under or above ``path`` (a problem with the whole list or document counts)."""
        return not any(t[:len(path)] == path or path[:len(t)] == t for t in troubled)

    if not sound(("service",)):
        raise SpecError(problems)
    svc = dict(data["service"])  # type: ignore[index]
    svc.setdefault("selector", {"job": svc["name"]})
    service = replace(build(Service, svc), environment=environment)
    placed = [(kind, (kind.key, i), item) for kind in KINDS if isinstance(data.get(kind.key), list)
              for i, item in enumerate(data[kind.key])  # a key that is not a list is a problem reported above
              if sound((kind.key, i))]
    components = tuple(Component(kind, build(kind.spec, item), service) for kind, _, item in placed)
    spec = Spec(file, service, components, source.where(("service", "name")), tuple(p for _, p, _ in placed),
                source, tuple(_link_warnings(source, service)))
    built, found = _compute(spec)
    if problems or found:
        raise SpecError(problems + found)
    return replace(spec, built=built)


def _compute(spec: Spec) -> tuple[tuple[ComponentModel, ...], list[Problem]]:
    """Every sound component computed once, and the problems only its computed rules reveal: tuning for an alert
    it does not have, a derived ``for`` beyond a day, a selector on a label its kind matches itself."""
    built, problems, checked = [], [], []
    placed = spec.placed()
    siblings = watched([c for c, _ in placed])
    for c, path in placed:
        try:
            model, offered = component_model(c, siblings)
        except OwnMatcher as exc:
            problems.append(own_matcher_problem(spec.source, path, c.kind, exc.key, exc.matcher, exc.where))
            continue
        built.append(model)
        tuned = {n: {"for": t.for_} if t.for_ is not None else {} for n, t in c.spec.alerts.items()}
        checked.append((path, c.kind.title, tuned, offered))
    return tuple(built), problems + model_problems(spec.source, checked)


def _link_warnings(source: yaml_source.Source, service: Service) -> list[Problem]:
    """Relative links work when browsing ``generated/``, not in Slack, PagerDuty or Grafana: say which keys fix it."""
    missing = [key for key, value in (("runbook_base_url", service.runbook_base_url),
                                      ("dashboard_base_url", service.dashboard_base_url))
               if not (value or "").startswith(("http://", "https://"))]
    if not missing:
        return []
    keys = " and ".join(f"`service.{k}`" for k in missing)
    return [source.problem(("service",), (
        f"warning: alerts link runbooks and dashboards with relative URLs, which open only inside this repository, "
        f"not from Slack, PagerDuty or Grafana; set {keys} (e.g. runbook_base_url: "
        f"https://git.example.com/ops/blob/main/generated/{service.name}/runbooks/, dashboard_base_url: "
        "https://grafana.example.com)"), key=True)]


def load(path: Path) -> Spec:
    try:
        size = path.stat().st_size
        if size > yaml_source.MAX_BYTES * 4:  # do not read a huge file just to say it is too large
            raise SpecError([Problem(str(path), 1, 1, (), f"expected a spec of at most {yaml_source.MAX_BYTES} "
                                     f"bytes, found {size} bytes; split the service")])
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = len(data[data.rfind(b"\n", 0, exc.start) + 1: exc.start].decode("utf-8", "replace")) + 1
        raise SpecError([Problem(str(path), line, col, (), f"expected UTF-8 text, found the byte 0x{data[exc.start]:02x} "
                                 f"({exc.reason}); save the file as UTF-8")]) from None
    except OSError as exc:
        raise SpecError([Problem(str(path), 1, 1, (), f"cannot read the file: {exc.strerror or exc}")]) from None
    return parse(text, str(path))
