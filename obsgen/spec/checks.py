"""Schema errors in words people act on, and the semantic checks a schema cannot express.

Both run in one pass so a run reports every problem of a file: semantic checks
run on the parts the schema accepts. A component whose own subtree has a
schema problem is not given to its kind's ``check`` (its fields may have any
type); the generic checks (duplicate names, metric names per profile) skip
what they cannot read.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable

from obsgen.components import KINDS
from obsgen.components.base import Given, Kind
from obsgen.errors import Path, Problem
from obsgen.model.types import Duration
from obsgen.spec.schema import resolve, schema
from obsgen.spec.source import Source

_TYPES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "object": "a mapping", "array": "a list", "null": "nothing"}
_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}
# An alert that must be bad for longer than a day is a report, not an alert; its promtool test would also
# replay more than a day of samples.
MAX_FOR = Duration.parse("1d")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {dict: "object", list: "array", str: "string", float: "number", type(None): "null"}.get(type(value), "?")


def _found(value: object, text: str | None = None) -> str:
    """What the spec says, as the user wrote it (``no`` rather than false)."""
    if text is not None and not isinstance(value, str):
        what = "false" if value is False else "true" if value is True else None
        if value is None:
            return "nothing" if text in ("", "~", "null", "Null", "NULL") else f"`{text}` (YAML reads it as null)"
        if what and text not in ("true", "false", "True", "False", "TRUE", "FALSE"):
            return f"`{text}` (YAML reads it as {what}; quote it to mean the text)"
        if not isinstance(value, bool) and text != json.dumps(value):
            return f"`{text}` (YAML reads it as the number {json.dumps(value)}; quote it to mean the text)"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "nothing"}.get(type(value))
    if kind:
        return kind
    shown = json.dumps(value, ensure_ascii=False)
    return f"`{shown[:80]}…` ({len(value)} characters)" if len(shown) > 80 and isinstance(value, str) else \
        f"`{shown[:80]}`"


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


def _matches_type(node: dict, value: object) -> bool:
    node = resolve(node)
    if "type" not in node:
        return "enum" not in node and "const" not in node
    wanted = node["type"] if isinstance(node["type"], list) else [node["type"]]
    have = _json_type(value)
    return have in wanted or (have == "integer" and "number" in wanted)


class _Reporter:
    def __init__(self, source: Source):
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: Path, message: str, *, key: bool = False) -> None:
        if any(path[: len(b)] == b for b in self.source.broken):
            return  # the loader already reported this value
        self.problems.append(self.source.problem(path, message, key=key))

    def found(self, path: Path, value: object) -> str:
        return _found(value, self.source.texts.get(path))

    def error(self, error) -> None:  # jsonschema.ValidationError
        path: Path = tuple(error.absolute_path)
        v, instance = error.validator, error.instance
        if v == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            for key in sorted(set(instance) - set(known)):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known)}"
                self.add(path + (key,), f"unknown key `{key}`{hint}", key=True)
        elif v in ("oneOf", "anyOf"):
            branches = error.schema[v]
            fitting = [i for i, b in enumerate(branches) if _matches_type(b, instance)]
            if len(fitting) == 1:  # the branch the author meant (a mapping for a metric): its own errors
                for sub in error.context or []:
                    if sub.relative_schema_path and sub.relative_schema_path[0] == fitting[0]:
                        self.error(sub)
            else:
                self.add(path, f"expected {_expect(error.schema)}, found {self.found(path, instance)}")
        elif v == "required":
            missing = error.message.split("'")[1]
            sub = error.schema.get("properties", {}).get(missing)
            hint = f" ({_expect(sub)})" if sub else ""
            self.add(path, f"missing required key `{missing}`{hint}")
        elif v == "propertyNames":
            self.add(path + (instance,), f"`{instance}` is not a valid label name; expected {_expect(error.schema)}",
                     key=True)
        elif v in _BOUNDS:
            hint = f" ({error.schema['x-expect']})" if "x-expect" in error.schema else ""
            self.add(path, f"expected a value {_BOUNDS[v]} {error.validator_value}{hint}, "
                           f"found {self.found(path, instance)}")
        elif v == "maxLength":
            self.add(path, f"expected at most {error.validator_value} characters, found {len(instance)}")
        elif v == "enum" and isinstance(instance, str):
            close = difflib.get_close_matches(instance, [str(e) for e in error.validator_value], n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            self.add(path, f"expected {_expect(error.schema)}, found {self.found(path, instance)}{hint}")
        else:
            quote = ("; quote it to make it a string" if error.schema.get("type") == "string"
                     and isinstance(instance, (int, float, bool)) else "")
            self.add(path, f"expected {_expect(error.schema)}, found {self.found(path, instance)}{quote}")


def schema_problems(source: Source) -> list[Problem]:
    """Every schema violation of the document, each located and explained."""
    from jsonschema import Draft202012Validator

    reporter = _Reporter(source)
    for error in Draft202012Validator(schema()).iter_errors(source.data):
        reporter.error(error)
    return reporter.problems


def _unnamed_metrics(source: Source, path: tuple, kind: Kind, profile: str, item: dict) -> list[Problem]:
    """Signals whose metric name neither the profile nor the spec's ``metrics`` gives."""
    defaults = kind.default_metrics.get(profile) or kind.default_metrics.get("*")
    signals = sorted({s for names in kind.default_metrics.values() for s in names})
    missing = [s for s in signals if s not in (defaults or {}) and s not in item.get("metrics", {})]
    if not missing:
        return []
    where = path + ("metrics",) if "metrics" in item and path + ("metrics",) in source.key_positions else path
    return [source.problem(where, f"profile `{profile}` has no default metric for {kind.title.lower()} signal(s) "
                           + ", ".join(f"`{s}`" for s in missing) + "; name them under `metrics:` "
                           "(e.g. `" + missing[0] + ": my_app_metric`)")]


