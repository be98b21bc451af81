"""Schema errors in words people act on, and the semantic checks a schema cannot express."""

from __future__ import annotations

import difflib
import json

from obsgen.components import KINDS
from obsgen.components.base import Given, Kind
from obsgen.errors import Problem
from obsgen.spec.schema import resolve, schema
from obsgen.spec.source import Source

_TYPES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "object": "a mapping", "array": "a list", "null": "nothing"}


def _found(value: object) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "nothing"}.get(type(value))
    return kind or f"`{json.dumps(value, ensure_ascii=False)[:80]}`"


def _expect(schema_node: dict) -> str:
    node = resolve(schema_node)
    if "x-expect" in node:
        return node["x-expect"]
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    if "oneOf" in node:
        return " or ".join(_expect(n) for n in node["oneOf"])
    return _TYPES.get(node.get("type", ""), "a valid value")


def schema_problems(source: Source) -> list[Problem]:
    """Every schema violation of the document, each located and explained."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema())
    problems = []
    for error in validator.iter_errors(source.data):
        path = tuple(error.absolute_path)
        v = error.validator
        if v == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(known)):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known)}"
                problems.append(source.problem(path + (key,), f"unknown key `{key}`{hint}", key=True))
            continue
        if v == "required":
            missing = error.message.split("'")[1]
            message = f"missing required key `{missing}`"
        elif v == "propertyNames":
            message = f"`{error.instance}` is not a valid label name; expected {_expect(error.schema)}"
            problems.append(source.problem(path + (error.instance,), message, key=True))
            continue
        elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                     "exclusiveMaximum": "less than"}[v]
            hint = f" ({error.schema['x-expect']})" if "x-expect" in error.schema else ""
            message = f"expected a value {bound} {error.validator_value}{hint}, found {_found(error.instance)}"
        elif v == "maxLength":
            message = f"at most {error.validator_value} characters allowed, found {len(error.instance)}"
        else:
            message = f"expected {_expect(error.schema)}, found {_found(error.instance)}"
        problems.append(source.problem(path, message))
    return problems


def _unnamed_metrics(source: Source, path: tuple, kind: Kind, profile: str, item: dict) -> list[Problem]:
    """Signals whose metric name neither the profile nor the spec's ``metrics`` gives."""
    defaults = kind.default_metrics.get(profile) or kind.default_metrics.get("*")
    signals = sorted({s for names in kind.default_metrics.values() for s in names})
    missing = [s for s in signals if s not in (defaults or {}) and s not in item.get("metrics", {})
               and s not in kind.optional]
    if not missing:
        return []
    where = path + ("metrics",) if "metrics" in item and path + ("metrics",) in source.key_positions else path
    return [source.problem(where, f"profile `{profile}` has no default metric for {kind.title.lower()} signal(s) "
                           + ", ".join(f"`{s}`" for s in missing) + "; name them under `metrics:` "
                           "(e.g. `" + missing[0] + ": my_app_metric`)")]


def semantic_problems(source: Source, data: dict) -> list[Problem]:
    """Checks across fields: duplicate names, dangling references, topology, thresholds."""
    problems: list[Problem] = []
    for key, items in data.items():
        if not isinstance(items, list):
            continue
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            name = item.get("name")
            if name in seen:
                problems.append(source.problem((key, i, "name"), f"duplicate name `{name}` "
                                               f"(also {key}[{seen[name]}]); give each component its own name"))
            seen.setdefault(name, i)
    for kind in KINDS:
        for i, item in enumerate(data.get(kind.key, [])):
            path = (kind.key, i)
            written = frozenset(p[-1] for p in source.key_positions if len(p) == 3 and p[:2] == path)
            for finding in kind.check(Given(item, written, data)):
                problems.append(source.problem(path + finding.path, finding.message, key=finding.key))
            problems += _unnamed_metrics(source, path, kind, data["service"].get("profile", "micrometer"), item)
    return problems
