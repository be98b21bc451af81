"""Schema errors in words people act on, and the semantic checks a schema cannot express.

Both run in one pass so a run reports every problem of a file: semantic checks
run on the parts the schema accepts. A component whose own subtree has a
schema problem is not given to its kind's ``check`` (its fields may have any
type); the generic checks (duplicate names, metric names per profile) skip
what they cannot read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from obsgen.components import KINDS
from obsgen.components.base import OBSGEN_LABELS, Given, Kind, never_fires
from obsgen.model.promql import number
from obsgen.model.rules import Alert
from obsgen.components.timeline import MAX_FOR, MIN_WINDOW, STEP
from obsgen.errors import Path, Problem, closest
from obsgen.model.types import Duration
from obsgen.spec.schema import resolve, schema
from obsgen.spec.source import Source

_TYPES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "object": "a mapping", "array": "a list", "null": "nothing"}
_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}
NO_INSTANCE = ("`instance` cannot be matched here: obsgen judges every instance on its own and its promtool tests "
               "give each scenario its own instance; select the job or another target label instead")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {dict: "object", list: "array", str: "string", float: "number", type(None): "null"}.get(type(value), "?")


def _found(value: object, text: str | None = None, wants_text: bool = False) -> str:
    """What the spec says, as the user wrote it (``no`` rather than false, ``1:30`` rather than 90)."""
    if text is not None and not isinstance(value, str):
        hint = "; quote it to mean the text" if wants_text else ""
        if value is None:
            return "nothing" if text in ("", "~", "null", "Null", "NULL") else f"`{text}` (YAML reads it as null{hint})"
        if isinstance(value, bool) and text not in ("true", "false", "True", "False", "TRUE", "FALSE"):
            return f"`{text}` (YAML reads it as {str(value).lower()}{hint})"
        if not isinstance(value, bool) and not _plain_number(text, value):
            return f"`{text}` (YAML reads it as the number {json.dumps(value)}{hint})"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", type(None): "nothing"}.get(type(value))
    if kind:
        return kind
    shown = json.dumps(value, ensure_ascii=False)
    return f"`{shown[:80]}…` ({len(value)} characters)" if len(shown) > 80 and isinstance(value, str) else \
        f"`{shown[:80]}`"


def _plain_number(text: str, value: object) -> bool:
    """Whether ``text`` reads as ``value`` the way anyone would read it (not YAML 1.1's ``1:30`` or ``010``)."""
    for read in (int, float):
        try:
            return read(text) == value
        except ValueError:
            continue
    return False


def _expect(schema_node: dict) -> str:
    if "x-expect" in schema_node:
        return schema_node["x-expect"]
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

    def found(self, path: Path, value: object, schema_node: dict | None = None) -> str:
        wants_text = schema_node is not None and resolve(schema_node).get("type") == "string"
        return _found(value, self.source.texts.get(path), wants_text)

    def error(self, error) -> None:  # jsonschema.ValidationError
        path: Path = tuple(error.absolute_path)
        v, instance = error.validator, error.instance
        if v == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            for key in sorted(set(instance) - set(known)):
                close = closest(key, known)
                hint = f"; did you mean `{close}`?" if close else f"; known keys: {', '.join(known)}"
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
        elif "propertyNames" in error.schema_path:  # a key of a selector: jsonschema reports it at the mapping
            self.add(path + (instance,), f"expected {_expect(error.schema)} as key, found {_found(instance)}",
                     key=True)
        elif v in _BOUNDS:
            hint = f" ({error.schema['x-expect']})" if "x-expect" in error.schema else ""
            self.add(path, f"expected a value {_BOUNDS[v]} {error.validator_value}{hint}, "
                           f"found {self.found(path, instance)}")
        elif v == "maxLength":
            self.add(path, f"expected at most {error.validator_value} characters, found {len(instance)}")
        elif v == "enum" and isinstance(instance, str):
            close = closest(instance, [str(e) for e in error.validator_value])
            hint = f"; did you mean `{close}`?" if close else ""
            self.add(path, f"expected {_expect(error.schema)}, found {self.found(path, instance, error.schema)}{hint}")
        else:
            found = self.found(path, instance, error.schema)
            quote = ("; quote it to make it a string" if error.schema.get("type") == "string"
                     and isinstance(instance, (int, float, bool)) and "quote it" not in found else "")
            self.add(path, f"expected {_expect(error.schema)}, found {found}{quote}")


def schema_problems(source: Source) -> list[Problem]:
    """Every schema violation of the document, each located and explained."""
    from jsonschema import Draft202012Validator

    reporter = _Reporter(source)
    for error in Draft202012Validator(schema()).iter_errors(source.data):
        reporter.error(error)
    return reporter.problems


def _unnamed_metrics(source: Source, path: tuple, kind: Kind, profile: str, item: dict) -> list[Problem]:
    """Signals whose metric name neither the profile nor the spec's ``metrics`` gives."""
    defaults = kind.defaults(profile)
    signals = sorted({s for names in kind.default_metrics.values() for s in names})
    missing = [s for s in signals if s not in defaults and s not in item.get("metrics", {})
               and s not in kind.optional]
    if not missing:
        return []
    where = path + ("metrics",) if "metrics" in item and path + ("metrics",) in source.key_positions else path
    return [source.problem(where, f"profile `{profile}` has no default metric for {kind.title.lower()} signal(s) "
                           + ", ".join(f"`{s}`" for s in missing) + "; name them under `metrics:` "
                           "(e.g. `" + missing[0] + ": my_app_metric`)")]


def _shared_series(source: Source, path: tuple, kind: Kind, profile: str, item: dict) -> Iterable[Problem]:
    """Two signals of one component read from the very same series (``active`` and ``queued`` both ``x``)."""
    given = item.get("metrics", {})
    first: dict[tuple, str] = {}
    for signal in sorted(set(kind.defaults(profile)) | set(given)):
        ref = kind.metric_ref(profile, given, signal)
        if ref is None:
            continue
        seen = first.setdefault((ref.name, ref.matchers), signal)
        if seen != signal and {seen, signal} not in kind.same_series:
            at = path + ("metrics", signal) if signal in given else path + ("metrics", seen)
            yield source.problem(at, f"signals `{seen}` and `{signal}` both read {ref.name}"
                                     + (f" with {dict(ref.matchers)}" if ref.matchers else "")
                                     + "; each signal needs its own metric (or its own matchers)")


def _split_families(source: Source, path: Path, kind: Kind, profile: str, item: dict) -> Iterable[Problem]:
    """A ratio whose part and total are one metric family needs its rest in that family too.

    Within ``cache_gets_total`` the hits are ``{result="hit"}``: the misses are
    the family's other series, and a ``misses`` metric elsewhere would count
    something the ratio's total does not (the dashboards and the generated tests
    would disagree with the alert).
    """
    given = item.get("metrics", {})
    for ratio in kind.ratios:
        part, total, rest = (kind.metric_ref(profile, given, s) for s in (ratio.part, ratio.total, ratio.rest))
        if part is None or total is None or part.name != total.name or (rest and rest.name == total.name):
            continue
        family = total.name
        example = next((m.matchers for names in kind.default_metrics.values() if (m := names.get(ratio.rest))
                        and m.matchers), (("result", "miss"),))
        hint = f"`{ratio.rest}: {{name: {family}, matchers: {{{', '.join(f'{k}: {v}' for k, v in example)}}}}}`"
        if rest is None:
            yield source.problem(path + ("metrics",), f"`{ratio.part}` and `{ratio.total}` are one metric family "
                                 f"({family}): name its {ratio.rest} too (e.g. {hint})", key=True)
        else:
            where = path + ("metrics", ratio.rest) if ratio.rest in given else path + ("metrics",)
            yield source.problem(where, (
                f"`{ratio.part}` and `{ratio.total}` are one metric family ({family}), so `{ratio.rest}` must be its "
                f"other series, found {rest.name}; name them there (e.g. {hint}) or give `{ratio.total}` a metric "
                "of its own"), key=ratio.rest not in given)


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


def _step_durations(source: Source, path: Path, kind: Kind, item: dict) -> Iterable[Problem]:
    """Durations on the evaluation clock (``$defs/steps``) and range windows (``$defs/window``).

    Prometheus fires an alert only at a rule evaluation, and obsgen's promtool tests
    evaluate every 15s: a `for` or a window between two evaluations has no test
    that can prove it. A window of less than a minute holds fewer than four
    samples at the usual 15s scrape interval, too few for rate() to mean anything.
    """
    node = schema()["$defs"][kind.schema]
    why = {"steps": "Prometheus only fires an alert at a rule evaluation, and obsgen's promtool tests evaluate "
                    f"every {STEP}",
           "window": f"obsgen's promtool tests feed a sample every {STEP}, and prove the alert with stories told in "
                     "whole samples"}
    for definition, reason in why.items():
        for where, text, _ in _values(node, item, definition):
            if Duration.parse(text).millis % STEP.millis:
                yield source.problem(path + where, f"expected `{where[-1]}` in whole steps of {STEP} (such as 30s, "
                                                   f"1m or 4m15s), found {text}: {reason}")
    for where, text, _ in _values(node, item, "window"):
        if Duration.parse(text) < MIN_WINDOW:
            yield source.problem(path + where, (
                f"expected a window of at least {MIN_WINDOW}, found {text}: at the usual {STEP} scrape interval a "
                f"shorter window holds fewer than four samples, too few for rate() and avg_over_time() to mean "
                f"anything"))


def _values(node: dict, value: object, definition: str, path: Path = ()) -> Iterable[tuple[Path, object, dict]]:
    """Every value inside ``value`` that the schema types as ``$defs/<definition>``, with its path and the
    schema node that refers to the definition (where annotations such as ``x-alert`` are)."""
    if node.get("$ref") == f"#/$defs/{definition}":
        yield path, value, node
        return
    node = resolve(node)
    if "oneOf" in node:
        node = next((n for n in node["oneOf"] if _matches_type(n, value)), {})
        node = resolve(node)
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, sub in value.items():
            if key in props or isinstance(extra, dict):
                yield from _values(props.get(key, extra), sub, definition, path + (key,))
    elif isinstance(value, list) and "items" in node:
        for i, sub in enumerate(value):
            yield from _values(node["items"], sub, definition, path + (i,))


# A threshold at its bound: (schema definition, the value, the sentence that says why the alert cannot fire).
_IMPOSSIBLE = (("ratio_max", 1, "and a share is never above 100%"), ("ratio_min", 0, "and a share is never below 0"))


def _impossible_thresholds(source: Source, path: Path, kind: Kind, given: Given) -> Iterable[Problem]:
    """Ratio thresholds (``$defs/ratio_max``, ``ratio_min``) at which their alert (``x-alert``) can never fire."""
    node = schema()["$defs"][kind.schema]
    for definition, bound, why in _IMPOSSIBLE:
        for where, value, ref in _values(node, given.item, definition):
            # as the rule prints it: 0.9999999999999999 is written `> 1` (15 significant digits)
            if isinstance(value, (int, float)) and float(number(value)) == bound:
                shown = number(value) + (" as a rule writes it (15 digits)" if value != bound else "")
                for f in never_fires(given, where, ref["x-alert"], f"`{where[-1]}` is {shown} {why}"):
                    yield source.problem(path + f.path, f.message)


def _cluster_selected(source: Source, cluster: str | None, data: dict) -> Iterable[Problem]:
    """Selectors that pin the cluster label: the rules judge every cluster apart (and their tests feed one)."""
    if not cluster:
        return
    places = [(("service", "selector"), data["service"].get("selector", {}))]
    for kind in KINDS:
        for i, item in enumerate(data.get(kind.key, []) if isinstance(data.get(kind.key), list) else []):
            places += [((kind.key, i) + where, labels)
                       for where, labels, _ in _values(schema()["$defs"][kind.schema], item, "selector")]
    for where, labels in places:
        if isinstance(labels, dict) and cluster in labels:
            yield source.problem(where + (cluster,), (
                f"`{cluster}` is the service's cluster_label: every rule keeps it and judges each cluster on its "
                "own, so a selector may not pin it; remove it (rules for one cluster only: leave cluster_label "
                "out)"), key=True)


def _label_clashes(source: Source, path: Path, kind: Kind, profile: str, item: dict,
                   service_selector: dict) -> Iterable[Problem]:
    """Matchers that obsgen's own labels would silently override, or that its promtool tests cannot honour."""
    identity = item.get("label") if kind.app_metrics else None
    if identity in OBSGEN_LABELS:
        yield source.problem(path + ("label",), (
            f"expected the label that holds the {kind.title.lower()}'s name, found `{identity}`, which obsgen sets "
            f"itself ({', '.join(OBSGEN_LABELS)}): alerts would show its value instead of the name"))
        return
    if identity == "le":
        yield source.problem(path + ("label",), (
            f"expected the label that holds the {kind.title.lower()}'s name, found `le`, the bucket label of "
            "Prometheus histograms: every latency quantile aggregates by it"))
        return
    matched: dict[str, list[str]] = {}
    for signal, ref in sorted(kind.defaults(profile).items()):
        if ref is not None and signal not in item.get("metrics", {}):
            for k, v in ref.matchers:
                matched.setdefault(k, []).append(f"`{signal}` selects {k}={json.dumps(v)}")
    if identity in matched:
        yield source.problem(path + ("label",), (
            f"expected the label that holds the {kind.title.lower()}'s name, found `{identity}`, which its metrics "
            f"match themselves ({', '.join(matched[identity])})"))
        return
    places = [(w, v) for w, v, _ in _values(schema()["$defs"][kind.schema], item, "selector") if isinstance(v, dict)]
    if kind.app_metrics:  # the service's selector is part of every app-metric selector of the component
        places.append((("service", "selector"), service_selector))
    for where, labels in places:
        for key in labels:
            at = where + (key,) if where[0] == "service" else path + where + (key,)
            if key == "instance" and where[0] == "service":
                continue  # reported once for the service
            if key == "instance":
                yield source.problem(at, NO_INSTANCE, key=True)
            elif key == identity:
                yield source.problem(at, f"`{key}` is the label that names {kind.title.lower()} `{item.get('name')}` "
                                          "(its `label`), always matched to that name; remove it here, or set "
                                          "`label` to the label that holds the name", key=True)
            elif key in matched and "metrics" not in where:
                yield source.problem(at, f"`{key}` is matched by the {kind.title.lower()}'s own metrics ("
                                          + ", ".join(matched[key]) + "), which would override this; remove it, or "
                                          "override the metric under `metrics:`", key=True)
    metrics = item.get("metrics") if isinstance(item.get("metrics"), dict) else {}
    for signal, ref in sorted(metrics.items()):
        own = ref.get("label") if isinstance(ref, dict) else None
        if own in OBSGEN_LABELS:  # instance above all: every rule judges each instance by it
            yield source.problem(path + ("metrics", signal, "label"), (
                f"expected the label that names the {kind.title.lower()} in `{ref.get('name')}`, found `{own}`, "
                f"which obsgen sets or groups by itself ({', '.join(OBSGEN_LABELS)}); name the label the metric "
                "really carries the name in"))


def _metric_matcher_keys(kind: Kind, item: dict) -> set[str]:
    """Labels the kind's default metrics match (reported by :func:`_label_clashes` with a better message)."""
    return {k for names in kind.default_metrics.values() for ref in names.values() for k, _ in ref.matchers}


def model_problems(source: Source, components: Sequence[tuple[Path, str, Mapping, Sequence[Alert]]]) -> list[Problem]:
    """What only the built components can tell: tuning for an alert a component does not have (a sentinel alert
    on a cluster, L2 without an l2 tier), and a ``for`` derived from the component's timing (a health check's
    interval × failure_threshold) beyond a day. ``components`` are (spec path, kind title, tuning, every alert offered,
    disabled ones included), from the one build of the model."""
    problems = []
    for path, title, tuned, offered in components:
        emitted = sorted({a.name for a in offered})
        for name in tuned:
            if name not in emitted:
                why = ("; ComponentMetricsMissing watches no component that names its own metrics, nor a kind "
                       "without a signal present from start-up (docs/catalogue.md#what-componentmetricsmissing-watches)"
                       if name == "ComponentMetricsMissing" else "")
                problems.append(source.problem(path + ("alerts", name), (
                    f"this {title.lower()} has no alert `{name}` with these settings (it has "
                    f"{', '.join(emitted) or 'none'}){why}; remove its tuning"), key=True))
        for alert in offered:
            if alert.enabled and alert.for_ > MAX_FOR and tuned.get(alert.name, {}).get("for") is None:
                problems.append(source.problem(path, (
                    f"{alert.name} would wait {alert.for_} before firing ({alert.condition}): trouble that must last "
                    f"longer than {MAX_FOR} before anyone hears of it is a report, not an alert; shorten the timing "
                    f"it is derived from, or set its `for` (`alerts: {{{alert.name}: {{for: 1h}}}}`)"), key=True))
    return problems


def own_matcher_problem(source: Source, path: Path, kind: Kind, key: str, matcher: str, where: str) -> Problem:
    """A selector label the kind's rules match themselves (a one-hot breaker's ``state``, a sentinel's
    ``master_name``): a selector on it would contradict or override them."""
    at = path + ("selector", key) if where == "selector" else ("service", "selector", key)
    return source.problem(at, f"`{key}` is matched by the {kind.title.lower()}'s own rules ({matcher}); a selector "
                              "on it would contradict or override them; remove it", key=True)


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
    # the service's selector as far as it is one (a broken one is reported by the schema, not read here)
    selector = service.get("selector", {}) if isinstance(service, dict) else {}
    selector = selector if isinstance(selector, dict) else {}
    if isinstance(service, dict) and ("service",) not in invalid:
        if "instance" in selector:
            problems.append(source.problem(("service", "selector", "instance"), NO_INSTANCE, key=True))
        problems += _cluster_selected(source, service.get("cluster_label"), data)
    for kind in KINDS:
        if (kind.key,) in invalid and not isinstance(data.get(kind.key), list):
            continue
        for i, item in enumerate(data.get(kind.key, [])):
            path = (kind.key, i)
            if path in invalid or not isinstance(item, dict):
                continue
            written = frozenset(p[-1] for p in source.key_positions if len(p) == 3 and p[:2] == path)
            paths = frozenset(p[2:] for p in source.key_positions if len(p) > 2 and p[:2] == path)
            given = Given(item, written, view, paths)
            try:
                findings = kind.check(given)
            except (KeyError, TypeError, ValueError, AttributeError):
                if not known:
                    raise  # on a valid spec a failing check is a bug in the kind
                findings = []  # it read another component that is itself broken; fix those problems first
            found = [source.problem(path + f.path, f.message, key=f.key) for f in findings]
            found += _alert_durations(source, path, item)
            found += _step_durations(source, path, kind, item)
            found += _impossible_thresholds(source, path, kind, given)
            if profile is not None:
                found += _unnamed_metrics(source, path, kind, profile, item)
                found += _label_clashes(source, path, kind, profile, item, selector)
                found += _shared_series(source, path, kind, profile, item)
                found += _split_families(source, path, kind, profile, item)
            problems += found
    return problems