def _duplicate_names(source: Source, key: str, items: list) -> Iterable[Problem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            yield source.problem((key, i, "name"), f"duplicate name `{name}` (also {key}[{seen[name]}]); "
                                                   "give each component its own name")
        seen.setdefault(name, i)


def _alert_durations(source: Source, path: Path, item: dict) -> Iterable[Problem]:
    for alert, tuning in item.get("alerts", {}).items():
        if "for" in tuning and Duration.parse(tuning["for"]) > MAX_FOR:
            yield source.problem(path + ("alerts", alert, "for"), (
                f"expected a `for` of at most {MAX_FOR}, found {tuning['for']}: trouble that must last longer "
                "than a day before anyone hears of it is a report, not an alert"))


def _invalid(problems: list[Problem], source: Source) -> set[Path]:
    """Every path with a problem at or below it, and all its ancestors."""
    out: set[Path] = set()
    for path in [p.path for p in problems] + sorted(source.broken, key=len):
        for n in range(len(path) + 1):
            out.add(tuple(path[:n]))
    return out


def semantic_problems(source: Source, data: dict, known: list[Problem] | None = None) -> list[Problem]:
    """Checks across fields: duplicate names, dangling references, topology, thresholds.

    ``known`` are the problems found so far (schema, loading): components they
    touch are not checked by their kind, whose ``check`` may assume valid data.
    """
    known = known or []
    invalid = _invalid(known, source)
    problems: list[Problem] = []
    view: dict = {k: v for k, v in data.items() if k not in {kind.key for kind in KINDS}}
    for kind in KINDS:
        items = data.get(kind.key, [])
        items = items if isinstance(items, list) else []
        problems += _duplicate_names(source, kind.key, items)
        view[kind.key] = [item for item in items if isinstance(item, dict)]
    service = data.get("service")
    profile = service.get("profile", "micrometer") if isinstance(service, dict) and \
        ("service", "profile") not in invalid else None
    for kind in KINDS:
        if (kind.key,) in invalid and not isinstance(data.get(kind.key), list):
            continue
        for i, item in enumerate(data.get(kind.key, [])):
            path = (kind.key, i)
            if path in invalid or not isinstance(item, dict):
                continue
            written = frozenset(p[-1] for p in source.key_positions if len(p) == 3 and p[:2] == path)
            paths = frozenset(p[2:] for p in source.key_positions if len(p) > 2 and p[:2] == path)
            try:
                findings = kind.check(Given(item, written, view, paths))
            except (KeyError, TypeError, ValueError, AttributeError):
                if not known:
                    raise  # on a valid spec a failing check is a bug in the kind
                findings = []  # it read another component that is itself broken; fix those problems first
            for finding in findings:
                problems.append(source.problem(path + finding.path, finding.message, key=finding.key))
            problems += _alert_durations(source, path, item)
            if profile is not None:
                problems += _unnamed_metrics(source, path, kind, profile, item)
    return problems
