"""Hypothesis strategies for obsgen specs, derived from the JSON Schema (``obsgen schema``).

Nothing here names a component kind: the top level, every kind's list and every
field come from the schema as ``obsgen.spec.schema.schema()`` assembles it from
the registered kinds, so a kind added to ``KINDS`` is generated as soon as it
exists. Only shared definitions (``$defs``) get hand-made strategies, for
realistic sizes (a ``for`` of hours, not of centuries) and for hostile text.

``valid_specs()`` draws a document the schema accepts, then drops whatever
components the semantic checks reject (a retry naming a breaker that does not
exist, a quorum above the sentinels): what remains is a spec obsgen must build.
``mutated_specs()`` breaks a valid document in ways that must be refused.
"""

from __future__ import annotations

import math
import re
from functools import cache

import yaml
from hypothesis import assume, strategies as st

from obsgen.errors import SpecError
from obsgen.spec import parse
from obsgen.spec.schema import schema
from obsgen.model.types import Duration

# Strings that have broken generators: quotes, escapes, template and variable syntax, Markdown, HTML,
# YAML specials, unicode (combining marks, RTL text, emoji, a character outside the BMP), long text.
HOSTILE = (
    '"', "'", "\\", "\\n", '\\"', "{{ 7*7 }}", "{{", "}}", "{", "}", "{% raw %}", "${job}", "$job", "$__rate_interval",
    "[[job]]", "$1", "`", "```", "*bold*", "_x_", "<script>alert(1)</script>", "&amp;", "[x](javascript:alert(1))",
    "# heading", "- item", "1. item", "| a | b |", "~~s~~", "@here", ":smile:", "null", "~", "no", "yes", "on",
    "0x1F", "0o17", "1e3", ".inf", "- ", "? ", ": ", "&anchor", "*alias", "!tag", "%", "a # comment", " lead",
    "trail ", "é", "e\u0301", "ß", "İ", "ǅ", "日本語", "שלום", "مرحبا", "😀", "\U0001F600", "\u00a0", "Ω≈ç√",
    "a" * 256, "<!-- BEGIN GENERATED: header -->", "--", "=~", "\",instance=~\".+", "\"}[5m]) or vector(1) #",
)

# Characters a spec may hold in any string (the loader refuses control and invisible format characters).
CHARS = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))
STEP_SECONDS = 15


