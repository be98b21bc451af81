"""The JSON Schema of the spec: the single source of truth for its format and defaults.

``spec/schema.json`` holds the service and the definitions every kind shares;
each kind brings its own fragment, ``components/schemas/<Kind.schema>.json``
(an array schema whose ``items`` describe one component, with any ``$defs`` of
its own), added here under the kind's key in kind order.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def schema() -> dict:
    from obsgen.components import KINDS, service

    root = json.loads(resources.files("obsgen.spec").joinpath("schema.json").read_text("utf-8"))
    fragments = resources.files("obsgen.components").joinpath("schemas")
    _tunable(root["$defs"]["service"], service.KIND.alerts[:2])
    for kind in KINDS:
        fragment = json.loads(fragments.joinpath(f"{kind.schema}.json").read_text("utf-8"))
        root["$defs"].update(fragment.get("$defs", {}))
        presence = (service.METRICS_MISSING,) if kind.presence else ()
        _tunable(fragment["items"], kind.alerts + presence)
        _common(fragment["items"])
        root["$defs"][kind.schema] = fragment["items"]
        root["properties"][kind.key] = {"type": "array", "default": [], "description": fragment["description"],
                                        "items": {"$ref": f"#/$defs/{kind.schema}"}}
    return root


def _tunable(node: dict, alerts) -> None:
    """``alerts:`` of a component (or the service): one tuning per alert the kind declares, from its catalogue."""
    if "alerts" not in node["properties"]:
        return
    node["properties"]["alerts"]["properties"] = {a.name: {"$ref": "#/$defs/alert_tuning"} for a in alerts}


def _common(node: dict) -> None:
    """Keys every component has, whatever its kind: ``value`` (the identifying label's value, when it is not the
    name), ``history`` (its past incidents) and ``assumptions`` (what the spec guesses), both for the runbooks."""
    props = node["properties"]
    props.setdefault("value", {"$ref": "#/$defs/component_value"})
    props.setdefault("history", {"$ref": "#/$defs/history"})
    props.setdefault("assumptions", {"$ref": "#/$defs/assumptions"})


def resolve(node: dict) -> dict:
    """Follow a local ``$ref`` (``#/$defs/name``) to the schema it names."""
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def apply_defaults(node: dict, data: object, profile: str = "micrometer") -> object:
    """Fill every missing property that has a ``default``, recursively; returns ``data``.

    ``x-profile-defaults`` (``{"python": "enum"}``) overrides ``default`` for the
    service's metric profile: a python breaker's state is a 0/1/2 gauge by default.
    """
    node = resolve(node)
    if isinstance(data, dict):
        for key, sub in node.get("properties", {}).items():
            sub_resolved = resolve(sub)
            default = sub.get("default", sub_resolved.get("default"))
            default = sub.get("x-profile-defaults", {}).get(profile, default)
            if key not in data and default is not None:
                data[key] = json.loads(json.dumps(default))
            if key in data:
                apply_defaults(sub, data[key], profile)
    elif isinstance(data, list) and "items" in node:
        for item in data:
            apply_defaults(node["items"], item, profile)
    return data
