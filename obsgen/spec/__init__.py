"""Reading specs: safe YAML with positions → schema and semantic checks → the typed model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obsgen.components import KINDS
from obsgen.components.base import Component
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


def parse(text: str, file: str) -> Spec:
    """Check and model one spec's text; raises :class:`SpecError` with every problem found."""
    source = yaml_source.load(text, file)
    if not isinstance(source.data, dict):
        raise SpecError([source.problem((), "a spec is a mapping that starts with `apiVersion: obsgen/v1`")])
    problems = schema_problems(source)
    if problems:
        raise SpecError(problems)
    data = apply_defaults(schema(), source.data, source.data.get("service", {}).get("profile", "micrometer"))
    problems = semantic_problems(source, data)  # type: ignore[arg-type]
    if problems:
        raise SpecError(problems)
    svc = dict(data["service"])  # type: ignore[index]
    svc.setdefault("selector", {"job": svc["name"]})
    service = build(Service, svc)
    components = tuple(Component(kind, build(kind.spec, item), service)
                       for kind in KINDS for item in data.get(kind.key, []))  # type: ignore[union-attr]
    return Spec(file, service, components)


def load(path: Path) -> Spec:
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(str(path), 1, 1, (), f"the file is not UTF-8 text ({exc.reason})")]) from None
    return parse(text, str(path))