def _durations(least: int = 1) -> st.SearchStrategy[str]:
    """Prometheus durations up to six hours: mostly whole 15s steps (``4m15s``) of at least ``least`` steps,
    sometimes any second (``61s``: refused where the schema wants steps or a window, and dropped by
    :func:`repaired`, so the check stays exercised)."""
    steps = st.integers(least, 6 * 3600 // STEP_SECONDS).map(lambda k: k * STEP_SECONDS)
    return st.one_of(steps, steps, steps, st.integers(1, 6 * 3600)).map(lambda s: str(Duration(s * 1000)))


def _free_text(node: dict, defang) -> st.SearchStrategy[str]:
    """Text of at most ``maxLength``: hostile samples and random characters, made valid by ``defang``
    (no filter: a filter that rejects often makes hypothesis give up on a whole batch of specs)."""
    limit = node.get("maxLength", 500)
    piece = st.one_of(st.sampled_from(HOSTILE), st.text(CHARS, max_size=20))
    return st.lists(piece, max_size=4).map(lambda parts: defang("".join(parts))[:limit]).map(defang)


def _defs() -> dict[str, st.SearchStrategy]:
    d = schema()["$defs"]
    return {
        "duration": _durations(),
        "steps": _durations(),
        "window": _durations(least=4),
        # what the pattern refuses, taken apart: `{{` → `{ {`, control characters dropped
        "label_value": _free_text(d["label_value"], lambda t: re.sub(r"([{}])(?=\1)", r"\1 ", re.sub(
            "[\x00-\x1f\x7f-\x9f]", "", t)) or "x"),
        "text": _free_text(d["text"], lambda t: re.sub(r"\$(?=[A-Za-z_{])", "$ ", t).replace("[[", "[ [")),
        # Label names obsgen or the kinds use themselves, to find clashes, besides random ones.
        "label_name": st.one_of(st.sampled_from(["job", "instance", "name", "cache", "kind", "result", "state",
                                                 "service", "severity", "alertname", "tier", "master_name", "le"]),
                                st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,12}", fullmatch=True)),
        # A small pool makes names collide across kinds (references resolve, duplicates happen) as in real specs.
        "component_name": st.one_of(st.sampled_from(["a", "b", "nexonApi", "pay.v2", "c-1:x", "0x1F", "no"]),
                                    st.from_regex(d["component_name"]["pattern"], fullmatch=True)),
    }


def _string(node: dict) -> st.SearchStrategy[str]:
    """A string field without a shared definition: its pattern, or text of its length."""
    if "pattern" not in node:
        return st.text(CHARS, max_size=min(node.get("maxLength", 40), 40))
    if "https?://" in node["pattern"]:  # a URL prefix
        return st.sampled_from(["../runbooks/", "runbooks/", "https://wiki.example.com/rb/",
                                "https://x.example/a?team=sre&q=a%20b#", "http://[::1]:8080/"])
    return st.from_regex(node["pattern"], fullmatch=True)


def from_schema(node: dict, defs: dict[str, st.SearchStrategy] | None = None, depth: int = 0) -> st.SearchStrategy:
    """A strategy for values the JSON Schema ``node`` accepts (the subset of JSON Schema obsgen uses)."""
    defs = defs if defs is not None else _defs()
    root = schema()
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in defs:
            return defs[name]
        return from_schema(root["$defs"][name], defs, depth)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "oneOf" in node:
        return st.one_of(*[from_schema(n, defs, depth) for n in node["oneOf"]])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = {k: from_schema(v, defs, depth + 1) for k, v in props.items() if k in node.get("required", [])}
        optional = {k: from_schema(v, defs, depth + 1) for k, v in props.items() if k not in required}
        if not props and isinstance(node.get("additionalProperties"), dict):
            names = from_schema(node.get("propertyNames", {"type": "string"}), defs, depth + 1)
            return st.dictionaries(names, from_schema(node["additionalProperties"], defs, depth + 1), max_size=3)
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "array":
        items = from_schema(node["items"], defs, depth + 1)
        if depth <= 1:  # a kind's components: one or two when the (optional) list is there at all
            return st.lists(items, min_size=1, max_size=2)
        return st.lists(items, max_size=3)
    if kind == "string":
        return _string(node)
    if kind == "integer":
        low, high = node.get("minimum", -1000), node.get("maximum", 10 ** 9)
        return st.one_of(st.integers(low, min(high, low + 20)), st.integers(low, high))
    if kind == "number":
        low, high = node.get("minimum", node.get("exclusiveMinimum", -1e6)), node.get("maximum", node.get(
            "exclusiveMaximum", 1e6))
        floats = st.floats(low, high, exclude_min="exclusiveMinimum" in node, exclude_max="exclusiveMaximum" in node,
                           allow_nan=False, allow_infinity=False)
        first = math.floor(low) + 1 if "exclusiveMinimum" in node or low != math.floor(low) else int(low)
        last = math.ceil(high) - 1 if "exclusiveMaximum" in node or high != math.ceil(high) else int(high)
        return st.one_of(st.integers(first, last), floats) if first <= last else floats
    if kind == "boolean":
        return st.booleans()
    raise ValueError(f"specgen cannot generate {node}")


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _without(data: object, path: tuple) -> object:
    """``data`` without the value at ``path`` (a copy)."""
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        if head not in data:
            return data
        return {k: v for k, v in data.items() if k != head} if not rest else {**data, head: _without(data[head], rest)}
    if isinstance(data, list) and isinstance(head, int) and head < len(data):
        return data[:head] + data[head + 1:] if not rest else data[:head] + [_without(data[head], rest)] + data[head + 1:]
    return data


def repaired(data: dict) -> dict | None:
    """``data`` without what the semantic checks reject: the value a problem points at inside a component or
    the service (an ``instance`` matcher), else the whole component. None when that does not make it valid."""
    tried: set[tuple] = set()
    for _ in range(8):
        try:
            parse(dump(data), "generated.yaml")
            return data
        except SpecError as exc:
            # a value inside a component goes (a dangling `breaker:`), else (or if that did not help, as when
            # a default brings the problem back) the whole component
            paths = {p.path if len(p.path) > 2 and p.path not in tried else p.path[:2] for p in exc.problems}
            tried |= paths
            if any(len(p) < 2 or (len(p) == 2 and not isinstance(p[1], int) and p[0] != "service") for p in paths):
                return None
            for path in sorted(paths, key=lambda p: [str(x) for x in p], reverse=True):  # later indexes first
                data = _without(data, path)  # type: ignore[assignment]
    return None


@cache
def documents() -> st.SearchStrategy[dict]:
    """Documents the schema accepts (built once: strategies for patterns are costly to build)."""
    return from_schema(schema())


@st.composite
def valid_specs(draw) -> dict:
    data = draw(documents())
    fixed = repaired(data)
    assume(fixed is not None)
    return fixed


# --------------------------------------------------------------------------- invalid specs

def _paths(value: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, path + (i,))
    return out


def _set(data: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: _set(data[head], rest, value)}
    out = list(data)  # type: ignore[arg-type]
    out[head] = _set(out[head], rest, value)
    return out


def _get(data: object, path: tuple) -> object:
    for part in path:
        data = data[part]  # type: ignore[index]
    return data


# Each mutation makes a valid document invalid whatever the field: a list or a mapping is not what any scalar
# or list field takes; an unknown key is unknown everywhere (no object takes arbitrary keys but selectors, whose
# keys must be label names); a forbidden tag, a duplicate key or an unclosed bracket is refused by the loader.
TEXT_MUTATIONS = ("duplicate-key", "python-tag", "unclosed", "binary-tag", "nan", "bidi", "tab-indent")


def schema_at(path: tuple) -> dict | None:
    """The (resolved) schema of the value at ``path``, following properties, items and selector values."""
    defs = schema()["$defs"]

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        return node

    node = resolve(schema())
    for part in path:
        if "oneOf" in node:  # a metric: the mapping form when the path goes on
            node = resolve(next(n for n in node["oneOf"] if resolve(n).get("type") == "object"))
        if isinstance(part, int):
            node = resolve(node["items"])
        elif part in node.get("properties", {}):
            node = resolve(node["properties"][part])
        elif isinstance(node.get("additionalProperties"), dict):
            node = resolve(node["additionalProperties"])
        else:
            return None
    return node


# A value just beyond each kind of bound.
BEYOND = {"minimum": lambda b: b - 1, "exclusiveMinimum": lambda b: b, "maximum": lambda b: b * 2 + 1,
          "exclusiveMaximum": lambda b: b}


@st.composite
def mutated_specs(draw) -> tuple[str, str]:
    """``(mutation, yaml text)`` of a valid spec broken in a way obsgen must refuse (exit 2)."""
    data = draw(valid_specs())
    how = draw(st.sampled_from(("wrong-type", "unknown-key", "out-of-range") + TEXT_MUTATIONS))
    paths = _paths(data)
    if how == "wrong-type":
        path = draw(st.sampled_from([p for p in paths if p]))
        old = _get(data, path)
        data = _set(data, path, {"x": 1} if isinstance(old, list) else [1, "x"])
    elif how == "unknown-key":
        path = draw(st.sampled_from([p for p in paths if isinstance(_get(data, p), dict)]))
        data = _set(data, path, {**_get(data, path), "zz unknown key": 1})  # type: ignore[dict-item]
    elif how == "out-of-range":
        bounded = [(p, n) for p in paths if isinstance(_get(data, p), (int, float)) and not isinstance(_get(data, p), bool)
                   for n in [schema_at(p)] if n and set(n) & set(BEYOND)]
        assume(bounded)
        path, node = draw(st.sampled_from(bounded))
        key = draw(st.sampled_from(sorted(set(node) & set(BEYOND))))
        data = _set(data, path, BEYOND[key](node[key]))
    text = dump(data)
    if how == "duplicate-key":
        text += "apiVersion: obsgen/v1\n"
    elif how == "python-tag":
        text = text.replace("service:", "service: !!python/object/apply:os.system ['true']\nx:", 1)
    elif how == "binary-tag":
        text = text.replace("apiVersion: obsgen/v1", "apiVersion: !!binary b2JzZ2Vu", 1)
    elif how == "unclosed":
        text = text.replace("service:", "service: {name: [", 1)
    elif how == "nan":
        text = text.replace("service:", "zz: .nan\nservice:", 1)
    elif how == "bidi":
        text = text.replace("service:", "zz: \"\\u202e\"\nservice:", 1)
    elif how == "tab-indent":
        text = text.replace("\n  ", "\n\t", 1) if "\n  " in text else text + "\tx: 1\n"
    return how, text


@st.composite
def garbled_specs(draw) -> str:
    """A valid spec's text with a few random edits: anything may come out, valid or not."""
    text = dump(draw(valid_specs()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(("insert", "delete", "duplicate-line")))
        if edit == "insert":
            text = text[:at] + draw(st.sampled_from(list(":{}[]-&*!|>'\"#%@`,? \n\t\\") + list(HOSTILE))) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        else:
            lines = text.splitlines(True)
            i = min(at, len(lines) - 1)
            text = "".join(lines[: i + 1] + lines[i:])
    return text
