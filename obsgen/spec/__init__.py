"""Reading specs: safe YAML with positions → schema and semantic checks → the typed model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from obsgen.components import KINDS
from obsgen.components.base import Component
from obsgen.errors import Path as FieldPath
from obsgen.errors import Problem, SpecError
from obsgen.model.build import build
from obsgen.model.types import Service
from obsgen.spec import source as yaml_source
from obsgen.spec.checks import schema_problems, semantic_problems
from obsgen.spec.schema import apply_defaults, schema


@dataclass(frozen=True)
class Spec:
    """One service and its components, in kind order then spec order."""

    file: str
    service: Service
    components: tuple[Component, ...]
    name_at: tuple[int, int] = (1, 1)  # line and column of service.name, for problems across specs
    # Line and column of every value the author wrote, by field path: for tools that point back into the spec.
    positions: Mapping[FieldPath, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def where(self, path: FieldPath) -> tuple[int, int]:
        """Line and column of ``path`` (``("caches", 0, "metrics", "hits")``), else of the nearest enclosing
        value the author wrote."""
        while path and path not in self.positions:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def path_of(self, component: Component) -> FieldPath:
        """Where ``component`` is in the spec: ``("caches", 2)`` (components keep the spec's order per kind)."""
        same = [c for c in self.components if c.kind.key == component.kind.key]
        return (component.kind.key, next(i for i, c in enumerate(same) if c is component))


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
    problems = source.problems + schema_problems(source)
    located = {p.path for p in problems}
    problems += [source.problem(path, message) for path, message in source.ambiguous.items() if path not in located]
    data = apply_defaults(schema(), source.data, _profile(source.data))
    problems += semantic_problems(source, data, problems)  # type: ignore[arg-type]
    if problems:
        raise SpecError(problems)
    svc = dict(data["service"])  # type: ignore[index]
    svc.setdefault("selector", {"job": svc["name"]})
    service = build(Service, svc)
    components = tuple(Component(kind, build(kind.spec, item), service)
                       for kind in KINDS for item in data.get(kind.key, []))  # type: ignore[union-attr]
    return Spec(file, service, components, source.where(("service", "name")), source.positions)


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
