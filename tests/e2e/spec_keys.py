"""Whether the spec fields a verify hint names exist: set each in a copy of the spec and let obsgen's own loader
(schema included) judge it, so a hint that names a key no spec accepts (`service.metrics.up`) fails a test."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from obsgen.errors import SpecError
from obsgen.spec import parse

# `caches[0].metrics.misses`, `redis[0].metrics["dashboard variables"]`, `service.selector`: a field path in a hint
FIELD = re.compile(r"`((?:service|[a-z_]+\[\d+\])(?:\.[\w<>]+|\[\d+\]|\[\"[^\"]+\"\])*)`")
STEP = re.compile(r"\.?([\w<>]+)|\[(\d+)\]|\[\"([^\"]+)\"\]")


def fields(hint: str) -> list[str]:
    return FIELD.findall(hint)


def unknown_keys(spec: Path, field: str) -> list[str]:
    """The `unknown key` problems of the spec with ``field`` set (to a text where it is not set yet)."""
    data = yaml.safe_load(spec.read_text())
    steps = [int(i) if i else name or quoted for name, i, quoted in STEP.findall(field)]
    steps = steps[:-1] if steps[-1] == "<signal>" else steps  # `each of `caches[0].metrics.<signal>``
    node = data
    for step, after in zip(steps, steps[1:] + [None]):
        if isinstance(step, int):
            assert isinstance(node, list) and step < len(node), f"{field}: no item {step}"
            node = node[step]
        elif after is None:
            node.setdefault(step, "x")
        else:
            node = node.setdefault(step, [] if isinstance(after, int) else {})
    try:
        parse(yaml.safe_dump(data, sort_keys=False), str(spec))
    except SpecError as exc:
        return [str(p) for p in exc.problems if "unknown key" in p.message]
    return []


def assert_hints_name_real_keys(spec: Path, findings: list[dict]) -> int:
    """Every field every hint names exists in the spec schema; returns how many were checked."""
    checked = 0
    for f in findings:
        for field in fields(f["hint"]):
            assert not unknown_keys(spec, field), (field, f["hint"], unknown_keys(spec, field))
            checked += 1
    return checked
