"""The pipeline's shape holds: no import cycles, renderers blind to kinds, every component built exactly once."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SPECS
from obsgen import pipeline
from obsgen.components import CATALOGUE, KINDS
from obsgen.components.base import Component
from obsgen.spec import load

PACKAGE = ROOT / "obsgen"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every obsgen module ``path`` imports, at module level or inside a function."""
    tree = ast.parse(path.read_text("utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("obsgen"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("obsgen"))
    return out


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {m: {i for i in deps if i in GRAPH and i != m} for m, deps in GRAPH.items()}


def _cycle() -> list[str] | None:
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(m: str, stack: list[str]) -> list[str] | None:
        seen[m] = 1
        for dep in sorted(GRAPH[m]):
            if dep.startswith(m + "."):
                continue  # a package importing its own submodules is not a cycle
            if seen.get(dep) == 1 and not m.startswith(dep + "."):
                return stack[stack.index(dep):] + [dep] if dep in stack else [m, dep]
            if dep not in seen:
                found = visit(dep, stack + [dep])
                if found:
                    return found
        seen[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in seen:
            found = visit(m, [m])
            if found:
                return found
    return None


def test_obsgen_has_no_import_cycle():
    assert _cycle() is None, " -> ".join(_cycle() or [])


@pytest.mark.parametrize("layer", ["obsgen.render", "obsgen.model"])
def test_renderers_and_the_model_never_import_a_kind(layer):
    offenders = {m: sorted(d for d in deps if d.startswith("obsgen.components"))
                 for m, deps in GRAPH.items() if m.startswith(layer)}
    assert not {m: d for m, d in offenders.items() if d}


def test_the_model_imports_nothing_but_itself():
    offenders = {m: sorted(d for d in deps if not d.startswith("obsgen.model"))
                 for m, deps in GRAPH.items() if m.startswith("obsgen.model")}
    assert not {m: d for m, d in offenders.items() if d}


def test_every_component_of_every_spec_is_built_exactly_once_per_render(monkeypatch):
    """The rules and panels of a kind are computed once, and every renderer reads the model."""
    calls: dict[tuple[str, str, str], int] = {}
    originals = {}
    for kind in KINDS:
        for attr in ("rules", "panels"):
            originals[(kind.key, attr)] = getattr(kind, attr)

    def counting(key: str, attr: str):
        def wrapper(c: Component, *rest):
            calls[(key, attr, c.name)] = calls.get((key, attr, c.name), 0) + 1
            return originals[(key, attr)](c, *rest)
        return wrapper

    for kind in KINDS:
        for attr in ("rules", "panels"):
            object.__setattr__(kind, attr, counting(kind.key, attr))
    try:
        for path in SPECS:
            calls.clear()
            spec = load(path)
            pipeline.render_all(spec)
            once = 1 + len(spec.environments)  # the spec itself, and each environment's merged spec, once each
            assert calls and set(calls.values()) == {once}, (path.name, {k: v for k, v in calls.items() if v != once})
    finally:
        for (key, attr), fn in originals.items():
            object.__setattr__(next(k for k in KINDS if k.key == key), attr, fn)


def test_every_related_alert_a_declaration_names_exists():
    """Checked at import (a misspelling fails at once); here so the rule has a name in the test report."""
    for definition in CATALOGUE.values():
        assert set(definition.related) <= set(CATALOGUE), definition.name


def test_a_misspelt_related_alert_fails_the_catalogue():
    from obsgen.components import _catalogue
    from obsgen.components.base import Kind
    from obsgen.model.rules import AlertDef

    bad = Kind(**{**KINDS[0].__dict__, "alerts": (AlertDef("X", "warning", "5m", "X.", related=("CacheHitRatLow",)),)})
    with pytest.raises(ValueError, match="CacheHitRatLow"):
        _catalogue((bad, *KINDS))


def test_importing_obsgen_pipeline_does_not_import_grafanalib_jinja_or_jsonschema():
    """Heavy libraries load where they are used: a no-change build never pays for them."""
    import subprocess

    code = ("import sys, obsgen.pipeline, obsgen.spec; "
            "print(sorted(m for m in ('grafanalib', 'jinja2', 'jsonschema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_obsgen_as_users_run_it_with_records_not_frozen_writes_the_same_files(tmp_path):
    """The test suite freezes records (OBSGEN_FROZEN_RECORDS=1, tests/conftest.py); users' runs do not
    (obsgen/model/records.py). Without it every module still imports (a frozen dataclass may not inherit from a
    record, nor a record from one) and a build writes the very same files."""
    import os
    import subprocess

    from obsgen.model.records import FROZEN

    assert FROZEN
    env = {k: v for k, v in os.environ.items() if k != "OBSGEN_FROZEN_RECORDS"}
    modules = sorted(m for m in GRAPH if m != "obsgen.__main__")
    code = ("import importlib, obsgen.model.records as r; assert not r.FROZEN; "
            f"[importlib.import_module(m) for m in {modules!r}]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    for out, run_env in (("users", env), ("tests", os.environ)):
        subprocess.run([sys.executable, "-m", "obsgen", "build", str(ROOT / "specs" / "maple.yaml"), "--out",
                        str(tmp_path / out)], check=True, capture_output=True, cwd=tmp_path, env=run_env)
    users, tests = ({p.relative_to(tmp_path / out): p.read_bytes() for p in (tmp_path / out).rglob("*") if p.is_file()}
                    for out in ("users", "tests"))
    assert len(users) > 50 and users == tests


def _spec_classes():
    """Every dataclass a spec is read into, with the schema node of its keys (kinds' items, their nested objects,
    the service)."""
    import dataclasses
    import typing

    from obsgen.model import types as model_types
    from obsgen.spec.schema import resolve, schema

    root, out = schema(), []

    def visit(cls, node):
        node = resolve(node)
        if not dataclasses.is_dataclass(cls) or cls in (model_types.MetricRef, model_types.AlertTuning) or any(
                c is cls for c, _ in out):
            return
        out.append((cls, node.get("properties", {})))
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            sub = node.get("properties", {}).get(f.name.rstrip("_"))
            if sub is not None:
                walk(hints[f.name], resolve(sub))

    def walk(tp, sub):
        if dataclasses.is_dataclass(tp):
            visit(tp, sub)
        for arg in typing.get_args(tp):
            items = sub.get("items") or sub.get("additionalProperties")
            inner = [resolve(p) for p in sub.get("properties", {}).values()] or ([resolve(items)] if isinstance(
                items, dict) else [sub])
            for node in inner:
                walk(arg, node)

    for kind in KINDS:
        if kind.key != "service":
            visit(kind.spec, root["properties"][kind.key]["items"])
    visit(model_types.Service, root["properties"]["service"])
    return out


def test_defaults_live_in_the_schema_only():
    """A spec key's default is the JSON Schema's (what `obsgen schema` shows editors); a dataclass default for it
    would be a second truth that drifts. Only values a kind fixes itself (keys its schema lacks) keep one."""
    import dataclasses

    classes = _spec_classes()
    assert len(classes) > 20
    doubled = [f"{cls.__name__}.{f.name}" for cls, props in classes for f in dataclasses.fields(cls)
               if f.name.rstrip("_") in props
               and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)]
    assert doubled == []


def test_spec_classes_are_built_with_the_field_types_typing_reads():
    """obsgen.model.build evaluates each annotation text once per module instead of through
    typing.get_type_hints; for every dataclass a spec is read into, the field types are the same."""
    import dataclasses
    import typing

    from obsgen.model.build import _hints

    for cls, _ in _spec_classes():
        expected = typing.get_type_hints(cls)
        assert {f.name: _hints(cls)[f.name] for f in dataclasses.fields(cls)} == {
            f.name: expected[f.name] for f in dataclasses.fields(cls)}, cls


def test_a_key_the_schema_gives_no_default_for_fails_loudly_when_missing():
    from obsgen.components.breaker import StateEncoding
    from obsgen.model.build import MissingKey, build

    with pytest.raises(MissingKey, match=r"StateEncoding.closed: the spec data has no `closed`"):
        build(StateEncoding, {"type": "enum", "label": "state"})
